// SentencePiece (BPE flavour, tokenizer.ggml.model = "llama").
//
// The text arrives with spaces already turned into "▁". It starts as one symbol per UTF-8
// character (length from the lead byte, so invalid bytes stay single bytes). Adjacent
// pairs whose concatenation is a token go into a max-heap by that token's score (ties:
// leftmost first); the best pair merges, and its new neighbours are queued. A heap entry
// is stale once either side has changed size. Symbols that are not tokens at the end fall
// back to one <0xNN> token per byte. O(n log n) in the text length.
//
// When the vocabulary allows it (Impl::spm_split_words: true for Llama, Phi-3, Baichuan),
// the text is first cut in front of each "▁" that follows another character; no token can
// span such a cut, so the words merge independently with the same result, and repeated
// words come from a per-call cache.
#include <queue>

#include "tokenizer/impl.h"
#include "tokenizer/unicode.h"

namespace shimmy::tokenizer {

namespace {

struct Symbol {
  uint32_t start, n;  // bytes of the text; n == 0 once merged into its left neighbour
  int32_t prev, next;
};

struct Bigram {
  float score;
  int32_t left, right;
  uint32_t size;
};

struct Worse {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

namespace {

void merge_word(const Tokenizer::Impl& v, std::string_view text, std::vector<int32_t>& out) {
  if (text.empty()) return;
  std::vector<Symbol> sym;
  sym.reserve(text.size());
  for (size_t off = 0; off < text.size();) {
    size_t len = std::min(unicode::length_from_lead(uint8_t(text[off])), text.size() - off);
    int32_t idx = int32_t(sym.size());
    sym.push_back({uint32_t(off), uint32_t(len), idx - 1, off + len == text.size() ? -1 : idx + 1});
    off += len;
  }

  std::vector<Bigram> storage;
  storage.reserve(sym.size());
  std::priority_queue<Bigram, std::vector<Bigram>, Worse> queue(Worse{}, std::move(storage));
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    std::string_view pair = text.substr(sym[size_t(l)].start, sym[size_t(l)].n + sym[size_t(r)].n);
    int32_t id = v.find(pair);
    if (id < 0) return;
    queue.push({v.tokens[size_t(id)].score, l, r, uint32_t(pair.size())});
  };
  for (int32_t i = 1; i < int32_t(sym.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[size_t(b.left)];
    Symbol& r = sym[size_t(b.right)];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[size_t(r.next)].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  for (int32_t i = 0; i != -1; i = sym[size_t(i)].next) {
    std::string_view piece = text.substr(sym[size_t(i)].start, sym[size_t(i)].n);
    int32_t id = v.find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char c : piece) {
      int32_t b = v.byte_id[uint8_t(c)];
      if (b < 0) b = v.unk;
      if (b >= 0) out.push_back(b);
    }
  }
}

constexpr size_t kMaxCachedWord = 256;

}  // namespace

void spm_encode(const Tokenizer::Impl& v, std::string_view text, WordCache& cache,
                std::vector<int32_t>& out) {
  if (!v.spm_split_words) {
    merge_word(v, text, out);
    return;
  }
  // Cut in front of each "▁" that follows another character (see Impl::spm_split_words).
  const std::string_view mark = "\xE2\x96\x81";
  size_t start = 0;
  while (start < text.size()) {
    size_t pos = start;
    while (text.substr(pos, 3) == mark) pos += 3;  // the word's own leading run
    size_t end = text.find(mark, pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(start, end - start);
    if (word.size() > kMaxCachedWord) {
      merge_word(v, word, out);
    } else {
      auto it = cache.find(word);
      if (it == cache.end()) {
        std::vector<int32_t> ids;
        merge_word(v, word, ids);
        it = cache.emplace(std::string(word), std::move(ids)).first;
      }
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
    start = end;
  }
}

}  // namespace shimmy::tokenizer
