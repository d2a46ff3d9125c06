// CPU reference codecs: exactness, error bounds, unbiasedness, error-feedback conservation,
// packing, top-k sets and PowerSGD recovery.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "compress/bit_pack.h"
#include "compress/codec_math.h"
#include "compress/philox.h"
#include "compress/quant_layout.h"
#include "compress/topk.h"
#include "tests/compress/codec_test_util.h"

namespace plexus {
namespace {

using testing::codecOrDie;
using testing::decodeOrDie;
using testing::encodeOrDie;
using testing::gaussian;

TEST(Philox, MatchesRandom123KnownAnswers) {
  const codec::Philox4 zero = codec::philox4x32(0, 0, 0, 0, 0, 0);
  EXPECT_EQ(zero.v[0], 0x6627e8d5u);
  EXPECT_EQ(zero.v[1], 0xe169c58du);
  EXPECT_EQ(zero.v[2], 0xbc57ac4cu);
  EXPECT_EQ(zero.v[3], 0x9b00dbd8u);
  const uint32_t f = 0xffffffffu;
  const codec::Philox4 ones = codec::philox4x32(f, f, f, f, f, f);
  EXPECT_EQ(ones.v[0], 0x408f276du);
  EXPECT_EQ(ones.v[1], 0x41c83b0eu);
  EXPECT_EQ(ones.v[2], 0xa20bc7c6u);
  EXPECT_EQ(ones.v[3], 0x6d5451fdu);
}

TEST(CastMath, HalfConversionRoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(codec::floatToHalfSat(1.0f), 0x3c00);
  EXPECT_EQ(codec::floatToHalfSat(-2.0f), 0xc000);
  EXPECT_EQ(codec::floatToHalfSat(65504.0f), 0x7bff);
  EXPECT_EQ(codec::floatToHalfSat(1e9f), 0x7bff);
  EXPECT_EQ(codec::floatToHalfSat(-1e9f), 0xfbff);
  EXPECT_EQ(codec::floatToHalfSat(5.9604644775390625e-8f), 0x0001);   // smallest subnormal
  EXPECT_EQ(codec::floatToHalfSat(2.98023223876953125e-8f), 0x0000);  // tie -> even (0)
  EXPECT_EQ(codec::floatToHalfSat(1.0f + 1.0f / 2048), 0x3c00);       // tie -> even
  EXPECT_EQ(codec::floatToHalfSat(1.0f + 3.0f / 2048), 0x3c02);       // tie -> even (up)
  // Every half round-trips exactly.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;  // inf / NaN
    EXPECT_EQ(codec::floatToHalfSat(codec::halfToFloat(static_cast<uint16_t>(h))), h);
  }
}

TEST(CastMath, Bf16ConversionRoundsToNearestEven) {
  EXPECT_EQ(codec::floatToBf16Sat(1.0f), 0x3f80);
  EXPECT_EQ(codec::bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(codec::floatToBf16Sat(codec::bitsFloat(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(codec::floatToBf16Sat(codec::bitsFloat(0x3f818000u)), 0x3f82);  // tie -> even
  EXPECT_EQ(codec::floatToBf16Sat(3.4028235e38f), 0x7f7f);                  // saturates
}

TEST(BitPack, RoundTripsEveryWidthAndOddLengths) {
  for (int bits = 1; bits <= 8; ++bits) {
    for (uint32_t bucket : {512u, 100u, 7u, 32u}) {
      for (size_t n : {1u, 7u, 31u, 33u, 100u, 513u, 1000u, 1031u}) {
        std::vector<uint8_t> codes(n);
        for (size_t i = 0; i < n; ++i)
          codes[i] = static_cast<uint8_t>((i * 37 + 11) % (1u << bits));
        std::vector<uint32_t> words(codec::totalCodeWords(n, bucket, bits));
        codec::packCodes(codes, bits, bucket, words);
        std::vector<uint8_t> back(n);
        codec::unpackCodes(words, bits, bucket, back);
        ASSERT_EQ(back, codes) << "bits " << bits << " bucket " << bucket << " n " << n;
      }
    }
  }
}

TEST(BitPack, GroupLayoutIsBitSliced) {
  uint8_t codes[32] = {};
  codes[0] = 0b101;
  codes[31] = 0b010;
  uint32_t w[3];
  codec::packGroup(codes, 32, 3, w);
  EXPECT_EQ(w[0], 1u);
  EXPECT_EQ(w[1], 1u << 31);
  EXPECT_EQ(w[2], 1u);
}

TEST(Codecs, ExactOnConstantTensors) {
  for (const char* spec : {"fp16", "bf16", "quant:bits=1", "quant:bits=4", "quant:bits=8",
                           "quant:bits=3,round=stochastic", "sign", "sign:bucket=100", "zstd"}) {
    for (float v : {0.0f, -3.0f, 0.5f}) {
      std::unique_ptr<Codec> c = codecOrDie(spec);
      const std::vector<float> in(1031, v);
      const std::vector<float> out = decodeOrDie(*c, encodeOrDie(*c, in), in.size());
      EXPECT_EQ(out, in) << spec << " v=" << v;
    }
  }
}

// max |c - deq| / scale over buckets, from the payload's own scales.
double maxErrorInUnits(const std::vector<float>& in, const std::vector<float>& out,
                       const std::vector<uint8_t>& payload, uint32_t bucket) {
  const size_t nb = codec::bucketCount(in.size(), bucket);
  double worst = 0;
  for (size_t b = 0; b < nb; ++b) {
    float scale;
    std::memcpy(&scale, payload.data() + 32 + 8 * b + 4, 4);
    for (size_t i = b * bucket; i < std::min(in.size(), (b + 1) * size_t{bucket}); ++i) {
      const double err = std::fabs(double{in[i]} - double{out[i]});
      worst = std::max(worst, scale > 0 ? err / scale : (err > 0 ? 1e9 : 0));
    }
  }
  return worst;
}

TEST(Quant, ErrorWithinHalfUnitNearestAndOneUnitStochastic) {
  for (int bits = 1; bits <= 8; ++bits) {
    for (uint32_t bucket : {512u, 100u}) {
      const std::vector<float> in = gaussian(3001, 7 + bits);
      const std::string base =
          "quant:bits=" + std::to_string(bits) + ",bucket=" + std::to_string(bucket);
      std::unique_ptr<Codec> rtn = codecOrDie(base);
      std::vector<uint8_t> p = encodeOrDie(*rtn, in);
      // Half a unit plus the few ulps of the f32 arithmetic in (c - mn) / scale and mn + q*scale.
      EXPECT_LE(maxErrorInUnits(in, decodeOrDie(*rtn, p, in.size()), p, bucket), 0.5 + 1e-4)
          << base;
      std::unique_ptr<Codec> sr = codecOrDie(base + ",round=stochastic");
      p = encodeOrDie(*sr, in, nullptr, {.seed = 99, .step = 3});
      EXPECT_LT(maxErrorInUnits(in, decodeOrDie(*sr, p, in.size()), p, bucket), 1.0) << base;
    }
  }
}

TEST(Quant, StochasticRoundingIsUnbiasedOver10kSeeds) {
  // One bucket of values strictly inside the grid; each value's mean over 10^4 seeds must be
  // within 5 standard errors of the value (sd of one draw <= scale / 2).
  const std::vector<float> in = {-1.0f, 0.1f, 0.33f, 0.5f, 0.77f, 0.9f, 1.0f, 0.2f};
  std::unique_ptr<Codec> c = codecOrDie("quant:bits=2,bucket=8,round=stochastic");
  const int kSeeds = 10000;
  std::vector<double> sum(in.size(), 0.0);
  for (int s = 0; s < kSeeds; ++s) {
    const std::vector<float> out = decodeOrDie(
        *c, encodeOrDie(*c, in, nullptr, {.seed = uint64_t(s) * 7919, .step = 1}), in.size());
    for (size_t i = 0; i < in.size(); ++i) sum[i] += out[i];
  }
  const double scale = 2.0 / 3.0, bound = 5 * (scale / 2) / std::sqrt(double{kSeeds});
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_NEAR(sum[i] / kSeeds, in[i], bound) << "element " << i;
  }
}

TEST(Quant, StochasticDependsOnlyOnSeedStepAndIndex) {
  std::unique_ptr<Codec> a = codecOrDie("quant:bits=3,bucket=512,round=stochastic");
  std::unique_ptr<Codec> b = codecOrDie("quant:bits=3,bucket=512,round=stochastic");
  const std::vector<float> in = gaussian(2000, 5);
  EXPECT_EQ(encodeOrDie(*a, in, nullptr, {.seed = 1, .step = 2}),
            encodeOrDie(*b, in, nullptr, {.seed = 1, .step = 2}));
  EXPECT_NE(encodeOrDie(*a, in, nullptr, {.seed = 1, .step = 2}),
            encodeOrDie(*b, in, nullptr, {.seed = 1, .step = 3}));
}

// Error feedback: with c = g + e (f32) and d = decode(payload), the encoder leaves
// e' = fl(c - d) bit-for-bit (so encoder and decoder agree on d), and d + e' == c holds exactly
// in f32 for every element whose residual c - d is representable, which TwoSum detects exactly.
// `alwaysExact` codecs must have every residual representable.
void checkConservation(const std::string& spec, bool alwaysExact) {
  std::unique_ptr<Codec> codec = codecOrDie(spec);
  const size_t n = 64 * 48;
  std::vector<float> e = gaussian(n, 3, 0.1f);
  for (int step = 0; step < 3; ++step) {
    const std::vector<float> g = gaussian(n, 100 + step);
    std::vector<float> c(n);
    for (size_t i = 0; i < n; ++i) c[i] = g[i] + e[i];
    const std::vector<uint8_t> p = encodeOrDie(*codec, g, &e, {.seed = 5, .step = uint64_t(step)});
    const std::vector<float> d = decodeOrDie(*codec, p, n);
    size_t inexact = 0;
    for (size_t i = 0; i < n; ++i) {
      const float s = c[i] - d[i];
      ASSERT_EQ(codec::floatBits(e[i]), codec::floatBits(s)) << spec << " element " << i;
      const float bb = s - c[i];
      const float residual = (c[i] - (s - bb)) + (-d[i] - bb);  // TwoSum: c - d = s + residual
      if (residual == 0.0f) {
        ASSERT_EQ(d[i] + e[i], c[i]) << spec << " element " << i;  // +0 == -0 only
      } else {
        ++inexact;
        ASSERT_LE(std::fabs(residual), std::ldexp(1.0f, std::ilogb(s) - 24)) << spec;
      }
    }
    if (alwaysExact) {
      EXPECT_EQ(inexact, 0u) << spec;
    }
  }
}

TEST(ErrorFeedback, ConservesCExactly) {
  checkConservation("fp16", true);
  checkConservation("bf16", true);
  checkConservation("topk:k=100", true);
  checkConservation("topk:ratio=0.01,mode=threshold", true);
  checkConservation("zstd", true);
  checkConservation("quant:bits=4", false);
  checkConservation("quant:bits=2,bucket=100,round=stochastic", false);
  checkConservation("sign", false);
  checkConservation("powersgd:rows=64,cols=48,rank=2", false);
}

TEST(TopK, ExactSelectsTheKLargestMagnitudes) {
  std::vector<float> in = gaussian(5000, 11);
  in[17] = in[18] = 100.0f;  // ties among the largest
  in[4000] = -100.0f;
  for (uint64_t k : {1u, 2u, 3u, 50u, 5000u}) {
    const TopKSelection sel = topkExactSelection(in.data(), in.size(), k);
    std::vector<uint32_t> order(in.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return std::fabs(in[a]) > std::fabs(in[b]); });
    std::vector<uint32_t> want(order.begin(), order.begin() + k);
    std::sort(want.begin(), want.end());
    EXPECT_EQ(sel.indices, want) << "k " << k;
  }
}

TEST(TopK, ThresholdSelectsLargeValuesNearK) {
  const std::vector<float> in = gaussian(100000, 12);
  const uint64_t k = 1000;
  const TopKSelection sel = topkThresholdSelection(in.data(), in.size(), k);
  EXPECT_LE(sel.indices.size(), k);
  EXPECT_GE(sel.indices.size(), k / 2);
  EXPECT_TRUE(std::is_sorted(sel.indices.begin(), sel.indices.end()));
  for (uint32_t i : sel.indices) EXPECT_GE(codec::floatBits(in[i]) & 0x7fffffffu, sel.threshold);
  std::unique_ptr<Codec> c = codecOrDie("topk:k=1000,mode=threshold");
  const std::vector<float> out = decodeOrDie(*c, encodeOrDie(*c, in), in.size());
  for (uint32_t i : sel.indices) EXPECT_EQ(out[i], in[i]);
}

TEST(PowerSgd, RecoversALowRankInput) {
  const size_t rows = 96, cols = 40;
  const std::vector<float> a = gaussian(rows * 2, 21), b = gaussian(cols * 2, 22);
  std::vector<float> m(rows * cols);
  for (size_t i = 0; i < rows; ++i) {
    for (size_t k = 0; k < cols; ++k)
      m[i * cols + k] = a[2 * i] * b[2 * k] + a[2 * i + 1] * b[2 * k + 1];
  }
  std::unique_ptr<Codec> c = codecOrDie("powersgd:rows=96,cols=40,rank=2,seed=4");
  for (int step = 0; step < 2; ++step) {  // the second step exercises the warm start
    const std::vector<float> out = decodeOrDie(*c, encodeOrDie(*c, m), m.size());
    double err = 0, norm = 0;
    for (size_t i = 0; i < m.size(); ++i) {
      err = std::max(err, double{std::fabs(out[i] - m[i])});
      norm = std::max(norm, double{std::fabs(m[i])});
    }
    EXPECT_LT(err, 1e-4 * norm) << "step " << step;
  }
}

TEST(Codecs, DecodeAccumulateAddsIntoTheBuffer) {
  for (const char* spec : {"fp16", "bf16", "quant:bits=5", "sign", "topk:k=10", "zstd",
                           "powersgd:rows=10,cols=10,rank=2"}) {
    std::unique_ptr<Codec> c = codecOrDie(spec);
    const std::vector<float> in = gaussian(100, 31);
    const std::vector<uint8_t> p = encodeOrDie(*c, in);
    const std::vector<float> d = decodeOrDie(*c, p, in.size());
    std::vector<float> acc = gaussian(100, 32);
    const std::vector<float> base = acc;
    ASSERT_TRUE(c->decodeAccumulate(p, acc).ok()) << spec;
    for (size_t i = 0; i < acc.size(); ++i) EXPECT_EQ(acc[i], base[i] + d[i]) << spec;
  }
}

TEST(Zstd, BytesRoundTrip) {
  std::vector<uint8_t> bytes(10000);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i % 13);
  StatusOr<std::vector<uint8_t>> z = zstdCompressBytes(bytes, 3);
  ASSERT_TRUE(z.ok()) << z.status().toString();
  EXPECT_LT(z->size(), bytes.size() / 10);
  StatusOr<std::vector<uint8_t>> back = zstdDecompressBytes(*z, bytes.size());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, bytes);
  EXPECT_FALSE(zstdDecompressBytes(*z, bytes.size() - 1).ok());
}

}  // namespace
}  // namespace plexus
