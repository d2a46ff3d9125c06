// The vectorised codec kernels against the scalar reference: the same payload bytes, the same
// error-feedback residuals and the same decodes, on lengths that leave every kind of tail (not a
// multiple of the vector width, of the 32-element code group, of the bucket or of a Philox block)
// and on inputs with the values where the fast paths take a different route (infinities, NaN,
// -0, subnormals, finite values that round past the largest half). Skips where only the scalar
// level exists.
#include <cmath>
#include <cstring>

#include "compress/codec_math.h"
#include "compress/philox.h"
#include "compress/simd.h"
#include "compress/simd_internal.h"
#include "tests/compress/codec_test_util.h"

namespace plexus {
namespace {

using codec::SimdLevel;
using testing::codecOrDie;
using testing::gaussian;

constexpr size_t kLengths[] = {1,   7,   8,   9,   31,  32,  33,   63,  65,
                               127, 128, 129, 511, 512, 513, 1000, 4099};

// Restores the level in use when the test ends.
class SimdLevels : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!codec::simdLevelAvailable(SimdLevel::kAvx2)) {
      GTEST_SKIP() << "no AVX2 + F16C on this CPU: only the scalar codec kernels exist";
    }
  }
  void TearDown() override { codec::overrideSimdLevel(saved_); }

 private:
  SimdLevel saved_ = codec::simdLevel();
};

// Gaussian values with every `every`-th one replaced by a special value (none when 0).
std::vector<float> withSpecials(size_t n, uint32_t seed, size_t every) {
  std::vector<float> v = gaussian(n, seed);
  const float specials[] = {INFINITY,
                            -INFINITY,
                            NAN,
                            -0.0f,
                            0.0f,
                            1e-40f,
                            -1e-45f,
                            3e38f,
                            -3e38f,
                            65504.0f,
                            65519.99f,
                            65520.0f,
                            -65520.0f,
                            2.98e-8f,
                            6.0e-8f,
                            1.0009766f,
                            1.0029297f,
                            codec::bitsFloat(0x3f808000u),
                            codec::bitsFloat(0x7f7fffffu),
                            codec::bitsFloat(0x7fa00001u)};
  for (size_t i = 0; every > 0 && i < n; i += every) {
    v[i] = specials[(i / every) % (sizeof specials / sizeof specials[0])];
  }
  return v;
}

// Bits of the floats with every NaN made one pattern: which NaN an operation on two NaNs returns
// depends on the compiler's operand order, not on the codec.
constexpr uint32_t kCanonicalNan = 0x7fc00000u;
std::vector<uint32_t> canonicalBits(const std::vector<float>& v) {
  std::vector<uint32_t> bits(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    bits[i] = std::isnan(v[i]) ? kCanonicalNan : codec::floatBits(v[i]);
  }
  return bits;
}

// The payload with the NaNs among its f32 fields (quant and sign scales, top-k values, PowerSGD
// factors) made one pattern, for the same reason.
std::vector<uint8_t> canonicalPayload(std::vector<uint8_t> p) {
  if (p.size() < 32) return p;
  uint64_t count;
  uint32_t param;
  std::memcpy(&count, p.data() + 8, 8);
  std::memcpy(&param, p.data() + 16, 4);
  const uint64_t buckets = param == 0 ? 0 : (count + param - 1) / param;
  size_t first = 32, floats = 0;
  switch (static_cast<CodecId>(p[4])) {
    case CodecId::kQuant:
      floats = 2 * buckets;
      break;
    case CodecId::kSign:
      floats = buckets;
      break;
    case CodecId::kTopK:
      first += 4 * size_t{param};
      floats = param;
      break;
    case CodecId::kPowerSgd:
      floats = (p.size() - 32) / 4;
      break;
    default:
      break;
  }
  for (size_t i = 0; i < floats; ++i) {
    float f;
    std::memcpy(&f, p.data() + first + 4 * i, 4);
    if (std::isnan(f)) std::memcpy(p.data() + first + 4 * i, &kCanonicalNan, 4);
  }
  return p;
}

