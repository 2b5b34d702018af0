#include <cstdio>

#include "cli/commands.h"

namespace shimmy::cli {

int cmd_doctor(int, char**) {
  std::fprintf(stderr, "shimmy doctor: not implemented yet\n");
  return 1;
}

}  // namespace shimmy::cli
