#include "model/forward.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "backend/cpu/attention.h"
#include "backend/cpu/quant/blocks.h"

namespace shimmy::model {

KvCache::KvCache(const Config& c, int64_t n_ctx, bool f16, int64_t n_layers, int32_t slot)
    : n_ctx_(n_ctx),
      kv_dim_(c.n_head_kv * c.head_dim),
      n_layers_(n_layers),
      slot_(slot),
      f16_(f16) {
  const size_t n = static_cast<size_t>(n_layers * n_ctx * kv_dim_);
  if (f16) {
    k16_.assign(n, 0);
    v16_.assign(n, 0);
  } else {
    k32_.assign(n, 0.0f);
    v32_.assign(n, 0.0f);
  }
}

cpu::RopeParams rope_params(const Model& m) {
  const Config& c = m.cfg;
  cpu::RopeParams r;
  r.n_rot = c.n_rot;
  r.base = c.rope_base;
  r.neox = c.rope_type == RopeType::NeoX;
  r.freq_factors = m.rope_freqs ? m.rope_freqs.f32() : nullptr;
  if (c.rope_scaling != RopeScaling::None) r.freq_scale = 1.0f / c.rope_scale;
  if (c.rope_scaling == RopeScaling::Yarn) {
    r.ext_factor = 1.0f;
    r.n_ctx_orig = c.yarn_orig_ctx;
    r.beta_fast = c.yarn_beta_fast;
    r.beta_slow = c.yarn_beta_slow;
  }
  return r;
}

Forward::Forward(const Model& m, int64_t max_batch, int64_t max_ctx, engine::ThreadPool& pool,
                 LayerPlan plan)
    : m_(m),
      c_(m.cfg),
      max_batch_(max_batch),
      max_ctx_(max_ctx),
      pool_(pool),
      cpu_layers_(plan.cpu_layers < 0 ? m.cfg.n_layer : std::min(plan.cpu_layers, m.cfg.n_layer)),
      stages_(std::move(plan.stages)) {
  const int64_t B = max_batch, E = c_.n_embd, Q = c_.n_head * c_.head_dim,
                KV = c_.n_head_kv * c_.head_dim, F = c_.n_ff;
  x_.resize(B * E);
  h_.resize(B * std::max(E, Q));
  q_.resize(B * Q);
  k_.resize(B * KV);
  v_.resize(B * KV);
  att_.resize(B * Q);
  gate_.resize(B * std::max(F, E));
  up_.resize(B * F);
  cs_.resize(B * c_.n_rot);
  scores_.resize(static_cast<size_t>(pool.size()) * max_ctx);
  if (!stages_.empty()) {
    y_.resize(B * E);
    seq_.resize(B);
    pos_.resize(B);
    want_.resize(B);
  }
  // The largest activation row: any weight's act format for the widest input (n_ff).
  size_t act_row = 0;
  auto consider = [&](const Weight& w) {
    if (w.k) act_row = std::max(act_row, quant::act_row_bytes(*w.k, w.cols).value_or(0));
  };
  consider(m.output);
  for (const auto& L : m.layers) {
    for (const Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      consider(*w);
  }
  act_.resize(static_cast<size_t>(B) * act_row + 64);

  rope_ = rope_params(m);
}

void Forward::matmul(const Weight& w, const float* x, int64_t m, float* y) {
  const quant::WeightKernels& k = *w.k;
  const size_t arow = *quant::act_row_bytes(k, w.cols);
  uint8_t* act = act_.data();
  // Small products (tiny models) are cheaper on one thread than a fork-join.
  if (w.rows * w.cols * m < (1 << 18)) {
    for (int64_t i = 0; i < m; ++i) k.quantize_act(x + i * w.cols, act + i * arow, w.cols);
    quant::matmul_rows(k, w.cols, w.data, w.row_bytes, act, arow, m, y, w.rows, 0, w.rows);
    return;
  }
  if (m == 1) {
    k.quantize_act(x, act, w.cols);  // decode: no fork-join for one row
  } else {
    pool_.parallel_for(m, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) k.quantize_act(x + i * w.cols, act + i * arow, w.cols);
    });
  }
  // Weight rows are dealt out in chunks (whole bands of 16) from a shared counter rather
  // than one fixed half per thread: on a shared host one thread is often descheduled for
  // a while, and the other then takes its chunks instead of spinning at the join. Every
  // row's result is the same whichever thread computes it.
  struct Job {
    const quant::WeightKernels& k;
    const Weight& w;
    const uint8_t* act;
    size_t arow;
    int64_t m;
    float* y;
    int64_t chunk, n_chunks;
    std::atomic<int64_t> next{0};
  };
  const int64_t parts = 4 * pool_.size();
  const int64_t chunk = std::max<int64_t>(16, (w.rows / parts + 15) / 16 * 16);
  Job job{k, w, act, arow, m, y, chunk, (w.rows + chunk - 1) / chunk};
  // One pointer captured: the std::function holds it in place (no allocation per call).
  Job* jp = &job;
  pool_.parallel_for(pool_.size(), [jp](int64_t, int64_t, int) {
    Job& j = *jp;
    for (int64_t c = j.next.fetch_add(1, std::memory_order_relaxed); c < j.n_chunks;
         c = j.next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t r0 = c * j.chunk, r1 = std::min(j.w.rows, r0 + j.chunk);
      quant::matmul_rows(j.k, j.w.cols, j.w.data, j.w.row_bytes, j.act, j.arow, j.m, j.y, j.w.rows,
                         r0, r1);
    }
  });
}

