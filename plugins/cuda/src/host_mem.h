// Page-locked host blocks the plugin hands to the core (plugin_abi.h host_alloc /
// host_free), and whether a range lies inside one: eval then has the device write its
// results into the caller's memory directly, instead of through its staging buffer and a
// host copy (16 rows of 32k logits: ~0.1 ms a step on the H100 host).
#pragma once

#include <cstdint>

namespace shimmy::cuda {

// cudaHostAlloc (portable: every context may copy into it); null when it cannot.
void* host_alloc(uint64_t bytes);
// Frees a block from host_alloc; ignores null and pointers it did not hand out.
void host_free(void* p);
// Whether [p, p + bytes) lies inside one live host_alloc block.
bool in_host_block(const void* p, uint64_t bytes);

}  // namespace shimmy::cuda
