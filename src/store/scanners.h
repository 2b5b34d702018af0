// One scanner per place models live. Each appends what it finds to `out` and never
// throws; discover() (store/discover.h) calls them in priority order and removes
// duplicate names. Naming schemes are documented in docs/SERVER.md.
#pragma once

#include <string>
#include <vector>

#include "store/model_entry.h"

namespace shimmy::store {

// A plain directory (--models-dir, SHIMMY_MODEL_PATHS, ./models), searched two levels of
// subdirectories deep. Name: the file stem ("llama-3.2-1b-q4_k_m").
void scan_model_dir(const std::string& dir, std::vector<ModelEntry>& out);

// A Hugging Face hub cache: models--ORG--NAME/snapshots/<rev>/**.gguf (symlinks into
// ../../blobs). Name: "ORG/NAME:<file stem>". The revision refs/main points at wins over
// older snapshots of the same file.
void scan_hf_hub(const std::string& hub, std::vector<ModelEntry>& out);

// Ollama's store: manifests/<registry>/<namespace>/<name>/<tag> (JSON) naming a blob in
// blobs/sha256-<hex>. Name: "<name>:<tag>" for registry.ollama.ai/library, else
// "<namespace>/<name>:<tag>", and "<registry>/<namespace>/<name>:<tag>" for other
// registries (as `ollama list` prints them).
void scan_ollama(const std::string& root, std::vector<ModelEntry>& out);

// LM Studio: <publisher>/<model>/<file>.gguf. Name: "<publisher>/<model>:<file stem>".
void scan_lmstudio(const std::string& root, std::vector<ModelEntry>& out);

}  // namespace shimmy::store
