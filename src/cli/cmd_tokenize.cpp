// shimmy tokenize --model FILE [--add-special] [--parse-special] [--json]
// Reads the text from stdin exactly as given (no newline added or removed) and prints the
// token ids space-separated on one line, or with --json:
//   {"tokens": [{"id": 15043, "piece": " Hello"}, ...]}
// where "piece" is the token's bytes as text, or "bytes": [..] when they are not valid
// UTF-8 on their own (a byte-fallback token). This interface is used by outside checks:
// keep it stable.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace shimmy::cli {

namespace {

std::string read_all_stdin() {
  std::string s;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) s.append(buf, n);
  return s;
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  CLI::App app{"Tokenize the text on stdin with a model's vocabulary", "shimmy tokenize"};
  std::string path;
  bool add_special = false, parse_special = false, json = false;
  app.add_option("-m,--model", path, "GGUF model or vocabulary file")->required();
  app.add_flag("--add-special", add_special, "add BOS/EOS (CLS/SEP) as the model's metadata says");
  app.add_flag("--parse-special", parse_special,
               "turn special-token text such as <|im_start|> into its id");
  app.add_flag("--json", json, "print JSON with each token's piece");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto file = gguf::File::open(path);
  if (!file) {
    std::fprintf(stderr, "shimmy tokenize: %s\n", file.error().message.c_str());
    return 1;
  }
  auto tok = tokenizer::Tokenizer::from_gguf(*file);
  if (!tok) {
    std::fprintf(stderr, "shimmy tokenize: %s\n", tok.error().message.c_str());
    return 1;
  }
  const std::string text = read_all_stdin();
  std::vector<int32_t> ids = (*tok)->encode(text, add_special, parse_special);

  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (int32_t id : ids) {
      nlohmann::json t = {{"id", id}};
      std::string piece = (*tok)->token_to_piece(id);
      if (tokenizer::unicode::is_valid(piece)) {
        t["piece"] = piece;
      } else {
        std::vector<int> bytes;
        for (char c : piece) bytes.push_back(uint8_t(c));
        t["bytes"] = bytes;
      }
      arr.push_back(std::move(t));
    }
    nlohmann::json out = {{"tokens", std::move(arr)}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  return 0;
}

}  // namespace shimmy::cli
