#include <cstdio>

#include "cli/commands.h"

namespace shimmy::cli {

int cmd_logits(int, char**) {
  std::fprintf(stderr, "shimmy logits: not implemented yet\n");
  return 1;
}

}  // namespace shimmy::cli