// Everything one level produces for one input, failures included (k > n fails to encode; a
// NaN in a sign bucket makes a scale the decoder rejects).
struct Run {
  std::vector<uint8_t> payload;
  std::vector<uint32_t> ef, decoded, accumulated;
  std::vector<StatusCode> codes;
};

Run runOn(SimdLevel level, const std::string& spec, const std::vector<float>& in, bool withEf) {
  codec::overrideSimdLevel(level);
  std::unique_ptr<Codec> c = codecOrDie(spec);
  Run r;
  std::vector<float> ef = withEf ? gaussian(in.size(), 77, 0.01f) : std::vector<float>();
  for (int step = 0; step < 2; ++step) {  // the second step starts from the first's residual
    r.payload.assign(c->maxEncodedBytes(in.size()), 0);
    StatusOr<size_t> n = c->encode(in, ef, r.payload, {.seed = 0x1234567890ull, .step = 5u + step});
    r.codes.push_back(n.status().code());
    r.payload.resize(n.ok() ? *n : 0);
  }
  r.ef = canonicalBits(ef);
  std::vector<float> out(in.size(), 3.0f), acc = gaussian(in.size(), 78);
  r.codes.push_back(c->decode(r.payload, out).code());
  r.codes.push_back(c->decodeAccumulate(r.payload, acc).code());
  r.decoded = canonicalBits(out);
  r.accumulated = canonicalBits(acc);
  return r;
}

void expectSameOnBothLevels(const std::string& spec, const std::vector<float>& in,
                            const std::string& what) {
  for (bool withEf : {false, true}) {
    const Run scalar = runOn(SimdLevel::kScalar, spec, in, withEf);
    const Run avx2 = runOn(SimdLevel::kAvx2, spec, in, withEf);
    const std::string where = spec + " n=" + std::to_string(in.size()) + " " + what +
                              (withEf ? " with error feedback" : "");
    ASSERT_EQ(scalar.codes, avx2.codes) << where;
    ASSERT_EQ(canonicalPayload(scalar.payload), canonicalPayload(avx2.payload)) << where;
    ASSERT_EQ(scalar.ef, avx2.ef) << where;
    ASSERT_EQ(scalar.decoded, avx2.decoded) << where;
    ASSERT_EQ(scalar.accumulated, avx2.accumulated) << where;
  }
}

void expectSameOverLengths(const std::string& spec) {
  for (size_t n : kLengths) {
    expectSameOnBothLevels(spec, gaussian(n, 5 + static_cast<uint32_t>(n)), "gaussian");
    expectSameOnBothLevels(spec, withSpecials(n, 6 + static_cast<uint32_t>(n), 3), "specials");
    expectSameOnBothLevels(spec, std::vector<float>(n, -1.5f), "constant");
  }
}

TEST_F(SimdLevels, CastCodecsMatchTheScalarReference) {
  expectSameOverLengths("fp16");
  expectSameOverLengths("bf16");
  // Every half pattern decodes alike, signalling NaNs included.
  std::vector<float> halves(65536);
  std::unique_ptr<Codec> c = codecOrDie("fp16");
  std::vector<uint8_t> p = testing::encodeOrDie(*c, halves);
  for (uint32_t h = 0; h < 65536; ++h) std::memcpy(p.data() + 32 + 2 * h, &h, 2);
  std::vector<float> a(65536), b(65536);
  codec::overrideSimdLevel(SimdLevel::kScalar);
  ASSERT_TRUE(c->decode(p, a).ok());
  codec::overrideSimdLevel(SimdLevel::kAvx2);
  ASSERT_TRUE(c->decode(p, b).ok());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), 4 * a.size()));
}

TEST_F(SimdLevels, QuantMatchesTheScalarReference) {
  for (int bits : {1, 2, 3, 4, 5, 7, 8}) {
    for (const char* bucket : {"512", "100", "32", "7", "1"}) {
      for (const char* round : {"nearest", "stochastic"}) {
        expectSameOverLengths("quant:bits=" + std::to_string(bits) + ",bucket=" + bucket +
                              ",round=" + round);
      }
    }
  }
}

