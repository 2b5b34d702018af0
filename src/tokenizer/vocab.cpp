// Builds a tokenizer's tables from the raw GGUF metadata (VocabSpec): token strings and
// attributes, the text → id map, BPE merges as id pairs, the byte tokens, the special ids
// with each model family's defaults, the special-token index and the end-of-generation set.
#include <algorithm>
#include <cstdio>
#include <set>

#include "gguf/reader.h"
#include "tokenizer/impl.h"
#include "tokenizer/unicode.h"
#include "util/log.h"

namespace shimmy::tokenizer {

namespace {

uint32_t attr_from_type(int32_t type) {
  switch (type) {
    case 1:
      return kAttrNormal;
    case 2:
      return kAttrUnknown;
    case 3:
      return kAttrControl;
    case 4:
      return kAttrUserDefined;
    case 5:
      return kAttrUnused;
    case 6:
      return kAttrByte;
    default:
      return kAttrUndefined;
  }
}

std::string lower_ascii(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  }
  return s;
}

// Texts that end generation (and the end-of-turn candidates, in preference order).
const char* const kEotTexts[] = {"<|eot_id|>",    "<|im_end|>",           "<|end|>",
                                 "<end_of_turn>", "<|endoftext|>",        "<EOT>",
                                 "_<EOT>",        "<｜end▁of▁sentence｜>"};  // DeepSeek
const char* const kEogTexts[] = {"<|eot_id|>",    "<|im_end|>", "<|end|>", "<end_of_turn>",
                                 "<|endoftext|>", "<|eom_id|>", "<EOT>",   "_<EOT>"};

Status load_merges(Tokenizer::Impl& v, const std::vector<std::string>& merges) {
  size_t skipped = 0;
  v.merges.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& m = merges[rank];
    size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sp == std::string::npos) {
      ++skipped;
      continue;
    }
    std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
    int32_t l = v.find(left), r = v.find(right);
    int32_t res = v.find(std::string(left) + std::string(right));
    // A merge whose parts or result are not tokens can never apply to token symbols.
    if (l < 0 || r < 0 || res < 0) {
      ++skipped;
      continue;
    }
    v.merges.emplace(merge_key(l, r), Merge{int32_t(rank), res});  // first rank wins
  }
  if (skipped > 0) {
    log::debug("tokenizer: ignored " + std::to_string(skipped) +
               " merges whose parts are not tokens");
  }
  return {};
}

void set_id(int32_t& dst, int64_t src, size_t n, const char* what) {
  if (src < 0) return;
  if (uint64_t(src) >= n) {
    if (src != 0xFFFFFFFF) {
      log::warn(std::string("tokenizer: ") + what + " id " + std::to_string(src) +
                " is out of range; ignored");
    }
    dst = -1;
    return;
  }
  dst = int32_t(src);
}

// True when "▁" occurs in tokens only as a leading run ("▁▁the" yes, "a▁b" or "a▁" no).
bool spaces_only_lead(const Tokenizer::Impl& v) {
  const std::string_view mark = "\xE2\x96\x81";
  for (const TokenData& t : v.tokens) {
    std::string_view s = t.text;
    while (s.substr(0, 3) == mark) s.remove_prefix(3);
    if (s.find(mark) != std::string_view::npos) return false;
  }
  return true;
}

void build_special_index(Tokenizer::Impl& v) {
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    const TokenData& t = v.tokens[id];
    if ((t.attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) && !t.text.empty()) {
      v.specials.push_back(int32_t(id));
    }
  }
  std::stable_sort(v.specials.begin(), v.specials.end(), [&](int32_t a, int32_t b) {
    return v.tokens[size_t(a)].text.size() > v.tokens[size_t(b)].text.size();
  });
  for (int32_t id : v.specials) {
    const std::string& text = v.tokens[size_t(id)].text;
    v.special_index.by_text.emplace(text, id);
    auto& lens = v.special_index.lengths[uint8_t(text[0])];
    if (std::find(lens.begin(), lens.end(), text.size()) == lens.end()) {
      lens.push_back(uint32_t(text.size()));
    }
  }
}

