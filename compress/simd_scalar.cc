// The portable kernels: the reference arithmetic of the CPU codecs, element by element in the
// order the CUDA kernels mirror (quant_layout.h, philox.h, powersgd.h). Faster levels must
// reproduce these bytes exactly; tests/compress/codec_simd_test.cc checks that they do.
#include <cstring>

#include "compress/bit_pack.h"
#include "compress/codec_math.h"
#include "compress/codecs.h"
#include "compress/philox.h"
#include "compress/quant_layout.h"
#include "compress/simd.h"
#include "compress/simd_internal.h"

namespace plexus::codec::simd_scalar {
namespace {

// Templated on the conversion so that each variant inlines into a tight loop.
template <typename To, typename From>
void castEncodeWith(const float* g, float* ef, uint8_t* bytes, size_t n, To to, From from) {
  constexpr size_t kChunk = 256;
  uint16_t tmp[kChunk];
  for (size_t base = 0; base < n; base += kChunk) {
    const size_t m = n - base < kChunk ? n - base : kChunk;
    if (ef == nullptr) {
      for (size_t i = 0; i < m; ++i) tmp[i] = to(g[base + i]);
    } else {
      for (size_t i = 0; i < m; ++i) {
        const float c = addRn(g[base + i], ef[base + i]);
        tmp[i] = to(c);
        ef[base + i] = subRn(c, from(tmp[i]));
      }
    }
    std::memcpy(bytes + 2 * base, tmp, 2 * m);  // the body may be unaligned
  }
}

void castEncode(bool half, const float* g, float* ef, uint8_t* bytes, size_t n) {
  if (half) {
    castEncodeWith(g, ef, bytes, n, floatToHalfSat, halfToFloat);
  } else {
    castEncodeWith(g, ef, bytes, n, floatToBf16Sat, bf16ToFloat);
  }
}

void castDecode(bool half, const uint8_t* bytes, float* out, size_t n, bool accumulate) {
  for (size_t i = 0; i < n; ++i) {
    uint16_t v;
    std::memcpy(&v, bytes + 2 * i, 2);
    storeOrAdd(&out[i], half ? halfToFloat(v) : bf16ToFloat(v), accumulate);
  }
}

void quantEncodeBucket(const float* g, float* ef, size_t n, int bits, const float* u, float* mnOut,
                       float* scaleOut, uint8_t* codes) {
  const uint32_t levels = (1u << bits) - 1u;
  const float* c = foldErrorFeedback(g, ef, 0, n);
  float mn = c[0], mx = c[0];
  for (size_t i = 1; i < n; ++i) {
    mn = minOf(mn, c[i]);
    mx = maxOf(mx, c[i]);
  }
  mn = canonicalZero(mn);
  mx = canonicalZero(mx);
  const float scale = quantScale(mn, mx, levels);
  *mnOut = mn;
  *scaleOut = scale;
  const bool stochastic = u != nullptr;
  uint8_t q[32];
  uint32_t words[8];
  for (size_t g0 = 0; g0 < n; g0 += 32) {
    const size_t m = n - g0 < 32 ? n - g0 : 32;
    for (size_t l = 0; l < m; ++l) {
      const size_t i = g0 + l;
      const uint32_t code = quantCode(c[i], mn, scale, levels, stochastic, stochastic ? u[i] : 0);
      q[l] = static_cast<uint8_t>(code);
      if (ef != nullptr) ef[i] = subRn(c[i], dequantize(code, mn, scale));
    }
    packGroup(q, m, bits, words);
    std::memcpy(codes, words, 4 * static_cast<size_t>(bits));
    codes += 4 * static_cast<size_t>(bits);
  }
}

void quantDecodeBucket(const uint8_t* codes, size_t n, int bits, float mn, float scale, float* out,
                       bool accumulate) {
  uint8_t q[32];
  uint32_t words[8];
  for (size_t g0 = 0; g0 < n; g0 += 32) {
    const size_t m = n - g0 < 32 ? n - g0 : 32;
    std::memcpy(words, codes, 4 * static_cast<size_t>(bits));
    codes += 4 * static_cast<size_t>(bits);
    unpackGroup(words, m, bits, q);
    for (size_t l = 0; l < m; ++l) {
      storeOrAdd(&out[g0 + l], dequantize(q[l], mn, scale), accumulate);
    }
  }
}

void signEncodeBucket(const float* g, float* ef, size_t n, float* scaleOut, uint8_t* codes) {
  const float* c = foldErrorFeedback(g, ef, 0, n);
  float lanes[32] = {};
  for (size_t i = 0; i < n; ++i) {
    const float mag = bitsFloat(floatBits(c[i]) & 0x7fffffffu);
    lanes[i & 31] = addRn(lanes[i & 31], mag);
  }
  const float scale = divRn(butterflySum(lanes), static_cast<float>(n));
  *scaleOut = scale;
  uint8_t q[32];
  for (size_t g0 = 0; g0 < n; g0 += 32) {
    const size_t m = n - g0 < 32 ? n - g0 : 32;
    for (size_t l = 0; l < m; ++l) {
      const size_t i = g0 + l;
      q[l] = static_cast<uint8_t>(signCode(c[i]));
      if (ef != nullptr) ef[i] = subRn(c[i], signValue(q[l], scale));
    }
    uint32_t word;
    packGroup(q, m, 1, &word);
    std::memcpy(codes, &word, 4);
    codes += 4;
  }
}

void signDecodeBucket(const uint8_t* codes, size_t n, float scale, float* out, bool accumulate) {
  for (size_t g0 = 0; g0 < n; g0 += 32) {
    uint32_t word;
    std::memcpy(&word, codes, 4);
    codes += 4;
    const size_t m = n - g0 < 32 ? n - g0 : 32;
    for (size_t l = 0; l < m; ++l) {
      storeOrAdd(&out[g0 + l], signValue((word >> l) & 1u, scale), accumulate);
    }
  }
}

void philoxUniforms(uint64_t seed, uint64_t step, uint64_t first, size_t blocks, float* u) {
  for (size_t b = 0; b < blocks; ++b, first += 128, u += 128) {
    for (size_t lane = 0; lane < 32; ++lane) {
      const Philox4 r = philoxBlock(seed, step, first + lane);
      for (size_t t = 0; t < 4; ++t) u[32 * t + lane] = uniformOf(r.v[t]);
    }
  }
}

size_t collectAtLeast(const float* g, float* ef, size_t begin, size_t end, uint32_t lo,
                      uint32_t* out) {
  if (ef != nullptr) {
    for (size_t i = begin; i < end; ++i) ef[i] = addRn(g[i], ef[i]);
  }
  const float* c = ef != nullptr ? ef : g;
  size_t m = 0;
  for (size_t i = begin; i < end; ++i) {
    if ((floatBits(c[i]) & 0x7fffffffu) >= lo) out[m++] = static_cast<uint32_t>(i);
  }
  return m;
}

void powerSgdMq(const float* m, const float* q, size_t rows, size_t cols, size_t r, float* p) {
  for (size_t i = 0; i < rows; ++i) {
    for (size_t j = 0; j < r; ++j) {
      float s = 0.0f;
      for (size_t k = 0; k < cols; ++k) s = addRn(s, mulRn(m[i * cols + k], q[k * r + j]));
      p[i * r + j] = s;
    }
  }
}

// q[k][j] sums over i in order; looping i outermost keeps that order and streams M by rows.
void powerSgdMtp(const float* m, const float* p, size_t rows, size_t cols, size_t r, float* q) {
  std::memset(q, 0, 4 * cols * r);
  for (size_t i = 0; i < rows; ++i) {
    for (size_t k = 0; k < cols; ++k) {
      for (size_t j = 0; j < r; ++j)
        q[k * r + j] = addRn(q[k * r + j], mulRn(m[i * cols + k], p[i * r + j]));
    }
  }
}

void powerSgdReconstruct(const float* p, const float* q, size_t rows, size_t cols, size_t r,
                         float* out, int mode) {
  for (size_t i = 0; i < rows; ++i) {
    for (size_t k = 0; k < cols; ++k) {
      float s = 0.0f;
      for (size_t j = 0; j < r; ++j) s = addRn(s, mulRn(p[i * r + j], q[k * r + j]));
      float& o = out[i * cols + k];
      o = mode == kStoreOut ? s : mode == kAddToOut ? addRn(o, s) : subRn(o, s);
    }
  }
}

}  // namespace

const SimdKernels& kernels() {
  static const SimdKernels table = {castEncode,        castDecode,         quantEncodeBucket,
                                    quantDecodeBucket, signEncodeBucket,   signDecodeBucket,
                                    philoxUniforms,    collectAtLeast,     powerSgdMq,
                                    powerSgdMtp,       powerSgdReconstruct};
  return table;
}

}  // namespace plexus::codec::simd_scalar
