// Byte-level BPE pre-tokenizers: the regex splits that tokenizer.ggml.pre names.
//
// A rule set is a list of regexes applied in turn. Each regex splits every current chunk
// into its matches *and* the text between them (nothing is dropped), so the chunks always
// tile the input. The regexes are compiled once (PCRE2, UTF + UCP, so \p{L}, \p{N}, \p{P}
// and \s are real Unicode classes; JIT when available); \s additionally covers U+0085,
// matching Unicode White_Space. Match data is created per call, so split() is safe to
// call from several threads at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/result.h"

namespace shimmy::tokenizer {

struct Span {
  size_t offset = 0;
  size_t length = 0;
};

class PreTokenizer {
 public:
  // `pre` is tokenizer.ggml.pre. An unknown or empty name falls back to "gpt-2" with a
  // warning; name() then says "gpt-2". ignore_merges() is true for the Llama-3 rules (a
  // word that is already a token is not merged).
  static Result<std::unique_ptr<PreTokenizer>> create(std::string_view pre);
  ~PreTokenizer();

  const std::string& name() const { return name_; }
  bool ignore_merges() const { return ignore_merges_; }

  // Splits `text` (valid UTF-8) into words; appends spans relative to text.
  void split(std::string_view text, std::vector<Span>& words) const;

  struct Regex;

 private:
  PreTokenizer() = default;
  std::string name_;
  bool ignore_merges_ = false;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

// Rule-set names this build knows (for docs and tests).
std::vector<std::string> known_pre_tokenizers();

}  // namespace shimmy::tokenizer
