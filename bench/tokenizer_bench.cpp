// Tokenizer speed: 1 MB of mixed English, code and non-Latin text through the Llama-3
// vocabulary (target: < 0.5 s), and 100 KB runs of one character (spaces, one letter,
// newlines, digits) that must stay linear (the 1 MB runs show the scaling). Also the SentencePiece
// and Qwen2 vocabularies.
//
// Usage: tokenizer_bench [VOCAB_DIR]   (default: ../shared/vocab, or the build's SHIMMY_SHARED_DIR)
// Prints one line per case: MB/s, tokens/s and ms (best of 3).
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

using shimmy::tokenizer::Tokenizer;
using Clock = std::chrono::steady_clock;

namespace {

// Deterministic 1 MB mix: prose with varying words, C++/Python code, Russian, Chinese,
// Japanese, Arabic, Hindi, numbers and emoji, in paragraphs.
std::string mixed_text(size_t bytes) {
  const char* english[] = {"The",    "engine",   "reads",   "every", "header",  "before",
                           "it",     "maps",     "tensors", "into",  "memory,", "and",
                           "then",   "the",      "first",   "token", "is",      "produced.",
                           "Nobody", "expected", "that",    "it'd",  "work!"};
  const char* code[] = {"for (int i = 0; i < n; ++i) {\n    sum += a[i] * b[i];\n}\n",
                        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
                        "if (!file) return make_error(\"bad header at \" + std::to_string(off));\n",
                        "    x = np.array([1.5, 2.25, 3.125])  # shape (3,)\n"};
  const char* other[] = {"Съешь же ещё этих мягких французских булок, да выпей чаю. ",
                         "我能吞下玻璃而不伤身体。今天天气很好，我们去公园散步吧。",
                         "いろはにほへと ちりぬるを わかよたれそ つねならむ。",
                         "نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر. ",
                         "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश। ",
                         "Ünïcödé façade naïve café — 😀🚀👍🏽 ✅ "};
  std::string s;
  uint32_t x = 2463534242u;
  auto rnd = [&] {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    return x;
  };
  while (s.size() < bytes) {
    uint32_t r = rnd() % 10;
    if (r < 5) {
      for (int w = 0; w < 40; ++w) {
        s += english[rnd() % (sizeof english / sizeof *english)];
        if (rnd() % 7 == 0) s += std::to_string(rnd() % 100000);  // new words, new numbers
        s += ' ';
      }
      s += "\n\n";
    } else if (r < 8) {
      s += code[rnd() % (sizeof code / sizeof *code)];
    } else {
      s += other[rnd() % (sizeof other / sizeof *other)];
      s += '\n';
    }
  }
  s.resize(bytes);
  // Do not end in the middle of a character.
  while (!s.empty() && (uint8_t(s.back()) & 0xC0) == 0x80) s.pop_back();
  if (!s.empty() && uint8_t(s.back()) >= 0xC0) s.pop_back();
  return s;
}

std::unique_ptr<Tokenizer> load(const std::string& path, double* ms) {
  auto t0 = Clock::now();
  auto file = shimmy::gguf::File::open(path);
  if (!file) {
    std::fprintf(stderr, "%s\n", file.error().message.c_str());
    return nullptr;
  }
  auto tok = Tokenizer::from_gguf(*file);
  if (!tok) {
    std::fprintf(stderr, "%s\n", tok.error().message.c_str());
    return nullptr;
  }
  *ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return std::move(tok.value());
}

void bench(const char* vocab, const Tokenizer& t, const char* what, const std::string& text) {
  double best = 1e30;
  size_t n = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = Clock::now();
    n = t.encode(text, true, false).size();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::printf("%-10s %-22s %8.1f KB %8zu tokens %9.1f ms %7.2f MB/s %9.0f tok/s\n", vocab, what,
              text.size() / 1024.0, n, best * 1e3, text.size() / best / 1e6, n / best);
}

}  // namespace

int main(int argc, char** argv) {
#ifdef SHIMMY_SHARED_DIR
  std::string dir = std::string(SHIMMY_SHARED_DIR) + "/vocab";
#else
  std::string dir = "../shared/vocab";
#endif
  if (argc > 1) dir = argv[1];
  const std::string mixed = mixed_text(1 << 20);
  const std::string spaces(100000, ' '), letters(100000, 'a'), newlines(100000, '\n'),
      digits(100000, '7');
  // Ten times longer: linear code takes ten times as long.
  const std::string spaces10(1000000, ' '), letters10(1000000, 'a');
  for (const char* name : {"llama-bpe", "qwen2", "llama-spm"}) {
    double load_ms = 0;
    auto tok = load(dir + "/ggml-vocab-" + name + ".gguf", &load_ms);
    if (!tok) return 1;
    std::printf("%-10s load %.1f ms\n", name, load_ms);
    bench(name, *tok, "1 MB mixed", mixed);
    bench(name, *tok, "100 KB spaces", spaces);
    bench(name, *tok, "100 KB one letter", letters);
    bench(name, *tok, "100 KB newlines", newlines);
    bench(name, *tok, "100 KB one digit", digits);
    bench(name, *tok, "1 MB spaces", spaces10);
    bench(name, *tok, "1 MB one letter", letters10);
  }
  return 0;
}
