// AVX2 kernels of the bucketed codecs (quant and sign), bit-identical to simd_scalar.cc.
//
// A bucket takes two passes while it sits in L1: the first folds error feedback and finds the
// extremes (quant) or the per-lane magnitude sums (sign), the second computes codes and
// residuals eight elements at a time and bit-slices 32 codes at once: the codes are narrowed
// to 32 bytes in element order, and bit plane p is one movemask after shifting bit p into each
// byte's top bit (quant_layout.h). Every vector operation is the IEEE operation the scalar code
// performs on each element, in the same order, so only the grouping differs. A group of fewer
// than 32 elements (a bucket's tail) goes through the scalar reference.
#include <immintrin.h>

#include <cstring>

#include "compress/bit_pack.h"
#include "compress/codec_math.h"
#include "compress/codecs.h"
#include "compress/quant_layout.h"
#include "compress/simd_internal.h"

#if PLEXUS_CODEC_HAVE_AVX2

PLEXUS_CODEC_AVX2_BEGIN

namespace plexus::codec::simd_avx2 {
namespace {

// Narrows 32 codes (< 256, four vectors in element order) to 32 bytes in element order.
inline __m256i narrowCodes(const __m256i q[4]) {
  // The packs work within 128-bit halves; the dword permutation restores element order.
  const __m256i a = _mm256_packs_epi32(q[0], q[1]);
  const __m256i b = _mm256_packs_epi32(q[2], q[3]);
  return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b),
                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Writes bit planes 0..kBits-1 of 32 byte codes (each < 2^kBits) as kBits words.
template <int kBits>
inline void packPlanes(__m256i bytes, uint8_t* codes) {
  // Shifting 16-bit lanes left by 7 - p brings bit p of each byte to its top; what crosses into
  // the upper byte lands below its top bit.
  for (int p = 0; p < kBits; ++p) {
    const auto word = static_cast<uint32_t>(
        _mm256_movemask_epi8(_mm256_sll_epi16(bytes, _mm_cvtsi32_si128(7 - p))));
    std::memcpy(codes + 4 * p, &word, 4);  // unaligned store
  }
}

// The inverse: 32 byte codes from `bits` words.
inline __m256i unpackPlanes(const uint8_t* codes, int bits) {
  // Byte l of a broadcast word's shuffle holds the word's byte l / 8; the AND keeps bit l % 8.
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i select = _mm256_set1_epi64x(0x8040201008040201ll);
  __m256i acc = _mm256_setzero_si256();
  for (int p = bits - 1; p >= 0; --p) {
    uint32_t w;
    std::memcpy(&w, codes + 4 * p, 4);
    const __m256i x = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(w)), spread);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(x, select), select);  // -1 or 0
    acc = _mm256_sub_epi8(_mm256_add_epi8(acc, acc), set);  // acc = 2 acc + bit
  }
  return acc;
}

// Byte codes 8k..8k+7 of `bytes` as f32.
inline __m256 codesAsFloat(__m256i bytes, int k) {
  const __m128i half = k < 2 ? _mm256_castsi256_si128(bytes) : _mm256_extracti128_si256(bytes, 1);
  const __m128i part = (k & 1) ? _mm_srli_si128(half, 8) : half;
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(part));
}

template <bool kAccumulate>
inline void storeOrAdd8(float* out, __m256 v) {
  if (kAccumulate) v = _mm256_add_ps(_mm256_loadu_ps(out), v);
  _mm256_storeu_ps(out, v);
}

