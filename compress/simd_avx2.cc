// AVX2 + F16C kernels of the element-wise codecs (fp16 and bf16 casts, top-k candidate scan),
// the Philox stream of stochastic rounding, and the table of the AVX2 level. Bit-identical to
// simd_scalar.cc: see each kernel for how the vector form reproduces the scalar one.
#include <immintrin.h>

#include <array>
#include <cstring>

#include "compress/codec_math.h"
#include "compress/codecs.h"
#include "compress/simd_internal.h"

#if PLEXUS_CODEC_HAVE_AVX2

PLEXUS_CODEC_AVX2_BEGIN

namespace plexus::codec::simd_avx2 {
namespace {

// vcvtps2ph's rounding immediates: nearest even (or toward zero), whatever MXCSR says, without
// raising exceptions.
constexpr int kHalfNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
constexpr int kHalfTowardZero = _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC;

// floatToHalfSat of 8 floats. F16C rounds to nearest even exactly like the scalar code,
// subnormals included; the scalar code differs where a finite value rounds to infinity (it
// saturates to +-65504, which is what rounding toward zero gives there, while infinities stay
// infinite either way) and in giving every NaN the one quiet pattern sign | 0x7e00.
inline __m128i halvesOf(__m256 c) {
  __m128i h = _mm256_cvtps_ph(c, kHalfNearest);
  const __m128i magnitude = _mm_and_si128(h, _mm_set1_epi16(0x7fff));
  const __m128i inf = _mm_set1_epi16(0x7c00);
  h = _mm_blendv_epi8(h, _mm256_cvtps_ph(c, kHalfTowardZero), _mm_cmpeq_epi16(magnitude, inf));
  const __m128i quiet = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16(static_cast<int16_t>(0x8000))),
                                     _mm_set1_epi16(0x7e00));
  return _mm_blendv_epi8(h, quiet, _mm_cmpgt_epi16(magnitude, inf));
}

// halfToFloat of 8 halves. F16C converts exactly; the scalar code keeps a signalling NaN's
// payload where F16C may set the quiet bit, so exponent-31 lanes are rebuilt from the bits.
inline __m256 floatsOfHalves(__m128i h16) {
  const __m256 f = _mm256_cvtph_ps(h16);
  const __m256i h = _mm256_cvtepu16_epi32(h16);
  const __m256i expMask = _mm256_set1_epi32(0x7c00);
  const __m256i special = _mm256_cmpeq_epi32(_mm256_and_si256(h, expMask), expMask);
  const __m256i bits = _mm256_or_si256(
      _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x8000)), 16),
                      _mm256_set1_epi32(0x7f800000)),
      _mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x3ff)), 13));
  return _mm256_blendv_ps(f, _mm256_castsi256_ps(bits), _mm256_castsi256_ps(special));
}

// floatToBf16Sat of 8 floats as 32-bit lanes, the scalar integer steps on every lane.
inline __m256i bf16Of(__m256 c) {
  const __m256i x = _mm256_castps_si256(c);
  const __m256i ax = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
  const __m256i top = _mm256_srli_epi32(x, 16);
  const __m256i one = _mm256_set1_epi32(1);
  __m256i r =
      _mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), _mm256_and_si256(top, one));
  r = _mm256_srli_epi32(r, 16);
  const __m256i expMask = _mm256_set1_epi32(0x7f80);
  const __m256i overflow = _mm256_cmpeq_epi32(_mm256_and_si256(r, expMask), expMask);
  const __m256i saturated =
      _mm256_or_si256(_mm256_and_si256(top, _mm256_set1_epi32(0x8000)), _mm256_set1_epi32(0x7f7f));
  r = _mm256_blendv_epi8(r, saturated, overflow);
  const __m256i inf = _mm256_cmpeq_epi32(ax, _mm256_set1_epi32(0x7f800000));
  r = _mm256_blendv_epi8(r, top, inf);
  const __m256i nan = _mm256_cmpgt_epi32(ax, _mm256_set1_epi32(0x7f800000));
  return _mm256_blendv_epi8(r, _mm256_or_si256(top, _mm256_set1_epi32(0x40)), nan);
}

// 8 lanes of 16-bit values (in 32-bit lanes, each <= 0xffff) as 8 packed u16.
inline __m128i narrow16(__m256i v) {
  return _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}