void Forward::attention(std::span<const BatchToken> batch, int64_t l) {
  const int64_t H = c_.n_head, hd = c_.head_dim, KV = c_.n_head_kv * hd,
                group = c_.n_head / c_.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t n = static_cast<int64_t>(batch.size());
  pool_.parallel_for(n * H, [&](int64_t b, int64_t e, int t) {
    float* sc = scores_.data() + static_cast<size_t>(t) * max_ctx_;
    for (int64_t job = b; job < e; ++job) {
      const int64_t i = job / H, h = job % H, g = h / group;
      const BatchToken& bt = batch[static_cast<size_t>(i)];
      KvCache& kv = *bt.cache;
      const float* q = q_.data() + i * H * hd + h * hd;  // already rounded to f16
      const int64_t n_pos = bt.pos + 1;
      float* out = att_.data() + i * H * hd + h * hd;
      std::fill(out, out + hd, 0.0f);
      if (kv.f16()) {
        const auto& ak = cpu::attention_kernels();
        ak.scores_f16(q, kv.k16(l, 0) + g * hd, size_t(KV), n_pos, hd, scale, sc);
        cpu::softmax(sc, n_pos);
        cpu::round_to_f16(sc, n_pos);
        ak.mix_f16(sc, kv.v16(l, 0) + g * hd, size_t(KV), n_pos, hd, out);
      } else {
        for (int64_t p = 0; p < n_pos; ++p) {
          const float* kr = kv.k32(l, p) + g * hd;
          float s = 0.0f;
          for (int64_t d = 0; d < hd; ++d) s += q[d] * kr[d];
          sc[p] = s * scale;
        }
        cpu::softmax(sc, n_pos);
        for (int64_t p = 0; p < n_pos; ++p) {
          const float* vr = kv.v32(l, p) + g * hd;
          const float w = sc[p];
          for (int64_t d = 0; d < hd; ++d) out[d] += w * vr[d];
        }
      }
    }
  });
}

Forward::~Forward() {
  if (out_free_) out_free_(out_);
}

