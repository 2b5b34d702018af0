// The layer kernels of the CUDA backend (everything but the weight matmuls, which are
// mm/matmul.h's). Each launcher is asynchronous on `s`, allocates nothing and is safe
// inside CUDA graph capture. Per-token facts (sequence slot, position, rope cos/sin) are
// read from device memory, so a captured graph replays correctly for new positions.
//
// Numerics follow the CPU forward pass (src/model/forward.cpp, src/backend/cpu/ops.cpp):
// RMSNorm accumulates x^2 in double; q is rounded to f16 after rope; K and V are stored in
// the cache as f16 (or f32); attention probabilities are rounded to f16 before the V mix.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace shimmy::cuda {

// Residual add and RMSNorm over rows of n floats, fused (one row per block):
//   if add:  x[i] += add[i]
//   if h:    h[dst(i)] = x[i] / sqrt(mean(x[i]^2) + eps) * w
// dst(i) = out_row[i] when out_row is given (a row with out_row[i] < 0 is skipped: the
// head keeps only rows that want logits, packed), else i. Shapes [rows, n] row-major.
void residual_rmsnorm(float* x, const float* add, const float* w, float* h, const int32_t* out_row,
                      int64_t rows, int64_t n, float eps, cudaStream_t s);

// Everything between the q/k/v matmuls and attention, per token i and head:
//   q, k, v += bq, bk, bv (when given);  q, k per-head RMSNorm with q_norm/k_norm (when given);
//   rope on the first n_rot dims of each q and k head with cos/sin cs[i] (pairs (2j, 2j+1),
//   or (j, j + n_rot/2) for NeoX);  q rounded to f16 in place;
//   k, v stored at the cache row [seq[i]][pos[i]] of this layer.
// q, k, v are read with row strides ld_q and ld_kv (the stacked q/k/v product: all three
// point into one [n, Q + 2 KV] buffer); the rounded q goes to q_out [n, n_head*hd] (may be q).
struct QkvParams {
  const float* q;      // [n, ld_q]
  const float *k, *v;  // [n, ld_kv]
  float* q_out;        // [n, n_head*hd]
  int64_t ld_q, ld_kv;
  const float *bq, *bk, *bv;     // [n_head*hd] / [n_head_kv*hd] or null
  const float *q_norm, *k_norm;  // [hd] or null
  const float* cs;               // [n, n_rot] cos,sin pairs
  const int32_t *seq, *pos;      // [n]
  void *k_cache, *v_cache;       // this layer's [max_seqs][max_ctx][n_head_kv*hd]
  int64_t max_ctx;
  int n_tokens, n_head, n_head_kv, hd, n_rot;
  bool neox, kv_f16;
  float eps;
};
// Head dims up to kMaxHeadDim (two a thread in blocks of up to 1024 threads).
constexpr int kMaxHeadDim = 2048;
void qkv_rope_store(const QkvParams& p, cudaStream_t s);

// Causal attention of each token over its own slot's cache positions [0, pos]:
//   att[i][h] = Σ_p softmax_p(q_i,h · k_p,g / sqrt(hd)) v_p,g,   g = h / (n_head / n_head_kv)
// Batches of up to kDecTokens tokens with head dims 64 and 128 and group * hd <= 1024
// (dec_supported): one kernel (attn_decode.cu), chunks of dec_chunk(max_ctx) positions,
// the last chunk to finish merges; a row's result does not depend on the batch. Larger
// batches (several prompts at once; one prompt takes attention_flash) and other shapes:
// split-K (attention.cu, 4x faster than the one kernel for 512-token batches): the
// positions are cut into chunks of
// `chunk` (a multiple of kAttnTile); block (chunk, kv head, token) writes an unnormalised
// partial for the group's heads, and a second kernel merges the chunks. split_plan() picks
// the chunking from the batch size alone (never from positions), so graphs stay valid.
// p.part (attn_partial_floats) must be zeroed once before the first call: it holds the
// decode kernel's counters, which every call leaves at zero.
constexpr int kAttnTile = 128;     // keys per inner tile (and chunk granularity)
constexpr int kAttnThreads = 128;  // threads per block
struct SplitPlan {
  int n_split;    // chunks per token
  int64_t chunk;  // positions per chunk
};
SplitPlan split_plan(int64_t n_tokens, int64_t max_ctx, int64_t n_head_kv);
// Floats of the partial buffers for n tokens: o [n][n_head][n_split][hd], ml [..][2].
int64_t attn_partial_floats(int64_t n_tokens, int64_t max_ctx, int64_t n_head, int64_t n_head_kv,
                            int64_t hd);

struct AttnParams {
  const float* q;                 // [n, n_head*hd], values already f16-rounded
  const void *k_cache, *v_cache;  // this layer's cache
  const int32_t *seq, *pos;       // [n]
  float* att;                     // [n, n_head*hd]
  float* part;                    // attn_partial_floats(...) scratch
  int64_t max_ctx;
  int n_tokens, n_head, n_head_kv, hd;
  bool kv_f16;
};
// Largest n_head/n_head_kv * hd the attention kernels take (shared-memory bound).
constexpr int kAttnMaxGroupDims = 4096;
constexpr int kAttnMaxGroup = 16;
void attention(const AttnParams& p, cudaStream_t s);

// The one-kernel attention (attn_decode.cu): 32-key tiles, 4 warps a block, chunks of at
// most kDecMaxChunks per context, partials for kDecTokens tokens per launch.
constexpr int kDecTile = 32, kDecWarps = 4, kDecMaxChunks = 64, kDecTokens = 16;
bool dec_supported(int hd, int group);
int64_t dec_chunk(int64_t max_ctx);
int64_t dec_partial_floats(int64_t max_ctx, int64_t n_head, int64_t n_head_kv, int64_t hd);
// Floats at the start of p.part that hold the counters (kept at zero between calls).
__host__ __device__ inline int64_t dec_counter_floats(int64_t n_head_kv) {
  return (kDecTokens * n_head_kv + 63) / 64 * 64;
}
void attention_decode(const AttnParams& p, cudaStream_t s);

// The same attention for prompts, on tensor cores (flash.cu): 64-query tiles, online softmax
// over 64-key tiles. Needs an f16 cache, hd a multiple of 16 up to 128, and every token of
// the batch in one sequence slot (positions may be anything). Does not use p.part.
bool flash_supported(int hd, bool kv_f16);
size_t flash_smem_bytes(int hd);
void attention_flash(const AttnParams& p, cudaStream_t s);

// up[i] = silu(gate[i]) * up[i] for i < n.
void swiglu(const float* gate, float* up, int64_t n, cudaStream_t s);
// out[r][j] = silu(gate[r][j]) * up[r][j], r < rows, j < f; gate and up rows ld apart (the
// stacked gate/up product: up = gate + f, ld = 2 f), out [rows, f].
void swiglu_rows(const float* gate, const float* up, int64_t ld, float* out, int64_t rows,
                 int64_t f, cudaStream_t s);
// The same from one gate/up product interleaved by 8 (mm/matmul.h matmul_swiglu): row r of
// gu (ld apart) holds gate j at 16 (j / 8) + j % 8 and up j 8 further; out [rows, f].
void swiglu_rows8(const float* gu, int64_t ld, float* out, int64_t rows, int64_t f, cudaStream_t s);

}  // namespace shimmy::cuda