// c = g + ef over the bucket (written to ef) and its extremes, as the scalar fold-then-scan
// gives them: min/max of non-NaN floats do not depend on the order, every lane starts from c[0]
// (so a NaN there stays in every lane, as it does in the scan) and -0 is canonicalised later.
const float* foldMinMax(const float* g, float* ef, size_t n, float* mnOut, float* mxOut) {
  const float* c = ef != nullptr ? ef : g;
  const float c0 = ef != nullptr ? addRn(g[0], ef[0]) : g[0];
  __m256 mn = _mm256_set1_ps(c0), mx = mn;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_loadu_ps(g + i);
    if (ef != nullptr) {
      x = _mm256_add_ps(x, _mm256_loadu_ps(ef + i));
      _mm256_storeu_ps(ef + i, x);
    }
    mn = _mm256_min_ps(x, mn);  // x < mn ? x : mn, as minOf(mn, x)
    mx = _mm256_max_ps(x, mx);
  }
  alignas(32) float lo[8], hi[8];
  _mm256_store_ps(lo, mn);
  _mm256_store_ps(hi, mx);
  float a = c0, b = c0;
  for (int l = 0; l < 8; ++l) {
    a = minOf(a, lo[l]);
    b = maxOf(b, hi[l]);
  }
  for (; i < n; ++i) {
    const float x = ef != nullptr ? (ef[i] = addRn(g[i], ef[i])) : g[i];
    a = minOf(a, x);
    b = maxOf(b, x);
  }
  *mnOut = a;
  *mxOut = b;
  return c;
}

// Codes of c[0, 8) (quantCode, vectorised) and, when e != nullptr, e = c - deq.
template <bool kStochastic>
inline __m256i quantCodes8(const float* c, const float* u, float* e, __m256 mn, __m256 scale,
                           __m256 levels, __m256i valid) {
  const __m256 cv = _mm256_loadu_ps(c);
  const __m256 x = _mm256_div_ps(_mm256_sub_ps(cv, mn), scale);
  __m256i q = _mm256_cvttps_epi32(x);  // the truncation, wherever 0 < x < levels
  const __m256 frac = _mm256_sub_ps(x, _mm256_cvtepi32_ps(q));
  const __m256 up = kStochastic ? _mm256_cmp_ps(_mm256_loadu_ps(u), frac, _CMP_LT_OQ)
                                : _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  q = _mm256_sub_epi32(q, _mm256_castps_si256(up));
  const __m256 top = _mm256_cmp_ps(x, levels, _CMP_GE_OQ);
  q = _mm256_blendv_epi8(q, _mm256_cvtps_epi32(levels), _mm256_castps_si256(top));
  const __m256 positive = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);  // false for NaN
  q = _mm256_and_si256(q, _mm256_and_si256(_mm256_castps_si256(positive), valid));
  if (e != nullptr) {
    const __m256 deq = _mm256_add_ps(mn, _mm256_mul_ps(_mm256_cvtepi32_ps(q), scale));
    _mm256_storeu_ps(e, _mm256_sub_ps(cv, deq));
  }
  return q;
}

// The codes and residuals of `groups` whole groups of 32. While they run on the bucket in L1,
// the next bucket (`next`, `nextEf`, `nextBytes` long) is prefetched: the first pass over it
// would otherwise wait on memory with nothing else to do.
template <int kBits, bool kStochastic>
void quantGroups(const float* c, float* ef, size_t groups, const float* u, float mn, float scale,
                 uint8_t* codes, const char* next, const char* nextEf, size_t nextBytes) {
  constexpr uint32_t kLevels = (1u << kBits) - 1u;
  const __m256 vmn = _mm256_set1_ps(mn), vscale = _mm256_set1_ps(scale);
  const __m256 vlevels = _mm256_set1_ps(static_cast<float>(kLevels));
  // quantCode gives 0 for a bucket without a positive scale.
  const __m256i valid = _mm256_set1_epi32(scale > 0.0f ? -1 : 0);
  const size_t stride = groups == 0 ? 0 : (nextBytes / groups + 63) & ~size_t{63};
  for (size_t g = 0; g < groups; ++g, codes += 4 * kBits) {
    for (size_t line = g * stride; line < (g + 1) * stride && line < nextBytes; line += 64) {
      _mm_prefetch(next + line, _MM_HINT_T0);
      if (nextEf != nullptr) _mm_prefetch(nextEf + line, _MM_HINT_T0);
    }
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      const size_t i = 32 * g + 8 * k;
      q[k] =
          quantCodes8<kStochastic>(c + i, kStochastic ? u + i : nullptr,
                                   ef != nullptr ? ef + i : nullptr, vmn, vscale, vlevels, valid);
    }
    packPlanes<kBits>(narrowCodes(q), codes);
  }
}

