// shimmy-gen-model: writes a random-weight GGUF with the exact tensor shapes, types and
// metadata of a real model, for benchmarks that must not depend on downloads.
//
//   shimmy-gen-model --shape tinyllama|qwen2.5-0.5b|tiny --type F16|Q8_0|Q4_0|Q4_K_M|...
//                    --out FILE [--seed N] [--layers N] [--vocab-from FILE] [--threads N]
//
// The vocabulary (every tokenizer.* key) is copied from a llama.cpp vocab file, by default
// ../shared/vocab/<the shape's vocab>. If the shape's embedding has more rows than the
// vocab file has tokens, the token list is padded with "[PAD<i>]" tokens of type UNUSED
// (5) and score -1000, as llama.cpp's converter pads Qwen's vocabulary.
//
// Writing streams: the file is first laid out with zero-filled tensors by gguf::Writer
// (so the header is the project's one writer), then each tensor is generated in chunks of
// rows by all threads and written in place with pwrite(). Memory use is one chunk
// (16 MiB) plus the vocabulary, whatever the model size. Values depend only on the seed,
// the tensor's index and the row, never on the thread count.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "backend/cpu/quant/kernels.h"
#include "gen_model_plan.h"
#include "gguf/reader.h"
#include "gguf/writer.h"

using namespace shimmy;
using namespace shimmy::bench;
using gguf::TensorType;
using gguf::Value;

namespace {

struct Options {
  std::string shape, type, out, vocab_from;
  uint64_t seed = 1;
  int layers = 0;
  unsigned threads = 0;
};

// ---- random values ------------------------------------------------------------------

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// One row of mean + std * z, z Gaussian-ish: the sum of four 16-bit uniforms from one
// 64-bit draw (Irwin–Hall, n = 4), centred and scaled to unit variance, bounded by ±3.5.
void random_row(uint64_t seed, uint64_t tensor, uint64_t row, float mean, float std, float* x,
                uint64_t n) {
  uint64_t st = seed;
  st = splitmix64(st) ^ (tensor * 0xD1B54A32D192ED03ull) ^ (row * 0x8CB92BA72F3D8DD7ull);
  const float scale = std * std::sqrt(3.0f) / 65536.0f;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t r = splitmix64(st);
    const uint32_t a = static_cast<uint32_t>((r & 0xFFFF) + ((r >> 16) & 0xFFFF) +
                                             ((r >> 32) & 0xFFFF) + (r >> 48));
    x[i] = mean + scale * (static_cast<float>(a) - 131070.0f);
  }
}

// ---- vocabulary ---------------------------------------------------------------------

std::string resolve_vocab(const Options& o, const ModelShape& s) {
  if (!o.vocab_from.empty()) return o.vocab_from;
  const std::string candidates[] = {
      std::string(SHIMMY_SHARED_DIR) + "/vocab/" + s.vocab_file,
      std::string(SHIMMY_SOURCE_DIR) + "/../shared/vocab/" + s.vocab_file,
      "../shared/vocab/" + s.vocab_file,
  };
  for (const auto& c : candidates) {
    if (std::filesystem::exists(c)) return c;
  }
  return candidates[0];
}

// Copies every tokenizer.* key; pads the token arrays to `n_vocab` when it is larger.
// Returns the number of tokens written.
Result<uint32_t> copy_vocab(gguf::Writer& w, const std::string& path, uint32_t n_vocab) {
  auto f = gguf::File::open(path);
  if (!f) return f.error();
  const auto* tokens = f->get_strings("tokenizer.ggml.tokens");
  if (!tokens || tokens->empty()) {
    return make_error(path + ": no tokenizer.ggml.tokens array (not a vocab file?)");
  }
  const auto n_file = static_cast<uint32_t>(tokens->size());
  const uint32_t n = std::max(n_vocab, n_file);
  for (const auto& kv : f->metadata()) {
    if (kv.key.rfind("tokenizer.", 0) != 0) continue;
    Value v = kv.value;
    if (n > n_file && v.type == gguf::ValueType::ARRAY && v.array_size() == n_file) {
      for (uint32_t i = n_file; i < n; ++i) {
        if (kv.key == "tokenizer.ggml.tokens") v.strs.push_back("[PAD" + std::to_string(i) + "]");
        if (kv.key == "tokenizer.ggml.token_type") v.ints.push_back(5);  // UNUSED
        if (kv.key == "tokenizer.ggml.scores") v.floats.push_back(-1000.0);
      }
    }
    w.set(kv.key, std::move(v));
  }
  return n;
}

