// eval: one forward pass of the slice over a batch (plugin_abi.h ShimmyBatch).
//
//   host:   pack seq, pos, out_row, rope cos/sin and hidden_in into pinned staging
//           (slice.h batch_layout), one async copy to the device batch area (the
//           first node of a decode graph)
//   device: per layer, as model/forward.cpp:
//             h = rmsnorm(x) * attn_norm            (fused with the previous residual add)
//             q, k, v = h Wq, h Wk, h Wv            one product when stacked (slice.h);
//                                                   qkv_rope_store: bias, qk-norm, rope,
//                                                   q to f16, K/V into the slot's cache
//             att = attention(q, cache)             x += att Wo ; h = rmsnorm(x) * ffn_norm
//             x += (silu(h Wgate) * h Wup) Wdown    gate/up one product when stacked;
//                                                   decode: SwiGLU in its epilogue (rows
//                                                   interleaved by 8 at upload);
//                                                   the add fused with the next layer's norm
// The layer kernels are programmatic dependent launches (launch.h), as are the decode
// matmuls: each may start while its predecessor finishes.
//           head: final norm of the rows wanting logits (packed), output matmul
//   host:   copy logits (or x) back (straight into the caller's memory when it is
//           host_alloc memory, host_mem.h), synchronize.
//
// Batches of up to kGraphMaxTokens tokens (decode, parallel decode) run as a CUDA graph
// captured once per batch size: every kernel reads positions and slots from the batch
// area, whose address is fixed per size, so one graph serves every step. The head then
// computes all n rows; only the wanted ones are copied back.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "common.h"
#include "context.h"
#include "host_mem.h"
#include "kernels.h"
#include "matmul_ref.h"
#include "step_timing.h"