using QuantGroupsFn = void (*)(const float*, float*, size_t, const float*, float, float, uint8_t*,
                               const char*, const char*, size_t);

template <int kBits>
QuantGroupsFn quantGroupsFor(bool stochastic) {
  return stochastic ? quantGroups<kBits, true> : quantGroups<kBits, false>;
}

QuantGroupsFn quantGroupsFor(int bits, bool stochastic) {
  constexpr QuantGroupsFn (*kByBits[8])(bool) = {
      quantGroupsFor<1>, quantGroupsFor<2>, quantGroupsFor<3>, quantGroupsFor<4>,
      quantGroupsFor<5>, quantGroupsFor<6>, quantGroupsFor<7>, quantGroupsFor<8>};
  return kByBits[bits - 1](stochastic);
}

}  // namespace

void quantEncodeBucket(const float* g, float* ef, size_t n, int bits, const float* u, float* mnOut,
                       float* scaleOut, uint8_t* codes) {
  const uint32_t levels = (1u << bits) - 1u;
  float mn, mx;
  const float* c = foldMinMax(g, ef, n, &mn, &mx);
  mn = canonicalZero(mn);
  mx = canonicalZero(mx);
  const float scale = quantScale(mn, mx, levels);
  *mnOut = mn;
  *scaleOut = scale;
  const size_t full = n / 32;
  // The next bucket of a tensor follows this one; prefetching past the end is harmless.
  quantGroupsFor(bits, u != nullptr)(
      c, ef, full, u, mn, scale, codes, reinterpret_cast<const char*>(g + n),
      reinterpret_cast<const char*>(ef != nullptr ? ef + n : nullptr), 4 * n);
  if (n % 32 == 0) return;
  const size_t i0 = 32 * full, m = n - i0;
  uint8_t q[32];
  for (size_t l = 0; l < m; ++l) {
    const size_t i = i0 + l;
    const uint32_t code = quantCode(c[i], mn, scale, levels, u != nullptr, u ? u[i] : 0.0f);
    q[l] = static_cast<uint8_t>(code);
    if (ef != nullptr) ef[i] = subRn(c[i], dequantize(code, mn, scale));
  }
  uint32_t words[8];
  packGroup(q, m, bits, words);
  std::memcpy(codes + 4 * static_cast<size_t>(bits) * full, words, 4 * static_cast<size_t>(bits));
}

namespace {

template <bool kAccumulate>
void quantDecodeGroups(const uint8_t* codes, size_t n, int bits, float mn, float scale,
                       float* out) {
  const __m256 vmn = _mm256_set1_ps(mn), vscale = _mm256_set1_ps(scale);
  size_t i = 0;
  for (; i + 32 <= n; i += 32, codes += 4 * static_cast<size_t>(bits)) {
    const __m256i bytes = unpackPlanes(codes, bits);
    for (int k = 0; k < 4; ++k) {
      const __m256 v = _mm256_add_ps(vmn, _mm256_mul_ps(codesAsFloat(bytes, k), vscale));
      storeOrAdd8<kAccumulate>(out + i + 8 * k, v);
    }
  }
  if (i == n) return;
  uint32_t words[8];
  uint8_t q[32];
  std::memcpy(words, codes, 4 * static_cast<size_t>(bits));
  unpackGroup(words, n - i, bits, q);
  for (size_t l = 0; i + l < n; ++l)
    storeOrAdd(out + i + l, dequantize(q[l], mn, scale), kAccumulate);
}

// The magnitude sums of lanes l = i % 32 in index order, then the warp's butterfly
// (butterflySum): level o adds lane l + o into lane l for l < o, the only lanes the next level
// reads, with the same operand order.
float signMagnitudeSum(const float* g, float* ef, size_t n) {
  const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      __m256 x = _mm256_loadu_ps(g + i + 8 * k);
      if (ef != nullptr) {
        x = _mm256_add_ps(x, _mm256_loadu_ps(ef + i + 8 * k));
        _mm256_storeu_ps(ef + i + 8 * k, x);
      }
      acc[k] = _mm256_add_ps(acc[k], _mm256_and_ps(x, absMask));
    }
  }
  alignas(32) float lanes[32];
  for (int k = 0; k < 4; ++k) _mm256_store_ps(lanes + 8 * k, acc[k]);
  for (; i < n; ++i) {
    const float c = ef != nullptr ? (ef[i] = addRn(g[i], ef[i])) : g[i];
    lanes[i & 31] = addRn(lanes[i & 31], bitsFloat(floatBits(c) & 0x7fffffffu));
  }
  const __m256 s16a = _mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 16));
  const __m256 s16b = _mm256_add_ps(_mm256_load_ps(lanes + 8), _mm256_load_ps(lanes + 24));
  const __m256 s8 = _mm256_add_ps(s16a, s16b);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

