// Name resolution: the rules are listed in store/store.h.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <functional>

#include "store/store.h"

namespace shimmy::store {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

using Pred = std::function<bool(const ModelEntry&)>;

// Does `tag` occur in `stem` as a whole token (delimited by non-alphanumerics)?
// "Q4_K_M" in "llama-3.2-1b-instruct-q4_k_m" yes; "Q4_K" in "...-q4_k_m" no. Both lowered.
bool has_token(const std::string& stem, const std::string& tag) {
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  for (size_t pos = stem.find(tag); pos != std::string::npos; pos = stem.find(tag, pos + 1)) {
    size_t end = pos + tag.size();
    bool left = pos == 0 || !alnum(stem[pos - 1]);
    bool right = end == stem.size() || (!alnum(stem[end]) && stem[end] != '_');
    if (left && right) return true;
  }
  return false;
}

// "hf.co/ORG/REPO:TAG" or "huggingface.co/..." -> "ORG/REPO:TAG" (llama.cpp's -hf and
// Ollama's hf.co names); anything else unchanged.
std::string strip_hf_host(const std::string& q) {
  for (const char* host : {"hf.co/", "huggingface.co/", "https://huggingface.co/"}) {
    std::string h = host;
    if (q.rfind(h, 0) == 0) return q.substr(h.size());
  }
  return q;
}

std::vector<const ModelEntry*> matching(const std::vector<ModelEntry>& models, const Pred& p) {
  std::vector<const ModelEntry*> out;
  for (const auto& m : models) {
    if (p(m)) out.push_back(&m);
  }
  return out;
}

Error ambiguous(std::string_view query, const std::vector<const ModelEntry*>& hits) {
  std::string msg = "model '" + std::string(query) + "' is ambiguous; it matches:";
  for (const auto* m : hits) {
    msg += "\n  " + m->name + " (" + source_name(m->source) + ", " + m->path + ")";
  }
  msg += "\nuse the full name";
  return make_error(msg);
}

}  // namespace

Result<ModelEntry> resolve(std::string_view query, const std::vector<ModelEntry>& models,
                           const std::vector<std::string>& searched) {
  if (query.empty()) return make_error("expected a model name or a path to a .gguf file");
  std::string q(query);

  // 1. an explicit file
  std::error_code ec;
  if (std::filesystem::is_regular_file(q, ec)) return entry_for_file(q);

  std::string without_ext = ends_with(q, ".gguf") ? q.substr(0, q.size() - 5) : q;
  std::string latest_toggled = ends_with(q, ":latest")            ? q.substr(0, q.size() - 7)
                               : q.find(':') == std::string::npos ? q + ":latest"
                                                                  : "";
  std::string lq = lower(q);
  // "ORG/REPO:TAG" where TAG names a quantization inside a file of that repo.
  std::string hf = strip_hf_host(q);
  size_t colon = hf.rfind(':');
  std::string repo_prefix = colon == std::string::npos ? "" : lower(hf.substr(0, colon + 1));
  std::string quant_tag = colon == std::string::npos ? "" : lower(hf.substr(colon + 1));
  const Pred rules[] = {
      [&](const ModelEntry& m) { return m.name == q || m.name == hf; },
      [&](const ModelEntry& m) { return !latest_toggled.empty() && m.name == latest_toggled; },
      [&](const ModelEntry& m) { return !m.stem.empty() && m.stem == without_ext; },
      [&](const ModelEntry& m) {
        return !quant_tag.empty() && repo_prefix.find('/') != std::string::npos &&
               (m.source == Source::HuggingFace || m.source == Source::LmStudio) &&
               lower(m.name).rfind(repo_prefix, 0) == 0 && has_token(lower(m.stem), quant_tag);
      },
      [&](const ModelEntry& m) { return lower(m.name).rfind(lq, 0) == 0; },
  };
  for (const auto& rule : rules) {
    auto hits = matching(models, rule);
    if (hits.size() == 1) return *hits[0];
    if (hits.size() > 1) return ambiguous(query, hits);
  }

  std::string msg = "model '" + q + "' not found";
  if (ends_with(q, ".gguf") || q.find('/') == 0) msg += " (and no such file)";
  msg += "; looked in:";
  for (const auto& s : searched) msg += "\n  " + s;
  msg += "\n`shimmy list` shows the models found";
  return make_error(msg);
}

}  // namespace shimmy::store
