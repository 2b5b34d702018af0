#include "gguf/summary.h"

#include <array>

namespace shimmy::gguf {

std::string file_type_name(uint64_t id) {
  static const std::map<uint64_t, const char*> names = {
      {0, "F32"},      {1, "F16"},      {2, "Q4_0"},      {3, "Q4_1"},    {7, "Q8_0"},
      {8, "Q5_0"},     {9, "Q5_1"},     {10, "Q2_K"},     {11, "Q3_K_S"}, {12, "Q3_K_M"},
      {13, "Q3_K_L"},  {14, "Q4_K_S"},  {15, "Q4_K_M"},   {16, "Q5_K_S"}, {17, "Q5_K_M"},
      {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"},   {21, "Q2_K_S"}, {22, "IQ3_XS"},
      {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"},   {26, "IQ3_S"},  {27, "IQ3_M"},
      {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"},   {31, "IQ1_M"},  {32, "BF16"},
      {36, "TQ1_0"},   {37, "TQ2_0"},   {38, "MXFP4_MOE"}};
  auto it = names.find(id);
  return it == names.end() ? "unknown(" + std::to_string(id) + ")" : it->second;
}

Summary summarize(const File& f) {
  Summary s;
  s.architecture = f.get_string("general.architecture").value_or("");
  s.name = f.get_string("general.name").value_or("");
  s.gguf_version = f.version();
  s.file_size = f.file_size();
  s.shards = f.shard_count();
  s.tensor_count = f.tensors().size();
  for (const auto& t : f.tensors()) {
    s.parameters += t.n_elements;
    auto& u = s.types[type_name(static_cast<uint32_t>(t.type))];
    u.tensors++;
    u.elements += t.n_elements;
    u.bytes += t.n_bytes;
  }
  s.file_type = f.get_uint("general.file_type");
  if (s.file_type) {
    s.file_type_name = file_type_name(*s.file_type);
  } else {
    // No general.file_type: name the type holding most bytes of the matrices.
    std::map<std::string, uint64_t> bytes;
    for (const auto& t : f.tensors()) {
      if (t.shape.size() >= 2) bytes[type_name(static_cast<uint32_t>(t.type))] += t.n_bytes;
    }
    uint64_t best = 0;
    for (const auto& [name, b] : bytes) {
      if (b > best) {
        best = b;
        s.file_type_name = name + " (guessed)";
      }
    }
  }
  const std::string a = s.architecture + ".";
  s.context_length = f.get_uint(a + "context_length");
  s.embedding_length = f.get_uint(a + "embedding_length");
  s.block_count = f.get_uint(a + "block_count");
  s.head_count = f.get_uint(a + "attention.head_count");
  s.head_count_kv = f.get_uint(a + "attention.head_count_kv");
  if (!s.head_count_kv) s.head_count_kv = s.head_count;
  s.feed_forward_length = f.get_uint(a + "feed_forward_length");
  s.rope_dimension_count = f.get_uint(a + "rope.dimension_count");
  s.rope_freq_base = f.get_float(a + "rope.freq_base");
  s.rope_scaling_type = f.get_string(a + "rope.scaling.type").value_or("");
  s.rope_scaling_factor = f.get_float(a + "rope.scaling.factor");
  s.rms_epsilon = f.get_float(a + "attention.layer_norm_rms_epsilon");
  s.tokenizer_model = f.get_string("tokenizer.ggml.model").value_or("");
  s.tokenizer_pre = f.get_string("tokenizer.ggml.pre").value_or("");
  if (auto* toks = f.get_strings("tokenizer.ggml.tokens")) s.vocab_size = toks->size();
  s.bos_id = f.get_int("tokenizer.ggml.bos_token_id");
  s.eos_id = f.get_int("tokenizer.ggml.eos_token_id");
  s.has_chat_template = f.get_string("tokenizer.chat_template").has_value();
  return s;
}

}  // namespace shimmy::gguf
