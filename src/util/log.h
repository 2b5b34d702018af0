// Minimal leveled logging to stderr: "LEVEL message". Level from SHIMMY_LOG
// (debug|info|warn|error, default info). Thread-safe per line.
#pragma once

#include <string_view>

namespace shimmy::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_level(Level l);
Level level();
void write(Level l, std::string_view msg);

inline void debug(std::string_view m) {
  write(Level::Debug, m);
}
inline void info(std::string_view m) {
  write(Level::Info, m);
}
inline void warn(std::string_view m) {
  write(Level::Warn, m);
}
inline void error(std::string_view m) {
  write(Level::Error, m);
}

}  // namespace shimmy::log