float* Forward::logits_buffer(int64_t rows) {
  const size_t want =
      static_cast<size_t>(std::max<int64_t>(rows, 1)) * static_cast<size_t>(c_.n_vocab);
  if (want <= out_floats_) return out_;
  if (out_free_) out_free_(out_);
  out_ = nullptr, out_floats_ = 0, out_free_ = nullptr;
  out_plain_.clear();
  out_plain_.shrink_to_fit();
  for (const DeviceStage& st : stages_) {
    if (!st.head || !st.api->host_alloc || !st.api->host_free) continue;
    if (void* p = st.api->host_alloc(want * sizeof(float))) {
      out_ = static_cast<float*>(p), out_floats_ = want, out_free_ = st.api->host_free;
      return out_;
    }
  }
  out_plain_.resize(want);
  out_ = out_plain_.data(), out_floats_ = want;
  return out_;
}

Status Forward::eval(std::span<const BatchToken> batch, float* out) {
  const int64_t n = static_cast<int64_t>(batch.size());
  if (n == 0) return Status{};
  if (n > max_batch_) {
    return make_error("batch of " + std::to_string(n) + " tokens exceeds the maximum " +
                      std::to_string(max_batch_));
  }
  const int64_t E = c_.n_embd, H = c_.n_head, hd = c_.head_dim, Q = H * hd, KVH = c_.n_head_kv,
                KV = KVH * hd, F = c_.n_ff;
  for (const auto& bt : batch) {
    if (bt.token < 0 || bt.token >= c_.n_vocab) {
      return make_error("token id " + std::to_string(bt.token) + " is outside the vocabulary (0.." +
                        std::to_string(c_.n_vocab - 1) + ")");
    }
    if (!bt.cache || bt.pos < 0 || bt.pos >= bt.cache->n_ctx() || bt.pos >= max_ctx_) {
      return make_error("position " + std::to_string(bt.pos) + " is outside the context of " +
                        std::to_string(bt.cache ? bt.cache->n_ctx() : 0) + " tokens");
    }
    if (bt.cache->n_layers() < cpu_layers_) {
      return make_error("the KV cache holds " + std::to_string(bt.cache->n_layers()) +
                        " layers, but the CPU runs " + std::to_string(cpu_layers_));
    }
    for (const DeviceStage& st : stages_) {
      if (bt.cache->slot() < 0 || bt.cache->slot() >= st.max_seqs) {
        return make_error("sequence slot " + std::to_string(bt.cache->slot()) + " is outside " +
                          st.label + "'s " + std::to_string(st.max_seqs) + " slots");
      }
    }
  }
  // Embeddings and the rope angles of every row.
  pool_.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const Weight& te = m_.token_embd;
      te.k->dequantize(te.data + static_cast<size_t>(batch[i].token) * te.row_bytes,
                       x_.data() + i * E, E);
      cpu::rope_cos_sin(rope_, batch[i].pos, cs_.data() + i * c_.n_rot);
    }
  });

  for (int64_t l = 0; l < cpu_layers_; ++l) {
    const Layer& L = m_.layers[static_cast<size_t>(l)];
    for (int64_t i = 0; i < n; ++i) {
      cpu::rms_norm(x_.data() + i * E, L.attn_norm.f32(), h_.data() + i * E, E, c_.rms_eps);
    }
    matmul(L.wq, h_.data(), n, q_.data());
    matmul(L.wk, h_.data(), n, k_.data());
    matmul(L.wv, h_.data(), n, v_.data());
    pool_.parallel_for(n, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) {
        float* q = q_.data() + i * Q;
        float* k = k_.data() + i * KV;
        float* v = v_.data() + i * KV;
        if (L.bq) {
          cpu::add_inplace(q, L.bq.f32(), Q);
          cpu::add_inplace(k, L.bk.f32(), KV);
          cpu::add_inplace(v, L.bv.f32(), KV);
        }
        if (L.q_norm) {
          for (int64_t h = 0; h < H; ++h)
            cpu::rms_norm(q + h * hd, L.q_norm.f32(), q + h * hd, hd, c_.rms_eps);
          for (int64_t h = 0; h < KVH; ++h)
            cpu::rms_norm(k + h * hd, L.k_norm.f32(), k + h * hd, hd, c_.rms_eps);
        }
        const float* cs = cs_.data() + i * c_.n_rot;
        cpu::rope_apply(rope_, cs, q, H, hd);
        cpu::rope_apply(rope_, cs, k, KVH, hd);
        cpu::round_to_f16(q, Q);
        KvCache& kv = *batch[i].cache;
        const int64_t p = batch[i].pos;
        if (kv.f16()) {
          uint16_t* kd = kv.k16(l, p);
          uint16_t* vd = kv.v16(l, p);
          for (int64_t d = 0; d < KV; ++d) {
            kd[d] = quant::f32_to_fp16(k[d]);
            vd[d] = quant::f32_to_fp16(v[d]);
          }
        } else {
          std::memcpy(kv.k32(l, p), k, KV * sizeof(float));
          std::memcpy(kv.v32(l, p), v, KV * sizeof(float));
        }
      }
    });
    attention(batch, l);
    matmul(L.wo, att_.data(), n, h_.data());
    for (int64_t i = 0; i < n * E; ++i) x_[i] += h_[i];

    for (int64_t i = 0; i < n; ++i) {
      cpu::rms_norm(x_.data() + i * E, L.ffn_norm.f32(), h_.data() + i * E, E, c_.rms_eps);
    }
    matmul(L.w_gate, h_.data(), n, gate_.data());
    matmul(L.w_up, h_.data(), n, up_.data());
    cpu::swiglu(gate_.data(), up_.data(), up_.data(), n * F);
    matmul(L.w_down, up_.data(), n, gate_.data());
    for (int64_t i = 0; i < n * E; ++i) x_[i] += gate_[i];
  }

  if (!stages_.empty()) {
    bool logits_done = false;
    if (Status st = run_stages(batch, out, logits_done); !st || logits_done) return st;
  }

  // Final norm of the rows that want logits, packed, then the output matrix.
  int64_t n_out = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!batch[i].logits) continue;
    cpu::rms_norm(x_.data() + i * E, m_.output_norm.f32(), h_.data() + n_out * E, E, c_.rms_eps);
    ++n_out;
  }
  if (n_out) matmul(m_.output, h_.data(), n_out, out);
  return Status{};
}

