// A model file's facts at a glance (what `shimmy show` prints and /api/show returns),
// read from GGUF metadata and tensor infos only — no weights are touched.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "gguf/reader.h"

namespace shimmy::gguf {

struct TypeUsage {
  uint64_t tensors = 0;
  uint64_t elements = 0;
  uint64_t bytes = 0;
};

struct Summary {
  std::string architecture;  // general.architecture
  std::string name;          // general.name
  uint64_t parameters = 0;   // sum of tensor elements
  std::optional<uint64_t> file_type;
  std::string file_type_name;  // "Q4_K_M", from general.file_type
  std::optional<uint64_t> context_length, embedding_length, block_count, head_count, head_count_kv,
      feed_forward_length, rope_dimension_count;
  std::optional<double> rope_freq_base, rope_scaling_factor, rms_epsilon;
  std::string rope_scaling_type;
  std::string tokenizer_model, tokenizer_pre;
  uint64_t vocab_size = 0;
  std::optional<int64_t> bos_id, eos_id;
  bool has_chat_template = false;
  uint32_t gguf_version = 0;
  uint64_t file_size = 0;
  size_t shards = 1;
  uint64_t tensor_count = 0;
  std::map<std::string, TypeUsage> types;  // by type name
};

Summary summarize(const File& f);

// llama.cpp's file-type ids ("general.file_type") → names; "unknown(N)" otherwise.
std::string file_type_name(uint64_t id);

}  // namespace shimmy::gguf
