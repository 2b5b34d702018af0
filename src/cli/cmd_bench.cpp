#include <cstdio>

#include "cli/commands.h"

namespace shimmy::cli {

int cmd_bench(int, char**) {
  std::fprintf(stderr, "shimmy bench: not implemented yet\n");
  return 1;
}

}  // namespace shimmy::cli
