#include <cstdio>

#include "cli/commands.h"

namespace shimmy::cli {

int cmd_detokenize(int, char**) {
  std::fprintf(stderr, "shimmy detokenize: not implemented yet\n");
  return 1;
}

}  // namespace shimmy::cli
