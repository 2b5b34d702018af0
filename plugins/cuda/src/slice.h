// What a model slice takes on the device, computed once from the ABI's ShimmyModelDesc and
// used both by slice_bytes (the planner's numbers) and by create (the allocations), so the
// two can never disagree. Three device allocations per context:
//   weights  every matrix of the slice in its device layout (mm/matmul.h), then the f32
//            vectors (norms, biases), each 256-byte aligned
//   kv       K and V caches, each [n_layer_slice][max_seqs][max_ctx][n_head_kv*hd], f16 or f32
//   scratch  activations for max_batch tokens, the attention partials, the matmul workspace,
//            the head's logits rows, and the batch area (the packed per-eval upload)
#pragma once

#include <cstddef>
#include <cstdint>

#include "plugin_abi.h"

namespace shimmy::cuda {

// Rows of logits computed per head matmul (prompts wanting more logits run it in chunks);
// also the largest batch a decode graph captures.
constexpr int64_t kLogitRows = 32;
constexpr int64_t kGraphMaxTokens = 16;

// The batch area for n tokens: one contiguous block, uploaded with one copy.
//   seq[n] pos[n] out_row[n] (int32) | rope cos/sin [n][n_rot] | x [n][n_embd] (the residual
//   stream: hidden_in on entry, hidden_out on exit)
struct BatchLayout {
  size_t seq, pos, out_row, cs, x, bytes;
};
BatchLayout batch_layout(int64_t n, int64_t n_rot, int64_t n_embd);

struct SliceLayout {
  uint64_t weights = 0, kv = 0, scratch = 0;  // bytes of the three allocations
  uint64_t kv_layer = 0;                      // bytes of one layer's K (or V) cache
  // Offsets into scratch.
  size_t h = 0, q = 0, k = 0, v = 0, att = 0, tmp = 0, up = 0, logits = 0, part = 0, ws = 0,
         batch = 0;
  size_t qkv = 0, gu = 0;  // outputs of the stacked weights: [B][Q + 2 KV], [B][2 F]
  size_t batch_bytes = 0;  // batch area for max_batch tokens
};

// Whether n matrices that read the same input are stacked into one device weight (rows
// after rows, one product instead of n): the same type and input dimension, all taken by
// the mm kernels (mm/matmul.h). SHIMMY_CUDA_FUSE=0 turns it off (A/B timing). q/k/v and
// gate/up are stacked this way at upload.
bool stack_weights(const ShimmyTensor* const* t, int n);
// Whether stacked gate/up rows are interleaved by 8 for the SwiGLU epilogue (mm/matmul.h
// matmul_swiglu): f % 8 == 0 and the same host row bytes. SHIMMY_CUDA_GLU=0 turns it off
// (A/B timing: the stacked product and the SwiGLU kernel).
bool interleave_gate_up(const ShimmyTensor& gate, const ShimmyTensor& up);

// Checks the description (shapes, types, limits) and lays the slice out. Returns 0, or
// non-zero with a sentence in err.
int32_t plan_slice(const ShimmyModelDesc& d, SliceLayout* out, char* err, size_t err_len);

}  // namespace shimmy::cuda
