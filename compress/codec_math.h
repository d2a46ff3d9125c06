// Float arithmetic, rounding and conversions shared bit-for-bit by the CPU reference codecs and the
// CUDA kernels. Every function here is compiled for host and device from this one definition, so
// the two sides execute the same IEEE operations in the same order: no fused multiply-add (device
// code uses the explicit __f*_rn intrinsics; host code is compiled with -ffp-contract=off), no
// reciprocal approximations, and -0 is canonicalised where a reduction order could expose it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define PLEXUS_HD __host__ __device__ __forceinline__
#else
#define PLEXUS_HD inline
#endif

namespace plexus::codec {

/// a + b, rounded to nearest even, never fused with a neighbouring multiply.
PLEXUS_HD float addRn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
/// a - b, rounded to nearest even.
PLEXUS_HD float subRn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
/// a * b, rounded to nearest even, never contracted into an FMA.
PLEXUS_HD float mulRn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
/// a / b, IEEE correctly rounded (not the fast approximate division).
PLEXUS_HD float divRn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

/// The bits of a float and back.
PLEXUS_HD uint32_t floatBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}
PLEXUS_HD float bitsFloat(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

/// Smaller / larger of two non-NaN floats; which of -0 and +0 comes back depends on the order,
/// so reductions canonicalise their result with canonicalZero().
PLEXUS_HD float minOf(float a, float b) { return b < a ? b : a; }
PLEXUS_HD float maxOf(float a, float b) { return b > a ? b : a; }
/// -0 becomes +0 (x + 0 rounds -0 to +0); every other value is unchanged.
PLEXUS_HD float canonicalZero(float x) { return addRn(x, 0.0f); }

/// f32 -> IEEE binary16, round to nearest even. Finite values beyond the half range saturate to
/// +-65504 instead of becoming infinite, so that error feedback keeps a finite residual; infinities
/// stay infinite and NaN stays NaN.
PLEXUS_HD uint16_t floatToHalfSat(float f) {
  const uint32_t x = floatBits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (ax == 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u);  // inf
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7bffu);  // would round to inf
  if (ax < 0x33000000u) return static_cast<uint16_t>(sign);             // below half of 2^-24
  if (ax < 0x38800000u) {
    // Half subnormal: value / 2^-24 rounded to an integer.
    const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - (ax >> 23);
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (ax >> 13) - (112u << 10);
  const uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry correctly bumps the exponent
  return static_cast<uint16_t>(sign | h);
}

/// IEEE binary16 -> f32 (exact).
PLEXUS_HD float halfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) return bitsFloat(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return bitsFloat(sign | ((exp + 112u) << 23) | (mant << 13));
  if (mant == 0) return bitsFloat(sign);
  // Subnormal: mant * 2^-24 is exact in f32.
  return bitsFloat(sign | floatBits(mulRn(static_cast<float>(mant), 5.9604644775390625e-8f)));
}

/// f32 -> bfloat16, round to nearest even; finite overflow saturates like floatToHalfSat.
PLEXUS_HD uint16_t floatToBf16Sat(float f) {
  const uint32_t x = floatBits(f);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  if (ax == 0x7f800000u) return static_cast<uint16_t>(x >> 16);
  const uint32_t r = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
  if ((r & 0x7f80u) == 0x7f80u) return static_cast<uint16_t>(((x >> 16) & 0x8000u) | 0x7f7fu);
  return static_cast<uint16_t>(r);
}

/// bfloat16 -> f32 (exact).
PLEXUS_HD float bf16ToFloat(uint16_t b) { return bitsFloat(static_cast<uint32_t>(b) << 16); }

/// The bucket [start, start + n) to quantize: the input itself, or with error feedback
/// c = g + e written over e (the bucket stays in L1 for the codec's second pass) and returned.
inline const float* foldErrorFeedback(const float* g, float* ef, size_t start, size_t n) {
  if (ef == nullptr) return g + start;
  float* e = ef + start;
  for (size_t i = 0; i < n; ++i) e[i] = addRn(g[start + i], e[i]);
  return e;
}

}  // namespace plexus::codec
