#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

#include "tokenizer/unicode_tables.h"

namespace shimmy::tokenizer::unicode {

namespace {

bool is_cont(uint8_t c) {
  return (c & 0xC0) == 0x80;
}

// Returns the sequence length and the code point, or 0 if invalid / truncated.
size_t decode_at(std::string_view s, size_t i, uint32_t& cp) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i;
  size_t left = s.size() - i;
  uint8_t c = p[0];
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  if (c < 0xC2) return 0;  // continuation byte, or overlong 2-byte lead
  if (c < 0xE0) {
    if (left < 2 || !is_cont(p[1])) return 0;
    cp = (uint32_t(c & 0x1F) << 6) | (p[1] & 0x3F);
    return 2;
  }
  if (c < 0xF0) {
    if (left < 3 || !is_cont(p[1]) || !is_cont(p[2])) return 0;
    cp = (uint32_t(c & 0x0F) << 12) | (uint32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return 3;
  }
  if (c < 0xF5) {
    if (left < 4 || !is_cont(p[1]) || !is_cont(p[2]) || !is_cont(p[3])) return 0;
    cp = (uint32_t(c & 0x07) << 18) | (uint32_t(p[1] & 0x3F) << 12) | (uint32_t(p[2] & 0x3F) << 6) |
         (p[3] & 0x3F);
    if (cp < 0x10000 || cp > 0x10FFFF) return 0;
    return 4;
  }
  return 0;
}

// Could s[i..] still become a valid sequence if more bytes arrived?
bool is_valid_truncated(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i;
  size_t left = s.size() - i;
  uint8_t c = p[0];
  size_t need = c >= 0xC2 && c < 0xE0   ? 2
                : c >= 0xE0 && c < 0xF0 ? 3
                : c >= 0xF0 && c < 0xF5 ? 4
                                        : 0;
  if (need == 0 || left >= need) return false;
  for (size_t k = 1; k < left; ++k) {
    if (!is_cont(p[k])) return false;
  }
  // The second byte narrows the legal range for E0, ED, F0 and F4 leads.
  if (left >= 2) {
    uint8_t b = p[1];
    if (c == 0xE0 && b < 0xA0) return false;
    if (c == 0xED && b > 0x9F) return false;
    if (c == 0xF0 && b < 0x90) return false;
    if (c == 0xF4 && b > 0x8F) return false;
  }
  return true;
}

std::array<std::string, 256> make_byte_map() {
  // Printable bytes keep their code point; the other 68 get U+0100 + n in byte order.
  std::array<std::string, 256> m;
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    append_utf8(m[b], printable ? uint32_t(b) : next++);
  }
  return m;
}

template <typename T>
const T* find_range(const T* table, size_t n, uint32_t cp) {
  const T* end = table + n;
  const T* it =
      std::upper_bound(table, end, cp, [](uint32_t v, const T& r) { return v < r.first; });
  if (it == table) return nullptr;
  --it;
  return cp <= it->last ? it : nullptr;
}

}  // namespace

size_t valid_sequence_length(std::string_view s, size_t i) {
  uint32_t cp;
  return decode_at(s, i, cp);
}

uint32_t decode(std::string_view s, size_t& i) {
  uint32_t cp = 0;
  size_t n = decode_at(s, i, cp);
  if (n == 0) {
    i += 1;
    return kReplacement;
  }
  i += n;
  return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

bool is_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = valid_sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string sanitize(std::string_view s) {
  if (is_valid(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 16);
  for (size_t i = 0; i < s.size();) {
    size_t n = valid_sequence_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      i += 1;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

size_t complete_prefix(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t n = valid_sequence_length(s, i);
    if (n == 0) {
      if (is_valid_truncated(s, i)) return i;  // wait for the rest of the character
      n = 1;                                   // invalid for good: the caller replaces it
    }
    i += n;
  }
  return i;
}

const std::string& byte_to_utf8(uint8_t b) {
  static const std::array<std::string, 256> map = make_byte_map();
  return map[b];
}

int utf8_to_byte(uint32_t cp) {
  static const std::array<int, 512> inverse = [] {
    std::array<int, 512> inv;
    inv.fill(-1);
    for (int b = 0; b < 256; ++b) {
      size_t i = 0;
      uint32_t c = decode(byte_to_utf8(uint8_t(b)), i);
      inv[c] = b;
    }
    return inv;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

bool is_whitespace(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool is_control(uint32_t cp) {
  return find_range(tables::kControl, tables::kControl_size, cp) != nullptr;
}

bool is_punctuation(uint32_t cp) {
  return find_range(tables::kPunctuation, tables::kPunctuation_size, cp) != nullptr;
}

bool is_ascii_symbol(uint32_t cp) {
  switch (cp) {
    case '$':
    case '+':
    case '<':
    case '=':
    case '>':
    case '^':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_cjk(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

uint32_t to_lower(uint32_t cp) {
  const tables::Pair* end = tables::kLower + tables::kLower_size;
  const tables::Pair* it = std::lower_bound(
      tables::kLower, end, cp, [](const tables::Pair& p, uint32_t v) { return p.from < v; });
  return it != end && it->from == cp ? it->to : cp;
}

uint32_t nfd_base(uint32_t cp) {
  const auto* r = find_range(tables::kNfdBase, tables::kNfdBase_size, cp);
  return r ? r->to : cp;
}

}  // namespace shimmy::tokenizer::unicode
