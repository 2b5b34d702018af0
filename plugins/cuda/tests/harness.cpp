#include "harness.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "backend/cpu/quant/kernels.h"
#include "model/forward.h"

namespace shimmy::cudatest {
namespace {

std::string exe_dir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path().string();
}

struct Loaded {
  const ShimmyBackendApi* api = nullptr;
  std::string error;
  ShimmyProbe probe{};
};

Loaded& loaded() {
  static Loaded l = [] {
    Loaded r;
    std::vector<std::string> paths;
    if (const char* e = std::getenv("SHIMMY_CUDA_PLUGIN")) paths.push_back(e);
    paths.push_back(exe_dir() + "/libshimmy-backend-cuda.so");
    paths.push_back(SHIMMY_CUDA_PLUGIN_PATH);
    for (const auto& p : paths) {
      if (!std::filesystem::exists(p)) continue;
      void* h = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!h) {
        r.error = std::string("dlopen ") + p + ": " + dlerror();
        return r;
      }
      auto entry = reinterpret_cast<ShimmyBackendEntryFn>(dlsym(h, SHIMMY_BACKEND_ENTRY));
      if (!entry) {
        r.error = p + " does not export " SHIMMY_BACKEND_ENTRY;
        return r;
      }
      r.api = entry(SHIMMY_BACKEND_ABI_VERSION);
      if (!r.api)
        r.error = p + " refused ABI version " + std::to_string(SHIMMY_BACKEND_ABI_VERSION);
      if (r.api) r.api->probe(&r.probe);
      return r;
    }
    r.error = "libshimmy-backend-cuda.so not found (set SHIMMY_CUDA_PLUGIN)";
    return r;
  }();
  return l;
}

}  // namespace

const ShimmyBackendApi* api() {
  return loaded().api;
}
const std::string& load_error() {
  return loaded().error;
}
const ShimmyProbe& probe() {
  return loaded().probe;
}

std::string shared_dir() {
  if (const char* e = std::getenv("SHIMMY_SHARED_DIR")) return e;
  return SHIMMY_SHARED_DIR;
}
std::string model_path(const std::string& file) {
  return shared_dir() + "/models/" + file;
}

std::unique_ptr<Desc> make_desc(const model::Model& m, int64_t begin, int64_t end, bool with_head,
                                int64_t max_ctx, int64_t max_seqs, int64_t max_batch,
                                int32_t kv_type) {
  auto out = std::make_unique<Desc>();
  out->slice = model::describe_slice(m, begin, end, with_head,
                                     {max_ctx, max_seqs, max_batch, kv_type == SHIMMY_KV_F16});
  return out;
}

std::vector<float> embed(const model::Model& m, const std::vector<int32_t>& tokens) {
  const int64_t E = m.cfg.n_embd;
  std::vector<float> x(tokens.size() * static_cast<size_t>(E));
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto& te = m.token_embd;
    const Status s = quant::dequantize_row(
        te.type, te.data + static_cast<size_t>(tokens[i]) * te.row_bytes, x.data() + i * E, E);
    if (!s.ok()) return {};
  }
  return x;
}

std::vector<float> rope_table(const model::Model& m, const std::vector<int32_t>& pos) {
  const cpu::RopeParams r = model::rope_params(m);
  std::vector<float> cs(pos.size() * static_cast<size_t>(r.n_rot));
  for (size_t i = 0; i < pos.size(); ++i) cpu::rope_cos_sin(r, pos[i], cs.data() + i * r.n_rot);
  return cs;
}

}  // namespace shimmy::cudatest
