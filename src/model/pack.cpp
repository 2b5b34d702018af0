// pack_cpu_weights: row-interleaved copies of the CPU layers' matrices (model.h).
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

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

void pack(Model& m, Weight& w) {
  if (!w.k || w.data != w.src || !quant::can_pack(*w.k, w.rows, w.cols)) return;
  const size_t bytes = size_t(w.rows) * w.row_bytes;
  auto buf = std::make_unique<uint8_t[]>(bytes);
  quant::pack_rows(*w.k, w.src, w.row_bytes, w.rows, w.cols, buf.get());
  release_pages(w.src, bytes);
  w.data = buf.get();
  w.k = w.k->packed;
  m.packed.push_back(std::move(buf));
}

}  // namespace

void pack_cpu_weights(Model& m, int64_t n_layers, bool output) {
  for (int64_t l = 0; l < n_layers && l < int64_t(m.layers.size()); ++l) {
    Layer& L = m.layers[size_t(l)];
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) pack(m, *w);
  }
  // A tied output shares token_embd's rows, which the embedding lookup reads row by row
  // in the GGUF layout: it stays as it is.
  if (output && !m.cfg.tied_embeddings) pack(m, m.output);
}

}  // namespace shimmy::model
