// Generation routes. The engine is not wired in yet (a later issue): each route already
// validates its body the way the real one will (malformed JSON -> 400 naming the problem)
// and otherwise answers 501 in its API's error shape.
#include <string>

#include "server/routes.h"

namespace shimmy::server {

namespace {

constexpr const char* kNotYet = "generation is not available in this build yet";

// The request body as a JSON object, or a message naming what was wrong.
Result<nlohmann::json> parse_object_body(const httplib::Request& req) {
  if (req.body.empty()) return make_error("expected a JSON object body, got an empty body");
  try {
    auto j = nlohmann::json::parse(req.body);
    if (!j.is_object()) {
      return make_error(std::string("expected a JSON object body, got a JSON ") + j.type_name());
    }
    return j;
  } catch (const nlohmann::json::parse_error& e) {
    return make_error("malformed JSON body: " + std::string(e.what()));
  }
}

httplib::Server::Handler openai_stub() {
  return [](const httplib::Request& req, httplib::Response& res) {
    auto body = parse_object_body(req);
    if (!body) return openai_error(res, 400, "invalid_request_error", body.error().message);
    openai_error(res, 501, "not_implemented_error", kNotYet);
  };
}

httplib::Server::Handler ollama_stub() {
  return [](const httplib::Request& req, httplib::Response& res) {
    auto body = parse_object_body(req);
    if (!body) return ollama_error(res, 400, body.error().message);
    ollama_error(res, 501, kNotYet);
  };
}

}  // namespace

void add_generate_routes(RouteTable& routes) {
  routes.post("/v1/chat/completions", openai_stub());
  routes.post("/v1/completions", openai_stub());
  routes.post("/api/generate", ollama_stub());
  routes.post("/api/chat", ollama_stub());
}

}  // namespace shimmy::server
