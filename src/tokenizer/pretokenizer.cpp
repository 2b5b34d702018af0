#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstring>

#include "util/log.h"

namespace shimmy::tokenizer {

namespace {

// ---- the rule sets -----------------------------------------------------------------
// Written with \s and \S; compile() widens them to Unicode White_Space (adds U+0085).

// GPT-2: contractions, letters, digits, other symbols (each with an optional leading
// space), then whitespace not followed by a non-space.
const char* const kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";

// Llama 3: case-insensitive contractions, one non-letter before letters, digits in
// groups of at most three, punctuation runs swallowing newlines after them.
const char* const kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Qwen2: as Llama 3 but single digits.
const char* const kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// DeepSeek LLM: the cased-letter class of its tokenizer.json, spelled out.
const char* const kDeepseekLetters =
    "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293"
    "\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C"
    "\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5"
    "\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77"
    "\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59"
    "\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC"
    "\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107"
    "\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139"
    "\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE"
    "\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E"
    "\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F"
    "\U000104B0-\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2"
    "\U000118A0-\U000118DF\U0001E900-\U0001E943]+";
const char* const kDeepseekPunct =
    "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+";
const char* const kCjk = "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+";

struct RuleSet {
  const char* name;
  std::vector<const char*> regexes;
  bool ignore_merges = false;
};

const std::vector<RuleSet>& rule_sets() {
  static const std::vector<RuleSet> sets = {
      {"gpt-2", {kGpt2}},
      {"default", {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}},
      {"llama3", {kLlama3}, true},
      {"dbrx", {kLlama3}},
      {"qwen2", {kQwen2}},
      {"falcon", {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}},
      {"starcoder", {R"(\p{N})", kGpt2}},
      {"deepseek-llm", {"[\r\n]", kDeepseekLetters, kDeepseekPunct, R"(\s+$)", kCjk, R"(\p{N}+)"}},
      {"deepseek-coder", {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjk, R"(\p{N})"}},
  };
  return sets;
}

// tokenizer.ggml.pre values → rule set. Several models share one.
const char* canonical(std::string_view pre) {
  static const std::vector<std::pair<const char*, const char*>> aliases = {
      {"gpt-2", "gpt-2"},
      {"gpt2", "gpt-2"},
      {"mpt", "gpt-2"},
      {"gpt-neox", "gpt-2"},
      {"phi-2", "gpt-2"},
      {"olmo", "gpt-2"},
      {"jais", "gpt-2"},
      {"roberta-bpe", "gpt-2"},
      {"jina-es", "gpt-2"},
      {"jina-de", "gpt-2"},
      {"jina-v1-en", "gpt-2"},
      {"jina-v2-es", "gpt-2"},
      {"jina-v2-de", "gpt-2"},
      {"jina-v2-code", "gpt-2"},
      {"gigachat", "gpt-2"},
      {"default", "default"},
      {"llama3", "llama3"},
      {"llama-v3", "llama3"},
      {"llama-bpe", "llama3"},
      {"falcon3", "llama3"},
      {"dbrx", "dbrx"},
      {"smaug-bpe", "dbrx"},
      {"qwen2", "qwen2"},
      {"deepseek-r1-qwen", "qwen2"},
      {"stablelm2", "qwen2"},
      {"falcon", "falcon"},
      {"starcoder", "starcoder"},
      {"refact", "starcoder"},
      {"command-r", "starcoder"},
      {"smollm", "starcoder"},
      {"codeshell", "starcoder"},
      {"exaone", "starcoder"},
      {"minerva-7b", "starcoder"},
      {"deepseek-llm", "deepseek-llm"},
      {"deepseek-coder", "deepseek-coder"},
  };
  for (const auto& [from, to] : aliases) {
    if (pre == from) return to;
  }
  return nullptr;
}

// \s → [\s\x{85}] (inside a class: \s\x{85}); \S → [^\s\x{85}].
std::string widen_whitespace(std::string_view p) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[++i];
      if (n == 's') {
        out += in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
      } else if (n == 'S' && !in_class) {
        out += "[^\\s\\x{85}]";
      } else {
        out += c;
        out += n;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];  // literal ] first
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> known_pre_tokenizers() {
  std::vector<std::string> names;
  for (const auto& s : rule_sets()) names.emplace_back(s.name);
  return names;
}

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::create(std::string_view pre) {
  const char* name = canonical(pre);
  if (name == nullptr) {
    log::warn("tokenizer: unknown pre-tokenizer '" + std::string(pre) +
              "' (tokenizer.ggml.pre); using the gpt-2 rules");
    name = "gpt-2";
  }
  const RuleSet* set = nullptr;
  for (const auto& s : rule_sets()) {
    if (std::strcmp(s.name, name) == 0) set = &s;
  }
  std::unique_ptr<PreTokenizer> p(new PreTokenizer());
  p->name_ = set->name;
  p->ignore_merges_ = set->ignore_merges;
  for (const char* pattern : set->regexes) {
    std::string wide = widen_whitespace(pattern);
    int err = 0;
    PCRE2_SIZE err_off = 0;
    auto rx = std::make_unique<Regex>();
    rx->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(wide.data()), wide.size(),
                             PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &err_off, nullptr);
    if (rx->code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      return make_error("tokenizer: pre-tokenizer '" + std::string(name) + "': regex error at " +
                        std::to_string(err_off) + ": " + reinterpret_cast<char*>(msg));
    }
    pcre2_jit_compile(rx->code,
                      PCRE2_JIT_COMPLETE);  // falls back to the interpreter if unavailable
    p->regexes_.push_back(std::move(rx));
  }
  return p;
}

namespace {

// Per-call match state: match data, and a JIT stack grown only if a match needs it.
struct Matcher {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* ctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ~Matcher() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(ctx);
    pcre2_jit_stack_free(stack);
  }
  // Finds the next match in subject[start..); returns false when none (or on error).
  bool next(const pcre2_code* code, std::string_view subject, size_t start, Span& m) {
    for (;;) {
      int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(),
                           start, PCRE2_NO_UTF_CHECK, data, ctx);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT && stack == nullptr) {
        stack = pcre2_jit_stack_create(64 * 1024, 256 * 1024 * 1024, nullptr);
        ctx = pcre2_match_context_create(nullptr);
        if (stack == nullptr || ctx == nullptr) return false;
        pcre2_jit_stack_assign(ctx, nullptr, stack);
        continue;
      }
      if (rc < 0) return false;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data);
      m.offset = ov[0];
      m.length = ov[1] - ov[0];
      return true;
    }
  }
};

