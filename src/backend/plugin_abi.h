/* shimmy backend plugin ABI, version 2 (ARCHITECTURE.md §1.3).
 *
 * A GPU backend is a shared object, libshimmy-backend-<name>.so, that exports one
 * function:
 *
 *     const ShimmyBackendApi* shimmy_backend_api(uint32_t core_abi_version);
 *
 * The core dlopen()s each plugin it finds and calls it with SHIMMY_BACKEND_ABI_VERSION.
 * The plugin returns its table (whose abi_version the core checks; a mismatch is refused
 * with both numbers in the message) or NULL if it cannot serve that core version.
 *
 * Plain C only: no C++ types, exceptions or allocations cross the boundary. Every call
 * that can fail returns 0 on success or a non-zero code, and writes a sentence a user can
 * act on into the caller's `err` buffer (always NUL-terminated, truncated to err_len).
 *
 * Granularity: the plugin runs whole transformer layers (and optionally the final norm and
 * output projection) of the llama family, not single ops. The core keeps the embeddings
 * lookup, rope tables, sampling and scheduling; the plugin is free to fuse kernels, keep
 * the KV cache on the device and replay the decode step as a CUDA graph. Activations cross
 * the boundary once per device segment: f32 hidden states in, f32 hidden states (or
 * logits) out.
 *
 * Version 2 added host_alloc / host_free (page-locked output memory).
 *
 * Shapes follow GGUF (see src/model/model.h): a matrix tensor is [rows, cols] row-major,
 * cols = ne0 = the input dimension, stored in its GGUF block format (type = ggml type id).
 */
#ifndef SHIMMY_BACKEND_PLUGIN_ABI_H
#define SHIMMY_BACKEND_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHIMMY_BACKEND_ABI_VERSION 2u
#define SHIMMY_BACKEND_ENTRY "shimmy_backend_api"
#define SHIMMY_MAX_DEVICES 16

/* ---- probing ------------------------------------------------------------------------ */

typedef struct ShimmyDeviceInfo {
  char name[128];             /* "NVIDIA H100 80GB HBM3" */
  int32_t cc_major, cc_minor; /* compute capability (0 if not applicable) */
  uint64_t free_bytes;        /* free device memory now */
  uint64_t total_bytes;
  double mem_bandwidth_gbs; /* theoretical peak if known, else 0 */
} ShimmyDeviceInfo;

typedef struct ShimmyProbe {
  int32_t n_devices; /* 0 when unusable; then `reason` says why */
  ShimmyDeviceInfo devices[SHIMMY_MAX_DEVICES];
  char reason[512];  /* why no device is usable ("libcuda.so.1 not found: ...") */
  char runtime[128]; /* "CUDA driver 13.0, plugin built for 13.0" (informational) */
} ShimmyProbe;

/* ---- the model slice a device runs -------------------------------------------------- */

typedef struct ShimmyTensor {
  const void* data; /* host pointer (into the memory map); NULL when absent */
  uint32_t type;    /* ggml type id (gguf/types.h) */
  int64_t rows, cols;
  uint64_t row_bytes;
} ShimmyTensor;

typedef struct ShimmyLayerWeights {
  ShimmyTensor attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm;
  ShimmyTensor ffn_norm, w_gate, w_up, w_down;
} ShimmyLayerWeights;

enum { SHIMMY_ROPE_NORMAL = 0, SHIMMY_ROPE_NEOX = 1 };
enum { SHIMMY_KV_F16 = 0, SHIMMY_KV_F32 = 1 };