TEST_F(SimdLevels, SignMatchesTheScalarReference) {
  for (const char* bucket : {"512", "100", "64", "33", "7", "1"}) {
    expectSameOverLengths(std::string("sign:bucket=") + bucket);
  }
}

TEST_F(SimdLevels, TopKMatchesTheScalarReference) {
  for (const char* spec : {"topk:k=1", "topk:k=5,mode=threshold", "topk:ratio=0.01",
                           "topk:ratio=0.1,mode=threshold", "topk:ratio=0.5", "topk:ratio=1"}) {
    expectSameOverLengths(spec);
  }
  // Many equal magnitudes: ties decided by index on both levels.
  std::vector<float> ties(20000);
  for (size_t i = 0; i < ties.size(); ++i) ties[i] = static_cast<float>(int(i % 7) - 3) * 0.25f;
  expectSameOnBothLevels("topk:ratio=0.2", ties, "ties");
  expectSameOnBothLevels("topk:ratio=0.01", gaussian(300000, 9), "large");
}

TEST_F(SimdLevels, PowerSgdMatchesTheScalarReference) {
  const size_t shapes[][3] = {{1, 1, 1},   {7, 9, 3},   {8, 8, 8},
                              {33, 17, 5}, {64, 48, 2}, {13, 200, 6}};
  for (const auto& s : shapes) {
    const std::string spec = "powersgd:rows=" + std::to_string(s[0]) +
                             ",cols=" + std::to_string(s[1]) + ",rank=" + std::to_string(s[2]);
    expectSameOnBothLevels(spec, gaussian(s[0] * s[1], 10), "gaussian");
  }
}

TEST_F(SimdLevels, ZstdMatchesTheScalarReference) {
  expectSameOnBothLevels("zstd:level=1", gaussian(100003, 11), "gaussian");
}

TEST_F(SimdLevels, PhiloxStreamMatchesPerElementDraws) {
  using Fill = void (*)(uint64_t, uint64_t, uint64_t, size_t, float*);
  std::vector<Fill> fills = {codec::simd_avx2::philoxUniformsAvx2,
                             codec::simdKernelsOf(SimdLevel::kAvx2).philoxUniforms};
  if (codec::simd_avx2::philoxAvx512Available()) {
    fills.push_back(codec::simd_avx2::philoxUniformsAvx512);
  }
  for (Fill fill : fills) {
    for (uint64_t seed : {0ull, 7ull, 0xfedcba9876543210ull}) {
      for (uint64_t first : {0ull, 128ull, 0xffffff80ull, 0x1234567800ull}) {
        std::vector<float> u(128 * 3);
        fill(seed, 0x100000003ull, first, 3, u.data());
        for (size_t j = 0; j < u.size(); ++j) {
          ASSERT_EQ(codec::floatBits(u[j]),
                    codec::floatBits(codec::philoxUniform(seed, 0x100000003ull, first + j)))
              << "seed " << seed << " element " << first + j;
        }
      }
    }
  }
}

TEST_F(SimdLevels, CandidateScanMatchesAtEveryBound) {
  const std::vector<float> g = withSpecials(1003, 12, 5);
  for (uint32_t lo : {0u, 1u, 0x3f800000u, 0x7f800000u, 0x7fffffffu, 0x80000000u, 0xffffffffu}) {
    std::vector<uint32_t> a(g.size() + 7), b(g.size() + 7);  // the kernels need 7 of slack
    std::vector<float> efA = gaussian(g.size(), 13), efB = efA;
    const size_t na = codec::simdKernelsOf(SimdLevel::kScalar)
                          .collectAtLeast(g.data(), efA.data(), 3, g.size(), lo, a.data());
    const size_t nb = codec::simdKernelsOf(SimdLevel::kAvx2)
                          .collectAtLeast(g.data(), efB.data(), 3, g.size(), lo, b.data());
    ASSERT_EQ(na, nb) << "lo " << lo;
    a.resize(na);
    b.resize(nb);
    EXPECT_EQ(a, b) << "lo " << lo;
    EXPECT_EQ(canonicalBits(efA), canonicalBits(efB)) << "lo " << lo;
  }
}

}  // namespace
}  // namespace plexus