template <bool kHalf>
void castEncodeWith(const float* g, float* ef, uint8_t* bytes, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 c = _mm256_loadu_ps(g + i);
    if (ef != nullptr) c = _mm256_add_ps(c, _mm256_loadu_ps(ef + i));
    const __m128i h = kHalf ? halvesOf(c) : narrow16(bf16Of(c));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(bytes + 2 * i), h);
    if (ef != nullptr) {
      // The halves made here carry no signalling NaN, so F16C alone is halfToFloat.
      const __m256 deq = kHalf
                             ? _mm256_cvtph_ps(h)
                             : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
      _mm256_storeu_ps(ef + i, _mm256_sub_ps(c, deq));
    }
  }
  for (; i < n; ++i) {
    const float c = ef != nullptr ? addRn(g[i], ef[i]) : g[i];
    const uint16_t v = kHalf ? floatToHalfSat(c) : floatToBf16Sat(c);
    std::memcpy(bytes + 2 * i, &v, 2);
    if (ef != nullptr) ef[i] = subRn(c, kHalf ? halfToFloat(v) : bf16ToFloat(v));
  }
}

template <bool kHalf, bool kAccumulate>
void castDecodeWith(const uint8_t* bytes, float* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + 2 * i));
    __m256 v = kHalf ? floatsOfHalves(h)
                     : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    if (kAccumulate) v = _mm256_add_ps(_mm256_loadu_ps(out + i), v);
    _mm256_storeu_ps(out + i, v);
  }
  for (; i < n; ++i) {
    uint16_t v;
    std::memcpy(&v, bytes + 2 * i, 2);
    storeOrAdd(out + i, kHalf ? halfToFloat(v) : bf16ToFloat(v), kAccumulate);
  }
}

void castEncode(bool half, const float* g, float* ef, uint8_t* bytes, size_t n) {
  if (half) {
    castEncodeWith<true>(g, ef, bytes, n);
  } else {
    castEncodeWith<false>(g, ef, bytes, n);
  }
}

void castDecode(bool half, const uint8_t* bytes, float* out, size_t n, bool accumulate) {
  if (half) {
    accumulate ? castDecodeWith<true, true>(bytes, out, n)
               : castDecodeWith<true, false>(bytes, out, n);
  } else {
    accumulate ? castDecodeWith<false, true>(bytes, out, n)
               : castDecodeWith<false, false>(bytes, out, n);
  }
}

// The positions of the set bits of each 8-bit mask, one per byte, lowest first.
constexpr auto kSetBitPositions = [] {
  std::array<uint64_t, 256> table{};
  for (unsigned mask = 0; mask < 256; ++mask) {
    int n = 0;
    for (unsigned bit = 0; bit < 8; ++bit) {
      if (mask & (1u << bit)) table[mask] |= uint64_t{bit} << (8 * n++);
    }
  }
  return table;
}();

// Writes the indices of a hit mask branch-free: all eight slots are stored and the count
// advances by the hits, so `out` needs seven slots of slack (SimdKernels::collectAtLeast).
size_t collectAtLeast(const float* g, float* ef, size_t begin, size_t end, uint32_t lo,
                      uint32_t* out) {
  // Keys are below 2^31, so a signed compare with lo - 1 is key >= lo; lo > 2^31 - 1 matches none.
  const __m256i below = _mm256_set1_epi32(static_cast<int>(lo - 1));
  const __m256i absMask = _mm256_set1_epi32(0x7fffffff);
  const int none = lo > 0x7fffffffu ? 0 : 0xff;
  size_t m = 0, i = begin;
  for (; i + 8 <= end; i += 8) {
    __m256 c = _mm256_loadu_ps(g + i);
    if (ef != nullptr) {
      c = _mm256_add_ps(c, _mm256_loadu_ps(ef + i));
      _mm256_storeu_ps(ef + i, c);
    }
    const __m256i key = _mm256_and_si256(_mm256_castps_si256(c), absMask);
    const auto hits = static_cast<unsigned>(
        _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(key, below))) & none);
    const __m256i positions =
        _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(kSetBitPositions[hits])));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + m),
                        _mm256_add_epi32(positions, _mm256_set1_epi32(static_cast<int>(i))));
    m += static_cast<size_t>(__builtin_popcount(hits));
  }
  for (; i < end; ++i) {
    const float c = ef != nullptr ? (ef[i] = addRn(g[i], ef[i])) : g[i];
    if ((floatBits(c) & 0x7fffffffu) >= lo) out[m++] = static_cast<uint32_t>(i);
  }
  return m;
}

