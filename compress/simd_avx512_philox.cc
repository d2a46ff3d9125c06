// The Philox stream of stochastic rounding on 512-bit vectors, which the AVX2 level uses where
// the CPU also has AVX-512F: Philox is multiply-bound, and 512-bit vectors give twice the lanes
// per instruction and twice the registers of AVX2. Same numbers as philoxUniform (philox.h).
#include <immintrin.h>

#include <cstdint>

#include "compress/simd_internal.h"

#if PLEXUS_CODEC_HAVE_AVX2

namespace plexus::codec::simd_avx2 {

bool philoxAvx512Available() {
  // GCC and Clang also check that the OS saves the ZMM and mask registers.
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
}

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
// GCC 12 reports the deliberately undefined operands inside its AVX-512 intrinsics.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// Element first + 32 t + lane takes output t of the call with counter (first / 128) * 32 + lane.
// A vector holds eight calls, one per 64-bit lane in its low half (simd_avx2.cc explains why the
// high halves may carry garbage); lanes L..L+15 run as the even and the odd ones.
void philoxUniformsAvx512(uint64_t seed, uint64_t step, uint64_t first, size_t blocks, float* u) {
  __m512i k0[10], k1[10];
  uint32_t key0 = static_cast<uint32_t>(seed), key1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r, key0 += 0x9E3779B9u, key1 += 0xBB67AE85u) {
    k0[r] = _mm512_set1_epi64(key0);
    k1[r] = _mm512_set1_epi64(key1);
  }
  const __m512i m0 = _mm512_set1_epi64(0xD2511F53), m1 = _mm512_set1_epi64(0xCD9E8D57);
  const __m512i c2 = _mm512_set1_epi64(static_cast<uint32_t>(step));
  const __m512i c3 = _mm512_set1_epi64(static_cast<uint32_t>(step >> 32));
  const __m512i evenOffsets = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
  for (size_t b = 0; b < blocks; ++b, first += 128, u += 128) {
    const uint64_t base = (first >> 7) << 5;
    __m512i c[4][4];  // vector v: lanes 16 (v / 2) + v % 2 + {0, 2, ..., 14}
    for (int v = 0; v < 4; ++v) {
      const __m512i ctr = _mm512_add_epi64(
          _mm512_set1_epi64(static_cast<int64_t>(base + 16 * (v / 2) + v % 2)), evenOffsets);
      c[0][v] = ctr;
      c[1][v] = _mm512_srli_epi64(ctr, 32);
      c[2][v] = c2;
      c[3][v] = c3;
    }
#pragma GCC unroll 10
    for (int round = 0; round < 10; ++round) {
      for (int v = 0; v < 4; ++v) {
        const __m512i p0 = _mm512_mul_epu32(c[0][v], m0);
        const __m512i p1 = _mm512_mul_epu32(c[2][v], m1);
        c[0][v] = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p1, 32), c[1][v]), k0[round]);
        c[1][v] = p1;
        c[2][v] = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p0, 32), c[3][v]), k1[round]);
        c[3][v] = p0;
      }
    }
    const __m512 scale = _mm512_set1_ps(5.9604644775390625e-8f);
    for (int t = 0; t < 4; ++t) {
      for (int h = 0; h < 2; ++h) {
        const __m512i r =
            _mm512_mask_blend_epi32(0xAAAA, c[t][2 * h], _mm512_slli_epi64(c[t][2 * h + 1], 32));
        const __m512 f = _mm512_cvtepi32_ps(_mm512_srli_epi32(r, 8));
        _mm512_storeu_ps(u + 32 * t + 16 * h, _mm512_mul_ps(f, scale));
      }
    }
  }
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

}  // namespace plexus::codec::simd_avx2

#endif  // PLEXUS_CODEC_HAVE_AVX2
