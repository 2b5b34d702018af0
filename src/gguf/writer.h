// GGUF writer (version 3): metadata in insertion order, tensor infos, then each tensor's
// data at an offset aligned to general.alignment (default 32), padded with zeros.
// Used by tests (round trips, corrupt-file corpora) and the benchmark-model generator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "util/result.h"

namespace shimmy::gguf {

class Writer {
 public:
  // Sets (or replaces) a metadata value; keeps first-insertion order.
  void set(const std::string& key, Value v);
  // Adds a tensor; `data` must hold exactly the bytes its type and shape need.
  Status add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> shape,
                    std::vector<uint8_t> data);
  // Adds a tensor whose bytes live elsewhere (e.g. in a mapped file) until write().
  Status add_tensor_view(const std::string& name, TensorType type, std::vector<uint64_t> shape,
                         const uint8_t* data, uint64_t n_bytes);

  // Copies every metadata value and tensor of `f` (a read → write round trip).
  void copy_from(const File& f);

  Status write(const std::string& path) const;
  std::vector<uint8_t> to_bytes() const;

 private:
  struct Tensor {
    std::string name;
    TensorType type;
    std::vector<uint64_t> shape;
    std::vector<uint8_t> owned;
    const uint8_t* data = nullptr;
    uint64_t n_bytes = 0;
  };
  uint64_t alignment() const;
  std::vector<uint8_t> header(std::vector<uint64_t>& offsets, uint64_t& data_bytes) const;
  std::vector<KeyValue> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace shimmy::gguf
