// Read-only routes: /health, /v1/models, /api/tags, /api/version.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>

#include "server/routes.h"

namespace shimmy::server {

namespace {

using nlohmann::json;

// "2024-05-01T12:34:56Z" (RFC 3339, UTC), as Ollama clients parse modified_at.
std::string rfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Ollama reports a content digest. We know the real one only for Ollama's own blobs;
// hashing whole files would cost seconds per model, so other models get a stable
// identity hash of (path, size, mtime) in the same 64-hex-digit shape.
std::string digest_for(const store::ModelEntry& m) {
  if (!m.digest.empty()) return m.digest;
  std::string key =
      m.path + '\0' + std::to_string(m.size_bytes) + '\0' + std::to_string(m.modified_unix);
  std::string out;
  for (uint64_t seed = 0; seed < 4; ++seed) {
    uint64_t h = 14695981039346656037ull ^ (seed * 0x9e3779b97f4a7c15ull);  // FNV-1a 64
    for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    out += buf;
  }
  return out;
}

// The quantization named in a file name ("...-Q4_K_M", ".q8_0", "-F16"), upper-cased, or
// "". A guess until metadata is read at load time; Ollama shows the same field.
std::string quant_from_name(const std::string& name) {
  static const char* kTypes[] = {"IQ1_S",   "IQ1_M",  "IQ2_XXS", "IQ2_XS", "IQ2_S",  "IQ2_M",
                                 "IQ3_XXS", "IQ3_XS", "IQ3_S",   "IQ3_M",  "IQ4_XS", "IQ4_NL",
                                 "Q2_K",    "Q3_K_S", "Q3_K_M",  "Q3_K_L", "Q4_K_S", "Q4_K_M",
                                 "Q5_K_S",  "Q5_K_M", "Q6_K",    "Q8_0",   "Q4_0",   "Q4_1",
                                 "Q5_0",    "Q5_1",   "BF16",    "F16",    "F32"};
  std::string up = name;
  std::transform(up.begin(), up.end(), up.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  std::string best;
  for (const char* t : kTypes) {
    std::string ty = t;
    for (size_t pos = up.find(ty); pos != std::string::npos; pos = up.find(ty, pos + 1)) {
      // must stand alone: not part of a longer token ("Q4_K_M" inside "Q4_K_MX")
      size_t end = pos + ty.size();
      bool left_ok = pos == 0 || !std::isalnum(static_cast<unsigned char>(up[pos - 1]));
      bool right_ok = end == up.size() || !std::isalnum(static_cast<unsigned char>(up[end]));
      if (left_ok && right_ok && ty.size() > best.size()) best = ty;
    }
  }
  return best;
}

json tags_entry(const store::ModelEntry& m) {
  return {{"name", m.name},
          {"model", m.name},
          {"modified_at", rfc3339(m.modified_unix)},
          {"size", m.size_bytes},
          {"digest", digest_for(m)},
          {"details",
           {{"parent_model", ""},
            {"format", "gguf"},
            {"family", ""},
            {"families", nullptr},
            {"parameter_size", ""},
            {"quantization_level", quant_from_name(m.stem.empty() ? m.name : m.stem)}}}};
}

// /health's "backend": the plugin scan, every plugin and its devices, and the choice.
json backend_json(BackendProvider* p) {
  BackendStatus st = p ? p->backend_status() : BackendStatus{"cpu", "ready", "cpu", "", {}};
  json plugins = json::array(), devices = json::array();
  for (const auto& pl : st.plugins) {
    json devs = json::array();
    for (size_t d = 0; d < pl.devices.size(); ++d) {
      const auto& dv = pl.devices[d];
      json j = {{"device", pl.name + ":" + std::to_string(d)},
                {"name", dv.name},
                {"free_bytes", dv.free_bytes},
                {"total_bytes", dv.total_bytes}};
      if (dv.cc_major > 0)
        j["compute_capability"] = std::to_string(dv.cc_major) + "." + std::to_string(dv.cc_minor);
      if (dv.mem_bandwidth_gbs > 0) j["mem_bandwidth_gbs"] = dv.mem_bandwidth_gbs;
      devs.push_back(j);
      if (pl.name == st.selected) devices.push_back(j);
    }
    plugins.push_back({{"name", pl.name},
                       {"path", pl.path},
                       {"loaded", pl.loaded},
                       {"usable", pl.usable()},
                       {"reason", pl.reason.empty() ? json(nullptr) : json(pl.reason)},
                       {"version", pl.version},
                       {"runtime", pl.runtime},
                       {"devices", devs}});
  }
  return {
      {"requested", st.requested}, {"state", st.state},
      {"selected", st.selected},   {"reason", st.reason.empty() ? json(nullptr) : json(st.reason)},
      {"devices", devices},        {"plugins", plugins}};
}

json openai_model(const store::ModelEntry& m) {
  return {
      {"id", m.name}, {"object", "model"}, {"created", m.modified_unix}, {"owned_by", "shimmy"}};
}

}  // namespace

void add_info_routes(RouteTable& routes, RouteContext& ctx) {
  routes.get("/health", [&ctx](const httplib::Request&, httplib::Response& res) {
    auto models = ctx.models.list_models();
    double uptime =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.started).count();
    json_reply(res, 200,
               {{"status", "ok"},
                {"version", SHIMMY_VERSION},
                {"models_found", models.size()},
                {"models_loaded", 0},
                {"uptime_s", uptime},
                {"backend", backend_json(ctx.backends)}});
  });

  routes.get("/v1/models", [&ctx](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    for (const auto& m : ctx.models.list_models()) data.push_back(openai_model(m));
    json_reply(res, 200, {{"object", "list"}, {"data", data}});
  });

  // OpenAI "retrieve model"; ids contain '/' and ':' (e.g. "org/repo:file"), hence (.+).
  routes.get(R"(/v1/models/(.+))", [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string id = req.matches[1];
    for (const auto& m : ctx.models.list_models()) {
      if (m.name == id) return json_reply(res, 200, openai_model(m));
    }
    openai_error(res, 404, "not_found_error", "model '" + id + "' not found");
  });

  routes.get("/api/tags", [&ctx](const httplib::Request&, httplib::Response& res) {
    json list = json::array();
    for (const auto& m : ctx.models.list_models()) list.push_back(tags_entry(m));
    json_reply(res, 200, {{"models", list}});
  });

  routes.get("/api/version", [](const httplib::Request&, httplib::Response& res) {
    json_reply(res, 200, {{"version", SHIMMY_VERSION}});
  });
}

}  // namespace shimmy::server
