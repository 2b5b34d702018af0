#include "util/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace shimmy::log {

namespace {
Level initial_level() {
  const char* e = std::getenv("SHIMMY_LOG");
  if (!e) return Level::Info;
  if (!std::strcmp(e, "debug")) return Level::Debug;
  if (!std::strcmp(e, "warn")) return Level::Warn;
  if (!std::strcmp(e, "error")) return Level::Error;
  return Level::Info;
}
std::atomic<Level> g_level{initial_level()};
std::mutex g_mu;
}  // namespace

void set_level(Level l) {
  g_level = l;
}
Level level() {
  return g_level;
}

void write(Level l, std::string_view msg) {
  if (l < g_level.load()) return;
  static const char* names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  std::lock_guard<std::mutex> lk(g_mu);
  std::fprintf(stderr, "%-5s %.*s\n", names[static_cast<int>(l)], static_cast<int>(msg.size()),
               msg.data());
}

}  // namespace shimmy::log
