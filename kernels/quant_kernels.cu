// CUDA kernels of the cast, quant and sign codecs, and the device-side decode dispatch. The
// bucketed kernels give each bucket to one warp: lane l owns elements 32g + l of the bucket, finds
// min/max (or the magnitude sum) with xor shuffles, keeps up to kRegs values per lane in
// registers for the second pass, and packs one bit plane per __ballot_sync (quant_layout.h), so
// the input is read once and the payload written once.
#include "compress/philox.h"
#include "compress/quant_layout.h"
#include "kernels/codec_kernels.h"
#include "kernels/codec_kernels_internal.h"
#include "kernels/cuda_status.h"

namespace plexus::kernels {
namespace {

using namespace plexus::codec;  // NOLINT: the shared arithmetic reads better unqualified

constexpr unsigned kFull = 0xffffffffu;
constexpr int kWarpsPerBlock = 8;
constexpr int kRegs = 16;  // buckets up to 512 elements stay in registers between the passes

template <bool kBf16>
__global__ void castEncodeKernel(const float* __restrict__ in, float* __restrict__ ef, size_t n,
                                 uint8_t* __restrict__ out) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    PayloadHeader h;
    h.codec = kBf16 ? CodecId::kBf16 : CodecId::kFp16;
    h.count = n;
    h.bodyBytes = 2 * n;
    writePayloadHeader(h, out);
  }
  uint16_t* body = reinterpret_cast<uint16_t*>(out + kPayloadHeaderBytes);
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    const float c = ef ? addRn(in[i], ef[i]) : in[i];
    const uint16_t v = kBf16 ? floatToBf16Sat(c) : floatToHalfSat(c);
    body[i] = v;
    if (ef) ef[i] = subRn(c, kBf16 ? bf16ToFloat(v) : halfToFloat(v));
  }
}

enum class Mode { kNearest, kStochastic, kSign };

template <Mode kMode>
__global__ void bucketEncodeKernel(const float* __restrict__ in, float* __restrict__ ef, size_t n,
                                   uint32_t bucket, int bits, uint64_t seed, uint64_t step,
                                   uint8_t* __restrict__ out) {
  const uint64_t nb = bucketCount(n, bucket);
  const int lane = threadIdx.x & 31;
  const uint64_t b = (blockIdx.x * uint64_t{blockDim.x} + threadIdx.x) / 32;
  const uint32_t metaFloats = kMode == Mode::kSign ? 1 : 2;
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    PayloadHeader h;
    h.codec = kMode == Mode::kSign ? CodecId::kSign : CodecId::kQuant;
    h.p0 = static_cast<uint8_t>(bits);
    h.p1 = kMode == Mode::kStochastic ? 1 : 0;
    h.count = n;
    h.param = bucket;
    h.bodyBytes = quantBodyBytes(n, bucket, bits, metaFloats);
    writePayloadHeader(h, out);
  }
  if (b >= nb) return;  // whole warps exit together: b is uniform across the warp
  const uint64_t start = b * bucket;
  const uint32_t len = static_cast<uint32_t>(n - start < bucket ? n - start : bucket);
  const uint32_t groups = (len + 31) / 32;
  float* meta = reinterpret_cast<float*>(out + kPayloadHeaderBytes) + b * metaFloats;
  uint32_t* codes = reinterpret_cast<uint32_t*>(out + kPayloadHeaderBytes + nb * metaFloats * 4) +
                    b * bucketCodeWords(bucket, bits);

  // Pass 1: c = g + e, its extremes (quant) or per-lane magnitude sums in group order (sign).
  float regs[kRegs];
  float mn = 0.0f, mx = 0.0f, sum = 0.0f;
  bool first = true;
  for (uint32_t g = 0; g < groups; ++g) {
    const uint32_t j = 32 * g + lane;
    if (j >= len) break;
    const float c = ef ? addRn(in[start + j], ef[start + j]) : in[start + j];
    if (g < kRegs) regs[g] = c;
    if (kMode == Mode::kSign) {
      sum = addRn(sum, bitsFloat(floatBits(c) & 0x7fffffffu));
    } else {
      mn = first ? c : minOf(mn, c);
      mx = first ? c : maxOf(mx, c);
      first = false;
    }
  }
  float lo, scale;
  if (kMode == Mode::kSign) {
    for (int o = 16; o >= 1; o /= 2) sum = addRn(sum, __shfl_xor_sync(kFull, sum, o));
    lo = 0.0f;
    scale = divRn(sum, static_cast<float>(len));
    if (lane == 0) meta[0] = scale;
  } else {
    // Lanes without elements (len < 32) adopt element 0, which lane 0 always holds.
    const float c0 = __shfl_sync(kFull, mn, 0);
    if (first) mn = mx = c0;
    for (int o = 16; o >= 1; o /= 2) {
      mn = minOf(mn, __shfl_xor_sync(kFull, mn, o));
      mx = maxOf(mx, __shfl_xor_sync(kFull, mx, o));
    }
    lo = canonicalZero(mn);
    scale = quantScale(lo, canonicalZero(mx), (1u << bits) - 1u);
    if (lane == 0) {
      meta[0] = lo;
      meta[1] = scale;
    }
  }

  // Pass 2: code, residual, one ballot per bit plane.
  const uint32_t levels = (1u << bits) - 1u;
  uint64_t cachedCounter = ~uint64_t{0};
  Philox4 rnd{};
  for (uint32_t g = 0; g < groups; ++g) {
    const uint32_t j = 32 * g + lane;
    uint32_t q = 0;
    if (j < len) {
      const uint64_t i = start + j;
      const float c = g < kRegs ? regs[g] : (ef ? addRn(in[i], ef[i]) : in[i]);
      float d;
      if (kMode == Mode::kSign) {
        q = signCode(c);
        d = signValue(q, scale);
      } else {
        float u = 0.0f;
        if (kMode == Mode::kStochastic) {
          if (philoxCounterOf(i) != cachedCounter) {
            cachedCounter = philoxCounterOf(i);
            rnd = philoxBlock(seed, step, i);
          }
          u = uniformOf(rnd.v[philoxLaneOf(i)]);
        }
        q = quantCode(c, lo, scale, levels, kMode == Mode::kStochastic, u);
        d = dequantize(q, lo, scale);
      }
      if (ef) ef[i] = subRn(c, d);
    }
    for (int p = 0; p < bits; ++p) {
      const uint32_t plane = __ballot_sync(kFull, (q >> p) & 1u);
      if (lane == p) codes[g * bits + p] = plane;
    }
  }
}

