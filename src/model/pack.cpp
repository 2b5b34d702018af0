// pack_cpu_weights: row-interleaved copies of the CPU layers' matrices (model.h).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "backend/cpu/quant/packed.h"
#include "model/model.h"

namespace shimmy::model {
namespace {

// Drops the whole pages inside [p, p + n) from this process (a read-only file mapping:
// the bytes stay in the file and fault back in if anything reads them again).
void release_pages(const uint8_t* p, size_t n) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto b = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
  const auto e = (reinterpret_cast<uintptr_t>(p) + n) & ~(page - 1);
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

bool packable(const Weight& w) {
  return w.k && w.data == w.src && quant::can_pack(*w.k, w.rows, w.cols);
}

// Repacks w into dst (rows * row_bytes bytes) and releases the mapped source pages.
void pack(Weight& w, uint8_t* dst) {
  const size_t bytes = size_t(w.rows) * w.row_bytes;
  quant::pack_rows(*w.k, w.src, w.row_bytes, w.rows, w.cols, dst);
  release_pages(w.src, bytes);
  w.data = dst;
  w.k = w.k->packed;
}

}  // namespace

// All packed copies of one call share one allocation aligned to 2 MiB and marked for
// transparent huge pages: decode streams every byte of it once per token, and with 4 KiB
// pages each page is a TLB miss (a 1.1 GB model is 270k pages). One block, not one per
// matrix, so rounding up to whole huge pages costs at most 2 MiB.
void pack_cpu_weights(Model& m, int64_t n_layers, bool output) {
  std::vector<Weight*> todo;
  for (int64_t l = 0; l < n_layers && l < int64_t(m.layers.size()); ++l) {
    Layer& L = m.layers[size_t(l)];
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      if (packable(*w)) todo.push_back(w);
  }
  // A tied output shares token_embd's rows, which the embedding lookup reads row by row
  // in the GGUF layout: it stays as it is.
  if (output && !m.cfg.tied_embeddings && packable(m.output)) todo.push_back(&m.output);
  if (todo.empty()) return;
  constexpr size_t kAlign = 64, kHuge = size_t(2) << 20;
  size_t total = 0;
  for (const Weight* w : todo)
    total += (size_t(w->rows) * w->row_bytes + kAlign - 1) & ~(kAlign - 1);
  total = (total + kHuge - 1) & ~(kHuge - 1);
  auto* base = static_cast<uint8_t*>(std::aligned_alloc(kHuge, total));
  if (!base) throw std::bad_alloc();
  madvise(base, total, MADV_HUGEPAGE);  // a hint: without THP the copies still work
  m.packed.emplace_back(base);
  size_t off = 0;
  for (Weight* w : todo) {
    pack(*w, base + off);
    off += (size_t(w->rows) * w->row_bytes + kAlign - 1) & ~(kAlign - 1);
  }
}

}  // namespace shimmy::model
