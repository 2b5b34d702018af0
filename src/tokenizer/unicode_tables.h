// Unicode property tables for WordPiece normalisation (generated into unicode_tables.cpp by
// gen_unicode_tables.py). Byte-level BPE does not use them: its pre-tokenizers get \p{L},
// \p{N} and \p{P} from PCRE2 (UTF + UCP), built on the same Unicode version.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shimmy::tokenizer::tables {

struct Range {
  uint32_t first, last;  // inclusive
};
struct Pair {
  uint32_t from, to;
};
struct MappedRange {
  uint32_t first, last, to;  // every code point in [first, last] maps to `to`
};

extern const Range kPunctuation[];  // general category P*
extern const size_t kPunctuation_size;
extern const Range kControl[];  // Cc, Cf, Co, Cs
extern const size_t kControl_size;
extern const Pair kLower[];  // simple lowercase mappings (single code point results)
extern const size_t kLower_size;
extern const MappedRange kNfdBase[];  // first code point of the canonical decomposition
extern const size_t kNfdBase_size;

}  // namespace shimmy::tokenizer::tables
