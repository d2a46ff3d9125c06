// CUDA top-k (topk_codec.cc defines the selection). Both modes find a key threshold with a radix
// select (4 passes of 8-bit digits: histogram, then one thread picks the digit) and then compact
// in index order with per-tile counts, a scan over tiles and a block scan inside each tile:
//  - exact: the radix select runs over all n keys; class A = key > t, class B = key == t, and
//    the lowest-indexed ties fill up to k.
//  - threshold: the radix select runs over 4096 samples; class A = key >= t, the first k kept.
// Element i's output slot is (A before i) + min(B before i, ties needed), so the output is
// sorted by index, the same bytes as the CPU reference.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "compress/topk.h"
#include "kernels/codec_kernels.h"
#include "kernels/codec_kernels_internal.h"
#include "kernels/cuda_status.h"

namespace plexus::kernels {
namespace {

using codec::floatBits;

constexpr int kTileThreads = 256;
constexpr int kPerThread = 16;
constexpr uint64_t kTile = kTileThreads * kPerThread;

// Radix-select state in the workspace.
struct SelectState {
  uint32_t prefix;  // digits chosen so far
  uint32_t mask;    // bits of prefix that are chosen
  uint64_t remain;  // rank still to find below the chosen prefix (1-based)
  uint32_t hist[256];
};

__device__ __forceinline__ uint32_t keyOf(float c) { return floatBits(c) & 0x7fffffffu; }

__global__ void addEfKernel(const float* in, float* ef, size_t n) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    ef[i] = codec::addRn(in[i], ef[i]);
  }
}

__global__ void sampleKernel(const float* c, size_t n, size_t s, float* samples) {
  const size_t j = blockIdx.x * size_t{blockDim.x} + threadIdx.x;
  if (j < s) samples[j] = c[topkSampleIndex(j, n, s)];
}

__global__ void initSelectKernel(SelectState* st, uint64_t rank) {
  st->prefix = 0;
  st->mask = 0;
  st->remain = rank;
  for (int d = 0; d < 256; ++d) st->hist[d] = 0;
}

__global__ void histogramKernel(const float* c, size_t n, int shift, SelectState* st) {
  __shared__ uint32_t hist[256];
  for (int d = threadIdx.x; d < 256; d += blockDim.x) hist[d] = 0;
  __syncthreads();
  const uint32_t prefix = st->prefix, mask = st->mask;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    const uint32_t key = keyOf(c[i]);
    if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
  }
  __syncthreads();
  for (int d = threadIdx.x; d < 256; d += blockDim.x) {
    if (hist[d]) atomicAdd(&st->hist[d], hist[d]);
  }
}

// Picks the digit holding the remain-th largest key, from the top digit down.
__global__ void pickDigitKernel(int shift, SelectState* st) {
  uint64_t above = 0;
  int d = 255;
  for (; d > 0; --d) {
    if (above + st->hist[d] >= st->remain) break;
    above += st->hist[d];
  }
  st->remain -= above;
  st->prefix |= static_cast<uint32_t>(d) << shift;
  st->mask |= 255u << shift;
  for (int i = 0; i < 256; ++i) st->hist[i] = 0;
}

// Per tile: count of class A (high 32 bits) and class B (low 32 bits).
__device__ __forceinline__ uint64_t classify(uint32_t key, uint32_t lo, uint32_t tie, bool ties) {
  return (key >= lo ? (uint64_t{1} << 32) : 0) | (ties && key == tie ? 1u : 0u);
}

struct Classes {
  uint32_t lo, tie;
  bool ties;
};

__device__ Classes classesOf(const SelectState* st, bool threshold) {
  // Exact: A = key > t (key >= t + 1; t <= 0x7fffffff so no overflow), B = key == t.
  return threshold ? Classes{st->prefix, 0, false} : Classes{st->prefix + 1, st->prefix, true};
}

__global__ void countKernel(const float* c, size_t n, const SelectState* st, bool threshold,
                            uint64_t* tileCounts) {
  using Scan = cub::BlockReduce<uint64_t, kTileThreads>;
  __shared__ typename Scan::TempStorage tmp;
  const Classes cl = classesOf(st, threshold);
  const uint64_t base = blockIdx.x * kTile + threadIdx.x * uint64_t{kPerThread};
  uint64_t local = 0;
  for (int t = 0; t < kPerThread; ++t) {
    if (base + t < n) local += classify(keyOf(c[base + t]), cl.lo, cl.tie, cl.ties);
  }
  const uint64_t total = Scan(tmp).Sum(local);
  if (threadIdx.x == 0) tileCounts[blockIdx.x] = total;
}

