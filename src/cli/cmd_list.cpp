// shimmy list: the models discovery finds, as a table or (--json) a JSON array.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "store/store.h"

namespace shimmy::cli {

namespace {

std::string local_time(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

void print_table(const std::vector<store::ModelEntry>& models) {
  size_t w = 4;  // width of the NAME column
  for (const auto& m : models) w = std::max(w, m.name.size());
  std::printf("%-*s  %10s  %-8s  %-16s  %s\n", static_cast<int>(w), "NAME", "SIZE", "SOURCE",
              "MODIFIED", "PATH");
  for (const auto& m : models) {
    std::string path = m.path;
    if (m.shards.size() > 1) path += " (+" + std::to_string(m.shards.size() - 1) + " shards)";
    std::printf("%-*s  %10s  %-8s  %-16s  %s\n", static_cast<int>(w), m.name.c_str(),
                store::format_size(m.size_bytes).c_str(), store::source_name(m.source),
                local_time(m.modified_unix).c_str(), path.c_str());
  }
}

void print_json(const std::vector<store::ModelEntry>& models) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : models) {
    out.push_back({{"name", m.name},
                   {"path", m.path},
                   {"shards", m.shards},
                   {"size", m.size_bytes},
                   {"source", store::source_name(m.source)},
                   {"modified", m.modified_unix}});
  }
  std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

}  // namespace

int cmd_list(int argc, char** argv) {
  CLI::App app{"List the GGUF models shimmy can find", "shimmy list"};
  bool json = false;
  std::vector<std::string> model_dirs;
  app.add_flag("--json", json, "print a JSON array instead of a table")->envname("SHIMMY_JSON");
  app.add_option("--models-dir", model_dirs, "extra directory of .gguf files (repeatable)")
      ->envname("SHIMMY_MODELS_DIR")
      ->delimiter(':');
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  store::StoreConfig cfg = store::StoreConfig::from_environment();
  cfg.extra_dirs = model_dirs;
  auto models = store::discover(cfg);
  if (json) {
    print_json(models);
    return 0;
  }
  if (models.empty()) {
    std::fprintf(stderr, "no models found; looked in:\n");
    for (const auto& s : store::search_roots(cfg).describe()) {
      std::fprintf(stderr, "  %s\n", s.c_str());
    }
    std::fprintf(stderr, "put .gguf files in ./models, set SHIMMY_MODEL_PATHS, or `ollama pull`\n");
    return 0;
  }
  print_table(models);
  return 0;
}

}  // namespace shimmy::cli
