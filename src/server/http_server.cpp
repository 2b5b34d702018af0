// HttpServer: httplib setup, the 404/405/500 fallbacks, bind/run/stop.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <regex>
#include <thread>

#include "server/routes.h"
#include "server/server.h"
#include "util/log.h"

namespace shimmy::server {

namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 408:
      return "request timeout";
    case 413:
      return "request body too large";
    case 414:
      return "URI too long";
    case 415:
      return "unsupported media type";
    case 416:
      return "range not satisfiable";
    case 431:
      return "request headers too large";
    case 503:
      return "service unavailable";
    default:
      return status >= 500 ? "server error" : "client error";
  }
}

}  // namespace

// ---- JSON replies ----------------------------------------------------------------

void json_reply(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  // dump() with error_handler replace: invalid UTF-8 in a model name never throws here.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

void openai_error(httplib::Response& res, int status, const std::string& type,
                  const std::string& message) {
  json_reply(
      res, status,
      {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", status}}}});
}

void ollama_error(httplib::Response& res, int status, const std::string& message) {
  json_reply(res, status, {{"error", message}});
}

// ---- RouteTable --------------------------------------------------------------------

void RouteTable::get(const std::string& path, httplib::Server::Handler h) {
  methods_[path].insert("GET");
  svr_.Get(path, std::move(h));
}

void RouteTable::post(const std::string& path, httplib::Server::Handler h) {
  methods_[path].insert("POST");
  svr_.Post(path, std::move(h));
}

std::string RouteTable::allowed(const std::string& path) const {
  // Paths are httplib patterns (regular expressions), matched the way httplib does.
  std::set<std::string> methods;
  for (const auto& [pattern, ms] : methods_) {
    if (std::regex_match(path, std::regex(pattern))) methods.insert(ms.begin(), ms.end());
  }
  std::string out;
  for (const auto& m : methods) out += (out.empty() ? "" : ", ") + m;
  return out;
}

// ---- HttpServer --------------------------------------------------------------------

struct HttpServer::Impl {
  ServerOptions opts;
  RouteContext ctx;
  httplib::Server svr;
  RouteTable routes{svr};
  int port = -1;
  std::mutex mu;
  bool stop_requested = false;
  bool running = false;

  Impl(ServerOptions o, ModelProvider& m, BackendProvider* b)
      : opts(std::move(o)), ctx{m, std::chrono::steady_clock::now(), b} {}

  void install();
};

void HttpServer::Impl::install() {
  add_info_routes(routes, ctx);
  add_generate_routes(routes);
  svr.set_payload_max_length(opts.max_body_bytes);
  // httplib's default sets SO_REUSEPORT, which lets a second server (another shimmy, or
  // Ollama on a shared port) bind the same port and silently take half the connections.
  // SO_REUSEADDR alone still allows a quick restart while old connections sit in TIME_WAIT.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });

  // Every error without a body gets one: 404 on unknown paths, 405 on known paths with
  // another method, and JSON for httplib's own 400/413/etc.
  httplib::Server::HandlerWithResponse on_error = [this](const httplib::Request& req,
                                                         httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    // httplib answers 404 for a known path under another method, or 400 when that
    // method (PUT, PATCH) has no routes at all and the body framing is missing.
    if (res.status == 404 || res.status == 400) {
      std::string allow = routes.allowed(req.path);
      if (!allow.empty() && allow.find(req.method) == std::string::npos) {
        res.set_header("Allow", allow);
        openai_error(
            res, 405, "method_not_allowed",
            "method " + req.method + " is not allowed on " + req.path + "; expected " + allow);
      } else if (res.status == 404) {
        openai_error(res, 404, "not_found_error", "no route " + req.method + " " + req.path);
      } else {
        openai_error(res, 400, "invalid_request_error", "request failed: bad request");
      }
    } else {
      openai_error(res, res.status, "invalid_request_error",
                   std::string("request failed: ") + reason_phrase(res.status));
    }
    return httplib::Server::HandlerResponse::Handled;
  };
  svr.set_error_handler(on_error);
  svr.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        log::error("server: " + req.method + " " + req.path + " failed: " + what);
        openai_error(res, 500, "server_error", "internal error: " + what);
      });
  svr.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    if (log::level() <= log::Level::Debug) {
      log::debug("http " + req.method + " " + req.path + " -> " + std::to_string(res.status));
    }
  });
}

HttpServer::HttpServer(ServerOptions opts, ModelProvider& models, BackendProvider* backends)
    : impl_(std::make_unique<Impl>(std::move(opts), models, backends)) {
  impl_->install();
}

HttpServer::~HttpServer() {
  stop();
}

Status HttpServer::bind() {
  errno = 0;
  if (impl_->opts.port == 0) {
    int p = impl_->svr.bind_to_any_port(impl_->opts.host);
    if (p > 0) impl_->port = p;
  } else if (impl_->opts.port > 0 && impl_->opts.port < 65536 &&
             impl_->svr.bind_to_port(impl_->opts.host, impl_->opts.port)) {
    impl_->port = impl_->opts.port;
  }
  if (impl_->port > 0) return {};
  int err = errno;
  std::string msg =
      "cannot listen on " + impl_->opts.host + ":" + std::to_string(impl_->opts.port) +
      (impl_->opts.port < 0 || impl_->opts.port > 65535 ? ": expected a port in 0..65535"
       : err                                            ? std::string(": ") + std::strerror(err)
                                                        : std::string());
  if (err == EADDRINUSE) msg += " (is another shimmy or server already running there?)";
  return make_error(msg);
}

int HttpServer::port() const {
  return impl_->port;
}
const std::string& HttpServer::host() const {
  return impl_->opts.host;
}

Status HttpServer::run() {
  if (impl_->port <= 0) return make_error("expected bind() to succeed before run()");
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    if (impl_->stop_requested) return {};
    impl_->running = true;
  }
  bool ok = impl_->svr.listen_after_bind();
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->running = false;
  }
  if (!ok && !impl_->stop_requested) return make_error("the accept loop failed");
  return {};
}

void HttpServer::stop() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop_requested = true;
    if (!impl_->running) return;
  }
  // run() may not have reached httplib's loop yet; httplib::Server::stop() is a no-op
  // until it has, so wait for it (briefly) before stopping.
  for (int i = 0; i < 2000; ++i) {
    if (impl_->svr.is_running()) {
      impl_->svr.stop();
      return;
    }
    {
      std::lock_guard<std::mutex> lk(impl_->mu);
      if (!impl_->running) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  impl_->svr.stop();
}

}  // namespace shimmy::server
