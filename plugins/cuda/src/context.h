// A created model slice on one device: its weights, KV cache, scratch, stream and the decode
// graphs captured so far. Everything is allocated in create(); eval() allocates nothing
// (except the first replay of a batch size, which captures and instantiates its graph).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "backend.h"
#include "host_copy.h"
#include "mm/matmul.h"
#include "plugin_abi.h"
#include "slice.h"

namespace shimmy::cuda {

struct LayerDev {
  DeviceWeight wq, wk, wv, wo, w_gate, w_up, w_down;
  // Stacked weights (slice.h stack_weights): wqkv = [wq; wk; wv], wgu = [w_gate; w_up].
  DeviceWeight wqkv, wgu;
  bool qkv_stacked = false, gu_stacked = false;
  // wgu's rows interleaved by 8 (mm/matmul.h matmul_swiglu): decode computes SwiGLU in the
  // product's epilogue; longer batches use swiglu_rows8.
  bool gu_inter8 = false;
  const float *attn_norm = nullptr, *ffn_norm = nullptr;
  const float *bq = nullptr, *bk = nullptr, *bv = nullptr;  // qkv_bias models
  const float *q_norm = nullptr, *k_norm = nullptr;         // qk_norm models
  void *k_cache = nullptr, *v_cache = nullptr;              // [max_seqs][max_ctx][KV]
};

struct Dims {
  int64_t n_vocab, n_embd, n_head, n_head_kv, head_dim, n_ff, n_rot;
  int64_t n_layers;  // in this slice
  int64_t max_ctx, max_seqs, max_batch;
  float eps;
  bool neox, kv_f16, has_output;
};

}  // namespace shimmy::cuda

struct ShimmyContext {
  int device = 0;  // CUDA device ordinal
  cudaStream_t stream = nullptr;
  shimmy::cuda::Dims dims{};
  shimmy::cuda::SliceLayout layout;
  uint8_t *weights = nullptr, *kv = nullptr, *scratch = nullptr;  // the three allocations
  uint8_t* host_batch = nullptr;                                  // pinned staging, batch_bytes
  // Pinned staging for what eval copies back (logits rows, or hidden states): a copy from
  // the device into pageable memory is staged by the driver at a fraction of the speed.
  float* host_out = nullptr;
  size_t host_out_floats = 0;
  shimmy::cuda::HostCopy copy_out;  // host_out -> the caller's memory, big copies in parallel
  std::vector<shimmy::cuda::LayerDev> layers;
  shimmy::cuda::DeviceWeight output;
  const float* output_norm = nullptr;
  std::vector<int64_t> seq_len;    // positions each slot holds (0..len-1)
  std::vector<int64_t> seq_count;  // eval's per-slot token count (preallocated)
  // Decode graphs by batch size (index n, n <= graph_max); null until first used.
  std::vector<cudaGraphExec_t> graphs;
  int64_t graph_max = 0;  // 0: graphs off (SHIMMY_CUDA_GRAPHS=0, or a capture failed)
  bool use_flash = true;  // tensor-core prompt attention (SHIMMY_CUDA_FLASH=0 turns it off)

  float* scr(size_t off) const { return reinterpret_cast<float*>(scratch + off); }
};
