#include <cstdio>

#include "cli/commands.h"

namespace shimmy::cli {

int cmd_run(int, char**) {
  std::fprintf(stderr, "shimmy run: not implemented yet\n");
  return 1;
}

}  // namespace shimmy::cli