template <bool kBf16>
__global__ void castDecodeKernel(const uint8_t* __restrict__ payload, size_t n,
                                 float* __restrict__ out, bool accumulate) {
  const uint16_t* body = reinterpret_cast<const uint16_t*>(payload + kPayloadHeaderBytes);
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    const float v = kBf16 ? bf16ToFloat(body[i]) : halfToFloat(body[i]);
    out[i] = accumulate ? addRn(out[i], v) : v;
  }
}

template <bool kSign>
__global__ void bucketDecodeKernel(const uint8_t* __restrict__ payload, size_t n, uint32_t bucket,
                                   int bits, float* __restrict__ out, bool accumulate) {
  const uint64_t nb = bucketCount(n, bucket);
  const int lane = threadIdx.x & 31;
  const uint64_t b = (blockIdx.x * uint64_t{blockDim.x} + threadIdx.x) / 32;
  if (b >= nb) return;
  const uint32_t metaFloats = kSign ? 1 : 2;
  const float* meta =
      reinterpret_cast<const float*>(payload + kPayloadHeaderBytes) + b * metaFloats;
  const uint32_t* codes =
      reinterpret_cast<const uint32_t*>(payload + kPayloadHeaderBytes + nb * metaFloats * 4) +
      b * bucketCodeWords(bucket, bits);
  const uint64_t start = b * bucket;
  const uint32_t len = static_cast<uint32_t>(n - start < bucket ? n - start : bucket);
  const float lo = kSign ? 0.0f : meta[0];
  const float scale = kSign ? meta[0] : meta[1];
  for (uint32_t g = 0; 32 * g < len; ++g) {
    const uint32_t j = 32 * g + lane;
    uint32_t q = 0;
    for (int p = 0; p < bits; ++p) q |= ((codes[g * bits + p] >> lane) & 1u) << p;
    if (j < len) {
      const float v = kSign ? signValue(q, scale) : dequantize(q, lo, scale);
      out[start + j] = accumulate ? addRn(out[start + j], v) : v;
    }
  }
}