// Per-model token attributes the GGUF files do not carry.
void apply_model_quirks(Tokenizer::Impl& v, const std::string& name) {
  std::string lname = lower_ascii(name);
  if (lname.find("phi-3") == std::string::npos && lname.find("phi3") == std::string::npos) {
    return;
  }
  for (int32_t id : v.specials) v.tokens[size_t(id)].attr |= kAttrRStrip;
  if (int32_t id = v.find("</s>"); id >= 0) v.tokens[size_t(id)].attr |= kAttrRStrip;
  for (const char* t : {"<unk>", "<s>", "<|endoftext|>"}) {
    if (int32_t id = v.find(t); id >= 0) v.tokens[size_t(id)].attr &= ~uint32_t(kAttrRStrip);
  }
}

void detect_eog(Tokenizer::Impl& v) {
  auto mark_control = [&](int32_t id) {
    if (!(v.tokens[size_t(id)].attr & kAttrControl)) v.tokens[size_t(id)].attr = kAttrControl;
  };
  if (v.eot < 0) {
    for (const char* t : kEotTexts) {
      if (int32_t id = v.find(t); id >= 0) {
        v.eot = id;
        mark_control(id);
        break;
      }
    }
  }
  if (v.eom < 0) {
    if (int32_t id = v.find("<|eom_id|>"); id >= 0) {
      v.eom = id;
      mark_control(id);
    }
  }
  std::set<int32_t> eog;
  for (const char* t : kEogTexts) {
    if (int32_t id = v.find(t); id >= 0) {
      eog.insert(id);
      mark_control(id);
    }
  }
  for (int32_t id : {v.eos, v.eot, v.eom}) {
    if (id >= 0) eog.insert(id);
  }
  v.eog.assign(eog.begin(), eog.end());
}

}  // namespace

Result<std::unique_ptr<Tokenizer::Impl>> build_impl(VocabSpec spec) {
  auto v = std::make_unique<Tokenizer::Impl>();
  const size_t n = spec.tokens.size();
  if (n == 0) return make_error("tokenizer: tokenizer.ggml.tokens is missing or empty");
  if (n > size_t(INT32_MAX)) return make_error("tokenizer: too many tokens");
  if (!spec.scores.empty() && spec.scores.size() != n) {
    return make_error("tokenizer: tokenizer.ggml.scores has " + std::to_string(spec.scores.size()) +
                      " entries, expected " + std::to_string(n));
  }
  if (!spec.types.empty() && spec.types.size() != n) {
    return make_error("tokenizer: tokenizer.ggml.token_type has " +
                      std::to_string(spec.types.size()) + " entries, expected " +
                      std::to_string(n));
  }

  if (spec.model == "llama") {
    v->kind = Kind::SentencePiece;
    v->bos = 1, v->eos = 2, v->unk = 0;
    v->add_bos = true, v->add_space_prefix = true;
  } else if (spec.model == "gpt2") {
    v->kind = Kind::BytePairEncoding;
    v->bos = 11, v->eos = 11;
  } else if (spec.model == "bert") {
    v->kind = Kind::WordPiece;
    v->unk = 100, v->sep = 102, v->pad = 0, v->cls = 101, v->mask = 103;
    v->add_bos = true, v->add_eos = true;
  } else {
    return make_error("tokenizer: unsupported tokenizer.ggml.model '" + spec.model +
                      "' (expected llama, gpt2 or bert)");
  }
  {  // the defaults above must name real tokens
    for (int32_t* id : {&v->bos, &v->eos, &v->unk, &v->sep, &v->pad, &v->cls, &v->mask}) {
      if (*id >= int32_t(n)) *id = -1;
    }
  }

  v->tokens.resize(n);
  v->text_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    TokenData& t = v->tokens[i];
    t.text = std::move(spec.tokens[i]);
    t.score = spec.scores.empty() ? 0.0f : spec.scores[i];
    t.attr = spec.types.empty() ? kAttrNormal : attr_from_type(spec.types[i]);
    v->text_to_id[t.text] = int32_t(i);
    v->max_token_len = std::max(v->max_token_len, t.text.size());
  }

  set_id(v->bos, spec.bos, n, "BOS");
  set_id(v->eos, spec.eos, n, "EOS");
  set_id(v->eot, spec.eot, n, "EOT");
  set_id(v->eom, spec.eom, n, "EOM");
  set_id(v->unk, spec.unk, n, "UNK");
  set_id(v->pad, spec.pad, n, "PAD");
  set_id(v->sep, spec.sep, n, "SEP");
  set_id(v->cls, spec.cls, n, "CLS");
  set_id(v->mask, spec.mask, n, "MASK");

  v->byte_id.fill(-1);
  if (v->kind == Kind::BytePairEncoding) {
    auto pre = PreTokenizer::create(spec.pre);
    if (!pre) return pre.error();
    v->pre = std::move(pre.value());
    v->pre_name = v->pre->name();
    v->ignore_merges = v->pre->ignore_merges();
    if (v->pre_name == "llama3") v->add_bos = true;
    for (int b = 0; b < 256; ++b)
      v->byte_id[size_t(b)] = v->find(unicode::byte_to_utf8(uint8_t(b)));
    if (Status s = load_merges(*v, spec.merges); !s) return s.error();
  } else {
    v->pre_name = v->kind == Kind::SentencePiece ? "sentencepiece" : "wordpiece";
    v->spm_split_words = v->kind == Kind::SentencePiece && spaces_only_lead(*v);
    for (int b = 0; b < 256; ++b) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", b);
      int32_t id = v->find(hex);
      if (id < 0) id = v->find(std::string(1, char(b)));
      v->byte_id[size_t(b)] = id;
    }
  }
  if (v->kind == Kind::WordPiece && v->bos < 0) v->bos = v->cls;

  if (spec.add_bos) v->add_bos = *spec.add_bos;
  if (spec.add_eos) v->add_eos = *spec.add_eos;
  if (spec.add_space_prefix) v->add_space_prefix = *spec.add_space_prefix;

  build_special_index(*v);
  apply_model_quirks(*v, spec.name);
  detect_eog(*v);
  return v;
}

