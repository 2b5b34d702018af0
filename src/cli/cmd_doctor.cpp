// shimmy doctor [-m FILE] [-c CTX] [--gpu-backend B] [--gpu-layers N] ...
// Backends, devices, and why not: the directories searched for plugins, every plugin found
// (loaded or not, and why), each device with its memory, what --gpu-backend would choose,
// and with -m what would run where for that model (a dry run: nothing is uploaded).
// Exit status 0 (the report is the point), 1 when the model cannot be loaded, 2 on usage.
#include <cstdio>
#include <filesystem>

#include "backend/plugin/loader.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/placement_report.h"
#include "cli/version.h"
#include "engine/backend_choice.h"

namespace shimmy::cli {

namespace {

void print_plugins(const backend::PluginScan& scan) {
  using engine::format_bytes;
  std::printf("plugin directories (searched in order):\n");
  for (const auto& d : scan.searched) {
    std::error_code ec;
    std::printf("  %s%s\n", d.c_str(), std::filesystem::is_directory(d, ec) ? "" : "  (missing)");
  }
  const char* env = std::getenv("SHIMMY_BACKEND_PATH");
  std::printf("  (SHIMMY_BACKEND_PATH %s)\n",
              env ? ("= " + std::string(env)).c_str() : "is not set");
  std::printf("plugins:\n");
  if (scan.plugins.empty()) std::printf("  none found (libshimmy-backend-<name>.so)\n");
  for (const auto& p : scan.plugins) {
    std::printf("  %s  %s\n", p.name.c_str(), p.path.c_str());
    if (!p.loaded) {
      std::printf("    not loaded: %s\n", p.reason.c_str());
      continue;
    }
    std::printf("    loaded: %s%s%s\n", p.version.c_str(), p.runtime.empty() ? "" : "; ",
                p.runtime.c_str());
    if (p.devices.empty()) std::printf("    no usable device: %s\n", p.reason.c_str());
    for (size_t d = 0; d < p.devices.size(); ++d) {
      const auto& dev = p.devices[d];
      std::printf("    %s:%zu %s: %s free of %s", p.name.c_str(), d, dev.name.c_str(),
                  format_bytes(dev.free_bytes).c_str(), format_bytes(dev.total_bytes).c_str());
      if (dev.cc_major > 0) std::printf(", compute capability %d.%d", dev.cc_major, dev.cc_minor);
      if (dev.mem_bandwidth_gbs > 0) std::printf(", %.0f GB/s", dev.mem_bandwidth_gbs);
      std::printf("\n");
    }
  }
}

}  // namespace

int cmd_doctor(int argc, char** argv) {
  CLI::App app{"Backends, devices, and why not", "shimmy doctor"};
  ModelOptions mo;
  add_model_options(app, mo, /*model_required=*/false);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  std::printf("%s\n", version_text().c_str());
  const backend::PluginScan& scan = backend::plugins();
  print_plugins(scan);

  auto choice = engine::choose_backend(mo.gpu_backend, scan);
  std::printf("--gpu-backend %s: ", mo.gpu_backend.c_str());
  if (!choice) {
    std::printf("cannot be honoured (exit status 3): %s\n", choice.error().message.c_str());
  } else if (choice->plugin) {
    std::printf("%s, %zu device%s\n", choice->plugin->name.c_str(), choice->plugin->devices.size(),
                choice->plugin->devices.size() == 1 ? "" : "s");
  } else {
    std::printf("cpu%s%s\n", choice->why_cpu.empty() ? "" : ": ", choice->why_cpu.c_str());
  }
  if (mo.model.empty()) return 0;

  auto m = model::load_model(mo.model, /*pack=*/false);  // a dry run
  if (!m) {
    std::fprintf(stderr, "error: %s\n", m.error().message.c_str());
    return 1;
  }
  const int64_t ctx = mo.ctx > 0 ? mo.ctx : std::min<int64_t>(4096, (*m)->cfg.n_ctx_train);
  std::printf("placement of %s (context %lld, --gpu-layers %s):\n", mo.model.c_str(),
              static_cast<long long>(ctx), mo.gpu_layers.c_str());
  auto off = engine::place_model(**m, backend_options(mo), {ctx, 1, 256, mo.kv_type == "f16"},
                                 /*create=*/false);
  if (!off) {
    std::printf("  cannot be honoured (exit status 3): %s\n", off.error().message.c_str());
    return 0;
  }
  std::printf("%s", placement_text(**off, "  ").c_str());
  return 0;
}

}  // namespace shimmy::cli
