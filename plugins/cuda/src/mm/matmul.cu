// matmul.h on top of the per-type kernels: type dispatch (once per call, no per-element
// switch), the upload repack, and the x -> 16-bit conversion of the prompt path.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "mm/layout.h"
#include "mm/matmul.h"
#include "mm/ops.h"
#include "mm/repack.h"

namespace shimmy::cuda {
namespace {

const mm::TypeOps* ops_for(uint32_t type) {
  switch (type) {
    case kF32:
      return &mm::ops_f32();
    case kF16:
      return &mm::ops_f16();
    case kBF16:
      return &mm::ops_bf16();
    case kQ4_0:
      return &mm::ops_q4_0();
    case kQ4_1:
      return &mm::ops_q4_1();
    case kQ5_0:
      return &mm::ops_q5_0();
    case kQ5_1:
      return &mm::ops_q5_1();
    case kQ8_0:
      return &mm::ops_q8_0();
    case kIQ4_NL:
      return &mm::ops_iq4_nl();
    case kQ2_K:
      return &mm::ops_q2_k();
    case kQ3_K:
      return &mm::ops_q3_k();
    case kQ4_K:
      return &mm::ops_q4_k();
    case kQ5_K:
      return &mm::ops_q5_k();
    case kQ6_K:
      return &mm::ops_q6_k();
    default:
      return nullptr;
  }
}

bool shape_ok(const mm::Format* f, int64_t rows, int64_t cols) {
  return f && rows > 0 && cols > 0 && cols % f->block == 0 && cols % 32 == 0;
}

template <bool kF16>
__global__ void to_16bit(const float4* __restrict__ x, uint2* __restrict__ out, int64_t n4) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n4;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float4 v = x[i];
    uint2 o;
    if constexpr (kF16) {
      const __half2 a = __floats2half2_rn(v.x, v.y), b = __floats2half2_rn(v.z, v.w);
      o.x = *reinterpret_cast<const uint32_t*>(&a);
      o.y = *reinterpret_cast<const uint32_t*>(&b);
    } else {
      const __nv_bfloat162 a = __floats2bfloat162_rn(v.x, v.y), b = __floats2bfloat162_rn(v.z, v.w);
      o.x = *reinterpret_cast<const uint32_t*>(&a);
      o.y = *reinterpret_cast<const uint32_t*>(&b);
    }
    out[i] = o;
  }
}

__global__ void sum_splits_kernel(const float* __restrict__ part, int nsplit, int64_t m,
                                  int64_t rows, float* __restrict__ y, int64_t ldy) {
  const int64_t n = m * rows;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float v = 0.f;
    for (int z = 0; z < nsplit; ++z) v += part[z * n + i];
    y[(i / rows) * ldy + i % rows] = v;
  }
}

// Bytes of the 16-bit x copy at the start of the workspace (the partial sums follow).
size_t x16_bytes(int64_t m, int64_t cols) {
  return size_t(mm::round_up(m * cols * 2, 256));
}

// Repacks rows [0, n) of a chunk on a few threads (load time; a 1B-parameter model has ~1e9
// values to shuffle).
void repack_rows(uint32_t type, const HostRows& src, int64_t first_row, uint8_t* dst,
                 size_t dst_stride, int64_t n, int64_t cols) {
  const int64_t work = n * cols;
  const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
  const int nthreads = int(std::clamp<int64_t>(work / (1 << 20), 1, std::min(hw, 8)));
  auto run = [&](int64_t r0, int64_t r1) {
    std::memset(dst + r0 * dst_stride, 0, size_t(r1 - r0) * dst_stride);  // layout padding
    for (int64_t r = r0; r < r1; ++r)
      mm::repack_row(type, src.row(first_row + r), dst + r * dst_stride, cols);
  };
  if (nthreads == 1) {
    run(0, n);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t per = (n + nthreads - 1) / nthreads;
  for (int i = 0; i < nthreads; ++i) {
    const int64_t r0 = std::min<int64_t>(n, i * per), r1 = std::min<int64_t>(n, r0 + per);
    if (r0 < r1) pool.emplace_back(run, r0, r1);
  }
  for (auto& th : pool) th.join();
}

}  // namespace