// Exclusive scan of the tile counts in place (one block; tiles handled in chunks).
__global__ void scanTilesKernel(uint64_t* tileCounts, size_t tiles, uint64_t* total) {
  using Scan = cub::BlockScan<uint64_t, 1024>;
  __shared__ typename Scan::TempStorage tmp;
  __shared__ uint64_t carry;
  if (threadIdx.x == 0) carry = 0;
  __syncthreads();
  for (size_t base = 0; base < tiles; base += 1024) {
    const size_t i = base + threadIdx.x;
    const uint64_t v = i < tiles ? tileCounts[i] : 0;
    uint64_t excl, sum;
    Scan(tmp).ExclusiveSum(v, excl, sum);
    if (i < tiles) tileCounts[i] = carry + excl;
    __syncthreads();
    if (threadIdx.x == 0) carry += sum;
    __syncthreads();
  }
  if (threadIdx.x == 0) *total = carry;
}

__global__ void writeKernel(const float* c, float* ef, size_t n, uint64_t k, const SelectState* st,
                            bool threshold, const uint64_t* tileOffsets, uint32_t* indices,
                            float* values) {
  using Scan = cub::BlockScan<uint64_t, kTileThreads>;
  __shared__ typename Scan::TempStorage tmp;
  const Classes cl = classesOf(st, threshold);
  const uint64_t need = threshold ? 0 : st->remain;  // ties still to take (exact)
  const uint64_t base = blockIdx.x * kTile + threadIdx.x * uint64_t{kPerThread};
  uint64_t local = 0;
  for (int t = 0; t < kPerThread; ++t) {
    if (base + t < n) local += classify(keyOf(c[base + t]), cl.lo, cl.tie, cl.ties);
  }
  uint64_t before;
  Scan(tmp).ExclusiveSum(local, before);
  before += tileOffsets[blockIdx.x];
  for (int t = 0; t < kPerThread; ++t) {
    const uint64_t i = base + t;
    if (i >= n) break;
    const uint64_t cls = classify(keyOf(c[i]), cl.lo, cl.tie, cl.ties);
    const uint64_t aBefore = before >> 32, bBefore = before & 0xffffffffu;
    const bool selected = (cls >> 32) != 0 || ((cls & 1) != 0 && bBefore < need);
    const uint64_t slot = aBefore + (bBefore < need ? bBefore : need);
    if (selected && slot < k) {
      indices[slot] = static_cast<uint32_t>(i);
      values[slot] = c[i];
      if (ef) ef[i] = 0.0f;
    }
    before += cls;
  }
}

__global__ void finishKernel(size_t n, uint64_t k, bool threshold, const uint64_t* totalA,
                             const float* values, uint8_t* out) {
  const uint64_t stored = threshold ? ((*totalA >> 32) < k ? (*totalA >> 32) : k) : k;
  float* dst = reinterpret_cast<float*>(out + kPayloadHeaderBytes) + stored;
  for (uint64_t j = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; j < stored;
       j += uint64_t{gridDim.x} * blockDim.x) {
    dst[j] = values[j];
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    PayloadHeader h;
    h.codec = CodecId::kTopK;
    h.p0 = threshold ? 1 : 0;
    h.count = n;
    h.param = static_cast<uint32_t>(stored);
    h.bodyBytes = 8 * stored;
    writePayloadHeader(h, out);
  }
}

__global__ void topkDecodeKernel(const uint8_t* payload, size_t n, uint32_t k, float* out,
                                 bool accumulate, int* bad) {
  const uint32_t* idx = reinterpret_cast<const uint32_t*>(payload + kPayloadHeaderBytes);
  const float* val = reinterpret_cast<const float*>(payload + kPayloadHeaderBytes) + k;
  for (uint64_t j = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; j < k;
       j += uint64_t{gridDim.x} * blockDim.x) {
    const uint32_t i = idx[j];
    // Strictly increasing indices below n: in bounds and no two pairs touch the same element.
    if (i >= n || (j > 0 && idx[j - 1] >= i)) {
      *bad = 1;
      continue;
    }
    out[i] = accumulate ? codec::addRn(out[i], val[j]) : val[j];
  }
}

__global__ void zeroKernel(float* out, size_t n) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    out[i] = 0.0f;
  }
}

// Workspace layout: state | tile counts | total | samples | values.
struct Workspace {
  SelectState* state;
  uint64_t* tiles;
  uint64_t* total;
  float* samples;
  float* values;
};

