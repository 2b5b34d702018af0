// Internal to src/server: route registration and the JSON error shapes.
//
// Error bodies follow the API a route belongs to:
//   OpenAI (/v1/*, /health, unknown paths):
//     {"error":{"message":"...","type":"not_found_error","param":null,"code":404}}
//   Ollama (/api/*): {"error":"..."}
#pragma once

#include <httplib.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "server/server.h"

namespace shimmy::server {

// Records which methods each path serves, so a request with the wrong method gets 405
// with an Allow header instead of httplib's bare 404.
class RouteTable {
 public:
  explicit RouteTable(httplib::Server& svr) : svr_(svr) {}
  void get(const std::string& path, httplib::Server::Handler h);
  void post(const std::string& path, httplib::Server::Handler h);
  // "GET, POST" for a known path, "" otherwise.
  std::string allowed(const std::string& path) const;

 private:
  httplib::Server& svr_;
  std::map<std::string, std::set<std::string>> methods_;
};

struct RouteContext {
  ModelProvider& models;
  std::chrono::steady_clock::time_point started;
  BackendProvider* backends = nullptr;  // null: CPU only
};

void add_info_routes(RouteTable& routes, RouteContext& ctx);
void add_generate_routes(RouteTable& routes);

void openai_error(httplib::Response& res, int status, const std::string& type,
                  const std::string& message);
void ollama_error(httplib::Response& res, int status, const std::string& message);
void json_reply(httplib::Response& res, int status, const nlohmann::json& body);

}  // namespace shimmy::server