namespace mm {
void sum_splits(const float* part, int nsplit, const MmArgs& a, cudaStream_t s) {
  const int64_t n = a.m * a.rows;
  const unsigned blocks = unsigned(std::clamp<int64_t>((n + 255) / 256, 1, 4096));
  sum_splits_kernel<<<blocks, 256, 0, s>>>(part, nsplit, a.m, a.rows, a.y, a.ldy);
}

void convert_x(const float* x, uint16_t* out, int64_t n, bool to_f16, cudaStream_t s) {
  const int64_t n4 = n / 4;
  const unsigned blocks = unsigned(std::clamp<int64_t>((n4 + 255) / 256, 1, 4096));
  if (to_f16) {
    to_16bit<true><<<blocks, 256, 0, s>>>(reinterpret_cast<const float4*>(x),
                                          reinterpret_cast<uint2*>(out), n4);
  } else {
    to_16bit<false><<<blocks, 256, 0, s>>>(reinterpret_cast<const float4*>(x),
                                           reinterpret_cast<uint2*>(out), n4);
  }
}
}  // namespace mm

bool type_supported(uint32_t type) {
  return ops_for(type) != nullptr;
}

size_t weight_device_bytes(uint32_t type, int64_t rows, int64_t cols) {
  const mm::Format* f = mm::format_of(type);
  if (!shape_ok(f, rows, cols)) return 0;
  return size_t(rows) * size_t(mm::row_layout(*f, cols).row_bytes);
}

const uint8_t* HostRows::row(int64_t r) const {
  if (!second) return static_cast<const uint8_t*>(first) + size_t(r) * stride;
  const int64_t i = interleave_src_row(r, f);
  return i < f ? static_cast<const uint8_t*>(first) + size_t(i) * stride
               : static_cast<const uint8_t*>(second) + size_t(i - f) * stride;
}

cudaError_t upload_weight(const HostRows& src, uint32_t type, int64_t rows, int64_t cols, void* dst,
                          DeviceWeight* out, cudaStream_t s, UploadStaging* staging) {
  const mm::Format* f = mm::format_of(type);
  const mm::TypeOps* ops = ops_for(type);
  if (!ops || !shape_ok(f, rows, cols) || !src.first || !dst || !out) return cudaErrorInvalidValue;
  if (src.stride < size_t(cols / f->block) * size_t(f->block_bytes)) return cudaErrorInvalidValue;
  if (src.second && 2 * src.f != rows) return cudaErrorInvalidValue;
  if (cudaError_t e = ops->prepare(); e != cudaSuccess) return e;
  const mm::RowLayout l = mm::row_layout(*f, cols);
  const size_t rb = size_t(l.row_bytes);
  out->data = dst;
  out->type = type;
  out->rows = rows;
  out->cols = cols;
  out->row_bytes = rb;
  if (staging && staging->ok() && rb <= staging->bytes_) {
    // Chunk k + 1 is repacked into one buffer while chunk k's copy reads the other.
    const int64_t chunk = std::min<int64_t>(int64_t(staging->bytes_ / rb), rows);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t n = std::min(chunk, rows - r0);
      const int k = staging->next_;
      staging->next_ ^= 1;
      if (cudaError_t e = cudaEventSynchronize(staging->done_[k]); e != cudaSuccess) return e;
      repack_rows(type, src, r0, staging->buf_[k], rb, n, cols);
      cudaError_t e = cudaMemcpyAsync(static_cast<uint8_t*>(dst) + size_t(r0) * rb,
                                      staging->buf_[k], size_t(n) * rb, cudaMemcpyHostToDevice, s);
      if (e == cudaSuccess) e = cudaEventRecord(staging->done_[k], s);
      if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
  }
  // Through a bounded pageable buffer, a chunk of rows at a time.
  const int64_t chunk = std::clamp<int64_t>(int64_t((64u << 20) / rb), 1, rows);
  std::vector<uint8_t> buf(size_t(chunk) * rb);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    repack_rows(type, src, r0, buf.data(), rb, n, cols);
    cudaError_t e = cudaMemcpyAsync(static_cast<uint8_t*>(dst) + size_t(r0) * rb, buf.data(),
                                    size_t(n) * rb, cudaMemcpyHostToDevice, s);
    if (e == cudaSuccess) e = cudaStreamSynchronize(s);  // buf is reused
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

cudaError_t UploadStaging::init(size_t bytes) {
  for (int k = 0; k < 2; ++k) {
    cudaError_t e = cudaMallocHost(reinterpret_cast<void**>(&buf_[k]), bytes);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&done_[k], cudaEventDisableTiming);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return e;  // bytes_ stays 0: the pageable path
    }
  }
  bytes_ = bytes;
  return cudaSuccess;
}

