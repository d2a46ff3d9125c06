// AVX2 kernels of PowerSGD's three products, bit-identical to simd_scalar.cc: each output is
// still one sequential sum in the order powersgd.h fixes; the vectors only compute eight such
// sums side by side (eight rows of P, eight columns of Q^T, eight outputs of P Q^T).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "compress/codec_math.h"
#include "compress/simd_internal.h"

#if PLEXUS_CODEC_HAVE_AVX2

PLEXUS_CODEC_AVX2_BEGIN

namespace plexus::codec::simd_avx2 {
namespace {

// Columns handled per sweep over M: four accumulators stay in registers with the tile.
constexpr size_t kColumnsPerSweep = 4;

// Transposes the 8 x 8 tile rows[0..7] in place: afterwards rows[k] holds column k.
inline void transpose8(__m256 (&rows)[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3, then rows 4-7
    const __m256 a = t[4 * h], b = t[4 * h + 1], c = t[4 * h + 2], d = t[4 * h + 3];
    s[4 * h] = _mm256_shuffle_ps(a, c, 0x44);
    s[4 * h + 1] = _mm256_shuffle_ps(a, c, 0xEE);
    s[4 * h + 2] = _mm256_shuffle_ps(b, d, 0x44);
    s[4 * h + 3] = _mm256_shuffle_ps(b, d, 0xEE);
  }
  for (int k = 0; k < 4; ++k) {
    rows[k] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x20);
    rows[k + 4] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x31);
  }
}

// p[i0 .. i0 + 8) x [jb, jb + jn) of P = M Q: eight rows' sums side by side over k in order.
void mqBlock(const float* m, const float* q, size_t i0, size_t cols, size_t r, size_t jb, size_t jn,
             float* p) {
  __m256 acc[kColumnsPerSweep];
  for (size_t j = 0; j < kColumnsPerSweep; ++j) acc[j] = _mm256_setzero_ps();
  auto step = [&](__m256 column, size_t k) {
    for (size_t j = 0; j < jn; ++j) {
      acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(column, _mm256_set1_ps(q[k * r + jb + j])));
    }
  };
  const float* row = m + i0 * cols;
  size_t k = 0;
  for (; k + 8 <= cols; k += 8) {
    __m256 tile[8];
    for (size_t i = 0; i < 8; ++i) tile[i] = _mm256_loadu_ps(row + i * cols + k);
    transpose8(tile);
    for (size_t kk = 0; kk < 8; ++kk) step(tile[kk], k + kk);
  }
  for (; k < cols; ++k) {
    step(_mm256_setr_ps(row[k], row[cols + k], row[2 * cols + k], row[3 * cols + k],
                        row[4 * cols + k], row[5 * cols + k], row[6 * cols + k], row[7 * cols + k]),
         k);
  }
  for (size_t j = 0; j < jn; ++j) {
    alignas(32) float sums[8];
    _mm256_store_ps(sums, acc[j]);
    for (size_t i = 0; i < 8; ++i) p[(i0 + i) * r + jb + j] = sums[i];
  }
}

}  // namespace

void powerSgdMq(const float* m, const float* q, size_t rows, size_t cols, size_t r, float* p) {
  size_t i0 = 0;
  for (; i0 + 8 <= rows; i0 += 8) {
    for (size_t jb = 0; jb < r; jb += kColumnsPerSweep) {
      mqBlock(m, q, i0, cols, r, jb, std::min(kColumnsPerSweep, r - jb), p);
    }
  }
  for (size_t i = i0; i < rows; ++i) {  // the last rows one sum at a time
    for (size_t j = 0; j < r; ++j) {
      float s = 0.0f;
      for (size_t k = 0; k < cols; ++k) s = addRn(s, mulRn(m[i * cols + k], q[k * r + j]));
      p[i * r + j] = s;
    }
  }
}

// Q^T accumulates row by row of M (the order of each sum), two rows per load and store of the
// accumulators; Q is its transpose.
void powerSgdMtp(const float* m, const float* p, size_t rows, size_t cols, size_t r, float* q) {
  std::vector<float> qt(r * cols, 0.0f);
  for (size_t jb = 0; jb < r; jb += kColumnsPerSweep) {
    const size_t jn = std::min(kColumnsPerSweep, r - jb);
    for (size_t i0 = 0; i0 < rows; i0 += 2) {
      const size_t in = std::min<size_t>(2, rows - i0);
      __m256 pv[2][kColumnsPerSweep];
      for (size_t i = 0; i < in; ++i) {
        for (size_t j = 0; j < jn; ++j) pv[i][j] = _mm256_set1_ps(p[(i0 + i) * r + jb + j]);
      }
      size_t k = 0;
      for (; k + 8 <= cols; k += 8) {
        __m256 acc[kColumnsPerSweep];
        for (size_t j = 0; j < jn; ++j) acc[j] = _mm256_loadu_ps(&qt[(jb + j) * cols + k]);
        for (size_t i = 0; i < in; ++i) {
          const __m256 mv = _mm256_loadu_ps(m + (i0 + i) * cols + k);
          for (size_t j = 0; j < jn; ++j)
            acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(mv, pv[i][j]));
        }
        for (size_t j = 0; j < jn; ++j) _mm256_storeu_ps(&qt[(jb + j) * cols + k], acc[j]);
      }
      for (; k < cols; ++k) {
        for (size_t i = 0; i < in; ++i) {
          for (size_t j = 0; j < jn; ++j) {
            float& s = qt[(jb + j) * cols + k];
            s = addRn(s, mulRn(m[(i0 + i) * cols + k], p[(i0 + i) * r + jb + j]));
          }
        }
      }
    }
  }
  for (size_t k = 0; k < cols; ++k) {
    for (size_t j = 0; j < r; ++j) q[k * r + j] = qt[j * cols + k];
  }
}

void powerSgdReconstruct(const float* p, const float* q, size_t rows, size_t cols, size_t r,
                         float* out, int mode) {
  std::vector<float> qt(r * cols);
  for (size_t k = 0; k < cols; ++k) {
    for (size_t j = 0; j < r; ++j) qt[j * cols + k] = q[k * r + j];
  }
  for (size_t i = 0; i < rows; ++i) {
    const float* pi = p + i * r;
    float* o = out + i * cols;
    size_t k = 0;
    for (; k + 8 <= cols; k += 8) {
      __m256 s = _mm256_setzero_ps();
      for (size_t j = 0; j < r; ++j) {
        s = _mm256_add_ps(s,
                          _mm256_mul_ps(_mm256_set1_ps(pi[j]), _mm256_loadu_ps(&qt[j * cols + k])));
      }
      if (mode == kAddToOut) s = _mm256_add_ps(_mm256_loadu_ps(o + k), s);
      if (mode == kSubtractFromOut) s = _mm256_sub_ps(_mm256_loadu_ps(o + k), s);
      _mm256_storeu_ps(o + k, s);
    }
    for (; k < cols; ++k) {
      float s = 0.0f;
      for (size_t j = 0; j < r; ++j) s = addRn(s, mulRn(pi[j], q[k * r + j]));
      o[k] = mode == kStoreOut ? s : mode == kAddToOut ? addRn(o[k], s) : subRn(o[k], s);
    }
  }
}

}  // namespace plexus::codec::simd_avx2

PLEXUS_CODEC_AVX2_END

#endif  // PLEXUS_CODEC_HAVE_AVX2