// The device stages in order: hidden states x_ go in, come back in y_ (swapped into x_), or
// the last stage returns the logits straight into `out` (logits_done).
Status Forward::run_stages(std::span<const BatchToken> batch, float* out, bool& logits_done) {
  const int64_t n = static_cast<int64_t>(batch.size());
  for (int64_t i = 0; i < n; ++i) {
    seq_[i] = batch[i].cache->slot();
    pos_[i] = batch[i].pos;
    want_[i] = batch[i].logits ? 1 : 0;
  }
  for (const DeviceStage& st : stages_) {
    if (n > st.max_batch) {
      return make_error("batch of " + std::to_string(n) + " tokens exceeds " + st.label +
                        "'s maximum of " + std::to_string(st.max_batch));
    }
    ShimmyBatch b{n,
                  seq_.data(),
                  pos_.data(),
                  cs_.data(),
                  x_.data(),
                  want_.data(),
                  st.head ? out : y_.data()};
    char err[512] = {0};
    if (st.api->eval(st.ctx, &b, err, sizeof err) != 0) {
      return make_error(st.label + " failed on layers " + std::to_string(st.begin) + "-" +
                        std::to_string(st.end - 1) + ": " + err);
    }
    if (st.head) {
      logits_done = true;
      return Status{};
    }
    x_.swap(y_);
  }
  return Status{};
}

Status Forward::truncate(const KvCache& cache, int64_t pos) {
  for (const DeviceStage& st : stages_) {
    char err[512] = {0};
    if (st.api->seq_truncate(st.ctx, cache.slot(), pos, err, sizeof err) != 0) {
      return make_error(st.label + ": cannot clear sequence slot " + std::to_string(cache.slot()) +
                        ": " + err);
    }
  }
  return Status{};
}

}  // namespace shimmy::model
