// shimmy: one binary, subcommands. `shimmy <command> [args]`; `shimmy --version`.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"
#include "cli/version.h"

namespace {

struct Command {
  const char* name;
  int (*fn)(int, char**);
  const char* help;
};

const Command kCommands[] = {
    {"serve", shimmy::cli::cmd_serve, "serve the OpenAI and Ollama HTTP APIs"},
    {"run", shimmy::cli::cmd_run, "generate text from a prompt"},
    {"show", shimmy::cli::cmd_show, "show a GGUF model's metadata (alias: probe)"},
    {"probe", shimmy::cli::cmd_show, nullptr},
    {"list", shimmy::cli::cmd_list, "list the models shimmy can find"},
    {"bench", shimmy::cli::cmd_bench, "measure prompt and generation speed"},
    {"tokenize", shimmy::cli::cmd_tokenize, "text on stdin -> token ids"},
    {"detokenize", shimmy::cli::cmd_detokenize, "token ids on stdin -> text"},
    {"logits", shimmy::cli::cmd_logits, "per-position top-k logits as JSON (conformance)"},
    {"doctor", shimmy::cli::cmd_doctor, "backends, devices, and why not"},
};

void usage(FILE* out) {
  std::fprintf(out, "usage: shimmy <command> [options]\n\ncommands:\n");
  for (const auto& c : kCommands) {
    if (c.help) std::fprintf(out, "  %-11s %s\n", c.name, c.help);
  }
  std::fprintf(out, "\n`shimmy <command> --help` for a command's options; `shimmy --version`.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "--version" || cmd == "-v" || cmd == "version") {
    std::printf("%s\n", shimmy::cli::version_text().c_str());
    return 0;
  }
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    usage(stdout);
    return 0;
  }
  // llama.cpp's `-ngl N` is `--gpu-layers N` (CLI11 takes only one-letter short names).
  static char gpu_layers_flag[] = "--gpu-layers";
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "-ngl") == 0) argv[i] = gpu_layers_flag;
  }
  for (const auto& c : kCommands) {
    if (cmd == c.name) {
      std::string name = std::string("shimmy ") + c.name;
      argv[1] = name.data();
      return c.fn(argc - 1, argv + 1);
    }
  }
  std::fprintf(stderr, "shimmy: unknown command '%s'\n\n", cmd.c_str());
  usage(stderr);
  return 2;
}
