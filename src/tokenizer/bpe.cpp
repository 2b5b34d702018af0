// Byte-level BPE (tokenizer.ggml.model = "gpt2").
//
// The pre-tokenizer cuts the text into words. A word starts as one symbol per byte, each
// the token of that byte's GPT-2 character. Adjacent pairs that have a merge go into a
// min-heap by merge rank (ties: leftmost first); the best pair merges into the merge's
// result token and its new neighbours are queued; an entry is stale once either side has
// changed. O(w log w) per word, and each distinct word is merged once per encode() call.
#include <queue>

#include "tokenizer/impl.h"
#include "tokenizer/unicode.h"

namespace shimmy::tokenizer {

namespace {

struct Symbol {
  int32_t id;  // -1 once merged into its left neighbour
  int32_t prev, next;
};

struct Bigram {
  int32_t rank;
  int32_t left, right;
  int32_t left_id, right_id, result;
};

struct Worse {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

// Words longer than this are merged but not cached (a run of one character).
constexpr size_t kMaxCachedWord = 256;

void merge_word(const Tokenizer::Impl& v, std::string_view word, std::vector<int32_t>& out) {
  if (v.ignore_merges && word.size() > 1) {
    std::string mapped;
    for (char c : word) mapped += unicode::byte_to_utf8(uint8_t(c));
    if (int32_t id = v.find(mapped); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::vector<Symbol> sym(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    sym[i] = {v.byte_id[uint8_t(word[i])], int32_t(i) - 1,
              i + 1 == word.size() ? -1 : int32_t(i) + 1};
  }
  std::priority_queue<Bigram, std::vector<Bigram>, Worse> queue;
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    int32_t a = sym[size_t(l)].id, b = sym[size_t(r)].id;
    if (a < 0 || b < 0) return;
    auto it = v.merges.find(merge_key(a, b));
    if (it == v.merges.end()) return;
    queue.push({it->second.rank, l, r, a, b, it->second.result});
  };
  for (int32_t i = 1; i < int32_t(sym.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    Bigram g = queue.top();
    queue.pop();
    Symbol& l = sym[size_t(g.left)];
    Symbol& r = sym[size_t(g.right)];
    if (l.id != g.left_id || r.id != g.right_id || l.next != g.right) continue;
    l.id = g.result;
    r.id = -1;
    l.next = r.next;
    if (r.next >= 0) sym[size_t(r.next)].prev = g.left;
    r.next = r.prev = -2;  // detached
    try_add(l.prev, g.left);
    try_add(g.left, l.next);
  }
  for (int32_t i = 0; i >= 0; i = sym[size_t(i)].next) {
    // A byte without a token (only in a damaged vocabulary) is dropped, as the reference does.
    if (sym[size_t(i)].id >= 0) out.push_back(sym[size_t(i)].id);
  }
}

}  // namespace

void bpe_encode(const Tokenizer::Impl& v, std::string_view text, BpeCache& cache,
                std::vector<int32_t>& out) {
  // Invalid UTF-8 becomes U+FFFD first, so the regexes see valid text.
  std::string clean;
  if (!unicode::is_valid(text)) {
    clean = unicode::sanitize(text);
    text = clean;
  }
  std::vector<Span> words;
  v.pre->split(text, words);
  for (const Span& w : words) {
    std::string_view word = text.substr(w.offset, w.length);
    if (word.size() > kMaxCachedWord) {
      merge_word(v, word, out);
      continue;
    }
    auto it = cache.find(word);
    if (it == cache.end()) {
      std::vector<int32_t> ids;
      merge_word(v, word, ids);
      it = cache.emplace(std::string(word), std::move(ids)).first;
    }
    out.insert(out.end(), it->second.begin(), it->second.end());
  }
}

}  // namespace shimmy::tokenizer
