// Where tests find things: ../shared fixtures, the built binary, temp dirs.
#pragma once

#include <string>
#include <vector>

namespace shimmy::test {

inline std::string shared_dir() {
  return SHIMMY_SHARED_DIR;
}
inline std::string model_path(const std::string& name) {
  return shared_dir() + "/models/" + name;
}
inline std::string shimmy_bin() {
  return SHIMMY_BIN;
}

// Files in dir whose names end with `suffix`, sorted.
std::vector<std::string> list_files(const std::string& dir, const std::string& suffix);

// A fresh empty directory under $TMPDIR, removed by the caller (or left for debugging).
std::string make_temp_dir(const std::string& tag);

struct ProcessResult {
  int exit_code = -1;  // -1 if killed by a signal
  int signal = 0;
  std::string out, err;
};
// Runs argv with `input` on stdin; captures stdout/stderr. timeout in seconds.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = "",
                          int timeout_s = 120);

}  // namespace shimmy::test
