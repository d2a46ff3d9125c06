// CUDA PowerSGD (compress/powersgd.h). Each kernel keeps the CPU reference's summation order:
// products sum over the inner index sequentially in one thread, and column dot products use a
// 256-thread block whose thread t sums rows t, t + 256, ... before a pairwise tree. These kernels
// favour bit-exact agreement over speed; a tiled version would need a matching CPU order.
#include "compress/powersgd.h"
#include "kernels/codec_kernels.h"
#include "kernels/codec_kernels_internal.h"
#include "kernels/cuda_status.h"

namespace plexus::kernels {
namespace {

using codec::addRn;
using codec::mulRn;

__global__ void addEfKernel(const float* in, float* ef, size_t n) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    ef[i] = addRn(in[i], ef[i]);
  }
}

// P[i][j] = sum_k M[i][k] Q[k][j]; one thread per (i, j).
__global__ void mulMQKernel(const float* m, const float* q, uint32_t rows, uint32_t cols,
                            uint32_t r, float* p) {
  const uint64_t t = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x;
  if (t >= uint64_t{rows} * r) return;
  const uint64_t i = t / r, j = t % r;
  float s = 0.0f;
  for (uint32_t k = 0; k < cols; ++k) s = addRn(s, mulRn(m[i * cols + k], q[k * r + j]));
  p[t] = s;
}

// Q[k][j] = sum_i M[i][k] P[i][j]; one thread per (k, j), k fastest for coalesced reads of M.
__global__ void mulMtPKernel(const float* m, const float* p, uint32_t rows, uint32_t cols,
                             uint32_t r, float* q) {
  const uint64_t t = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x;
  if (t >= uint64_t{cols} * r) return;
  const uint64_t k = t % cols, j = t / cols;
  float s = 0.0f;
  for (uint32_t i = 0; i < rows; ++i) s = addRn(s, mulRn(m[i * uint64_t{cols} + k], p[i * r + j]));
  q[k * r + j] = s;
}

// Column dot product of P[:, a] and P[:, b] in the reference tree order; all threads get it.
__device__ float columnDot(const float* p, uint32_t a, uint32_t b, uint32_t rows, uint32_t r,
                           float* partial) {
  float s = 0.0f;
  for (uint32_t i = threadIdx.x; i < rows; i += codec::kPowerSgdTree) {
    s = addRn(s, mulRn(p[uint64_t{i} * r + a], p[uint64_t{i} * r + b]));
  }
  partial[threadIdx.x] = s;
  __syncthreads();
  for (int w = codec::kPowerSgdTree / 2; w >= 1; w /= 2) {
    if (threadIdx.x < static_cast<unsigned>(w)) {
      partial[threadIdx.x] = addRn(partial[threadIdx.x], partial[threadIdx.x + w]);
    }
    __syncthreads();
  }
  const float d = partial[0];
  __syncthreads();
  return d;
}

// Gram-Schmidt over the columns of P in one 256-thread block.
__global__ void orthonormaliseKernel(float* p, uint32_t rows, uint32_t r) {
  __shared__ float partial[codec::kPowerSgdTree];
  for (uint32_t j = 0; j < r; ++j) {
    for (uint32_t jj = 0; jj < j; ++jj) {
      const float d = columnDot(p, j, jj, rows, r, partial);
      for (uint32_t i = threadIdx.x; i < rows; i += blockDim.x) {
        p[uint64_t{i} * r + j] =
            codec::subRn(p[uint64_t{i} * r + j], mulRn(d, p[uint64_t{i} * r + jj]));
      }
      __syncthreads();
    }
    const float norm = codec::sqrtRn(columnDot(p, j, j, rows, r, partial));
    for (uint32_t i = threadIdx.x; i < rows; i += blockDim.x) {
      const uint64_t x = uint64_t{i} * r + j;
      p[x] = norm > codec::kPowerSgdEps ? codec::divRn(p[x], norm) : 0.0f;
    }
    __syncthreads();
  }
}

