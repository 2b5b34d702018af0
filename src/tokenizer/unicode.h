// UTF-8 and Unicode helpers shared by the tokenizers (internal to src/tokenizer).
//
// Decoding is strict (no overlong forms, no surrogates, nothing above U+10FFFF): a byte
// that does not start a valid sequence decodes as U+FFFD and consumes one byte, the same
// per-byte replacement the reference tokenizers apply before pre-tokenizing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shimmy::tokenizer::unicode {

inline constexpr uint32_t kReplacement = 0xFFFD;

// Length in bytes of a *valid* sequence starting at s[i] (1..4), or 0 if s[i] does not start
// one. Needs the whole sequence inside s.
size_t valid_sequence_length(std::string_view s, size_t i);

// Decodes the code point at s[i] and advances i; invalid bytes give U+FFFD and advance by 1.
uint32_t decode(std::string_view s, size_t& i);

void append_utf8(std::string& out, uint32_t cp);

// The SentencePiece splitting rule: the length a lead byte announces (1 for ASCII and for a
// stray continuation byte), without checking what follows.
inline size_t length_from_lead(uint8_t c) {
  if (c < 0xC0) return 1;
  if (c < 0xE0) return 2;
  if (c < 0xF0) return 3;
  return 4;
}

// Replaces every invalid byte with U+FFFD (EF BF BD); valid text is returned unchanged.
std::string sanitize(std::string_view s);
bool is_valid(std::string_view s);

// How many leading bytes of s can be emitted now: every complete valid sequence, stopping
// before an incomplete (but so far valid) sequence at the very end. Invalid bytes are
// counted as complete so the caller can replace them (see StreamDecoder).
size_t complete_prefix(std::string_view s);

// GPT-2 byte-level map: each byte 0..255 ↔ one printable code point ("Ġ" for space).
const std::string& byte_to_utf8(uint8_t b);
// The byte a code point stands for, or -1 if it is not one of the 256.
int utf8_to_byte(uint32_t cp);

// WordPiece (BERT basic tokenizer) properties.
bool is_whitespace(uint32_t cp);    // Unicode White_Space
bool is_control(uint32_t cp);       // Cc, Cf, Co, Cs
bool is_punctuation(uint32_t cp);   // P*
bool is_ascii_symbol(uint32_t cp);  // S* below U+007F: $ + < = > ^ ` | ~
bool is_cjk(uint32_t cp);           // BERT's "Chinese character" blocks
uint32_t to_lower(uint32_t cp);
uint32_t nfd_base(uint32_t cp);  // first code point of the canonical decomposition

}  // namespace shimmy::tokenizer::unicode