template <bool kAccumulate>
void signDecodeGroups(const uint8_t* codes, size_t n, float scale, float* out) {
  const __m256 pos = _mm256_set1_ps(scale), neg = _mm256_set1_ps(-scale);
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  size_t i = 0;
  for (; i + 32 <= n; i += 32, codes += 4) {
    uint32_t word;
    std::memcpy(&word, codes, 4);
    for (int k = 0; k < 4; ++k) {
      const __m256i b = _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(word >> (8 * k))), bit);
      const __m256 set = _mm256_castsi256_ps(_mm256_cmpeq_epi32(b, bit));
      storeOrAdd8<kAccumulate>(out + i + 8 * k, _mm256_blendv_ps(neg, pos, set));
    }
  }
  if (i == n) return;
  uint32_t word;
  std::memcpy(&word, codes, 4);
  for (size_t l = 0; i + l < n; ++l) {
    storeOrAdd(out + i + l, signValue((word >> l) & 1u, scale), kAccumulate);
  }
}

}  // namespace

void quantDecodeBucket(const uint8_t* codes, size_t n, int bits, float mn, float scale, float* out,
                       bool accumulate) {
  if (accumulate) {
    quantDecodeGroups<true>(codes, n, bits, mn, scale, out);
  } else {
    quantDecodeGroups<false>(codes, n, bits, mn, scale, out);
  }
}

void signEncodeBucket(const float* g, float* ef, size_t n, float* scaleOut, uint8_t* codes) {
  const float scale = divRn(signMagnitudeSum(g, ef, n), static_cast<float>(n));
  *scaleOut = scale;
  const float* c = ef != nullptr ? ef : g;
  const __m256 pos = _mm256_set1_ps(scale), neg = _mm256_set1_ps(-scale);
  size_t i = 0;
  for (; i + 32 <= n; i += 32, codes += 4) {
    uint32_t word = 0;
    for (int k = 0; k < 4; ++k) {
      const __m256 x = _mm256_loadu_ps(c + i + 8 * k);
      const __m256 set = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);  // signCode
      word |= static_cast<uint32_t>(_mm256_movemask_ps(set)) << (8 * k);
      if (ef != nullptr) {
        _mm256_storeu_ps(ef + i + 8 * k, _mm256_sub_ps(x, _mm256_blendv_ps(neg, pos, set)));
      }
    }
    std::memcpy(codes, &word, 4);
  }
  if (i == n) return;
  uint32_t word = 0;
  for (size_t l = 0; i + l < n; ++l) {
    const uint32_t bit = signCode(c[i + l]);
    word |= bit << l;
    if (ef != nullptr) ef[i + l] = subRn(c[i + l], signValue(bit, scale));
  }
  std::memcpy(codes, &word, 4);
}

void signDecodeBucket(const uint8_t* codes, size_t n, float scale, float* out, bool accumulate) {
  if (accumulate) {
    signDecodeGroups<true>(codes, n, scale, out);
  } else {
    signDecodeGroups<false>(codes, n, scale, out);
  }
}

}  // namespace plexus::codec::simd_avx2

PLEXUS_CODEC_AVX2_END

#endif  // PLEXUS_CODEC_HAVE_AVX2
