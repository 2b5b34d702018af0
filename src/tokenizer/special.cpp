// Cutting special tokens out of the input before the text is tokenized.
//
// Rule (the reference tokenizers'): take the special tokens longest text first; for each,
// split every remaining text fragment at each non-overlapping occurrence, leftmost first.
// Control and unknown tokens take part only with parse_special; user-defined tokens always.
// A token with LStrip/RStrip also removes the ASCII whitespace next to it.
//
// Cost: one pass over the text finds which special tokens occur at all (a hash lookup per
// candidate length at each position whose byte can start one); only those are then
// applied, so a vocabulary with thousands of added tokens costs nothing for plain text.
#include <algorithm>

#include "tokenizer/impl.h"

namespace shimmy::tokenizer {

namespace {

bool is_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

bool wanted(const Tokenizer::Impl& v, int32_t id, bool parse_special) {
  uint32_t a = v.attr(id);
  if (a & kAttrUserDefined) return true;
  return parse_special && (a & (kAttrControl | kAttrUnknown));
}

// The special tokens that occur somewhere in `text`, in application order.
std::vector<int32_t> occurring(const Tokenizer::Impl& v, std::string_view text,
                               bool parse_special) {
  const SpecialIndex& ix = v.special_index;
  std::vector<int32_t> found;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto& lens = ix.lengths[uint8_t(text[i])];
    for (uint32_t len : lens) {
      if (len > text.size() - i) continue;
      auto it = ix.by_text.find(text.substr(i, len));
      if (it != ix.by_text.end() && wanted(v, it->second, parse_special))
        found.push_back(it->second);
    }
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  // Back into the order of v.specials (longest text first).
  std::vector<int32_t> ordered;
  if (!found.empty()) {
    for (int32_t id : v.specials) {
      if (std::binary_search(found.begin(), found.end(), id)) ordered.push_back(id);
    }
  }
  return ordered;
}

}  // namespace

std::vector<Fragment> partition_special(const Tokenizer::Impl& v, std::string_view text,
                                        bool parse_special) {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : occurring(v, text, parse_special)) {
    const std::string& tok = v.tokens[size_t(id)].text;
    const uint32_t a = v.attr(id);
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t start = f.offset, end = f.offset + f.length;
      for (;;) {
        std::string_view window = text.substr(start, end - start);
        size_t hit = window.find(tok);
        if (hit == std::string_view::npos) break;
        size_t left_len = hit;
        if (a & kAttrLStrip) {
          while (left_len > 0 && is_space(text[start + left_len - 1])) --left_len;
        }
        if (left_len > 0) next.push_back({-1, start, left_len});
        next.push_back({id, 0, 0});
        start += hit + tok.size();
        if (a & kAttrRStrip) {
          while (start < end && is_space(text[start])) ++start;
        }
      }
      if (start < end) next.push_back({-1, start, end - start});
    }
    std::swap(frags, next);
  }
  return frags;
}

}  // namespace shimmy::tokenizer
