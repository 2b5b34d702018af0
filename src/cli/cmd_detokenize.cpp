// shimmy detokenize --model FILE [--skip-special] [--keep-space-prefix]
// Reads token ids from stdin (separated by whitespace or commas; [ ] are ignored, so a
// JSON array works too) and writes the raw bytes they decode to on stdout, no newline
// added. Each token becomes its piece ("▁" → space, <0xNN> → the byte, control tokens →
// their text). For SentencePiece vocabularies the space that tokenize adds in front of
// the text (tokenizer.ggml.add_space_prefix) is removed again, so
// `shimmy tokenize | shimmy detokenize` gives back the input; --keep-space-prefix keeps it.
#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>

#include "cli/commands.h"
#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

namespace shimmy::cli {

namespace {

// Parses "1 2, 3\n" or "[1,2,3]"; false on anything else.
bool parse_ids(const std::string& s, std::vector<int64_t>& ids, std::string& bad) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = uint8_t(s[i]);
    if (std::isspace(c) || c == ',' || c == '[' || c == ']') {
      ++i;
      continue;
    }
    size_t j = i;
    if (s[j] == '-') ++j;
    size_t digits = j;
    while (j < s.size() && std::isdigit(uint8_t(s[j]))) ++j;
    if (j == digits || j - digits > 12) {
      size_t end = i;
      while (end < s.size() && !std::isspace(uint8_t(s[end])) && end - i < 20) ++end;
      bad = s.substr(i, end - i);
      return false;
    }
    ids.push_back(std::stoll(s.substr(i, j - i)));
    i = j;
  }
  return true;
}

}  // namespace

int cmd_detokenize(int argc, char** argv) {
  CLI::App app{"Turn token ids on stdin back into text", "shimmy detokenize"};
  std::string path;
  bool skip_special = false, keep_prefix = false;
  app.add_option("-m,--model", path, "GGUF model or vocabulary file")->required();
  app.add_flag("--skip-special", skip_special, "drop control tokens (BOS, EOS, ...)");
  app.add_flag("--keep-space-prefix", keep_prefix,
               "SentencePiece: keep the leading space that tokenize added");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto file = gguf::File::open(path);
  if (!file) {
    std::fprintf(stderr, "shimmy detokenize: %s\n", file.error().message.c_str());
    return 1;
  }
  auto tok = tokenizer::Tokenizer::from_gguf(*file);
  if (!tok) {
    std::fprintf(stderr, "shimmy detokenize: %s\n", tok.error().message.c_str());
    return 1;
  }
  std::string input;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) input.append(buf, n);

  std::vector<int64_t> raw;
  std::string bad;
  if (!parse_ids(input, raw, bad)) {
    std::fprintf(stderr, "shimmy detokenize: stdin: expected token ids, got '%s'\n", bad.c_str());
    return 1;
  }
  std::vector<int32_t> ids;
  for (int64_t id : raw) {
    if (id < 0 || id >= (*tok)->n_vocab()) {
      std::fprintf(stderr, "shimmy detokenize: token id %lld is out of range (vocabulary has %d)\n",
                   static_cast<long long>(id), (*tok)->n_vocab());
      return 1;
    }
    ids.push_back(int32_t(id));
  }
  tokenizer::DecodeOptions opt;
  opt.skip_special = skip_special;
  opt.strip_space_prefix = !keep_prefix;
  std::string text = (*tok)->decode(ids, opt);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace shimmy::cli