// ---- GGUF → VocabSpec ------------------------------------------------------------------

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const gguf::File& f) {
  const std::string where = "tokenizer: " + f.path() + ": ";
  VocabSpec spec;
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model)
    return make_error(where + "tokenizer.ggml.model is missing (not a model with a vocabulary?)");
  spec.model = *model;
  spec.pre = f.get_string("tokenizer.ggml.pre").value_or("");
  spec.name = f.get_string("general.name").value_or("");
  const auto* tokens = f.get_strings("tokenizer.ggml.tokens");
  if (tokens == nullptr)
    return make_error(where + "tokenizer.ggml.tokens is missing or not a string array");
  spec.tokens = *tokens;
  if (const gguf::Value* s = f.find("tokenizer.ggml.scores")) {
    if (s->type != gguf::ValueType::ARRAY || (!s->floats.empty() && !s->ints.empty())) {
      return make_error(where + "tokenizer.ggml.scores is not a numeric array");
    }
    for (double x : s->floats) spec.scores.push_back(float(x));
    for (int64_t x : s->ints) spec.scores.push_back(float(x));
  }
  if (const gguf::Value* t = f.find("tokenizer.ggml.token_type")) {
    if (t->type != gguf::ValueType::ARRAY || !t->floats.empty() || !t->strs.empty()) {
      return make_error(where + "tokenizer.ggml.token_type is not an integer array");
    }
    for (int64_t x : t->ints) spec.types.push_back(int32_t(x));
  }
  if (const auto* merges = f.get_strings("tokenizer.ggml.merges")) spec.merges = *merges;
  auto get_id = [&](const char* key) -> int64_t {
    auto x = f.get_uint(key);
    return x && *x <= uint64_t(INT64_MAX) ? int64_t(*x) : -1;
  };
  spec.bos = get_id("tokenizer.ggml.bos_token_id");
  spec.eos = get_id("tokenizer.ggml.eos_token_id");
  spec.eot = get_id("tokenizer.ggml.eot_token_id");
  spec.eom = get_id("tokenizer.ggml.eom_token_id");
  spec.unk = get_id("tokenizer.ggml.unknown_token_id");
  spec.pad = get_id("tokenizer.ggml.padding_token_id");
  spec.sep = get_id("tokenizer.ggml.seperator_token_id");  // sic: the GGUF key's spelling
  spec.cls = get_id("tokenizer.ggml.cls_token_id");
  spec.mask = get_id("tokenizer.ggml.mask_token_id");
  spec.add_bos = f.get_bool("tokenizer.ggml.add_bos_token");
  spec.add_eos = f.get_bool("tokenizer.ggml.add_eos_token");
  spec.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix");
  auto t = from_spec(std::move(spec));
  if (!t) return make_error(where + t.error().message.substr(std::string("tokenizer: ").size()));
  return t;
}

}  // namespace shimmy::tokenizer
