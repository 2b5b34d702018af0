// create/destroy of a model slice: the three allocations of slice.h, the weight upload and
// the KV cache (kernels and eval live elsewhere).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "common.h"
#include "context.h"
#include "matmul_ref.h"

namespace shimmy::cuda {
namespace {

struct Uploader {
  ShimmyContext* c;
  size_t off = 0;  // into c->weights
  char* err;
  size_t err_len;
  UploadStaging* staging;  // page-locked double buffer (unusable: pageable uploads)

  int32_t matrix(const ShimmyTensor& t, DeviceWeight* out) {
    void* dst = c->weights + off;
    off += align_up(any_weight_device_bytes(t.type, t.rows, t.cols), 256);
    SHIMMY_CUDA_TRY(any_upload_weight(t.data, t.type, t.rows, t.cols, t.row_bytes, dst, out,
                                      c->stream, staging),
                    "uploading a weight matrix");
    return 0;
  }
  // n matrices stacked row after row into one weight (slice.h stack_weights): each part is
  // uploaded in place, the rows of one part following the last row of the previous one.
  int32_t stacked(const ShimmyTensor* const* t, int n, DeviceWeight* out) {
    uint8_t* dst = c->weights + off;
    int64_t rows = 0;
    size_t bytes = 0;
    for (int i = 0; i < n; ++i) {
      DeviceWeight part;
      SHIMMY_CUDA_TRY(upload_weight(t[i]->data, t[i]->type, t[i]->rows, t[i]->cols, t[i]->row_bytes,
                                    dst + bytes, &part, c->stream, staging),
                      "uploading a stacked weight matrix");
      rows += part.rows;
      bytes += part.row_bytes * static_cast<size_t>(part.rows);
      *out = part;
    }
    out->data = dst;
    out->rows = rows;
    off += align_up(bytes, 256);
    return 0;
  }
  // gate and up ([f, E] each, f % 8 == 0, the same row bytes) as one weight of 2f rows
  // interleaved by 8 (mm/matmul.h matmul_swiglu): the upload takes the rows in that order.
  int32_t interleaved(const ShimmyTensor& gate, const ShimmyTensor& upw, DeviceWeight* out) {
    void* dst = c->weights + off;
    SHIMMY_CUDA_TRY(
        upload_weight(HostRows{gate.data, upw.data, gate.row_bytes, gate.rows}, gate.type,
                      2 * gate.rows, gate.cols, dst, out, c->stream, staging),
        "uploading the interleaved gate/up weight");
    off += align_up(out->row_bytes * static_cast<size_t>(2 * gate.rows), 256);
    return 0;
  }
  int32_t vector(const ShimmyTensor& t, const float** out) {
    if (!t.data) return 0;
    const size_t bytes = static_cast<size_t>(t.rows * t.cols) * 4;
    void* dst = c->weights + off;
    off += align_up(bytes, 256);
    SHIMMY_CUDA_TRY(cudaMemcpyAsync(dst, t.data, bytes, cudaMemcpyHostToDevice, c->stream),
                    "uploading a norm or bias vector");
    *out = static_cast<const float*>(dst);
    return 0;
  }
};

int32_t alloc(void* p, uint64_t bytes, const char* what, int ordinal, char* err, size_t err_len) {
  if (bytes == 0) {
    *static_cast<uint8_t**>(p) = nullptr;
    return 0;
  }
  const cudaError_t e = cudaMalloc(static_cast<void**>(p), bytes);
  if (e != cudaSuccess) {
    size_t free_b = 0, total_b = 0;
    cudaGetLastError();
    cudaMemGetInfo(&free_b, &total_b);
    set_err(err, err_len,
            "CUDA device %d: allocating %.1f MiB for the %s failed (%s); %.1f MiB free of %.1f MiB",
            ordinal, bytes / 1048576.0, what, cudaGetErrorString(e), free_b / 1048576.0,
            total_b / 1048576.0);
    return 1;
  }
  return 0;
}

int32_t build(ShimmyContext* c, const ShimmyModelDesc& d, char* err, size_t err_len) {
  SHIMMY_CUDA_TRY(cudaSetDevice(c->device), "selecting the device");
  if (plan_slice(d, &c->layout, err, err_len)) return 1;
  const SliceLayout& L = c->layout;
  Dims& m = c->dims;
  m = Dims{d.n_vocab,
           d.n_embd,
           d.n_head,
           d.n_head_kv,
           d.head_dim,
           d.n_ff,
           d.n_rot,
           d.layer_end - d.layer_begin,
           d.max_ctx,
           d.max_seqs,
           d.max_batch,
           d.rms_eps,
           d.rope_type == SHIMMY_ROPE_NEOX,
           d.kv_type == SHIMMY_KV_F16,
           d.has_output != 0};

  SHIMMY_CUDA_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking),
                  "creating a stream");
  if (alloc(&c->weights, L.weights, "weights", c->device, err, err_len) ||
      alloc(&c->kv, L.kv, "KV cache", c->device, err, err_len) ||
      alloc(&c->scratch, L.scratch, "activations (scratch)", c->device, err, err_len)) {
    return 1;
  }
  SHIMMY_CUDA_TRY(cudaMallocHost(&c->host_batch, L.batch_bytes), "allocating pinned host memory");
  // Logits of kLogitRows rows, or the hidden states of a batch when the slice has no head.
  c->host_out_floats =
      static_cast<size_t>(d.has_output ? std::min<int64_t>(d.max_batch, kLogitRows) * d.n_vocab
                                       : d.max_batch * d.n_embd);
  SHIMMY_CUDA_TRY(cudaMallocHost(&c->host_out, c->host_out_floats * 4),
                  "allocating pinned host memory");
  // Poison the scratch (NaN bytes) so a kernel reading what nothing wrote shows in tests, and
  // zero the cache so unused positions are finite.
  SHIMMY_CUDA_TRY(cudaMemsetAsync(c->scratch, 0xff, L.scratch, c->stream), "clearing scratch");
  // The attention partials hold counters that must start (and stay) at zero.
  SHIMMY_CUDA_TRY(cudaMemsetAsync(c->scratch + L.part, 0, L.ws - L.part, c->stream),
                  "clearing the attention counters");
  if (L.kv) SHIMMY_CUDA_TRY(cudaMemsetAsync(c->kv, 0, L.kv, c->stream), "clearing the KV cache");

