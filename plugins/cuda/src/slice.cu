#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backend.h"
#include "common.h"
#include "kernels.h"
#include "matmul_ref.h"
#include "mm/matmul.h"
#include "slice.h"

namespace shimmy::cuda {
namespace {

constexpr size_t kAlign = 256;

int32_t check_matrix(const ShimmyTensor& t, const char* name, int64_t layer, int64_t rows,
                     int64_t cols, uint64_t* bytes, int64_t max_m, size_t* ws, char* err,
                     size_t err_len) {
  if (!t.data) {
    set_err(err, err_len, "layer %lld: tensor %s is missing", (long long)layer, name);
    return 1;
  }
  if (t.rows != rows || t.cols != cols) {
    set_err(err, err_len, "layer %lld: tensor %s is [%lld, %lld], expected [%lld, %lld]",
            (long long)layer, name, (long long)t.rows, (long long)t.cols, (long long)rows,
            (long long)cols);
    return 1;
  }
  if (!type_supported(t.type)) {
    set_err(err, err_len,
            "layer %lld: tensor %s has ggml type %u, which the CUDA backend does not compute",
            (long long)layer, name, t.type);
    return 1;
  }
  const size_t b = any_weight_device_bytes(t.type, rows, cols);
  *bytes += align_up(b, kAlign);
  DeviceWeight w;
  w.type = t.type;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = rows ? b / static_cast<size_t>(rows) : 0;
  w.ref = use_ref(t.type, rows, cols);
  *ws = std::max(*ws, any_matmul_workspace_bytes(w, max_m));
  return 0;
}

int32_t check_vector(const ShimmyTensor& t, const char* name, int64_t layer, int64_t n, bool needed,
                     uint64_t* bytes, char* err, size_t err_len) {
  if (!t.data) {
    if (!needed) return 0;
    set_err(err, err_len, "layer %lld: tensor %s is missing", (long long)layer, name);
    return 1;
  }
  if (t.type != 0 || t.rows * t.cols != n) {
    set_err(err, err_len,
            "layer %lld: tensor %s must be %lld f32 values (got type %u, %lld values)",
            (long long)layer, name, (long long)n, t.type, (long long)(t.rows * t.cols));
    return 1;
  }
  *bytes += align_up(static_cast<size_t>(n) * 4, kAlign);
  return 0;
}

}  // namespace

bool stack_weights(const ShimmyTensor* const* t, int n) {
  static const bool off = [] {
    const char* e = std::getenv("SHIMMY_CUDA_FUSE");
    return e && std::strcmp(e, "0") == 0;
  }();
  if (off || n < 1) return false;
  for (int i = 0; i < n; ++i) {
    if (!t[i]->data || t[i]->type != t[0]->type || t[i]->cols != t[0]->cols ||
        use_ref(t[i]->type, t[i]->rows, t[i]->cols)) {
      return false;
    }
  }
  return true;
}

bool interleave_gate_up(const ShimmyTensor& gate, const ShimmyTensor& up) {
  static const bool off = [] {
    const char* e = std::getenv("SHIMMY_CUDA_GLU");
    return e && std::strcmp(e, "0") == 0;
  }();
  return !off && gate.rows == up.rows && gate.rows % 8 == 0 && gate.row_bytes == up.row_bytes;
}

BatchLayout batch_layout(int64_t n, int64_t n_rot, int64_t n_embd) {
  BatchLayout b{};
  const size_t ints = align_up(static_cast<size_t>(n) * 4, 16);
  b.seq = 0;
  b.pos = ints;
  b.out_row = 2 * ints;
  b.cs = 3 * ints;
  b.x = align_up(b.cs + static_cast<size_t>(n * n_rot) * 4, kAlign);
  b.bytes = b.x + static_cast<size_t>(n * n_embd) * 4;
  return b;
}

int32_t plan_slice(const ShimmyModelDesc& d, SliceLayout* out, char* err, size_t err_len) {
  const int64_t E = d.n_embd, H = d.n_head, KVH = d.n_head_kv, hd = d.head_dim, F = d.n_ff;
  if (E <= 0 || H <= 0 || KVH <= 0 || hd <= 0 || F <= 0 || d.n_vocab <= 0 || d.n_layer <= 0) {
    set_err(err, err_len, "model description has a non-positive dimension");
    return 1;
  }
  if (H % KVH != 0) {
    set_err(err, err_len, "n_head %lld is not a multiple of n_head_kv %lld", (long long)H,
            (long long)KVH);
    return 1;
  }
  const int64_t group = H / KVH;
  if (group > kAttnMaxGroup || group * hd > kAttnMaxGroupDims || hd > kMaxHeadDim) {
    set_err(
        err, err_len,
        "attention layout not supported by the CUDA backend: %lld q heads per kv head of %lld dims "
        "(at most %d heads and %d dims per group, %d per head)",
        (long long)group, (long long)hd, kAttnMaxGroup, kAttnMaxGroupDims, kMaxHeadDim);
    return 1;
  }
  if (d.n_rot <= 0 || d.n_rot > hd || d.n_rot % 2 != 0) {
    set_err(err, err_len, "n_rot %lld must be even and at most head_dim %lld", (long long)d.n_rot,
            (long long)hd);
    return 1;
  }
  if (d.layer_begin < 0 || d.layer_end > d.n_layer || d.layer_begin > d.layer_end ||
      (d.layer_begin == d.layer_end && !d.has_output)) {
    set_err(err, err_len, "layer range [%lld, %lld) is not a slice of a %lld-layer model",
            (long long)d.layer_begin, (long long)d.layer_end, (long long)d.n_layer);
    return 1;
  }
  if (d.layer_end > d.layer_begin && !d.layers) {
    set_err(err, err_len, "model description has no layer weights");
    return 1;
  }
  if (d.max_ctx <= 0 || d.max_seqs <= 0 || d.max_batch <= 0 || d.max_ctx > INT32_MAX ||
      d.max_seqs > INT32_MAX || d.max_batch > 65535) {
    set_err(err, err_len,
            "max_ctx, max_seqs and max_batch must be positive, max_batch at most 65535 (got %lld, "
            "%lld, %lld)",
            (long long)d.max_ctx, (long long)d.max_seqs, (long long)d.max_batch);
    return 1;
  }
  if (d.kv_type != SHIMMY_KV_F16 && d.kv_type != SHIMMY_KV_F32) {
    set_err(err, err_len, "unknown KV cache type %d", d.kv_type);
    return 1;
  }

  const int64_t B = d.max_batch, Q = H * hd, KV = KVH * hd;
  const int64_t head_rows = std::min<int64_t>(B, kLogitRows);
  SliceLayout L;
  size_t ws = 0;
  uint64_t wb = 0;
  for (int64_t l = d.layer_begin; l < d.layer_end; ++l) {
    const ShimmyLayerWeights& w = d.layers[l - d.layer_begin];
    const struct {
      const ShimmyTensor* t;
      const char* name;
      int64_t rows, cols;
    } mats[] = {{&w.wq, "attn_q", Q, E},       {&w.wk, "attn_k", KV, E},
                {&w.wv, "attn_v", KV, E},      {&w.wo, "attn_output", E, Q},
                {&w.w_gate, "ffn_gate", F, E}, {&w.w_up, "ffn_up", F, E},
                {&w.w_down, "ffn_down", E, F}};
    uint64_t bytes[7] = {};
    for (int j = 0; j < 7; ++j) {
      const auto& m = mats[j];
      if (check_matrix(*m.t, m.name, l, m.rows, m.cols, &bytes[j], B, &ws, err, err_len)) return 1;
    }
    // Stacked weights take one aligned block (and their own workspace).
    const ShimmyTensor* qkv[3] = {&w.wq, &w.wk, &w.wv};
    const ShimmyTensor* gu[2] = {&w.w_gate, &w.w_up};
    auto stacked = [&](const ShimmyTensor* const* t, int n, int64_t rows) {
      DeviceWeight dw;
      dw.type = t[0]->type;
      dw.rows = rows;
      dw.cols = t[0]->cols;
      const size_t b = weight_device_bytes(dw.type, rows, dw.cols);
      dw.row_bytes = b / static_cast<size_t>(rows);
      ws = std::max(ws, matmul_workspace_bytes(dw, B));
      return align_up(b, kAlign);
    };
    if (stack_weights(qkv, 3)) {
      wb += stacked(qkv, 3, Q + 2 * KV);
    } else {
      wb += bytes[0] + bytes[1] + bytes[2];
    }
    wb += bytes[3];
    if (stack_weights(gu, 2)) {
      wb += stacked(gu, 2, 2 * F);
    } else {
      wb += bytes[4] + bytes[5];
    }
    wb += bytes[6];
    const bool bias = d.qkv_bias != 0, qkn = d.qk_norm != 0;
    if (check_vector(w.attn_norm, "attn_norm", l, E, true, &wb, err, err_len) ||
        check_vector(w.ffn_norm, "ffn_norm", l, E, true, &wb, err, err_len) ||
        check_vector(w.bq, "attn_q.bias", l, Q, bias, &wb, err, err_len) ||
        check_vector(w.bk, "attn_k.bias", l, KV, bias, &wb, err, err_len) ||
        check_vector(w.bv, "attn_v.bias", l, KV, bias, &wb, err, err_len) ||
        check_vector(w.q_norm, "attn_q_norm", l, hd, qkn, &wb, err, err_len) ||
        check_vector(w.k_norm, "attn_k_norm", l, hd, qkn, &wb, err, err_len)) {
      return 1;
    }
  }
  if (d.has_output) {
    if (check_vector(d.output_norm, "output_norm", -1, E, true, &wb, err, err_len) ||
        check_matrix(d.output, "output", -1, d.n_vocab, E, &wb, head_rows, &ws, err, err_len)) {
      return 1;
    }
  }
  L.weights = wb;

  const uint64_t elt = d.kv_type == SHIMMY_KV_F16 ? 2 : 4;
  L.kv_layer = align_up(static_cast<uint64_t>(d.max_seqs) * d.max_ctx * KV * elt, kAlign);
  L.kv = 2 * L.kv_layer * static_cast<uint64_t>(d.layer_end - d.layer_begin);

  int64_t part = 0;
  for (int64_t n = 1; n <= B; ++n)
    part = std::max(part, attn_partial_floats(n, d.max_ctx, H, KVH, hd));
  size_t off = 0;
  auto take = [&](size_t bytes) {
    const size_t at = off;
    off += align_up(bytes, kAlign);
    return at;
  };
  L.h = take(4 * B * E);
  L.q = take(4 * B * Q);
  L.k = take(4 * B * KV);
  L.v = take(4 * B * KV);
  L.att = take(4 * B * Q);
  L.tmp = take(4 * B * std::max(F, E));
  L.up = take(4 * B * F);
  L.qkv = take(4 * B * (Q + 2 * KV));
  L.gu = take(4 * B * 2 * F);
  L.logits = take(d.has_output ? 4 * head_rows * d.n_vocab : 0);
  L.part = take(4 * static_cast<size_t>(part));
  L.ws = take(ws);
  L.batch_bytes = batch_layout(B, d.n_rot, E).bytes;
  L.batch = take(L.batch_bytes);
  L.scratch = off;
  *out = L;
  return 0;
}

bool backend_supports_type(uint32_t ggml_type) {
  return type_supported(ggml_type);
}

int32_t backend_slice_bytes(const ShimmyModelDesc* desc, ShimmySliceBytes* out, char* err,
                            size_t err_len) {
  SliceLayout L;
  if (plan_slice(*desc, &L, err, err_len)) return 1;
  out->weights = L.weights;
  out->kv = L.kv;
  out->scratch = L.scratch;
  return 0;
}

}  // namespace shimmy::cuda
