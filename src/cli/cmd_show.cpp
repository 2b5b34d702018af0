// shimmy show FILE [--json] [--metadata] [--tensors] [--placement [-c CTX] [--gpu-*]]
// (alias: probe). Prints a GGUF model's facts; --json prints the keys documented in
// README.md. --placement adds what would run where (a dry run of the placement planner:
// nothing is uploaded), exit status 3 when an explicit --gpu-* request cannot be honoured.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/placement_report.h"
#include "gguf/summary.h"

namespace shimmy::cli {

namespace {

template <typename T>
nlohmann::json opt(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
  else if (b >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  else if (b >= 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

std::string human_count(uint64_t n) {
  char buf[32];
  if (n >= 1000000000)
    std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
  else if (n >= 1000000)
    std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else if (n >= 1000)
    std::snprintf(buf, sizeof buf, "%.1fK", n / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
  return buf;
}

nlohmann::json to_json(const gguf::Summary& s, const std::string& path) {
  nlohmann::json j;
  j["path"] = path;
  j["gguf_version"] = s.gguf_version;
  j["file_size"] = s.file_size;
  j["shards"] = s.shards;
  j["architecture"] = s.architecture;
  j["name"] = s.name;
  j["parameters"] = s.parameters;
  j["file_type"] =
      s.file_type_name.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.file_type_name);
  j["context_length"] = opt(s.context_length);
  j["embedding_length"] = opt(s.embedding_length);
  j["block_count"] = opt(s.block_count);
  j["head_count"] = opt(s.head_count);
  j["head_count_kv"] = opt(s.head_count_kv);
  j["feed_forward_length"] = opt(s.feed_forward_length);
  j["rope"] = {{"dimension_count", opt(s.rope_dimension_count)},
               {"freq_base", opt(s.rope_freq_base)},
               {"scaling_type", s.rope_scaling_type.empty() ? nlohmann::json(nullptr)
                                                            : nlohmann::json(s.rope_scaling_type)},
               {"scaling_factor", opt(s.rope_scaling_factor)}};
  j["rms_epsilon"] = opt(s.rms_epsilon);
  j["tokenizer"] = {
      {"model", s.tokenizer_model},
      {"pre", s.tokenizer_pre.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.tokenizer_pre)},
      {"vocab_size", s.vocab_size},
      {"bos_token_id", opt(s.bos_id)},
      {"eos_token_id", opt(s.eos_id)}};
  j["has_chat_template"] = s.has_chat_template;
  j["tensor_count"] = s.tensor_count;
  nlohmann::json types = nlohmann::json::object();
  for (const auto& [name, u] : s.types) {
    types[name] = {{"tensors", u.tensors}, {"elements", u.elements}, {"bytes", u.bytes}};
  }
  j["tensor_types"] = types;
  return j;
}

template <typename T>
std::string str(const std::optional<T>& v) {
  if (!v) return "-";
  if constexpr (std::is_floating_point_v<T>) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", *v);
    return buf;
  } else {
    return std::to_string(*v);
  }
}

void print_text(const gguf::Summary& s, const std::string& path) {
  std::printf("%s\n", path.c_str());
  std::printf("  architecture      %s\n", s.architecture.empty() ? "-" : s.architecture.c_str());
  if (!s.name.empty()) std::printf("  name              %s\n", s.name.c_str());
  std::printf("  parameters        %s (%llu)\n", human_count(s.parameters).c_str(),
              static_cast<unsigned long long>(s.parameters));
  std::printf("  file type         %s\n",
              s.file_type_name.empty() ? "-" : s.file_type_name.c_str());
  std::printf("  file size         %s in %zu file%s, GGUF v%u\n", human_bytes(s.file_size).c_str(),
              s.shards, s.shards == 1 ? "" : "s", s.gguf_version);
  std::printf("  context length    %s\n", str(s.context_length).c_str());
  std::printf("  embedding size    %s\n", str(s.embedding_length).c_str());
  std::printf("  layers            %s\n", str(s.block_count).c_str());
  std::printf("  heads             %s (KV heads %s)\n", str(s.head_count).c_str(),
              str(s.head_count_kv).c_str());
  std::printf("  feed-forward      %s\n", str(s.feed_forward_length).c_str());
  std::printf("  rope              dims %s, base %s%s%s\n", str(s.rope_dimension_count).c_str(),
              str(s.rope_freq_base).c_str(),
              s.rope_scaling_type.empty() ? "" : (", scaling " + s.rope_scaling_type).c_str(),
              s.rope_scaling_factor ? (" x" + str(s.rope_scaling_factor)).c_str() : "");
  std::printf("  tokenizer         %s%s%s, %llu tokens, BOS %s, EOS %s\n",
              s.tokenizer_model.empty() ? "-" : s.tokenizer_model.c_str(),
              s.tokenizer_pre.empty() ? "" : " / ", s.tokenizer_pre.c_str(),
              static_cast<unsigned long long>(s.vocab_size), str(s.bos_id).c_str(),
              str(s.eos_id).c_str());
  std::printf("  chat template     %s\n", s.has_chat_template ? "yes" : "no");
  std::printf("  tensors           %llu\n", static_cast<unsigned long long>(s.tensor_count));
  for (const auto& [name, u] : s.types) {
    std::printf("    %-8s %5llu tensors %12s\n", name.c_str(),
                static_cast<unsigned long long>(u.tensors), human_bytes(u.bytes).c_str());
  }
}

}  // namespace

int cmd_show(int argc, char** argv) {
  CLI::App app{"Show a GGUF model's metadata", "shimmy show"};
  std::string path;
  bool json = false, metadata = false, tensors = false, placement = false;
  ModelOptions mo;
  app.add_option("file", path, "GGUF file (a split model: any of its shards)")->required();
  app.add_option("-m,--model", path, "same as the positional FILE");
  app.add_flag("--json", json, "print JSON (keys documented in README.md)");
  app.add_flag("--metadata", metadata, "also print every metadata key");
  app.add_flag("--tensors", tensors, "also print every tensor");
  app.add_flag("--placement", placement, "also print what would run where (CPU, GPUs)");
  app.add_option("-c,--ctx-size", mo.ctx,
                 "context size for --placement (default: min(4096, trained))")
      ->envname("SHIMMY_CTX_SIZE")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--kv-type", mo.kv_type, "KV cache type for --placement: f16 or f32")
      ->envname("SHIMMY_KV_TYPE")
      ->check(CLI::IsMember({"f16", "f32"}));
  add_gpu_options(app, mo);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto f = gguf::File::open(path);
  if (!f) {
    std::fprintf(stderr, "error: %s\n", f.error().message.c_str());
    return 1;
  }
  gguf::Summary s = gguf::summarize(*f);
  // The placement preview: the model as `run` would load it, planned but not uploaded.
  std::unique_ptr<model::Model> model;
  std::unique_ptr<engine::Offload> offload;
  int64_t ctx = 0;
  if (placement) {
    auto m = model::load_model(path, /*pack=*/false);  // a dry run
    if (!m) {
      std::fprintf(stderr, "error: %s\n", m.error().message.c_str());
      return 1;
    }
    model = std::move(*m);
    ctx = mo.ctx > 0 ? mo.ctx : std::min<int64_t>(4096, model->cfg.n_ctx_train);
    auto off = engine::place_model(*model, backend_options(mo), {ctx, 1, 256, mo.kv_type == "f16"},
                                   /*create=*/false);
    if (!off) {
      std::fprintf(stderr, "error: %s\n", off.error().message.c_str());
      return 3;
    }
    offload = std::move(*off);
  }
  if (json) {
    nlohmann::json j = to_json(s, path);
    if (offload) {
      j["placement"] = placement_json(*offload);
      j["placement"]["context"] = ctx;
    }
    if (metadata) {
      nlohmann::json md = nlohmann::json::object();
      for (const auto& kv : f->metadata()) md[kv.key] = kv.value.to_display(16);
      j["metadata"] = md;
    }
    if (tensors) {
      nlohmann::json ts = nlohmann::json::array();
      for (const auto& t : f->tensors()) {
        ts.push_back({{"name", t.name},
                      {"type", gguf::type_name(static_cast<uint32_t>(t.type))},
                      {"shape", t.shape},
                      {"bytes", t.n_bytes},
                      {"offset", t.file_offset}});
      }
      j["tensors"] = ts;
    }
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  print_text(s, path);
  if (offload) {
    std::printf("  placement         context %lld, backend %s (requested %s)\n",
                static_cast<long long>(ctx),
                offload->plan().all_cpu() ? "cpu" : offload->backend().c_str(),
                mo.gpu_backend.c_str());
    std::printf("%s", placement_text(*offload, "    ").c_str());
  }
  if (metadata) {
    std::printf("  metadata\n");
    for (const auto& kv : f->metadata()) {
      std::printf("    %-40s %s\n", kv.key.c_str(), kv.value.to_display().c_str());
    }
  }
  if (tensors) {
    std::printf("  tensor list\n");
    for (const auto& t : f->tensors()) {
      std::string shape;
      for (auto d : t.shape) shape += (shape.empty() ? "" : " x ") + std::to_string(d);
      std::printf("    %-32s %-7s [%s] %llu bytes\n", t.name.c_str(),
                  gguf::type_name(static_cast<uint32_t>(t.type)).c_str(), shape.c_str(),
                  static_cast<unsigned long long>(t.n_bytes));
    }
  }
  return 0;
}

}  // namespace shimmy::cli
