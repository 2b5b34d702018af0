#include <cstdio>

#include "cli/commands.h"

namespace shimmy::cli {

int cmd_list(int, char**) {
  std::fprintf(stderr, "shimmy list: not implemented yet\n");
  return 1;
}

}  // namespace shimmy::cli
