// A model slice as a backend plugin sees it (backend/plugin_abi.h): the hyper-parameters,
// the weights of layers [begin, end) and optionally the head, as plain C structs pointing
// into the model's memory map. Also the byte sizes the placement planner needs when a
// plugin cannot say them itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/plugin_abi.h"
#include "model/model.h"

namespace shimmy::model {

struct SliceShape {
  int64_t ctx = 0;    // positions per sequence
  int64_t seqs = 1;   // sequence slots
  int64_t batch = 1;  // tokens per eval
  bool kv_f16 = true;
};

// Owns the layer table that desc.layers points to; movable, not copyable (the pointer
// stays valid across a move because the vector's buffer moves with it).
struct SliceDesc {
  ShimmyModelDesc desc{};
  std::vector<ShimmyLayerWeights> layers;

  SliceDesc() = default;
  SliceDesc(SliceDesc&&) = default;
  SliceDesc& operator=(SliceDesc&&) = default;
  SliceDesc(const SliceDesc&) = delete;
  SliceDesc& operator=(const SliceDesc&) = delete;
};

SliceDesc describe_slice(const Model& m, int64_t begin, int64_t end, bool head,
                         const SliceShape& shape);

// Bytes of a tensor in the file (0 when absent).
uint64_t tensor_bytes(const Weight& w);
// Weights of layer l / of the head (output_norm + output) in the file.
uint64_t layer_bytes(const Model& m, int64_t l);
uint64_t head_bytes(const Model& m);
// K and V of one layer for every position and sequence of `shape`.
uint64_t kv_bytes_per_layer(const Config& c, const SliceShape& shape);

// Every tensor of a layer, in a fixed order (for sizing and type checks).
inline std::vector<const Weight*> layer_tensors(const Layer& L) {
  return {&L.attn_norm, &L.wq,     &L.wk,     &L.wv,       &L.wo,     &L.bq,   &L.bk,
          &L.bv,        &L.q_norm, &L.k_norm, &L.ffn_norm, &L.w_gate, &L.w_up, &L.w_down};
}

}  // namespace shimmy::model
