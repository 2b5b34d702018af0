// The glue a core has around the plugin, for the CUDA tests and shimmy-cuda-bench: the
// plugin loaded through its ABI (dlopen, as the core loads it), fixture paths, and the
// model-to-ABI steps (ShimmyModelDesc from a model::Model, embeddings and rope tables on
// the CPU).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/ops.h"
#include "model/model.h"
#include "model/slice.h"
#include "plugin_abi.h"

namespace shimmy::cudatest {

// The plugin, dlopen()ed once. api() is null if it could not be loaded (load_error() says why).
const ShimmyBackendApi* api();
const std::string& load_error();
// The probe (cached after the first call).
const ShimmyProbe& probe();

// ../shared (or $SHIMMY_SHARED_DIR).
std::string shared_dir();
std::string model_path(const std::string& file);

// A desc of layers [begin, end) (plus the head when with_head), pointing into the model:
// model::describe_slice, the core's own, so the tests hand the plugin what shimmy does.
struct Desc {
  model::SliceDesc slice;
  ShimmyModelDesc& d = slice.desc;
};
std::unique_ptr<Desc> make_desc(const model::Model& m, int64_t begin, int64_t end, bool with_head,
                                int64_t max_ctx, int64_t max_seqs, int64_t max_batch,
                                int32_t kv_type = SHIMMY_KV_F16);

// Embedding rows of tokens, [n][n_embd] (empty if a row cannot be dequantized), and rope
// cos/sin of positions, [n][n_rot].
std::vector<float> embed(const model::Model& m, const std::vector<int32_t>& tokens);
std::vector<float> rope_table(const model::Model& m, const std::vector<int32_t>& pos);

}  // namespace shimmy::cudatest