UploadStaging::~UploadStaging() {
  for (int k = 0; k < 2; ++k) {
    if (done_[k]) {
      cudaEventSynchronize(done_[k]);
      cudaEventDestroy(done_[k]);
    }
    if (buf_[k]) cudaFreeHost(buf_[k]);
  }
}

size_t matmul_workspace_bytes(const DeviceWeight& w, int64_t max_m) {
  if (max_m <= mm::kDecodeMaxM) return 0;
  const int64_t splits = mm::max_splits(w.rows);
  const size_t part =
      splits > 1 ? size_t(max_m) * size_t(std::min<int64_t>(8 * w.rows, 4096)) * 4 : 0;
  return x16_bytes(max_m, w.cols) + part;
}

namespace mm {
MmArgs args_for(const DeviceWeight& w, const float* x, int64_t m, float* y, int64_t ldy) {
  MmArgs a;
  a.w = static_cast<const uint8_t*>(w.data);
  a.row_bytes = int64_t(w.row_bytes);
  a.rows = w.rows;
  a.cols = w.cols;
  a.layout = row_layout(*format_of(w.type), w.cols);
  a.x = x;
  a.m = m;
  a.y = y;
  a.ldy = ldy;
  return a;
}
}  // namespace mm

void matmul(const DeviceWeight& w, const float* x, int64_t m, float* y, int64_t ldy, void* ws,
            cudaStream_t s) {
  const mm::TypeOps* ops = ops_for(w.type);
  const mm::Format* f = mm::format_of(w.type);
  if (m <= 0 || !ops || !f) return;
  mm::MmArgs a = mm::args_for(w, x, m, y, ldy);
  if (m <= mm::kDecodeMaxM) {
    ops->decode(a, s);
    return;
  }
  auto* x16 = static_cast<uint16_t*>(ws);
  auto* part = reinterpret_cast<float*>(static_cast<uint8_t*>(ws) + x16_bytes(m, w.cols));
  mm::convert_x(x, x16, m * w.cols, ops->x_f16, s);
  ops->prompt(a, x16, part, s);
}

bool matmul_swiglu(const DeviceWeight& w, const float* x, int64_t m, float* y, int64_t ldy,
                   cudaStream_t s) {
  const mm::TypeOps* ops = ops_for(w.type);
  const mm::Format* f = mm::format_of(w.type);
  static_assert(kSwigluMaxM == mm::kDecodeMaxM);
  if (m <= 0 || m > kSwigluMaxM || !ops || !f || w.rows % 16 != 0) return false;
  mm::MmArgs a = mm::args_for(w, x, m, y, ldy);
  a.swiglu = true;
  ops->decode(a, s);
  return true;
}

}  // namespace shimmy::cuda