  // Two 32 MiB page-locked buffers: repacking overlaps the copies (mm/matmul.h).
  UploadStaging staging;
  staging.init(size_t(32) << 20);
  Uploader up{c, 0, err, err_len, &staging};
  c->layers.resize(static_cast<size_t>(m.n_layers));
  for (int64_t l = 0; l < m.n_layers; ++l) {
    const ShimmyLayerWeights& w = d.layers[l];
    LayerDev& g = c->layers[static_cast<size_t>(l)];
    // Same order as plan_slice: q/k/v (stacked or not), o, gate/up (stacked or not), down.
    const ShimmyTensor* qkv[3] = {&w.wq, &w.wk, &w.wv};
    const ShimmyTensor* gu[2] = {&w.w_gate, &w.w_up};
    g.qkv_stacked = stack_weights(qkv, 3);
    g.gu_stacked = stack_weights(gu, 2);
    g.gu_inter8 = g.gu_stacked && interleave_gate_up(w.w_gate, w.w_up);
    if ((g.qkv_stacked
             ? up.stacked(qkv, 3, &g.wqkv)
             : up.matrix(w.wq, &g.wq) || up.matrix(w.wk, &g.wk) || up.matrix(w.wv, &g.wv)) ||
        up.matrix(w.wo, &g.wo) ||
        (g.gu_inter8    ? up.interleaved(w.w_gate, w.w_up, &g.wgu)
         : g.gu_stacked ? up.stacked(gu, 2, &g.wgu)
                        : up.matrix(w.w_gate, &g.w_gate) || up.matrix(w.w_up, &g.w_up)) ||
        up.matrix(w.w_down, &g.w_down)) {
      return 1;
    }
    if (up.vector(w.attn_norm, &g.attn_norm) || up.vector(w.ffn_norm, &g.ffn_norm) ||
        (d.qkv_bias &&
         (up.vector(w.bq, &g.bq) || up.vector(w.bk, &g.bk) || up.vector(w.bv, &g.bv))) ||
        (d.qk_norm && (up.vector(w.q_norm, &g.q_norm) || up.vector(w.k_norm, &g.k_norm)))) {
      return 1;
    }
    g.k_cache = c->kv + (2 * l) * L.kv_layer;
    g.v_cache = c->kv + (2 * l + 1) * L.kv_layer;
  }
  if (m.has_output) {
    if (up.vector(d.output_norm, &c->output_norm) || up.matrix(d.output, &c->output)) return 1;
  }
  SHIMMY_CUDA_TRY(cudaStreamSynchronize(c->stream), "uploading the weights");
  SHIMMY_CUDA_TRY(cudaGetLastError(), "uploading the weights");