unsigned warpBlocks(uint64_t buckets) {
  return static_cast<unsigned>((buckets + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

}  // namespace

Status castEncode(CodecId id, const float* in, float* ef, size_t n, uint8_t* out,
                  cudaStream_t stream) {
  if (id != CodecId::kFp16 && id != CodecId::kBf16) {
    return invalidArgument("castEncode: codec must be fp16 or bf16");
  }
  const unsigned blocks = blocksFor(n, 256);
  if (id == CodecId::kBf16) {
    castEncodeKernel<true><<<blocks, 256, 0, stream>>>(in, ef, n, out);
  } else {
    castEncodeKernel<false><<<blocks, 256, 0, stream>>>(in, ef, n, out);
  }
  return lastLaunch("castEncode");
}

Status quantEncode(const float* in, float* ef, size_t n, int bits, uint32_t bucket, bool stochastic,
                   const EncodeOptions& options, uint8_t* out, cudaStream_t stream) {
  if (bits < 1 || bits > 8) return invalidArgument("quantEncode: bits must be 1-8");
  if (bucket == 0) return invalidArgument("quantEncode: bucket size must be at least 1");
  const unsigned blocks = warpBlocks(bucketCount(n, bucket));
  const unsigned threads = 32 * kWarpsPerBlock;
  if (stochastic) {
    bucketEncodeKernel<Mode::kStochastic>
        <<<blocks, threads, 0, stream>>>(in, ef, n, bucket, bits, options.seed, options.step, out);
  } else {
    bucketEncodeKernel<Mode::kNearest>
        <<<blocks, threads, 0, stream>>>(in, ef, n, bucket, bits, 0, 0, out);
  }
  return lastLaunch("quantEncode");
}

Status signEncode(const float* in, float* ef, size_t n, uint32_t bucket, uint8_t* out,
                  cudaStream_t stream) {
  if (bucket == 0) return invalidArgument("signEncode: bucket size must be at least 1");
  bucketEncodeKernel<Mode::kSign>
      <<<warpBlocks(bucketCount(n, bucket)), 32 * kWarpsPerBlock, 0, stream>>>(in, ef, n, bucket, 1,
                                                                               0, 0, out);
  return lastLaunch("signEncode");
}

StatusOr<PayloadHeader> readDeviceHeader(const uint8_t* payload, size_t payloadBytes,
                                         cudaStream_t stream) {
  uint8_t header[kPayloadHeaderBytes] = {};
  const size_t n = payloadBytes < kPayloadHeaderBytes ? payloadBytes : kPayloadHeaderBytes;
  PLEXUS_TRY(cudaStatus(cudaMemcpyAsync(header, payload, n, cudaMemcpyDeviceToHost, stream),
                        "readDeviceHeader: copy"));
  PLEXUS_TRY(cudaStatus(cudaStreamSynchronize(stream), "readDeviceHeader: sync"));
  return parsePayloadHeader(header, n, payloadBytes);
}

Status decode(const PayloadHeader& h, const uint8_t* payload, float* out, size_t outCount,
              bool accumulate, cudaStream_t stream) {
  if (h.count > outCount) {
    return invalidArgument("decode: buffer of " + std::to_string(outCount) + " elements for " +
                           std::to_string(h.count));
  }
  PLEXUS_TRY(checkBodyLayout(h));
  const size_t n = h.count;
  switch (h.codec) {
    case CodecId::kFp16:
      castDecodeKernel<false><<<blocksFor(n, 256), 256, 0, stream>>>(payload, n, out, accumulate);
      break;
    case CodecId::kBf16:
      castDecodeKernel<true><<<blocksFor(n, 256), 256, 0, stream>>>(payload, n, out, accumulate);
      break;
    case CodecId::kQuant:
    case CodecId::kSign: {
      const unsigned blocks = warpBlocks(bucketCount(n, h.param));
      if (h.codec == CodecId::kSign) {
        bucketDecodeKernel<true>
            <<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(payload, n, h.param, 1, out, accumulate);
      } else {
        bucketDecodeKernel<false><<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(
            payload, n, h.param, h.p0, out, accumulate);
      }
      break;
    }
    case CodecId::kTopK:
      return topkDecode(h, payload, out, accumulate, stream);
    case CodecId::kPowerSgd:
      return powerSgdDecode(h, payload, out, accumulate, stream);
    case CodecId::kZstd:
      return unimplemented("decode: zstd payloads decode on the host (compress/zstd_codec.cc)");
  }
  return lastLaunch("decode");
}

}  // namespace plexus::kernels