Workspace carve(void* ws, size_t n, uint64_t /*k*/) {
  auto* p = static_cast<uint8_t*>(ws);
  Workspace w;
  w.state = reinterpret_cast<SelectState*>(p);
  p += (sizeof(SelectState) + 255) / 256 * 256;
  w.tiles = reinterpret_cast<uint64_t*>(p);
  p += ((n + kTile - 1) / kTile + 1) * 8;
  w.total = reinterpret_cast<uint64_t*>(p);
  p += 256;
  w.samples = reinterpret_cast<float*>(p);
  p += kTopKSamples * 4;
  w.values = reinterpret_cast<float*>(p);
  return w;
}

}  // namespace

size_t topkWorkspaceBytes(size_t n, uint64_t k) {
  return (sizeof(SelectState) + 255) / 256 * 256 + ((n + kTile - 1) / kTile + 1) * 8 + 256 +
         kTopKSamples * 4 + 4 * k;
}

Status topkEncode(const float* in, float* ef, size_t n, uint64_t k, bool threshold, uint8_t* out,
                  void* workspace, cudaStream_t stream) {
  if (k == 0 || k > n) {
    return invalidArgument("topkEncode: k = " + std::to_string(k) + " must be 1.." +
                           std::to_string(n));
  }
  if (n > 0xffffffffull) return invalidArgument("topkEncode: more than 2^32 - 1 elements");
  const Workspace w = carve(workspace, n, k);
  const float* c = in;
  if (ef) {
    addEfKernel<<<blocksFor(n, 256), 256, 0, stream>>>(in, ef, n);
    c = ef;
  }
  // The threshold: the k-th largest key of all, or the m-th largest of the samples.
  const float* sel = c;
  size_t selN = n;
  uint64_t rank = k;
  if (threshold) {
    const size_t s = n < kTopKSamples ? n : kTopKSamples;
    sampleKernel<<<blocksFor(s, 256), 256, 0, stream>>>(c, n, s, w.samples);
    sel = w.samples;
    selN = s;
    rank = (k * s + n - 1) / n;
    rank = rank < 1 ? 1 : (rank > s ? s : rank);
  }
  initSelectKernel<<<1, 1, 0, stream>>>(w.state, rank);
  for (int shift = 24; shift >= 0; shift -= 8) {
    histogramKernel<<<blocksFor(selN, 256) < 1024 ? blocksFor(selN, 256) : 1024, 256, 0, stream>>>(
        sel, selN, shift, w.state);
    pickDigitKernel<<<1, 1, 0, stream>>>(shift, w.state);
  }
  const size_t tiles = (n + kTile - 1) / kTile;
  countKernel<<<static_cast<unsigned>(tiles), kTileThreads, 0, stream>>>(c, n, w.state, threshold,
                                                                         w.tiles);
  scanTilesKernel<<<1, 1024, 0, stream>>>(w.tiles, tiles, w.total);
  auto* indices = reinterpret_cast<uint32_t*>(out + kPayloadHeaderBytes);
  writeKernel<<<static_cast<unsigned>(tiles), kTileThreads, 0, stream>>>(
      c, ef, n, k, w.state, threshold, w.tiles, indices, w.values);
  finishKernel<<<blocksFor(k, 256), 256, 0, stream>>>(n, k, threshold, w.total, w.values, out);
  return lastLaunch("topkEncode");
}

Status topkDecode(const PayloadHeader& h, const uint8_t* payload, float* out, bool accumulate,
                  cudaStream_t stream) {
  int* bad = nullptr;
  PLEXUS_TRY(cudaStatus(cudaMallocAsync(reinterpret_cast<void**>(&bad), sizeof(int), stream),
                        "topkDecode: flag"));
  Status s = cudaStatus(cudaMemsetAsync(bad, 0, sizeof(int), stream), "topkDecode: flag");
  if (s.ok() && !accumulate) zeroKernel<<<blocksFor(h.count, 256), 256, 0, stream>>>(out, h.count);
  if (s.ok() && h.param > 0) {
    topkDecodeKernel<<<blocksFor(h.param, 256), 256, 0, stream>>>(payload, h.count, h.param, out,
                                                                  accumulate, bad);
    s = lastLaunch("topkDecode");
  }
  int hostBad = 0;
  if (s.ok()) {
    s = cudaStatus(cudaMemcpyAsync(&hostBad, bad, sizeof(int), cudaMemcpyDeviceToHost, stream),
                   "topkDecode: flag");
  }
  const Status freed = cudaStatus(cudaFreeAsync(bad, stream), "topkDecode: flag");
  if (s.ok()) s = cudaStatus(cudaStreamSynchronize(stream), "topkDecode: sync");
  if (s.ok()) s = freed;
  if (s.ok() && hostBad) {
    return invalidArgument("topk payload corrupted: index out of range or out of order");
  }
  return s;
}

}  // namespace plexus::kernels
