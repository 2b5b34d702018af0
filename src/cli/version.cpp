#include "cli/version.h"

namespace shimmy::cli {

std::string version_text() {
  std::string plugins = SHIMMY_PLUGINS_BUILT;
  if (plugins.empty()) plugins = "none";
  return std::string("shimmy ") + SHIMMY_VERSION + "\ncommit: " + SHIMMY_GIT_COMMIT +
         "\nbuild: " + SHIMMY_BUILD_TYPE + "\nbackends: cpu (built in); plugins built: " + plugins;
}

}  // namespace shimmy::cli