// The round keys k + r * Weyl, r < 10, broadcast to every 64-bit lane.
struct PhiloxKeys {
  __m256i k0[10], k1[10];
  PhiloxKeys(uint32_t key0, uint32_t key1) {
    for (int r = 0; r < 10; ++r, key0 += 0x9E3779B9u, key1 += 0xBB67AE85u) {
      k0[r] = _mm256_set1_epi64x(key0);
      k1[r] = _mm256_set1_epi64x(key1);
    }
  }
};

template <int N>
inline void philoxRounds(__m256i (&c)[4][N], const PhiloxKeys& keys) {
  const __m256i m0 = _mm256_set1_epi64x(0xD2511F53), m1 = _mm256_set1_epi64x(0xCD9E8D57);
#pragma GCC unroll 10
  for (int round = 0; round < 10; ++round) {
    for (int v = 0; v < N; ++v) {
      const __m256i p0 = _mm256_mul_epu32(c[0][v], m0);
      const __m256i p1 = _mm256_mul_epu32(c[2][v], m1);
      c[0][v] =
          _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), c[1][v]), keys.k0[round]);
      c[1][v] = p1;
      c[2][v] =
          _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), c[3][v]), keys.k1[round]);
      c[3][v] = p0;
    }
  }
}

// uniformOf on 8 outputs.
inline __m256 uniforms8(__m256i r) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(r, 8)),
                       _mm256_set1_ps(5.9604644775390625e-8f));
}

}  // namespace

// Element first + 32 t + lane takes output t of the call with counter (first / 128) * 32 + lane
// (philox.h). Lanes L..L+7 run as two vectors, the even lanes and the odd ones, so interleaving
// their outputs gives the uniforms of eight consecutive elements; four vectors in flight is what
// sixteen registers hold. Where the CPU has AVX-512F the 512-bit version runs instead (twice the
// lanes and registers, the same numbers).
void philoxUniformsAvx2(uint64_t seed, uint64_t step, uint64_t first, size_t blocks, float* u) {
  const PhiloxKeys keys(static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const __m256i c2 = _mm256_set1_epi64x(static_cast<uint32_t>(step));
  const __m256i c3 = _mm256_set1_epi64x(static_cast<uint32_t>(step >> 32));
  for (size_t b = 0; b < blocks; ++b, first += 128, u += 128) {
    const uint64_t base = (first >> 7) << 5;
    for (int lane0 = 0; lane0 < 32; lane0 += 16) {
      // Vector v holds lanes lane0 + 8 (v / 2) + v % 2 + {0, 2, 4, 6}.
      __m256i c[4][4];
      for (int v = 0; v < 4; ++v) {
        const auto l =
            static_cast<int64_t>(base + static_cast<uint64_t>(lane0 + 8 * (v / 2) + v % 2));
        const __m256i ctr = _mm256_setr_epi64x(l, l + 2, l + 4, l + 6);
        c[0][v] = ctr;
        c[1][v] = _mm256_srli_epi64(ctr, 32);
        c[2][v] = c2;
        c[3][v] = c3;
      }
      philoxRounds(c, keys);
      for (int t = 0; t < 4; ++t) {
        for (int h = 0; h < 2; ++h) {
          const __m256i r =
              _mm256_blend_epi32(c[t][2 * h], _mm256_slli_epi64(c[t][2 * h + 1], 32), 0xAA);
          _mm256_storeu_ps(u + 32 * t + lane0 + 8 * h, uniforms8(r));
        }
      }
    }
  }
}

void philoxUniforms(uint64_t seed, uint64_t step, uint64_t first, size_t blocks, float* u) {
  static const bool avx512 = philoxAvx512Available();
  (avx512 ? philoxUniformsAvx512 : philoxUniformsAvx2)(seed, step, first, blocks, u);
}

const SimdKernels* kernels() {
  static const SimdKernels table = {castEncode,        castDecode,         quantEncodeBucket,
                                    quantDecodeBucket, signEncodeBucket,   signDecodeBucket,
                                    philoxUniforms,    collectAtLeast,     powerSgdMq,
                                    powerSgdMtp,       powerSgdReconstruct};
  return &table;
}

}  // namespace plexus::codec::simd_avx2

PLEXUS_CODEC_AVX2_END

#else  // not x86-64: no AVX2 level

namespace plexus::codec::simd_avx2 {
void philoxUniforms(uint64_t seed, uint64_t step, uint64_t first, size_t blocks, float* u) {
  static const bool avx512 = philoxAvx512Available();
  (avx512 ? philoxUniformsAvx512 : philoxUniformsAvx2)(seed, step, first, blocks, u);
}

const SimdKernels* kernels() { return nullptr; }
}  // namespace plexus::codec::simd_avx2

#endif  // PLEXUS_CODEC_HAVE_AVX2