// Mode 0: out = PQ^T; 1: out += PQ^T; 2: out -= PQ^T (error feedback: e' = c - PQ^T).
__global__ void reconstructKernel(const float* p, const float* q, uint32_t rows, uint32_t cols,
                                  uint32_t r, float* out, int mode) {
  const uint64_t t = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x;
  if (t >= uint64_t{rows} * cols) return;
  const uint64_t i = t / cols, k = t % cols;
  float s = 0.0f;
  for (uint32_t j = 0; j < r; ++j) s = addRn(s, mulRn(p[i * r + j], q[k * r + j]));
  out[t] = mode == 0 ? s : (mode == 1 ? addRn(out[t], s) : codec::subRn(out[t], s));
}

__global__ void headerKernel(uint32_t rows, uint32_t cols, uint32_t r, uint8_t* out) {
  PayloadHeader h;
  h.codec = CodecId::kPowerSgd;
  h.count = uint64_t{rows} * cols;
  h.param = rows;
  h.p1 = static_cast<uint8_t>(r);
  h.bodyBytes = 4 * (uint64_t{rows} + cols) * r;
  writePayloadHeader(h, out);
}

}  // namespace

size_t powerSgdWorkspaceBytes(uint32_t, uint32_t, uint32_t) { return 0; }

Status powerSgdEncode(const float* in, float* ef, uint32_t rows, uint32_t cols, uint32_t rank,
                      float* q, uint8_t* out, void*, cudaStream_t stream) {
  if (rows == 0 || cols == 0 || rank == 0 || rank > 255 || rank > rows || rank > cols) {
    return invalidArgument(
        "powerSgdEncode: need rows, cols >= 1 and 1 <= rank <= min(rows, "
        "cols, 255)");
  }
  const uint64_t n = uint64_t{rows} * cols;
  const float* m = in;
  if (ef) {
    addEfKernel<<<blocksFor(n, 256), 256, 0, stream>>>(in, ef, n);
    m = ef;
  }
  // P and Q live in the payload body; Q is also copied back as the next warm start.
  auto* p = reinterpret_cast<float*>(out + kPayloadHeaderBytes);
  float* qOut = p + uint64_t{rows} * rank;
  mulMQKernel<<<blocksFor(uint64_t{rows} * rank, 128), 128, 0, stream>>>(m, q, rows, cols, rank, p);
  orthonormaliseKernel<<<1, codec::kPowerSgdTree, 0, stream>>>(p, rows, rank);
  mulMtPKernel<<<blocksFor(uint64_t{cols} * rank, 128), 128, 0, stream>>>(m, p, rows, cols, rank,
                                                                          qOut);
  if (ef) {
    reconstructKernel<<<blocksFor(n, 256), 256, 0, stream>>>(p, qOut, rows, cols, rank, ef, 2);
  }
  headerKernel<<<1, 1, 0, stream>>>(rows, cols, rank, out);
  PLEXUS_TRY(lastLaunch("powerSgdEncode"));
  return cudaStatus(
      cudaMemcpyAsync(q, qOut, 4 * uint64_t{cols} * rank, cudaMemcpyDeviceToDevice, stream),
      "powerSgdEncode: warm start");
}

Status powerSgdDecode(const PayloadHeader& h, const uint8_t* payload, float* out, bool accumulate,
                      cudaStream_t stream) {
  const uint32_t rows = h.param, r = h.p1, cols = static_cast<uint32_t>(h.count / rows);
  const auto* p = reinterpret_cast<const float*>(payload + kPayloadHeaderBytes);
  reconstructKernel<<<blocksFor(h.count, 256), 256, 0, stream>>>(p, p + uint64_t{rows} * r, rows,
                                                                 cols, r, out, accumulate ? 1 : 0);
  return lastLaunch("powerSgdDecode");
}

}  // namespace plexus::kernels
