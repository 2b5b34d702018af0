// The model store's public interface: discover models, resolve a name, and a thread-safe
// cached catalog for the server.
//
// Name resolution order (first rule with a match wins; a rule matching several models is
// an error that lists them):
//   1. an existing file path (absolute or relative), checked for the GGUF magic;
//   2. the exact name (also with a leading "hf.co/" removed);
//   3. the name with ":latest" added or removed ("llama3" <-> "llama3:latest");
//   4. the file stem (shard suffix removed), also after a ".gguf" extension is stripped;
//   5. "ORG/REPO:QUANT" (optionally "hf.co/..."), as llama.cpp's -hf and Ollama's hf.co
//      names are written: a Hugging Face or LM Studio file of that repo whose stem holds
//      QUANT as a whole token ("org/repo:Q4_K_M" -> "org/repo:repo-q4_k_m");
//   6. a unique case-insensitive prefix of a name.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "store/model_entry.h"
#include "util/result.h"

namespace shimmy::store {

// Every model under the search roots, in priority order (--models-dir, SHIMMY_MODEL_PATHS,
// ./models, Hugging Face, Ollama, LM Studio). When two share a name the first is kept.
std::vector<ModelEntry> discover(const StoreConfig& cfg);

// A model from an explicit file: the file itself, or all shards when it is the first
// shard of a split model. Name: the stem.
Result<ModelEntry> entry_for_file(const std::string& path);

// Resolve what a user typed against discovered models. `searched` (SearchRoots::describe)
// goes into the "not found" message.
Result<ModelEntry> resolve(std::string_view query, const std::vector<ModelEntry>& models,
                           const std::vector<std::string>& searched);

// Discovery results shared between server threads. models() rescans when the cached list
// is older than max_age (discovery only stats files, so a rescan costs milliseconds).
class Catalog {
 public:
  explicit Catalog(StoreConfig cfg,
                   std::chrono::milliseconds max_age = std::chrono::milliseconds(2000));

  std::vector<ModelEntry> models();
  Result<ModelEntry> resolve(std::string_view query);
  std::vector<std::string> searched() const { return roots_.describe(); }

 private:
  StoreConfig cfg_;
  SearchRoots roots_;
  std::chrono::milliseconds max_age_;
  std::mutex mu_;
  std::vector<ModelEntry> cached_;
  std::chrono::steady_clock::time_point scanned_at_{};
  bool scanned_ = false;
};

}  // namespace shimmy::store