typedef struct ShimmyModelDesc {
  /* hyper-parameters (model/model.h Config) */
  int64_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_rot;
  float rms_eps;
  int32_t rope_type; /* SHIMMY_ROPE_* ; cos/sin come with each batch */
  int32_t qkv_bias, qk_norm;

  /* the layers this device runs: [layer_begin, layer_end) of the model */
  int64_t layer_begin, layer_end;
  const ShimmyLayerWeights* layers; /* layers[i] is model layer layer_begin + i */

  /* the head, when has_output: final RMSNorm and the output projection [n_vocab, n_embd] */
  int32_t has_output;
  ShimmyTensor output_norm, output;

  /* sizes the context must serve without further allocation */
  int32_t kv_type;   /* SHIMMY_KV_* */
  int64_t max_ctx;   /* positions per sequence */
  int64_t max_seqs;  /* sequence slots (0 .. max_seqs-1) */
  int64_t max_batch; /* tokens per eval */
} ShimmyModelDesc;

/* ---- one evaluation ------------------------------------------------------------------ */

typedef struct ShimmyBatch {
  int64_t n_tokens;
  const int32_t* seq;     /* [n_tokens] sequence slot of each token */
  const int32_t* pos;     /* [n_tokens] position; the slot's cache holds 0..pos-1 already */
  const float* rope_cs;   /* [n_tokens][n_rot] cos,sin pairs per rotated pair (ops.h
                             rope_cos_sin), so every backend rotates identically */
  const float* hidden_in; /* [n_tokens][n_embd] f32, host memory */
  /* Output: with has_output, logits [n_out][n_vocab] of the tokens whose `want_logits`
     is non-zero, in batch order; otherwise hidden states [n_tokens][n_embd]. */
  const uint8_t* want_logits; /* [n_tokens] */
  float* out; /* host memory; inside a block from this plugin's host_alloc, the device
                 writes it directly (no staging copy) */
} ShimmyBatch;

/* Memory a model slice would take on a device, for the placement planner. */
typedef struct ShimmySliceBytes {
  uint64_t weights; /* device copies of the slice's tensors (after any repacking) */
  uint64_t kv;      /* KV cache for max_ctx * max_seqs */
  uint64_t scratch; /* activations, workspace, graphs */
} ShimmySliceBytes;

typedef struct ShimmyContext ShimmyContext; /* opaque, owned by the plugin */

typedef struct ShimmyBackendApi {
  uint32_t abi_version; /* SHIMMY_BACKEND_ABI_VERSION the plugin was built against */
  const char* name;     /* "cuda" */
  const char* version;  /* plugin build description */

  /* Fills `out`; never fails hard: an unusable backend reports n_devices = 0 and a reason.
     Safe to call more than once (free memory changes). */
  void (*probe)(ShimmyProbe* out);

  /* Whether the plugin computes a ggml type (weights of other types keep layers on CPU). */
  int32_t (*supports_type)(uint32_t ggml_type);

  /* Bytes a slice would use on `device` (no allocation). */
  int32_t (*slice_bytes)(int32_t device, const ShimmyModelDesc* desc, ShimmySliceBytes* out,
                         char* err, size_t err_len);

  /* Uploads the slice's weights, allocates its KV cache and scratch. The host tensors may
     be released by the core after this returns. */
  int32_t (*create)(int32_t device, const ShimmyModelDesc* desc, ShimmyContext** out, char* err,
                    size_t err_len);
  void (*destroy)(ShimmyContext* ctx);

  /* Runs the slice's layers (and head) over a batch. */
  int32_t (*eval)(ShimmyContext* ctx, const ShimmyBatch* batch, char* err, size_t err_len);

  /* Forgets positions >= pos of a sequence slot (pos 0 clears it). */
  int32_t (*seq_truncate)(ShimmyContext* ctx, int32_t seq, int64_t pos, char* err, size_t err_len);

  /* Optional (NULL: the core uses its own memory). Host memory the devices can write
     directly (page-locked), for eval's `out`: a decode step's logits then skip a copy
     through the plugin's staging buffer. host_alloc returns NULL when it cannot; host_free
     takes only what host_alloc returned (and NULL). */
  void* (*host_alloc)(uint64_t bytes);
  void (*host_free)(void* p);
} ShimmyBackendApi;

typedef const ShimmyBackendApi* (*ShimmyBackendEntryFn)(uint32_t core_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* SHIMMY_BACKEND_PLUGIN_ABI_H */
