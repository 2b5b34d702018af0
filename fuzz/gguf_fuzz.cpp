// libFuzzer target: the GGUF reader must return an error, never crash, hang or allocate
// more than the input's size, whatever bytes it is given.
#include <cstddef>
#include <cstdint>

#include "gguf/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = shimmy::gguf::File::parse(data, size, "fuzz.gguf");
  if (f) {
    // Touch every tensor's first and last byte: they must lie inside the buffer.
    volatile uint8_t sink = 0;
    for (const auto& t : f->tensors()) {
      if (t.n_bytes) sink = sink ^ t.data[0] ^ t.data[t.n_bytes - 1];
    }
    for (const auto& kv : f->metadata()) (void)kv.value.to_display();
  }
  return 0;
}
