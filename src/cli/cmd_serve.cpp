// shimmy serve: discover models, then serve the OpenAI and Ollama HTTP APIs until
// SIGINT/SIGTERM. Start-up does no model loading and reads only 4 bytes per model file,
// so it reaches "listening" in milliseconds (docs/SERVER.md has the measurement).
#include <CLI/CLI.hpp>
#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "engine/backend_choice.h"
#include "server/backend_probe.h"
#include "server/catalog_provider.h"
#include "server/server.h"
#include "server/shutdown.h"
#include "store/store.h"
#include "util/log.h"

namespace shimmy::cli {

int cmd_serve(int argc, char** argv) {
  CLI::App app{"Serve the OpenAI and Ollama HTTP APIs", "shimmy serve"};
  server::ServerOptions opts;
  std::vector<std::string> model_dirs;
  app.add_option("--host", opts.host, "address to listen on")
      ->envname("SHIMMY_HOST")
      ->capture_default_str();
  app.add_option("--port", opts.port, "port to listen on (0: any free port)")
      ->envname("SHIMMY_PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--models-dir", model_dirs,
                 "extra directory of .gguf files, searched first (repeatable; env: "
                 "colon-separated)")
      ->envname("SHIMMY_MODELS_DIR")
      ->delimiter(':');
  // The GPU flags are accepted now so scripts can set them; --gpu-layers, --gpu-margin and
  // --tensor-split take effect when the server loads models.
  ModelOptions mo;
  add_gpu_options(app, mo);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  // Before any thread exists: worker threads inherit the blocked signal mask.
  // Set once the server is bound; the signal watcher thread reads it.
  std::atomic<server::HttpServer*> running{nullptr};
  std::optional<server::SignalWatcher> signals;
  signals.emplace([&running](int) {
    if (auto* srv = running.load()) srv->stop();
  });

  store::StoreConfig cfg = store::StoreConfig::from_environment();
  cfg.extra_dirs = model_dirs;
  store::Catalog catalog(cfg);
  auto models = catalog.models();
  for (const auto& m : models) {
    log::info("model " + m.name + " (" + store::format_size(m.size_bytes) + ", " +
              store::source_name(m.source) + ")");
  }
  if (models.empty()) {
    std::string msg =
        "no models found. To add one: put .gguf files in ./models, set "
        "SHIMMY_MODEL_PATHS=/dir1:/dir2, pass --models-dir DIR, or `ollama pull "
        "<model>`. Looked in:";
    for (const auto& s : catalog.searched()) msg += "\n  " + s;
    log::warn(msg);
  }

  // A named backend that cannot be used is an error before listening (exit status 3);
  // `auto` probes in the background so start-up stays fast.
  if (mo.gpu_backend != "auto" && mo.gpu_backend != "cpu") {
    auto c = engine::choose_backend(mo.gpu_backend, backend::plugins());
    if (!c) {
      log::error(c.error().message);
      return 3;
    }
  }
  server::BackendProbe backends(mo.gpu_backend);
  server::CatalogProvider provider(catalog);
  server::HttpServer srv(opts, provider, &backends);
  if (Status s = srv.bind(); !s) {
    log::error(s.message());
    return 1;
  }
  running = &srv;
  backends.start();
  log::info("listening on http://" + srv.host() + ":" + std::to_string(srv.port()) + " (" +
            std::to_string(models.size()) + " model" + (models.size() == 1 ? "" : "s") + ")");
  if (signals->received()) srv.stop();  // a signal that came before `running` was set
  Status s = srv.run();
  running = nullptr;
  signals.reset();  // joins the watcher, which may still be inside srv.stop()
  if (!s) {
    log::error(s.message());
    return 1;
  }
  log::info("stopped");
  return 0;
}

}  // namespace shimmy::cli
