// WordPiece (tokenizer.ggml.model = "bert"), as BERT's uncased basic tokenizer:
//  1. each code point → the first code point of its canonical decomposition (drops
//     accents), lower-cased; NUL, U+FFFD and control characters are removed;
//  2. split at whitespace; punctuation, ASCII symbols and CJK ideographs become
//     one-character words;
//  3. each word, prefixed with "▁" (GGUF's word-start mark in place of BERT's "##" on
//     continuations), is cut greedily into the longest tokens from the left; a word that
//     cannot be cut completely becomes [UNK].
#include "tokenizer/impl.h"
#include "tokenizer/unicode.h"

namespace shimmy::tokenizer {

namespace {

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words(1);
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = unicode::nfd_base(unicode::decode(text, i));
    if (unicode::is_whitespace(cp)) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (cp == 0 || cp == unicode::kReplacement || unicode::is_control(cp)) continue;
    std::string s;
    unicode::append_utf8(s, unicode::to_lower(cp));
    if (unicode::is_punctuation(cp) || (cp < 0x7F && unicode::is_ascii_symbol(cp)) ||
        unicode::is_cjk(cp)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = std::move(s);
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

}  // namespace

void wpm_encode(const Tokenizer::Impl& v, std::string_view text, std::vector<int32_t>& out) {
  for (const std::string& w : split_words(text)) {
    const std::string word = "\xE2\x96\x81" + w;
    const size_t n = word.size();
    const size_t start = out.size();
    for (size_t i = 0; i < n;) {
      size_t j = std::min(n, i + v.max_token_len);
      int32_t id = -1;
      for (; j > i; --j) {
        id = v.find(std::string_view(word).substr(i, j - i));
        if (id >= 0) break;
      }
      if (id < 0) {
        out.resize(start);
        break;
      }
      out.push_back(id);
      i = j;
    }
    if (out.size() == start && v.unk >= 0) out.push_back(v.unk);
  }
}

}  // namespace shimmy::tokenizer
