// The model store's vocabulary: where to look (StoreConfig, SearchRoots) and what was
// found (ModelEntry).
//
// Discovery is cheap on purpose: it stats files and reads each candidate's 4-byte
// magic ("GGUF"), nothing more, so `shimmy serve` can list every model on the machine
// and still start listening in well under 100 ms. Metadata is read when a model loads.
//
// The environment comes in through StoreConfig (a plain struct), never from getenv in
// the scanners, so tests point every source at a temp dir.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shimmy::store {

// Where a model was found; decides its naming scheme (docs/SERVER.md).
enum class Source {
  Path,         // an explicit file, --models-dir, SHIMMY_MODEL_PATHS or ./models: "<stem>"
  HuggingFace,  // ~/.cache/huggingface/hub: "<org>/<repo>:<file stem>"
  Ollama,       // ~/.ollama/models manifests: "<name>:<tag>", "<ns>/<name>:<tag>"
  LmStudio,     // ~/.lmstudio/models: "<publisher>/<model>:<file stem>"
};

const char* source_name(Source s);  // "path", "hf", "ollama", "lmstudio"

struct ModelEntry {
  std::string name;                 // what users type and what the APIs report
  std::string path;                 // the file to open; the first shard of a split model
  std::vector<std::string> shards;  // every file of the model, in order (size 1 if not split)
  uint64_t size_bytes = 0;          // all shards together
  Source source = Source::Path;
  int64_t modified_unix = 0;  // seconds since the epoch (newest shard; Ollama: the manifest)
  std::string stem;           // the file stem without shard suffix, for name resolution; may be ""
  std::string digest;         // sha256 hex of the model blob when the store knows it (Ollama)
};

// The process environment that discovery depends on. from_environment() reads the real
// one; tests fill the fields by hand. Empty strings mean "unset".
struct StoreConfig {
  std::string home;                     // $HOME
  std::string cwd;                      // the working directory, for ./models
  std::string model_paths;              // $SHIMMY_MODEL_PATHS, colon-separated
  std::string ollama_models;            // $OLLAMA_MODELS
  std::string hf_hub_cache;             // $HF_HUB_CACHE
  std::string hf_home;                  // $HF_HOME
  std::string xdg_cache_home;           // $XDG_CACHE_HOME
  std::vector<std::string> extra_dirs;  // --models-dir, searched first
  // Also look at /usr/share/ollama/.ollama/models (Ollama's Linux service install) when
  // $OLLAMA_MODELS is unset. Off in tests.
  bool system_ollama = false;

  static StoreConfig from_environment();
};

// Concrete directories derived from a StoreConfig, in priority order (when two sources
// produce the same name, the earlier wins).
struct SearchRoots {
  std::vector<std::string> model_dirs;  // extra_dirs, then SHIMMY_MODEL_PATHS, then ./models
  std::vector<std::string> hf_hubs;
  std::vector<std::string> ollama_roots;
  std::vector<std::string> lmstudio_roots;

  // "label: dir" lines for "not found" messages and `shimmy serve`'s hints.
  std::vector<std::string> describe() const;
};

SearchRoots search_roots(const StoreConfig& cfg);

// "812 B", "1.4 MiB", "4.07 GiB": sizes for people (logs, `shimmy list`).
std::string format_size(uint64_t bytes);

}  // namespace shimmy::store