  c->seq_len.assign(static_cast<size_t>(m.max_seqs), 0);
  c->seq_count.assign(static_cast<size_t>(m.max_seqs), 0);
  const char* g = std::getenv("SHIMMY_CUDA_GRAPHS");
  c->graph_max = (g && std::strcmp(g, "0") == 0)
                     ? 0
                     : (m.max_batch < kGraphMaxTokens ? m.max_batch : kGraphMaxTokens);
  c->graphs.assign(static_cast<size_t>(c->graph_max + 1), nullptr);
  const char* fl = std::getenv("SHIMMY_CUDA_FLASH");
  c->use_flash = !(fl && std::strcmp(fl, "0") == 0);
  return 0;
}

}  // namespace

int32_t context_create(int ordinal, const ShimmyModelDesc* desc, ShimmyContext** out, char* err,
                       size_t err_len) {
  *out = nullptr;
  auto* c = new (std::nothrow) ShimmyContext();
  if (!c) {
    set_err(err, err_len, "out of host memory creating a CUDA context");
    return 1;
  }
  c->device = ordinal;
  if (build(c, *desc, err, err_len)) {
    context_destroy(c);
    return 1;
  }
  *out = c;
  return 0;
}

void context_destroy(ShimmyContext* c) {
  if (!c) return;
  cudaSetDevice(c->device);
  if (c->stream) cudaStreamSynchronize(c->stream);
  for (cudaGraphExec_t g : c->graphs) {
    if (g) cudaGraphExecDestroy(g);
  }
  cudaFree(c->weights);
  cudaFree(c->kv);
  cudaFree(c->scratch);
  if (c->host_batch) cudaFreeHost(c->host_batch);
  if (c->host_out) cudaFreeHost(c->host_out);
  if (c->stream) cudaStreamDestroy(c->stream);
  delete c;
}

int32_t context_truncate(ShimmyContext* c, int32_t seq, int64_t pos, char* err, size_t err_len) {
  if (seq < 0 || seq >= c->dims.max_seqs) {
    set_err(err, err_len, "sequence slot %d is out of range (0..%lld)", seq,
            (long long)(c->dims.max_seqs - 1));
    return 1;
  }
  if (pos < 0) {
    set_err(err, err_len, "cannot truncate slot %d at negative position %lld", seq, (long long)pos);
    return 1;
  }
  // The kernels attend over [0, pos] of the batch's own positions, so forgetting is
  // bookkeeping: nothing on the device changes.
  int64_t& len = c->seq_len[static_cast<size_t>(seq)];
  if (pos < len) len = pos;
  return 0;
}

}  // namespace shimmy::cuda
