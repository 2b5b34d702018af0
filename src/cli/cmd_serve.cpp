#include <cstdio>

#include "cli/commands.h"

namespace shimmy::cli {

int cmd_serve(int, char**) {
  std::fprintf(stderr, "shimmy serve: not implemented yet\n");
  return 1;
}

}  // namespace shimmy::cli
