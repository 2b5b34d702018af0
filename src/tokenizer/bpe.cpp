// Byte-level BPE (tokenizer.ggml.model = "gpt2").
//
// The pre-tokenizer cuts the text into words. A word starts as one symbol per byte, each
// the token of that byte's GPT-2 character. Adjacent pairs that have a merge are queued by
// merge rank (ties: leftmost first); the best pair merges into the merge's result token and
// its new neighbours are queued; an entry is stale once the pair at its position changed. O(w log
// w) per word, and each distinct word is merged once per encode() call.
#include <algorithm>
#include <functional>
#include <map>

#include "tokenizer/impl.h"
#include "tokenizer/unicode.h"

namespace shimmy::tokenizer {

namespace {

struct Symbol {
  int32_t id;  // -1 once merged into its left neighbour
  int32_t prev, next;
};

// The queue of candidate merges, ordered by (rank, left position) exactly like one heap of
// pairs, but kept as one small min-heap of positions per rank: a long run of one character
// puts up to a million entries of a handful of ranks here, and 4-byte entries in a few
// heaps stay in cache where one heap of 24-byte entries does not.
class MergeQueue {
 public:
  void push(int32_t rank, int32_t left) {
    auto& h = buckets_[rank];
    h.push_back(left);
    std::push_heap(h.begin(), h.end(), std::greater<>());
  }
  bool empty() const { return buckets_.empty(); }
  // The lowest rank's leftmost entry.
  std::pair<int32_t, int32_t> pop() {
    auto it = buckets_.begin();
    auto& h = it->second;
    std::pop_heap(h.begin(), h.end(), std::greater<>());
    std::pair<int32_t, int32_t> top{it->first, h.back()};
    h.pop_back();
    if (h.empty()) buckets_.erase(it);
    return top;
  }

 private:
  std::map<int32_t, std::vector<int32_t>> buckets_;
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
  MergeQueue queue;
  auto rank_of = [&](int32_t l, int32_t r) -> const Merge* {
    if (l < 0 || r < 0) return nullptr;
    int32_t a = sym[size_t(l)].id, b = sym[size_t(r)].id;
    if (a < 0 || b < 0) return nullptr;
    auto it = v.merges.find(merge_key(a, b));
    return it == v.merges.end() ? nullptr : &it->second;
  };
  auto try_add = [&](int32_t l, int32_t r) {
    if (const Merge* m = rank_of(l, r)) queue.push(m->rank, l);
  };
  for (int32_t i = 1; i < int32_t(sym.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    auto [rank, left] = queue.pop();
    // Stale when the left symbol was merged away or the pair at `left` changed since.
    Symbol& l = sym[size_t(left)];
    if (l.id < 0 || l.next < 0) continue;
    const Merge* m = rank_of(left, l.next);
    if (m == nullptr || m->rank != rank) continue;
    Symbol& r = sym[size_t(l.next)];
    l.id = m->result;
    r.id = -1;
    l.next = r.next;
    if (r.next >= 0) sym[size_t(r.next)].prev = left;
    try_add(l.prev, left);
    try_add(left, l.next);
  }
  for (int32_t i = 0; i >= 0; i = sym[size_t(i)].next) {
    // A byte without a token (only in a damaged vocabulary) is dropped, as the reference does.
    if (sym[size_t(i)].id >= 0) out.push_back(sym[size_t(i)].id);
  }
}

}  // namespace

void bpe_encode(const Tokenizer::Impl& v, std::string_view text, WordCache& cache,
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