size_t char_len(std::string_view s, size_t i) {
  size_t n = 1;
  while (i + n < s.size() && (uint8_t(s[i + n]) & 0xC0) == 0x80) ++n;
  return n;
}

}  // namespace

void PreTokenizer::split(std::string_view text, std::vector<Span>& words) const {
  if (text.empty()) return;
  std::vector<Span> cur{{0, text.size()}}, next;
  Matcher matcher;
  for (const auto& rx : regexes_) {
    next.clear();
    next.reserve(cur.size() * 2);
    for (const Span& chunk : cur) {
      // Each chunk is matched on its own: ^, $ and look-arounds see only the chunk.
      std::string_view sub = text.substr(chunk.offset, chunk.length);
      size_t pos = 0, emitted = 0;
      Span m;
      while (pos < sub.size() && matcher.next(rx->code, sub, pos, m)) {
        if (m.length == 0) {  // no rule matches empty, but never loop on one
          pos = m.offset + char_len(sub, m.offset);
          continue;
        }
        if (m.offset > emitted) next.push_back({chunk.offset + emitted, m.offset - emitted});
        next.push_back({chunk.offset + m.offset, m.length});
        emitted = pos = m.offset + m.length;
      }
      if (emitted < sub.size()) next.push_back({chunk.offset + emitted, sub.size() - emitted});
    }
    std::swap(cur, next);
  }
  words.insert(words.end(), cur.begin(), cur.end());
}

}  // namespace shimmy::tokenizer