// ---- metadata -----------------------------------------------------------------------

void set_hparams(gguf::Writer& w, const ModelShape& s, const Mix& mix, const Options& o) {
  const std::string a = s.arch + ".";
  w.set("general.architecture", Value::string(s.arch));
  w.set("general.name", Value::string(s.name));
  w.set("general.description",
        Value::string("random weights from shimmy-gen-model --shape " + s.shape + " --type " +
                      mix.name + " --seed " + std::to_string(o.seed) + "; not a trained model"));
  w.set("general.file_type", Value::u32(mix.file_type));
  if (mix.quantized) w.set("general.quantization_version", Value::u32(2));
  w.set(a + "context_length", Value::u32(s.n_ctx));
  w.set(a + "embedding_length", Value::u32(s.n_embd));
  w.set(a + "block_count", Value::u32(s.n_layer));
  w.set(a + "feed_forward_length", Value::u32(s.n_ff));
  w.set(a + "rope.dimension_count", Value::u32(s.head_dim()));
  w.set(a + "rope.freq_base", Value::f32(s.rope_base));
  w.set(a + "attention.head_count", Value::u32(s.n_head));
  w.set(a + "attention.head_count_kv", Value::u32(s.n_head_kv));
  w.set(a + "attention.layer_norm_rms_epsilon", Value::f32(s.rms_eps));
}

// ---- tensor data --------------------------------------------------------------------

