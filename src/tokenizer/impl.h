// Internal state of a Tokenizer (shared by the files of src/tokenizer, not a public API).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace shimmy::tokenizer {

struct TokenData {
  std::string text;
  float score = 0;
  uint32_t attr = kAttrNormal;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
// Vocabulary string → id; lookups take a string_view without copying.
using TextMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// A BPE merge of two token ids: its rank (position in tokenizer.ggml.merges, lower merges
// first) and the id of the merged text.
struct Merge {
  int32_t rank;
  int32_t result;
};
inline uint64_t merge_key(int32_t left, int32_t right) {
  return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
}

// Where special tokens are cut out of the text: one entry per special token text,
// looked up at each position by (first byte, length).
struct SpecialIndex {
  TextMap by_text;                                 // text → id, special tokens only
  std::array<std::vector<uint32_t>, 256> lengths;  // distinct text lengths per first byte
};

struct Tokenizer::Impl {
  Kind kind = Kind::SentencePiece;
  std::string pre_name;
  std::unique_ptr<PreTokenizer> pre;  // BPE only
  bool ignore_merges = false;         // BPE: a word that is a whole token is not merged
  // SentencePiece: every "▁" in every token is part of the token's leading run, so no token
  // can span the boundary in front of a "▁" that follows another character: the text can
  // be cut there into words that merge independently (and are cached).
  bool spm_split_words = false;

  std::vector<TokenData> tokens;
  TextMap text_to_id;  // the last id wins for duplicate strings
  size_t max_token_len = 0;

  std::unordered_map<uint64_t, Merge> merges;  // BPE, keyed by merge_key(left, right)
  // BPE: id of each byte's GPT-2 character; SentencePiece: id of <0xNN> (or of the byte
  // itself as a one-byte token). -1 where the vocabulary has none.
  std::array<int32_t, 256> byte_id{};

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, pad = -1, sep = -1, cls = -1, mask = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;

  std::vector<int32_t> specials;  // control, user-defined and unknown tokens, longest first
  SpecialIndex special_index;
  std::vector<int32_t> eog;

  int32_t find(std::string_view text) const {
    auto it = text_to_id.find(text);
    return it == text_to_id.end() ? -1 : it->second;
  }
  uint32_t attr(int32_t id) const {
    return id >= 0 && size_t(id) < tokens.size() ? tokens[size_t(id)].attr : 0;
  }
};

// Builds the Impl from raw metadata (vocab.cpp).
Result<std::unique_ptr<Tokenizer::Impl>> build_impl(VocabSpec spec);

// A piece of the input after special tokens are cut out: either a token or a text span.
struct Fragment {
  int32_t token = -1;  // >= 0: a special token
  size_t offset = 0, length = 0;
};
// special.cpp: cuts user-defined tokens (and control/unknown ones when parse_special) out
// of `text`, longest token text first, honouring the LStrip/RStrip attributes.
std::vector<Fragment> partition_special(const Tokenizer::Impl& v, std::string_view text,
                                        bool parse_special);

// Words seen during one encode() call → their ids (a per-call cache, so encode() needs no
// lock). Used by BPE and SentencePiece.
using WordCache =
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>>;

// The three algorithms; each appends the ids of one text fragment to `out`.
void spm_encode(const Tokenizer::Impl& v, std::string_view text, WordCache& cache,
                std::vector<int32_t>& out);
void bpe_encode(const Tokenizer::Impl& v, std::string_view text, WordCache& cache,
                std::vector<int32_t>& out);
void wpm_encode(const Tokenizer::Impl& v, std::string_view text, std::vector<int32_t>& out);

}  // namespace shimmy::tokenizer