namespace shimmy::cuda {
namespace {

struct BatchDev {
  const int32_t *seq, *pos, *out_row;
  const float* cs;
  float* x;
};

BatchDev batch_dev(const ShimmyContext* c, int64_t n) {
  const BatchLayout bl = batch_layout(n, c->dims.n_rot, c->dims.n_embd);
  uint8_t* base = c->scratch + c->layout.batch;
  return BatchDev{reinterpret_cast<const int32_t*>(base + bl.seq),
                  reinterpret_cast<const int32_t*>(base + bl.pos),
                  reinterpret_cast<const int32_t*>(base + bl.out_row),
                  reinterpret_cast<const float*>(base + bl.cs),
                  reinterpret_cast<float*>(base + bl.x)};
}

// Timing experiments only (results are wrong): SHIMMY_CUDA_SKIP lists kernels the layers
// leave out, so that a decode step's time without them shows what they cost in place:
// any of attn, rope (qkv_rope_store), norm, swiglu, mm_qkv, mm_o, mm_ffn (gate/up), mm_down.
struct Skip {
  bool attn = false, rope = false, norm = false, swiglu = false, qkv = false, o = false,
       ffn = false, down = false;
};
// Only in builds configured with -DSHIMMY_CUDA_EXPERIMENTS=ON.
const Skip& skip() {
  static const Skip k = [] {
    Skip r;
#ifdef SHIMMY_CUDA_EXPERIMENTS
    const char* e = std::getenv("SHIMMY_CUDA_SKIP");
#else
    const char* e = nullptr;
#endif
    if (!e) return r;
    const std::string v = std::string(",") + e + ",";
    auto has = [&](const char* w) {
      return v.find(std::string(",") + w + ",") != std::string::npos;
    };
    r.attn = has("attn"), r.rope = has("rope"), r.norm = has("norm"), r.swiglu = has("swiglu");
    r.qkv = has("mm_qkv"), r.o = has("mm_o"), r.ffn = has("mm_ffn"), r.down = has("mm_down");
    return r;
  }();
  return k;
}

// All layers of the slice, ending with the final norm of the head rows into h (or with the
// last residual add when the slice has no head). `flash`: attention on tensor cores (a
// prompt: every token in one slot).
void enqueue_layers(const ShimmyContext* c, int64_t n, bool flash) {
  const Dims& m = c->dims;
  const SliceLayout& L = c->layout;
  const cudaStream_t s = c->stream;
  const BatchDev b = batch_dev(c, n);
  const Skip& k_ = skip();
  const int64_t E = m.n_embd, Q = m.n_head * m.head_dim, KV = m.n_head_kv * m.head_dim, F = m.n_ff;
  float *h = c->scr(L.h), *q = c->scr(L.q), *k = c->scr(L.k), *v = c->scr(L.v),
        *att = c->scr(L.att), *tmp = c->scr(L.tmp), *up = c->scr(L.up), *part = c->scr(L.part),
        *qkv = c->scr(L.qkv), *gu = c->scr(L.gu);
  void* ws = c->scratch + L.ws;

  if (m.n_layers > 0) {
    residual_rmsnorm(b.x, nullptr, c->layers[0].attn_norm, h, nullptr, n, E, m.eps, s);
  } else {
    residual_rmsnorm(b.x, nullptr, c->output_norm, h, b.out_row, n, E, m.eps, s);
  }
  for (int64_t l = 0; l < m.n_layers; ++l) {
    const LayerDev& w = c->layers[static_cast<size_t>(l)];
    QkvParams qp;
    if (w.qkv_stacked) {  // one product into [n, Q + 2 KV]
      if (!k_.qkv) any_matmul(w.wqkv, h, n, qkv, Q + 2 * KV, ws, s);
      qp.q = qkv;
      qp.k = qkv + Q;
      qp.v = qkv + Q + KV;
      qp.ld_q = qp.ld_kv = Q + 2 * KV;
    } else {
      any_matmul(w.wq, h, n, q, Q, ws, s);
      any_matmul(w.wk, h, n, k, KV, ws, s);
      any_matmul(w.wv, h, n, v, KV, ws, s);
      qp.q = q;
      qp.k = k;
      qp.v = v;
      qp.ld_q = Q;
      qp.ld_kv = KV;
    }
    qp.q_out = q;
    qp.bq = w.bq;
    qp.bk = w.bk;
    qp.bv = w.bv;
    qp.q_norm = w.q_norm;
    qp.k_norm = w.k_norm;
    qp.cs = b.cs;
    qp.seq = b.seq;
    qp.pos = b.pos;
    qp.k_cache = w.k_cache;
    qp.v_cache = w.v_cache;
    qp.max_ctx = m.max_ctx;
    qp.n_tokens = static_cast<int>(n);
    qp.n_head = static_cast<int>(m.n_head);
    qp.n_head_kv = static_cast<int>(m.n_head_kv);
    qp.hd = static_cast<int>(m.head_dim);
    qp.n_rot = static_cast<int>(m.n_rot);
    qp.neox = m.neox;
    qp.kv_f16 = m.kv_f16;
    qp.eps = m.eps;
    if (!k_.rope) qkv_rope_store(qp, s);

    AttnParams ap;
    ap.q = q;
    ap.k_cache = w.k_cache;
    ap.v_cache = w.v_cache;
    ap.seq = b.seq;
    ap.pos = b.pos;
    ap.att = att;
    ap.part = part;
    ap.max_ctx = m.max_ctx;
    ap.n_tokens = static_cast<int>(n);
    ap.n_head = static_cast<int>(m.n_head);
    ap.n_head_kv = static_cast<int>(m.n_head_kv);
    ap.hd = static_cast<int>(m.head_dim);
    ap.kv_f16 = m.kv_f16;
    if (k_.attn) {
    } else if (flash) {
      attention_flash(ap, s);
    } else {
      attention(ap, s);
    }

    if (!k_.o) any_matmul(w.wo, att, n, tmp, E, ws, s);
    if (!k_.norm) residual_rmsnorm(b.x, tmp, w.ffn_norm, h, nullptr, n, E, m.eps, s);
    if (w.gu_inter8 && n <= kSwigluMaxM) {  // SwiGLU in the product's epilogue
      if (!k_.ffn) matmul_swiglu(w.wgu, h, n, up, F, s);
    } else if (w.gu_inter8) {  // one product into [n, 2 F], rows interleaved by 8
      if (!k_.ffn) any_matmul(w.wgu, h, n, gu, 2 * F, ws, s);
      if (!k_.swiglu) swiglu_rows8(gu, 2 * F, up, n, F, s);
    } else if (w.gu_stacked) {  // one product into [n, 2 F]
      if (!k_.ffn) any_matmul(w.wgu, h, n, gu, 2 * F, ws, s);
      if (!k_.swiglu) swiglu_rows(gu, gu + F, 2 * F, up, n, F, s);
    } else {
      any_matmul(w.w_gate, h, n, tmp, F, ws, s);
      any_matmul(w.w_up, h, n, up, F, ws, s);
      swiglu(tmp, up, n * F, s);
    }
    if (!k_.down) any_matmul(w.w_down, up, n, tmp, E, ws, s);
    if (k_.norm && l + 1 < m.n_layers) {
    } else if (l + 1 < m.n_layers) {
      residual_rmsnorm(b.x, tmp, c->layers[static_cast<size_t>(l + 1)].attn_norm, h, nullptr, n, E,
                       m.eps, s);
    } else if (m.has_output) {
      residual_rmsnorm(b.x, tmp, c->output_norm, h, b.out_row, n, E, m.eps, s);
    } else {
      residual_rmsnorm(b.x, tmp, nullptr, nullptr, nullptr, n, E, m.eps, s);
    }
  }
}

// Logits of packed head rows [r0, r0 + rows) into the logits buffer.
void enqueue_head(const ShimmyContext* c, int64_t r0, int64_t rows) {
  const SliceLayout& L = c->layout;
  any_matmul(c->output, c->scr(L.h) + r0 * c->dims.n_embd, rows, c->scr(L.logits), c->dims.n_vocab,
             c->scratch + L.ws, c->stream);
}

// The packed batch (pinned staging, fixed address) to the device batch area: the first node
// of a decode graph, or a plain copy before direct launches.
cudaError_t upload_batch(const ShimmyContext* c, int64_t n) {
  const BatchLayout bl = batch_layout(n, c->dims.n_rot, c->dims.n_embd);
  return cudaMemcpyAsync(c->scratch + c->layout.batch, c->host_batch, bl.bytes,
                         cudaMemcpyHostToDevice, c->stream);
}

// Captures the batch upload, layers and head for n tokens; null (and graphs turned off) if
// capture fails.
cudaGraphExec_t capture(ShimmyContext* c, int64_t n) {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  if (cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  // The upload in the graph: one launch a step instead of a copy and a launch. (A failed
  // call here fails the capture, checked below.)
  upload_batch(c, n);
  enqueue_layers(c, n, false);
  if (c->dims.has_output) enqueue_head(c, 0, n);
  const cudaError_t e = cudaStreamEndCapture(c->stream, &graph);
  if (e == cudaSuccess && graph && cudaGetLastError() == cudaSuccess &&
      cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess) {
    cudaGraphDestroy(graph);
    return exec;
  }
  cudaGetLastError();
  if (graph) cudaGraphDestroy(graph);
  return nullptr;
}

int32_t check_batch(ShimmyContext* c, const ShimmyBatch& b, char* err, size_t err_len) {
  const Dims& m = c->dims;
  if (b.n_tokens > m.max_batch) {
    set_err(err, err_len,
            "batch of %lld tokens exceeds the maximum %lld the context was created for",
            (long long)b.n_tokens, (long long)m.max_batch);
    return 1;
  }
  if (!b.seq || !b.pos || !b.rope_cs || !b.hidden_in || !b.out) {
    set_err(err, err_len, "batch is missing seq, pos, rope_cs, hidden_in or out");
    return 1;
  }
  if (m.has_output && !b.want_logits) {
    set_err(err, err_len, "batch is missing want_logits");
    return 1;
  }
  // Positions must extend what each slot holds: 0..len-1 cached, plus this batch's tokens.
  for (int64_t i = 0; i < b.n_tokens; ++i) {
    const int32_t s = b.seq[i], p = b.pos[i];
    if (s < 0 || s >= m.max_seqs) {
      set_err(err, err_len, "token %lld: sequence slot %d is out of range (0..%lld)", (long long)i,
              s, (long long)(m.max_seqs - 1));
      return 1;
    }
    if (p < 0 || p >= m.max_ctx) {
      set_err(err, err_len, "token %lld: position %d is outside the context of %lld tokens",
              (long long)i, p, (long long)m.max_ctx);
      return 1;
    }
  }
  std::vector<int64_t>& count = c->seq_count;  // tokens of each slot in this batch
  std::fill(count.begin(), count.end(), 0);
  for (int64_t i = 0; i < b.n_tokens; ++i) ++count[static_cast<size_t>(b.seq[i])];
  for (int64_t i = 0; i < b.n_tokens; ++i) {
    const int64_t len = c->seq_len[static_cast<size_t>(b.seq[i])];
    if (b.pos[i] >= len + count[static_cast<size_t>(b.seq[i])]) {
      set_err(err, err_len,
              "token %lld: position %d of slot %d leaves a gap (the slot holds %lld positions and "
              "the batch adds %lld)",
              (long long)i, b.pos[i], b.seq[i], (long long)len,
              (long long)count[static_cast<size_t>(b.seq[i])]);
      return 1;
    }
  }
  return 0;
}

}  // namespace

int32_t context_eval(ShimmyContext* c, const ShimmyBatch* batch, char* err, size_t err_len) {
  const ShimmyBatch& b = *batch;
  const int64_t n = b.n_tokens;
  if (n <= 0) return 0;
  if (check_batch(c, b, err, err_len)) return 1;
  const Dims& m = c->dims;
  SHIMMY_CUDA_TRY(cudaSetDevice(c->device), "selecting the device");
  StepTimer timer;  // experiments builds only (step_timing.h)
  timer.mark(0);

  // Decode-sized batches replay a graph, captured the first time a size is seen (capture
  // records without running, so it goes before this batch's upload).
  bool graph = n <= c->graph_max;
  if (graph && !c->graphs[static_cast<size_t>(n)]) {
    c->graphs[static_cast<size_t>(n)] = capture(c, n);
    if (!c->graphs[static_cast<size_t>(n)]) {
      c->graph_max = 0;  // capture failed: run directly from now on
      graph = false;
    }
  }
  // Pack the batch: with a graph the head computes every row (out_row = i).
  const BatchLayout bl = batch_layout(n, m.n_rot, m.n_embd);
  uint8_t* hb = c->host_batch;
  auto* seq = reinterpret_cast<int32_t*>(hb + bl.seq);
  auto* pos = reinterpret_cast<int32_t*>(hb + bl.pos);
  auto* out_row = reinterpret_cast<int32_t*>(hb + bl.out_row);
  int64_t n_out = 0;
  for (int64_t i = 0; i < n; ++i) {
    seq[i] = b.seq[i];
    pos[i] = b.pos[i];
    const bool want = m.has_output && b.want_logits[i];
    out_row[i] = graph ? static_cast<int32_t>(i) : (want ? static_cast<int32_t>(n_out) : -1);
    n_out += want;
  }
  std::copy(b.rope_cs, b.rope_cs + n * m.n_rot, reinterpret_cast<float*>(hb + bl.cs));
  std::copy(b.hidden_in, b.hidden_in + n * m.n_embd, reinterpret_cast<float*>(hb + bl.x));
  const cudaStream_t s = c->stream;
  if (!graph) SHIMMY_CUDA_TRY(upload_batch(c, n), "uploading the batch");

  const size_t V = static_cast<size_t>(m.n_vocab);
  const float* logits = c->scr(c->layout.logits);
  // Results come back into b.out directly when it is page-locked memory from host_alloc,
  // else through pinned staging (host_out) and a host copy.
  const uint64_t out_bytes = static_cast<uint64_t>(m.has_output ? n_out * V : n * m.n_embd) * 4;
  const bool direct = in_host_block(b.out, out_bytes);
  float* ho = direct ? b.out : c->host_out;
  timer.mark(1);
  if (graph) {
    SHIMMY_CUDA_TRY(cudaGraphLaunch(c->graphs[static_cast<size_t>(n)], s),
                    "launching the decode graph");
    // Copy back the wanted rows, runs of consecutive rows at a time.
    for (int64_t i = 0, k = 0; m.has_output && i < n;) {
      if (!b.want_logits[i]) {
        ++i;
        continue;
      }
      int64_t j = i;
      while (j < n && b.want_logits[j]) ++j;
      SHIMMY_CUDA_TRY(
          cudaMemcpyAsync(ho + k * V, logits + i * V, (j - i) * V * 4, cudaMemcpyDeviceToHost, s),
          "copying logits back");
      k += j - i;
      i = j;
    }
    timer.mark(2);
    if (m.has_output) {
      SHIMMY_CUDA_TRY(cudaStreamSynchronize(s), "running the layers");
      timer.mark(3);
      if (!direct) c->copy_out.copy(b.out, ho, n_out * V);
      timer.mark(4);
      timer.done(n);
      replay_experiment(c->graphs[static_cast<size_t>(n)], s, n,
                        c->seq_len[static_cast<size_t>(b.seq[0])] + 1);
    }
  } else {
    // Prompts (every token in one slot, beyond graph sizes) take the tensor-core attention.
    bool one_slot = true;
    for (int64_t i = 1; i < n; ++i) one_slot = one_slot && b.seq[i] == b.seq[0];
    const bool flash =
        one_slot && c->use_flash && flash_supported(static_cast<int>(m.head_dim), m.kv_f16);
    enqueue_layers(c, n, flash);
    for (int64_t r0 = 0; m.has_output && r0 < n_out; r0 += kLogitRows) {
      const int64_t rows = std::min(kLogitRows, n_out - r0);
      enqueue_head(c, r0, rows);
      SHIMMY_CUDA_TRY(cudaMemcpyAsync(direct ? b.out + r0 * V : ho, logits, rows * V * 4,
                                      cudaMemcpyDeviceToHost, s),
                      "copying logits back");
      if (direct) continue;
      SHIMMY_CUDA_TRY(cudaStreamSynchronize(s), "running the layers");  // ho is reused
      c->copy_out.copy(b.out + r0 * V, ho, rows * V);
    }
  }
  if (!m.has_output) {
    SHIMMY_CUDA_TRY(
        cudaMemcpyAsync(ho, batch_dev(c, n).x, n * m.n_embd * 4, cudaMemcpyDeviceToHost, s),
        "copying hidden states back");
  }
  SHIMMY_CUDA_TRY(cudaGetLastError(), "launching the layer kernels");
  SHIMMY_CUDA_TRY(cudaStreamSynchronize(s), "running the layers");
  if (!m.has_output && !direct) c->copy_out.copy(b.out, ho, n * m.n_embd);
  for (int64_t i = 0; i < n; ++i) {
    int64_t& len = c->seq_len[static_cast<size_t>(b.seq[i])];
    len = std::max<int64_t>(len, b.pos[i] + 1);
  }
  return 0;
}

}  // namespace shimmy::cuda
