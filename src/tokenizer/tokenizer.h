// Tokenizers built from GGUF metadata: SentencePiece ("llama"), byte-level BPE ("gpt2",
// with per-model pre-tokenizer rules from tokenizer.ggml.pre) and WordPiece ("bert").
//
// The behaviour follows the reference tokenizers the test vocabularies were made with
// (../shared/vocab/*.inp/.out and ../shared/reference/*.json):
//  - encode() first cuts special tokens out of the text: user-defined tokens always,
//    control tokens only when parse_special is set. Each remaining piece of text is then
//    tokenized on its own by the vocabulary's algorithm.
//  - SentencePiece: spaces become "▁"; a space is prefixed to a piece of text that starts
//    the input or follows a special token (when tokenizer.ggml.add_space_prefix, default
//    on); pieces merge by highest score; characters with no token fall back to <0xNN>.
//  - BPE: invalid UTF-8 becomes U+FFFD, the pre-tokenizer regexes split the text into
//    words, each word's bytes map to the GPT-2 byte alphabet and merge by lowest rank.
//  - WordPiece: lower-cased, accents stripped, split on whitespace and punctuation, then
//    greedy longest match per word ("▁" marks a word start in GGUF vocabularies).
//
// Thread safety: a Tokenizer is immutable after from_gguf(); encode() and the decode
// functions may be called from several threads at once. A StreamDecoder is per stream.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace shimmy::gguf {
class File;
}

namespace shimmy::tokenizer {

enum class Kind { SentencePiece, BytePairEncoding, WordPiece };
const char* kind_name(Kind k);

// Token attributes (bit flags), from tokenizer.ggml.token_type.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1 << 0,
  kAttrUnused = 1 << 1,
  kAttrNormal = 1 << 2,
  kAttrControl = 1 << 3,      // BOS, EOS, <|im_start|>, ...: only parsed with parse_special
  kAttrUserDefined = 1 << 4,  // added tokens: always matched as a whole in the text
  kAttrByte = 1 << 5,         // SentencePiece <0xNN>
  kAttrLStrip = 1 << 6,       // a matched special token eats whitespace on its left
  kAttrRStrip = 1 << 7,       // ... on its right
};

// The raw vocabulary, as the GGUF metadata holds it. from_gguf() fills one; tests and
// fuzzers can build one directly. Ids < 0 mean "not set" (defaults apply per model).
struct VocabSpec {
  std::string model;  // tokenizer.ggml.model: "llama", "gpt2", "bert"
  std::string pre;    // tokenizer.ggml.pre ("" if absent)
  std::string name;   // general.name (a few models get per-token attributes from it)
  std::vector<std::string> tokens;
  std::vector<float> scores;        // empty or one per token
  std::vector<int32_t> types;       // empty or one per token (1 normal .. 6 byte)
  std::vector<std::string> merges;  // BPE: "left right", in rank order
  int64_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, pad = -1, sep = -1, cls = -1, mask = -1;
  std::optional<bool> add_bos, add_eos, add_space_prefix;
};

struct EncodeOptions {
  bool add_special = false;  // add BOS/EOS (WordPiece: CLS/SEP) as the metadata says
  std::optional<bool>
      add_bos;  // explicit override of the BOS rule (applies even without add_special)
  std::optional<bool> add_eos;  // explicit override of the EOS rule
  bool parse_special = false;   // turn control-token text such as "<|im_start|>" into its id
};

struct DecodeOptions {
  bool skip_special = false;  // drop control and unknown tokens instead of rendering their text
  // SentencePiece: drop the one space that encode() prefixed, i.e. the leading space of a
  // normal token that starts the sequence or follows a special token. Makes
  // decode(encode(x)) == x; a StreamDecoder never strips (generated text keeps its spaces).
  // WordPiece: the space of the first word's "▁" mark.
  bool strip_space_prefix = true;
};

class Tokenizer {
 public:
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const gguf::File& file);
  static Result<std::unique_ptr<Tokenizer>> from_spec(VocabSpec spec);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opt) const;
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const {
    EncodeOptions o;
    o.add_special = add_special;
    o.parse_special = parse_special;
    return encode(text, o);
  }

  // The raw bytes a token stands for: "▁" → " " (SentencePiece, WordPiece), <0xNN> → the
  // byte, GPT-2 alphabet → bytes (BPE), control/user-defined tokens → their text. May be
  // an incomplete UTF-8 sequence (byte tokens). "" for an id out of range.
  std::string token_to_piece(int32_t id) const;
  std::string decode(const std::vector<int32_t>& ids, const DecodeOptions& opt = {}) const;

  Kind kind() const;
  const std::string& pre() const;  // the pre-tokenizer rule set in use ("gpt-2", ...)
  int32_t n_vocab() const;
  bool valid(int32_t id) const { return id >= 0 && id < n_vocab(); }
  std::string_view token_text(int32_t id) const;  // the vocabulary string ("" if out of range)
  uint32_t attr(int32_t id) const;                // TokenAttr bits (0 if out of range)
  float score(int32_t id) const;
  std::optional<int32_t> find_token(std::string_view text) const;  // exact vocabulary string
  bool is_control(int32_t id) const { return (attr(id) & kAttrControl) != 0; }

  // Special ids; -1 when the vocabulary has none.
  int32_t bos() const;
  int32_t eos() const;
  int32_t eot() const;  // end of turn (<|eot_id|>, <|im_end|>, ...)
  int32_t eom() const;
  int32_t unk() const;
  int32_t pad() const;
  int32_t sep() const;
  int32_t cls() const;
  bool is_eog(int32_t id) const;  // end of generation: EOS, EOT, EOM and their kin
  const std::vector<int32_t>& eog_ids() const;
  bool add_bos() const;
  bool add_eos() const;
  bool add_space_prefix() const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns generated ids into text that is always valid UTF-8: bytes of a character split
// across tokens are held until the character is complete; bytes that can never form a
// character come out as U+FFFD. Control tokens are skipped unless render_special.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool render_special = false)
      : tok_(&tok), render_special_(render_special) {}
  std::string push(int32_t id);  // text ready to emit now (may be empty)
  std::string flush();           // the held bytes (as U+FFFD); the decoder is then empty
  void reset() { held_.clear(); }
  size_t held_bytes() const { return held_.size(); }

 private:
  const Tokenizer* tok_;
  bool render_special_;
  std::string held_;  // an incomplete UTF-8 sequence (at most 3 bytes)
};

}  // namespace shimmy::tokenizer
