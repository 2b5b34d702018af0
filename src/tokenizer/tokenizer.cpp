// Tokenizer: encode (special-token partition, then the vocabulary's algorithm per text
// fragment, with BOS/EOS as configured) and decode (token pieces back to bytes).
#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "tokenizer/impl.h"
#include "tokenizer/unicode.h"
#include "util/log.h"

namespace shimmy::tokenizer {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::SentencePiece:
      return "sentencepiece";
    case Kind::BytePairEncoding:
      return "bpe";
    case Kind::WordPiece:
      return "wordpiece";
  }
  return "?";
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_spec(VocabSpec spec) {
  auto impl = build_impl(std::move(spec));
  if (!impl) return impl.error();
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl.value())));
}

namespace {

// SentencePiece: " " → "▁".
std::string escape_spaces(std::string_view text, bool prefix) {
  std::string s;
  s.reserve(text.size() + text.size() / 4 + 3);
  if (prefix) s += "\xE2\x96\x81";
  for (char c : text) {
    if (c == ' ') {
      s += "\xE2\x96\x81";
    } else {
      s += c;
    }
  }
  return s;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& opt) const {
  const Impl& v = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  // WordPiece wraps the input in CLS ... SEP; the others in BOS ... EOS.
  const bool wpm = v.kind == Kind::WordPiece;
  const int32_t first = wpm ? v.cls : v.bos;
  const int32_t last = wpm ? v.sep : v.eos;
  const bool add_first = opt.add_bos.value_or(opt.add_special && v.add_bos) && first >= 0;
  const bool add_last = opt.add_eos.value_or(opt.add_special && v.add_eos) && last >= 0;

  if (add_first) out.push_back(first);
  std::vector<Fragment> frags = partition_special(v, text, opt.parse_special);
  WordCache cache;
  bool prev_special = true;  // SentencePiece: the first fragment gets the space prefix
  for (const Fragment& f : frags) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    std::string_view piece = text.substr(f.offset, f.length);
    switch (v.kind) {
      case Kind::SentencePiece:
        spm_encode(v, escape_spaces(piece, v.add_space_prefix && prev_special), cache, out);
        break;
      case Kind::BytePairEncoding:
        bpe_encode(v, piece, cache, out);
        break;
      case Kind::WordPiece:
        wpm_encode(v, piece, out);
        break;
    }
    prev_special = false;
  }
  if (add_first && out.size() >= 2 && out[1] == first && !wpm) {
    log::debug("tokenizer: the text starts with BOS and BOS was added: the sequence has two");
  }
  if (add_last) out.push_back(last);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  const Impl& v = *impl_;
  if (!valid(id)) return {};
  const TokenData& t = v.tokens[size_t(id)];
  if (t.attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) return t.text;
  if (v.kind == Kind::BytePairEncoding) {
    std::string out;
    out.reserve(t.text.size());
    for (size_t i = 0; i < t.text.size();) {
      size_t start = i;
      uint32_t cp = unicode::decode(t.text, i);
      int b = unicode::utf8_to_byte(cp);
      if (b >= 0) {
        out += char(b);
      } else {
        out.append(t.text, start, i - start);  // not from the byte alphabet: keep as is
      }
    }
    return out;
  }
  if (t.attr & kAttrByte) {
    // "<0xNN>"
    auto hex = [](char c) {
      return c >= '0' && c <= '9'   ? c - '0'
             : c >= 'A' && c <= 'F' ? c - 'A' + 10
             : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                    : -1;
    };
    if (t.text.size() == 6 && t.text.compare(0, 3, "<0x") == 0 && t.text[5] == '>' &&
        hex(t.text[3]) >= 0 && hex(t.text[4]) >= 0) {
      return std::string(1, char(hex(t.text[3]) * 16 + hex(t.text[4])));
    }
    return t.text;
  }
  std::string s = t.text;
  replace_all(s, "\xE2\x96\x81", " ");
  return s;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, const DecodeOptions& opt) const {
  const Impl& v = *impl_;
  std::string out;
  bool at_start = true;  // start of the sequence, or right after a special token
  for (int32_t id : ids) {
    uint32_t a = attr(id);
    bool special = (a & (kAttrControl | kAttrUserDefined | kAttrUnknown)) != 0;
    if (!(opt.skip_special && (a & (kAttrControl | kAttrUnknown)))) {
      std::string piece = token_to_piece(id);
      // WordPiece marks every word start with "▁": the first word's space goes too.
      bool prefixed =
          (v.kind == Kind::SentencePiece && v.add_space_prefix) || v.kind == Kind::WordPiece;
      if (opt.strip_space_prefix && at_start && !special && prefixed && !piece.empty() &&
          piece[0] == ' ' && (a & kAttrNormal)) {
        piece.erase(0, 1);
      }
      out += piece;
    }
    at_start = special;
  }
  return out;
}

Kind Tokenizer::kind() const {
  return impl_->kind;
}
const std::string& Tokenizer::pre() const {
  return impl_->pre_name;
}
int32_t Tokenizer::n_vocab() const {
  return int32_t(impl_->tokens.size());
}
std::string_view Tokenizer::token_text(int32_t id) const {
  return valid(id) ? std::string_view(impl_->tokens[size_t(id)].text) : std::string_view();
}
uint32_t Tokenizer::attr(int32_t id) const {
  return impl_->attr(id);
}
float Tokenizer::score(int32_t id) const {
  return valid(id) ? impl_->tokens[size_t(id)].score : 0;
}
std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  int32_t id = impl_->find(text);
  return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}
int32_t Tokenizer::bos() const {
  return impl_->bos;
}
int32_t Tokenizer::eos() const {
  return impl_->eos;
}
int32_t Tokenizer::eot() const {
  return impl_->eot;
}
int32_t Tokenizer::eom() const {
  return impl_->eom;
}
int32_t Tokenizer::unk() const {
  return impl_->unk;
}
int32_t Tokenizer::pad() const {
  return impl_->pad;
}
int32_t Tokenizer::sep() const {
  return impl_->sep;
}
int32_t Tokenizer::cls() const {
  return impl_->cls;
}
bool Tokenizer::is_eog(int32_t id) const {
  return id >= 0 && std::binary_search(impl_->eog.begin(), impl_->eog.end(), id);
}
const std::vector<int32_t>& Tokenizer::eog_ids() const {
  return impl_->eog;
}
bool Tokenizer::add_bos() const {
  return impl_->add_bos;
}
bool Tokenizer::add_eos() const {
  return impl_->add_eos;
}
bool Tokenizer::add_space_prefix() const {
  return impl_->add_space_prefix;
}

// ---- StreamDecoder ----------------------------------------------------------------------

namespace {

// Emits the complete part of `buf` with invalid bytes as U+FFFD; keeps the incomplete tail.
std::string take_complete(std::string& buf) {
  size_t n = unicode::complete_prefix(buf);
  std::string out = unicode::sanitize(std::string_view(buf).substr(0, n));
  buf.erase(0, n);
  return out;
}

}  // namespace

std::string StreamDecoder::push(int32_t id) {
  if (!render_special_ && (tok_->attr(id) & (kAttrControl | kAttrUnknown))) return {};
  held_ += tok_->token_to_piece(id);
  return take_complete(held_);
}

std::string StreamDecoder::flush() {
  std::string out = unicode::sanitize(held_);
  held_.clear();
  return out;
}

}  // namespace shimmy::tokenizer
