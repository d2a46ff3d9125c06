// Bucketed quantization shared by the quant and sign codecs and their CUDA kernels: the body
// layout, the per-bucket scale, the rounding of one element and the bit-sliced packing.
//
// Body layout (after the 32-byte header), for `count` elements in nb = ceil(count / bucket)
// buckets:
//   meta   nb entries: quant {min f32, scale f32}; sign {scale f32}
//   codes  per bucket, ceil(n_b / 32) groups of `bits` u32 words; group g of the bucket holds
//          elements 32g + l (l < 32) bit-sliced: bit l of word p is bit p of element l's code.
// Bit slicing is what a warp produces with one __ballot_sync per bit plane (lane l = element l),
// and what SSE2 movemask produces on the CPU, so both sides pack in registers with no shifting
// across element boundaries. Each bucket starts on a word, so buckets are independent.
#pragma once

#include <cstddef>
#include <cstdint>

#include "compress/codec_math.h"

namespace plexus::codec {

/// Default elements per bucket.
inline constexpr uint32_t kDefaultBucket = 512;

/// Number of buckets for `count` elements.
PLEXUS_HD uint64_t bucketCount(uint64_t count, uint32_t bucket) {
  return (count + bucket - 1) / bucket;
}
/// Code words of a bucket holding n elements.
PLEXUS_HD uint64_t bucketCodeWords(uint64_t n, uint32_t bits) { return (n + 31) / 32 * bits; }
/// Total code words of `count` elements: every bucket is full except perhaps the last.
PLEXUS_HD uint64_t totalCodeWords(uint64_t count, uint32_t bucket, uint32_t bits) {
  const uint64_t nb = bucketCount(count, bucket);
  if (nb == 0) return 0;
  const uint64_t last = count - (nb - 1) * bucket;
  return (nb - 1) * bucketCodeWords(bucket, bits) + bucketCodeWords(last, bits);
}
/// Body bytes: `metaFloats` f32 per bucket, then the code words.
PLEXUS_HD uint64_t quantBodyBytes(uint64_t count, uint32_t bucket, uint32_t bits,
                                  uint32_t metaFloats) {
  return bucketCount(count, bucket) * metaFloats * 4 + totalCodeWords(count, bucket, bits) * 4;
}

/// min + q * scale: the dequantised value of code q (decoder and encoder agree bit-for-bit).
PLEXUS_HD float dequantize(uint32_t q, float mn, float scale) {
  return addRn(mn, mulRn(static_cast<float>(q), scale));
}

/// The grid step of a bucket whose canonicalised extremes are mn <= mx: (mx - mn) / levels, or
/// 0 for a constant bucket (which then decodes exactly to mn).
PLEXUS_HD float quantScale(float mn, float mx, uint32_t levels) {
  const float scale = divRn(subRn(mx, mn), static_cast<float>(levels));
  return scale > 0.0f ? scale : 0.0f;
}

/// The code of c in a bucket (mn, scale) with `levels` = 2^bits - 1. Round to nearest (ties up)
/// when !stochastic; otherwise floor(x) + [u < frac(x)], which is unbiased: E[q] = x up to 2^-24.
/// x = (c - mn) / scale is split exactly into floor and fraction, so no rounding of x + u can
/// bias the result.
PLEXUS_HD uint32_t quantCode(float c, float mn, float scale, uint32_t levels, bool stochastic,
                             float u) {
  if (!(scale > 0.0f)) return 0;
  const float x = divRn(subRn(c, mn), scale);
  if (!(x > 0.0f)) return 0;  // also NaN
  if (x >= static_cast<float>(levels)) return levels;
  uint32_t q = static_cast<uint32_t>(x);
  const float frac = subRn(x, static_cast<float>(q));  // exact: x and q share the exponent range
  if (stochastic ? (u < frac) : (frac >= 0.5f)) ++q;
  return q;
}

/// Sign code: 1 for c >= 0 (and -0), 0 otherwise; dequantises to +scale / -scale.
PLEXUS_HD uint32_t signCode(float c) { return c >= 0.0f ? 1u : 0u; }
PLEXUS_HD float signValue(uint32_t bit, float scale) { return bit ? scale : -scale; }

/// The sum of 32 per-lane partial sums in the order of a warp's xor butterfly (offsets 16, 8,
/// 4, 2, 1). Lane l of the butterfly computes s[l] + s[l ^ o]; addition commutes, so every lane
/// ends with the same bits and the CPU reproduces them by running the same tree on an array.
inline float butterflySum(float* s) {
  for (int o = 16; o >= 1; o /= 2) {
    float next[32];
    for (int l = 0; l < 32; ++l) next[l] = addRn(s[l], s[l ^ o]);
    for (int l = 0; l < 32; ++l) s[l] = next[l];
  }
  return s[0];
}

}  // namespace plexus::codec