// Generates rows [r0, r1) of tensor `ti` into dst (row_bytes each), on `threads` threads.
Status fill_rows(const TensorPlan& t, uint64_t ti, uint64_t seed, uint64_t r0, uint64_t r1,
                 size_t row_bytes, uint8_t* dst, unsigned threads) {
  const uint64_t n = t.shape[0];
  std::vector<Status> status(threads);
  auto work = [&](unsigned k) {
    std::vector<float> x(n);
    const uint64_t rows = r1 - r0;
    for (uint64_t r = r0 + rows * k / threads; r < r0 + rows * (k + 1) / threads; ++r) {
      random_row(seed, ti, r, t.mean, t.std, x.data(), n);
      Status st = quant::quantize_row(t.type, x.data(), dst + (r - r0) * row_bytes,
                                      static_cast<int64_t>(n));
      if (!st) {
        status[k] = st;
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned k = 1; k < threads; ++k) pool.emplace_back(work, k);
  work(0);
  for (auto& th : pool) th.join();
  for (const auto& st : status) {
    if (!st) return make_error(t.name + ": " + st.message());
  }
  return Status{};
}

Status write_all(int fd, const uint8_t* p, size_t n, uint64_t at, const std::string& path) {
  while (n > 0) {
    const ssize_t k = ::pwrite(fd, p, n, static_cast<off_t>(at));
    if (k <= 0) return make_error(path + ": write failed at offset " + std::to_string(at));
    p += k;
    n -= static_cast<size_t>(k);
    at += static_cast<uint64_t>(k);
  }
  return Status{};
}

Status fill_tensors(const std::string& path, const std::vector<TensorPlan>& plan,
                    const std::vector<uint64_t>& offsets, uint64_t seed, unsigned threads) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  if (fd < 0) return make_error(path + ": cannot reopen for writing");
  constexpr size_t kChunk = 16u << 20;
  std::vector<uint8_t> buf;
  Status st;
  for (size_t ti = 0; ti < plan.size() && st; ++ti) {
    const auto& t = plan[ti];
    const size_t rb = static_cast<size_t>(*gguf::row_bytes(t.type, t.shape[0]));
    const uint64_t rows = t.rows(), per = std::max<uint64_t>(1, kChunk / rb);
    for (uint64_t r0 = 0; r0 < rows && st; r0 += per) {
      const uint64_t r1 = std::min(rows, r0 + per);
      buf.resize((r1 - r0) * rb);
      st = fill_rows(t, ti, seed, r0, r1, rb, buf.data(), threads);
      if (st) st = write_all(fd, buf.data(), buf.size(), offsets[ti] + r0 * rb, path);
    }
  }
  if (::close(fd) != 0 && st) st = make_error(path + ": close failed");
  return st;
}

// ---- main ---------------------------------------------------------------------------

Status generate(const Options& o) {
  auto shape = find_shape(o.shape);
  if (!shape) return make_error("unknown --shape '" + o.shape + "'");
  auto mix = find_mix(o.type);
  if (!mix) return make_error("unknown --type '" + o.type + "'");
  if (o.layers > 0) shape->n_layer = static_cast<uint32_t>(o.layers);

  gguf::Writer w;
  set_hparams(w, *shape, *mix, o);
  const std::string vocab = resolve_vocab(o, *shape);
  auto n_vocab = copy_vocab(w, vocab, shape->n_vocab);
  if (!n_vocab) return n_vocab.error();

  const auto plan = plan_tensors(*shape, *n_vocab, *mix);
  uint64_t max_bytes = 0;
  for (const auto& t : plan) {
    auto rb = gguf::row_bytes(t.type, t.shape[0]);
    if (!rb)
      return make_error(t.name + ": row of " + std::to_string(t.shape[0]) + " does not fit type " +
                        gguf::type_name(uint32_t(t.type)));
    max_bytes = std::max(max_bytes, *rb * t.rows());
  }
  // calloc'd zeros are untouched pages: the skeleton costs no memory, only disk writes.
  std::unique_ptr<uint8_t, decltype(&std::free)> zeros(
      static_cast<uint8_t*>(std::calloc(max_bytes, 1)), &std::free);
  if (!zeros) return make_error("out of memory for a " + std::to_string(max_bytes) + "-byte view");
  for (const auto& t : plan) {
    Status st = w.add_tensor_view(t.name, t.type, t.shape, zeros.get(),
                                  *gguf::row_bytes(t.type, t.shape[0]) * t.rows());
    if (!st) return st;
  }
  Status st = w.write(o.out);
  if (!st) return st;
  zeros.reset();

  std::vector<uint64_t> offsets;
  {
    auto f = gguf::File::open(o.out);
    if (!f) return make_error("re-reading the skeleton: " + f.error().message);
    for (const auto& t : plan) offsets.push_back(f->find_tensor(t.name)->file_offset);
  }
  unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  return fill_tensors(o.out, plan, offsets, o.seed, threads);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Write a random-weight GGUF with the shapes and metadata of a real model"};
  app.add_option("--shape", o.shape, "tinyllama | qwen2.5-0.5b | tiny")->required();
  std::string types;
  for (const auto& m : mix_names()) types += (types.empty() ? "" : " | ") + m;
  app.add_option("--type", o.type, types)->required();
  app.add_option("--out", o.out, "output file (by convention under .bench-models/)")->required();
  app.add_option("--seed", o.seed, "random seed (default 1)");
  app.add_option("--layers", o.layers, "override the layer count (quick tests)");
  app.add_option("--vocab-from", o.vocab_from, "GGUF file to copy tokenizer.* keys from");
  app.add_option("--threads", o.threads, "worker threads (default: all cores)");
  CLI11_PARSE(app, argc, argv);

  const auto t0 = std::chrono::steady_clock::now();
  Status st = generate(o);
  if (!st) {
    std::fprintf(stderr, "shimmy-gen-model: %s\n", st.message().c_str());
    std::remove(o.out.c_str());
    return 1;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto bytes = std::filesystem::file_size(o.out);
  std::printf("wrote %s: %s %s, %.1f MiB in %.1f s (%.0f MiB/s)\n", o.out.c_str(), o.shape.c_str(),
              o.type.c_str(), bytes / 1048576.0, s, bytes / 1048576.0 / s);
  return 0;
}
