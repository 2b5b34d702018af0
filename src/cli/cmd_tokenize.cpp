#include <cstdio>

#include "cli/commands.h"

namespace shimmy::cli {

int cmd_tokenize(int, char**) {
  std::fprintf(stderr, "shimmy tokenize: not implemented yet\n");
  return 1;
}

}  // namespace shimmy::cli
