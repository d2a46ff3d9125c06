// Tests of the CPU reduction kernels against a scalar reference written here: every DataType x
// ReduceOp, vector tails, dst aliasing a or b, both instruction-set levels, the f16 / bf16
// conversions (exhaustively where the domain is 16 bits), integer wrap-around and division.
#include "src/reduce_cpu.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "src/reduce_cpu_internal.h"

namespace plexus {
namespace {

constexpr size_t kLengths[] = {0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 1000, 4099};
constexpr ReduceIsa kIsas[] = {ReduceIsa::kBaseline, ReduceIsa::kAvx2};

// ---- reference conversions: plain arithmetic in double, independent of the library's bit code

/// Value of an IEEE-style encoding with `expBits` exponent bits and `mantBits` fraction bits.
double refDecode(uint32_t bits, int expBits, int mantBits) {
  const uint32_t mant = bits & ((1u << mantBits) - 1);
  const int exp = static_cast<int>((bits >> mantBits) & ((1u << expBits) - 1));
  const int bias = (1 << (expBits - 1)) - 1;
  const bool negative = (bits >> (expBits + mantBits)) & 1u;
  double v;
  if (exp == (1 << expBits) - 1) {
    v = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else if (exp == 0) {
    v = std::ldexp(mant, 1 - bias - mantBits);
  } else {
    v = std::ldexp(mant + (1u << mantBits), exp - bias - mantBits);
  }
  return negative ? -v : v;
}

/// Rounds a finite or infinite non-NaN value to the encoding, nearest even, overflow to inf.
uint32_t refEncode(double v, int expBits, int mantBits) {
  const uint32_t sign = std::signbit(v) ? 1u << (expBits + mantBits) : 0u;
  const int bias = (1 << (expBits - 1)) - 1;
  const int minExp = 1 - bias;
  const uint32_t inf = ((1u << expBits) - 1) << mantBits;
  v = std::fabs(v);
  if (v == 0) return sign;
  if (std::isinf(v)) return sign | inf;
  int e;
  std::frexp(v, &e);  // v = m * 2^e, m in [0.5, 1)
  const int unitExp = std::max(e - 1, minExp) - mantBits;
  const double scaled = std::ldexp(v, -unitExp);  // exact: a power-of-two scaling
  double q = std::floor(scaled);
  const double frac = scaled - q;
  if (frac > 0.5 || (frac == 0.5 && std::fmod(q, 2.0) != 0)) q += 1;
  const double rounded = std::ldexp(q, unitExp);
  if (rounded >= std::ldexp(1.0, bias + 1)) return sign | inf;
  if (rounded < std::ldexp(1.0, minExp)) return sign | static_cast<uint32_t>(q);  // subnormal
  std::frexp(rounded, &e);
  const uint32_t frac2 =
      static_cast<uint32_t>(std::ldexp(rounded, mantBits - (e - 1))) - (1u << mantBits);
  return sign | (static_cast<uint32_t>(e - 1 + bias) << mantBits) | frac2;
}

float refHalfToFloat(uint16_t h) { return static_cast<float>(refDecode(h, 5, 10)); }
float refBf16ToFloat(uint16_t b) { return static_cast<float>(refDecode(b, 8, 7)); }
/// NaN maps to a NaN of the same sign (the library's payload rule is tested separately).
uint16_t refFloatToHalf(float f) {
  if (std::isnan(f)) return std::signbit(f) ? 0xFE00 : 0x7E00;
  return static_cast<uint16_t>(refEncode(f, 5, 10));
}
uint16_t refFloatToBf16(float f) {
  if (std::isnan(f)) return std::signbit(f) ? 0xFFC0 : 0x7FC0;
  return static_cast<uint16_t>(refEncode(f, 8, 7));
}
uint32_t bitsOf(float f) { return std::bit_cast<uint32_t>(f); }

// ---- element traits of the test: storage, reference widen / narrow, random values

using Rng = std::mt19937_64;

template <typename T>
struct NativeTraits {
  using S = T;
  using C = T;
  static C widen(S x) { return x; }
  static S narrow(C x) { return x; }
  static S random(Rng& rng, bool allowNan) {
    if constexpr (std::is_integral_v<T>) {
      return static_cast<T>(rng());
    } else {
      using L = std::numeric_limits<T>;
      const T specials[] = {0,        -T(0),       L::infinity(), -L::infinity(), L::denorm_min(),
                            L::max(), L::lowest(), L::min(),      L::quiet_NaN(), -L::quiet_NaN()};
      const unsigned pick = rng() % 16;
      if (pick == 0) return specials[rng() % (allowNan ? 10 : 8)];
      if (pick < 4) {  // random bits: every exponent
        using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
        const T v = std::bit_cast<T>(static_cast<Bits>(rng()));
        return (allowNan || !std::isnan(v)) ? v : T(1);
      }
      return std::uniform_real_distribution<T>(-100, 100)(rng);
    }
  }
};

template <float (*kWiden)(uint16_t), uint16_t (*kNarrow)(float)>
struct Float16Traits {
  using S = uint16_t;
  using C = float;
  static C widen(S x) { return kWiden(x); }
  static S narrow(C x) { return kNarrow(x); }
  static S random(Rng& rng, bool allowNan) {
    constexpr float kInf = std::numeric_limits<float>::infinity();
    const S specials[] = {kNarrow(0.0f), kNarrow(-0.0f), kNarrow(kInf), kNarrow(-kInf)};
    const unsigned pick = rng() % 16;
    S v = pick == 0  ? specials[rng() % 4]
          : pick < 5 ? static_cast<S>(rng())  // random bits: NaN, inf, subnormals, overflow
                     : kNarrow(std::uniform_real_distribution<float>(-100, 100)(rng));
    return (allowNan || !std::isnan(kWiden(v))) ? v : kNarrow(1.0f);
  }
};
using HalfTraits = Float16Traits<refHalfToFloat, refFloatToHalf>;
using Bf16Traits = Float16Traits<refBf16ToFloat, refFloatToBf16>;

/// Calls fn with a value-initialised traits object for `type`.
template <typename Fn>
void withTraits(DataType type, Fn&& fn) {
  switch (type) {
    case DataType::kFloat32:
      return fn(NativeTraits<float>{});
    case DataType::kFloat64:
      return fn(NativeTraits<double>{});
    case DataType::kFloat16:
      return fn(HalfTraits{});
    case DataType::kBFloat16:
      return fn(Bf16Traits{});
    case DataType::kInt8:
      return fn(NativeTraits<int8_t>{});
    case DataType::kUInt8:
      return fn(NativeTraits<uint8_t>{});
    case DataType::kInt32:
      return fn(NativeTraits<int32_t>{});
    case DataType::kInt64:
      return fn(NativeTraits<int64_t>{});
  }
  FAIL() << "bad type";
}

/// The reference operator: integers wrap through uint64_t; float min/max propagate NaN and
/// order -0 below +0.
template <typename C>
C refCombine(ReduceOp op, C a, C b) {
  if (op == ReduceOp::kAvg) op = ReduceOp::kSum;
  if constexpr (std::is_integral_v<C>) {
    const uint64_t x = static_cast<uint64_t>(a), y = static_cast<uint64_t>(b);
    if (op == ReduceOp::kSum) return static_cast<C>(x + y);
    if (op == ReduceOp::kProd) return static_cast<C>(x * y);
  } else {
    if (op == ReduceOp::kSum) return a + b;
    if (op == ReduceOp::kProd) return a * b;
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<C>::quiet_NaN();
    if (a == b) return std::signbit(a) == (op == ReduceOp::kMin) ? a : b;
  }
  return op == ReduceOp::kMin ? std::min(a, b) : std::max(a, b);
}

/// Bit-exact, except that any NaN matches an expected NaN.
template <typename T>
bool sameResult(typename T::S got, typename T::S want) {
  if constexpr (!std::is_integral_v<typename T::C>) {
    if (std::isnan(T::widen(want))) return std::isnan(T::widen(got));
  }
  return std::memcmp(&got, &want, sizeof got) == 0;
}

template <typename S>
std::string hexOf(S v) {
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(bits));
  return buf;
}

enum class Alias { kSeparate, kDstIsA, kDstIsB };
const char* aliasName(Alias a) {
  return a == Alias::kSeparate ? "separate" : (a == Alias::kDstIsA ? "dst==a" : "dst==b");
}

/// Runs one reduceCpuOn call in the given aliasing layout at element offset `offset` of the
/// buffers; returns the whole output buffer. Checks that nothing outside dst[0, count) and
/// nothing of the separate inputs was written.
template <typename S>
std::vector<S> runReduce(ReduceIsa isa, DataType type, ReduceOp op, const std::vector<S>& a,
                         const std::vector<S>& b, size_t offset, size_t count, Alias alias) {
  const std::vector<S> a0 = a, b0 = b;
  std::vector<S> out(a.size());
  std::memset(out.data(), 0xA5, out.size() * sizeof(S));
  if (alias == Alias::kDstIsA) out = a;
  if (alias == Alias::kDstIsB) out = b;
  const std::vector<S> before = out;
  S* d = out.data() + offset;
  const S* x = alias == Alias::kDstIsA ? d : a.data() + offset;
  const S* y = alias == Alias::kDstIsB ? d : b.data() + offset;
  reduceCpuOn(isa, type, op, d, x, y, count);
  EXPECT_EQ(0, std::memcmp(out.data(), before.data(), offset * sizeof(S))) << "wrote before dst";
  EXPECT_EQ(0, std::memcmp(d + count, before.data() + offset + count,
                           (out.size() - offset - count) * sizeof(S)))
      << "wrote past dst + count";
  const size_t bytes = a.size() * sizeof(S);  // bytes, not ==: NaN != NaN
  EXPECT_TRUE(!std::memcmp(a.data(), a0.data(), bytes) && !std::memcmp(b.data(), b0.data(), bytes))
      << "an input changed";
  return out;
}

class ReduceCpuTest : public ::testing::TestWithParam<std::tuple<DataType, ReduceOp>> {};

TEST_P(ReduceCpuTest, MatchesScalarReference) {
  const auto [type, op] = GetParam();
  withTraits(type, [&, type = type, op = op](auto traits) {
    using T = decltype(traits);
    using S = typename T::S;
    Rng rng(static_cast<uint64_t>(type) * 131 + static_cast<uint64_t>(op));
    for (ReduceIsa isa : kIsas) {
      if (!reduceIsaAvailable(isa)) continue;
      for (size_t count : kLengths) {
        for (size_t offset : {size_t{0}, size_t{1}}) {
          for (Alias alias : {Alias::kSeparate, Alias::kDstIsA, Alias::kDstIsB}) {
            SCOPED_TRACE(::testing::Message() << reduceIsaName(isa) << " count=" << count
                                              << " offset=" << offset << " " << aliasName(alias));
            std::vector<S> a(count + offset + 9), b(a.size());
            for (size_t i = 0; i < a.size(); ++i) a[i] = T::random(rng, true);
            for (size_t i = 0; i < b.size(); ++i) b[i] = T::random(rng, true);
            const std::vector<S> out = runReduce(isa, type, op, a, b, offset, count, alias);
            for (size_t i = offset; i < offset + count; ++i) {
              const S want = T::narrow(refCombine(op, T::widen(a[i]), T::widen(b[i])));
              ASSERT_TRUE(sameResult<T>(out[i], want))
                  << "i=" << i - offset << " a=" << hexOf(a[i]) << " b=" << hexOf(b[i])
                  << " got=" << hexOf(out[i]) << " want=" << hexOf(want);
            }
          }
        }
      }
    }
  });
}

// AVX2 and baseline must give identical bytes. Inputs have no NaN: with two NaN operands IEEE
// leaves open which payload survives, and the compilers order operands differently per level.
TEST_P(ReduceCpuTest, Avx2MatchesBaselineBitForBit) {
  if (!reduceIsaAvailable(ReduceIsa::kAvx2)) {
    GTEST_SKIP() << "this CPU lacks AVX2/F16C; only the baseline kernels can run";
  }
  const auto [type, op] = GetParam();
  withTraits(type, [&, type = type, op = op](auto traits) {
    using T = decltype(traits);
    using S = typename T::S;
    Rng rng(7 + static_cast<uint64_t>(type) * 17 + static_cast<uint64_t>(op));
    for (size_t count : kLengths) {
      SCOPED_TRACE(::testing::Message() << "count=" << count);
      std::vector<S> a(count + 1), b(count + 1);
      for (S& v : a) v = T::random(rng, false);
      for (S& v : b) v = T::random(rng, false);
      const auto base = runReduce(ReduceIsa::kBaseline, type, op, a, b, 1, count, Alias::kSeparate);
      const auto avx2 = runReduce(ReduceIsa::kAvx2, type, op, a, b, 1, count, Alias::kSeparate);
      ASSERT_EQ(0, std::memcmp(base.data(), avx2.data(), base.size() * sizeof(S)));
    }
  });
}

// reduceCpuTwice writes reduceCpu's bytes (same level) to both outputs and nothing around
// them, with its outputs apart from the inputs or each equal to one of them (the shm
// all-reduce in place: the output is this rank's input).
TEST_P(ReduceCpuTest, TwiceWritesReduceCpusBytesToBothOutputs) {
  const auto [type, op] = GetParam();
  withTraits(type, [&, type = type, op = op](auto traits) {
    using T = decltype(traits);
    using S = typename T::S;
    Rng rng(11 + static_cast<uint64_t>(type) * 29 + static_cast<uint64_t>(op));
    for (ReduceIsa isa : kIsas) {
      if (!reduceIsaAvailable(isa)) continue;
      for (size_t count : kLengths) {
        for (int layout = 0; layout < 3; ++layout) {  // apart; dst == a; dst2 == b
          SCOPED_TRACE(::testing::Message()
                       << reduceIsaName(isa) << " count=" << count << " layout=" << layout);
          std::vector<S> a(count + 2), b(count + 2);
          for (S& v : a) v = T::random(rng, false);
          for (S& v : b) v = T::random(rng, false);
          const auto want = runReduce(isa, type, op, a, b, 1, count, Alias::kSeparate);
          std::vector<S> one(count + 2), two(count + 2);
          std::memset(one.data(), 0x5A, one.size() * sizeof(S));
          std::memset(two.data(), 0xC3, two.size() * sizeof(S));
          if (layout == 1) one = a;
          if (layout == 2) two = b;
          const std::vector<S> oneBefore = one, twoBefore = two;
          S* d = one.data() + 1;
          S* d2 = two.data() + 1;
          reduceCpuTwiceOn(isa, type, op, d, d2, layout == 1 ? d : a.data() + 1,
                           layout == 2 ? d2 : b.data() + 1, count);
          for (bool first : {true, false}) {
            const std::vector<S>& out = first ? one : two;
            const std::vector<S>& before = first ? oneBefore : twoBefore;
            const char* name = first ? "dst" : "dst2";
            ASSERT_EQ(0, std::memcmp(out.data() + 1, want.data() + 1, count * sizeof(S))) << name;
            EXPECT_EQ(0, std::memcmp(&out[0], &before[0], sizeof(S))) << "wrote before " << name;
            EXPECT_EQ(0, std::memcmp(&out[count + 1], &before[count + 1], sizeof(S)))
                << "wrote past " << name;
          }
        }
      }
    }
  });
}

std::string paramName(const ::testing::TestParamInfo<std::tuple<DataType, ReduceOp>>& info) {
  return std::string(dataTypeName(std::get<0>(info.param))) + "_" +
         reduceOpName(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(
    AllTypesAllOps, ReduceCpuTest,
    ::testing::Combine(::testing::Values(DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                         DataType::kBFloat16, DataType::kInt8, DataType::kUInt8,
                                         DataType::kInt32, DataType::kInt64),
                       ::testing::Values(ReduceOp::kSum, ReduceOp::kProd, ReduceOp::kMin,
                                         ReduceOp::kMax, ReduceOp::kAvg)),
    paramName);

class DivideInPlaceTest : public ::testing::TestWithParam<DataType> {};

TEST_P(DivideInPlaceTest, MatchesScalarReference) {
  const DataType type = GetParam();
  withTraits(type, [&](auto traits) {
    using T = decltype(traits);
    using S = typename T::S;
    using C = typename T::C;
    Rng rng(99 + static_cast<uint64_t>(type));
    for (ReduceIsa isa : kIsas) {
      if (!reduceIsaAvailable(isa)) continue;
      for (int divisor : {1, 2, 3, 7, 8, 1000}) {
        for (size_t count : kLengths) {
          SCOPED_TRACE(::testing::Message()
                       << reduceIsaName(isa) << " divisor=" << divisor << " count=" << count);
          std::vector<S> v(count + 1);
          for (S& x : v) x = T::random(rng, true);
          std::vector<S> out = v;
          divideInPlaceOn(isa, type, out.data(), count, divisor);
          ASSERT_TRUE(sameResult<T>(out[count], v[count])) << "wrote past count";
          for (size_t i = 0; i < count; ++i) {
            // C++ integer division truncates toward zero; floats divide in the compute type.
            C want;
            if constexpr (std::is_integral_v<C>) {
              want = static_cast<C>(static_cast<int64_t>(v[i]) / divisor);
            } else {
              want = T::widen(v[i]) / static_cast<C>(divisor);
            }
            ASSERT_TRUE(sameResult<T>(out[i], T::narrow(want)))
                << "i=" << i << " in=" << hexOf(v[i]) << " got=" << hexOf(out[i]);
          }
        }
      }
    }
  });
}

INSTANTIATE_TEST_SUITE_P(AllTypes, DivideInPlaceTest,
                         ::testing::Values(DataType::kFloat32, DataType::kFloat64,
                                           DataType::kFloat16, DataType::kBFloat16, DataType::kInt8,
                                           DataType::kUInt8, DataType::kInt32, DataType::kInt64),
                         [](const auto& info) { return std::string(dataTypeName(info.param)); });

// ---- conversions

TEST(HalfConversionTest, AllBitPatternsWidenExactlyAndRoundTrip) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = halfToFloat(static_cast<uint16_t>(h));
    const uint16_t back = floatToHalf(f);
    if (((h >> 10) & 0x1F) == 0x1F && (h & 0x3FF) != 0) {
      // NaN: quiet, same sign, payload kept (as F16C does).
      ASSERT_EQ(bitsOf(f), ((h & 0x8000u) << 16) | 0x7FC00000u | ((h & 0x3FFu) << 13)) << h;
      ASSERT_EQ(back, h | 0x200u) << h;
    } else {
      ASSERT_EQ(bitsOf(f), bitsOf(refHalfToFloat(static_cast<uint16_t>(h)))) << h;
      ASSERT_EQ(back, h) << h;
    }
  }
}

TEST(HalfConversionTest, KnownValues) {
  EXPECT_EQ(halfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(halfToFloat(0xC000), -2.0f);
  EXPECT_EQ(halfToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(halfToFloat(0x0001), 0x1p-24f);
  EXPECT_EQ(halfToFloat(0x03FF), 1023 * 0x1p-24f);
  EXPECT_EQ(halfToFloat(0x0400), 0x1p-14f);
  EXPECT_EQ(bitsOf(halfToFloat(0x8000)), 0x80000000u);
  EXPECT_EQ(halfToFloat(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(floatToHalf(1.0f), 0x3C00);
  EXPECT_EQ(floatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7BFF);
  EXPECT_EQ(floatToHalf(65519.996f), 0x7BFF);  // below the tie
  EXPECT_EQ(floatToHalf(65520.0f), 0x7C00);    // tie rounds to even: inf
  EXPECT_EQ(floatToHalf(1e10f), 0x7C00);
  EXPECT_EQ(floatToHalf(-std::numeric_limits<float>::max()), 0xFC00);
  EXPECT_EQ(floatToHalf(1.0f + 0x1p-11f), 0x3C00);      // tie, even is down
  EXPECT_EQ(floatToHalf(1.0f + 3 * 0x1p-11f), 0x3C02);  // tie, even is up
  EXPECT_EQ(floatToHalf(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
  EXPECT_EQ(floatToHalf(0x1p-24f), 0x0001);             // smallest subnormal
  EXPECT_EQ(floatToHalf(0x1p-25f), 0x0000);             // tie with zero: even
  EXPECT_EQ(floatToHalf(3 * 0x1p-25f), 0x0002);         // tie 1.5 ulp: even
  EXPECT_EQ(floatToHalf(-0x1p-26f), 0x8000);            // underflow keeps the sign
  EXPECT_EQ(floatToHalf(0x1p-14f - 0x1p-30f), 0x0400);  // rounds up into the normals
  EXPECT_EQ(floatToHalf(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(floatToHalf(std::bit_cast<float>(0x7FC00000u)), 0x7E00);
  EXPECT_EQ(floatToHalf(std::bit_cast<float>(0x7FA02000u)), 0x7F01);  // sNaN: quieted
  EXPECT_EQ(floatToHalf(std::bit_cast<float>(0xFF800001u)), 0xFE00);  // payload below f16's
}

// Every float whose low bits sit at or around the rounding point, plus a stride through all.
TEST(HalfConversionTest, FloatToHalfMatchesReference) {
  auto check = [](uint32_t x) {
    const float f = std::bit_cast<float>(x);
    const uint16_t got = floatToHalf(f), want = refFloatToHalf(f);
    if (std::isnan(f)) return std::isnan(halfToFloat(got)) && (got >> 15) == (want >> 15);
    return got == want;
  };
  for (uint32_t top = 0; top < (1u << 19); ++top) {
    for (uint32_t low : {0u, 1u, 0xFFFu, 0x1000u, 0x1001u, 0x1FFFu}) {
      ASSERT_TRUE(check((top << 13) | low)) << std::hex << ((top << 13) | low);
    }
  }
  for (uint64_t x = 0; x < (1ull << 32); x += 997)
    ASSERT_TRUE(check(static_cast<uint32_t>(x))) << x;
  // The subnormal range rounds at every bit position: walk it densely.
  for (uint32_t x = 0x33000000u; x < 0x38800000u; x += 61) ASSERT_TRUE(check(x)) << std::hex << x;
}

TEST(BFloat16ConversionTest, AllBitPatternsWidenExactlyAndRoundTrip) {
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    const float f = bfloat16ToFloat(static_cast<uint16_t>(b));
    ASSERT_EQ(bitsOf(f), b << 16);
    const bool nan = ((b >> 7) & 0xFF) == 0xFF && (b & 0x7F) != 0;
    ASSERT_EQ(floatToBfloat16(f), nan ? (b | 0x40u) : b) << b;
  }
}

TEST(BFloat16ConversionTest, RoundingMatchesReference) {
  EXPECT_EQ(floatToBfloat16(1.0f), 0x3F80);
  EXPECT_EQ(floatToBfloat16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie, even down
  EXPECT_EQ(floatToBfloat16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie, even up
  EXPECT_EQ(floatToBfloat16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_EQ(floatToBfloat16(std::numeric_limits<float>::max()), 0x7F80);  // overflow to inf
  EXPECT_EQ(floatToBfloat16(std::bit_cast<float>(0xFF7F7FFFu)), 0xFF7F);
  EXPECT_EQ(floatToBfloat16(std::bit_cast<float>(0x00018000u)), 0x0002);  // subnormal tie
  EXPECT_EQ(floatToBfloat16(std::bit_cast<float>(0x7F800001u)), 0x7FC0);  // sNaN: quieted
  EXPECT_EQ(floatToBfloat16(std::bit_cast<float>(0xFFC00001u)), 0xFFC0);
  for (uint32_t top = 0; top <= 0xFFFF; ++top) {
    for (uint32_t low : {0u, 1u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu}) {
      const float f = std::bit_cast<float>((top << 16) | low);
      if (std::isnan(f)) continue;  // covered above
      ASSERT_EQ(floatToBfloat16(f), refFloatToBf16(f)) << std::hex << ((top << 16) | low);
    }
  }
}

// Every f16 pattern against non-NaN partners: F16C and the software conversions agree on all
// of them, NaN payloads included (only one operand is NaN, so the payload is determined).
TEST(ReduceCpuIsaTest, EveryHalfPatternMatchesAcrossIsas) {
  if (!reduceIsaAvailable(ReduceIsa::kAvx2)) GTEST_SKIP() << "this CPU lacks AVX2/F16C";
  std::vector<uint16_t> a(65536), b(65536);
  Rng rng(5);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint16_t>(i);
  for (uint16_t& v : b) v = HalfTraits::random(rng, false);
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kProd, ReduceOp::kMin, ReduceOp::kMax}) {
    std::vector<uint16_t> base(a.size()), avx2(a.size());
    reduceCpuOn(ReduceIsa::kBaseline, DataType::kFloat16, op, base.data(), a.data(), b.data(),
                a.size());
    reduceCpuOn(ReduceIsa::kAvx2, DataType::kFloat16, op, avx2.data(), a.data(), b.data(),
                a.size());
    EXPECT_EQ(base, avx2) << reduceOpName(op);
  }
}

TEST(ReduceCpuIsaTest, PicksTheBestAvailableLevel) {
  EXPECT_TRUE(reduceIsaAvailable(ReduceIsa::kBaseline));
  EXPECT_EQ(selectedReduceIsa(),
            reduceIsaAvailable(ReduceIsa::kAvx2) ? ReduceIsa::kAvx2 : ReduceIsa::kBaseline);
}

// ---- semantics spelled out

template <typename T>
T reduceOne(DataType type, ReduceOp op, T a, T b) {
  T out;
  reduceCpu(type, op, &out, &a, &b, 1);
  return out;
}

TEST(ReduceCpuSemanticsTest, IntegersWrap) {
  EXPECT_EQ(reduceOne<int8_t>(DataType::kInt8, ReduceOp::kSum, 127, 1), -128);
  EXPECT_EQ(reduceOne<int8_t>(DataType::kInt8, ReduceOp::kProd, -128, -1), -128);
  EXPECT_EQ(reduceOne<uint8_t>(DataType::kUInt8, ReduceOp::kSum, 255, 1), 0);
  EXPECT_EQ(reduceOne<uint8_t>(DataType::kUInt8, ReduceOp::kProd, 16, 16), 0);
  constexpr int32_t kMax32 = std::numeric_limits<int32_t>::max();
  EXPECT_EQ(reduceOne<int32_t>(DataType::kInt32, ReduceOp::kSum, kMax32, 1), INT32_MIN);
  EXPECT_EQ(reduceOne<int32_t>(DataType::kInt32, ReduceOp::kProd, 65536, 65536), 0);
  constexpr int64_t kMax64 = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(reduceOne<int64_t>(DataType::kInt64, ReduceOp::kSum, kMax64, 1), INT64_MIN);
  EXPECT_EQ(reduceOne<int64_t>(DataType::kInt64, ReduceOp::kProd, kMax64, 2), -2);
  EXPECT_EQ(reduceOne<int64_t>(DataType::kInt64, ReduceOp::kProd, INT64_MIN, -1), INT64_MIN);
  EXPECT_EQ(reduceOne<int64_t>(DataType::kInt64, ReduceOp::kProd, int64_t{1} << 62, 4), 0);
}

TEST(ReduceCpuSemanticsTest, FloatMinMaxPropagateNanAndOrderSignedZero) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (ReduceOp op : {ReduceOp::kMin, ReduceOp::kMax}) {
    EXPECT_TRUE(std::isnan(reduceOne(DataType::kFloat32, op, nan, 1.0f)));
    EXPECT_TRUE(std::isnan(reduceOne(DataType::kFloat32, op, 1.0f, nan)));
    EXPECT_TRUE(std::isnan(reduceOne(DataType::kFloat64, op, 1.0, double{nan})));
  }
  for (auto [a, b] : {std::pair{0.0f, -0.0f}, std::pair{-0.0f, 0.0f}}) {
    EXPECT_EQ(bitsOf(reduceOne(DataType::kFloat32, ReduceOp::kMin, a, b)), 0x80000000u);
    EXPECT_EQ(bitsOf(reduceOne(DataType::kFloat32, ReduceOp::kMax, a, b)), 0x00000000u);
  }
  // The NaN is always the default one, whatever the operands' payloads and order.
  const float payloadNan = std::bit_cast<float>(0xFFA00001u);
  EXPECT_EQ(bitsOf(reduceOne(DataType::kFloat32, ReduceOp::kMax, payloadNan, 1.0f)), 0x7FC00000u);
  EXPECT_EQ(bitsOf(reduceOne(DataType::kFloat32, ReduceOp::kMin, nan, payloadNan)), 0x7FC00000u);
  EXPECT_EQ(bitsOf(reduceOne(DataType::kFloat32, ReduceOp::kMin, payloadNan, nan)), 0x7FC00000u);
  const uint16_t halfNan = 0x7E00, one = 0x3C00;
  EXPECT_EQ(reduceOne(DataType::kFloat16, ReduceOp::kMin, uint16_t{0xFD01}, one), halfNan);
  EXPECT_EQ(reduceOne(DataType::kFloat16, ReduceOp::kMax, one, halfNan), halfNan);
  EXPECT_EQ(reduceOne(DataType::kBFloat16, ReduceOp::kMin, uint16_t{0x7FC0}, uint16_t{0x3F80}),
            0x7FC0);
}

TEST(ReduceCpuSemanticsTest, AvgCombinesAsSumAndEmptyIsANoOp) {
  const float a[3] = {1, 2, 3}, b[3] = {4, 5, 6};
  float sum[3], avg[3];
  reduceCpu(DataType::kFloat32, ReduceOp::kSum, sum, a, b, 3);
  reduceCpu(DataType::kFloat32, ReduceOp::kAvg, avg, a, b, 3);
  EXPECT_EQ(0, std::memcmp(sum, avg, sizeof sum));
  reduceCpu(DataType::kInt64, ReduceOp::kMax, nullptr, nullptr, nullptr, 0);
  divideInPlace(DataType::kFloat16, nullptr, 0, 3);
}

TEST(ReduceCpuSemanticsTest, IntegerDivisionTruncatesTowardZero) {
  int8_t i8[] = {-7, 7, -128, 127, -1};
  divideInPlace(DataType::kInt8, i8, 5, 2);
  EXPECT_EQ(std::vector<int8_t>(i8, i8 + 5), (std::vector<int8_t>{-3, 3, -64, 63, 0}));
  int32_t i32[] = {INT32_MIN, INT32_MAX, -5};
  divideInPlace(DataType::kInt32, i32, 3, 3);
  EXPECT_EQ(std::vector<int32_t>(i32, i32 + 3), (std::vector<int32_t>{-715827882, 715827882, -1}));
  int64_t i64[] = {INT64_MIN, -9};
  divideInPlace(DataType::kInt64, i64, 2, 4);
  EXPECT_EQ(i64[0], INT64_MIN / 4);
  EXPECT_EQ(i64[1], -2);
  uint16_t half = 0x3C00;  // 1.0 / 3 rounds to 0x3555
  divideInPlace(DataType::kFloat16, &half, 1, 3);
  EXPECT_EQ(half, 0x3555);
}

TEST(ReduceCpuDeathTest, InvalidArgumentsAbort) {
  float x = 0;
  EXPECT_DEATH(reduceCpu(static_cast<DataType>(42), ReduceOp::kSum, &x, &x, &x, 1), "CHECK");
  EXPECT_DEATH(reduceCpu(DataType::kFloat32, static_cast<ReduceOp>(9), &x, &x, &x, 1), "CHECK");
  EXPECT_DEATH(divideInPlace(DataType::kFloat32, &x, 1, 0), "CHECK");
}

// copyStreamingUnfenced (then streamingFence) is memcpy for every length (0 to past a few 64-byte
// rounds) and every misalignment of dst and src, and writes nothing outside [dst, dst + bytes).
TEST(CopyStreaming, CopiesEveryLengthAndAlignmentAndNothingElse) {
  std::vector<uint8_t> src(512), dst(512 + 64);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 7 + 1);
  for (size_t dstOff = 0; dstOff < 17; ++dstOff) {
    for (size_t srcOff = 0; srcOff < 17; srcOff += 3) {
      for (size_t bytes = 0; bytes <= 300; ++bytes) {
        std::fill(dst.begin(), dst.end(), uint8_t{0xEE});
        copyStreamingUnfenced(dst.data() + dstOff, src.data() + srcOff, bytes);
        streamingFence();
        for (size_t i = 0; i < dst.size(); ++i) {
          const bool inside = i >= dstOff && i < dstOff + bytes;
          const uint8_t want = inside ? src[srcOff + i - dstOff] : uint8_t{0xEE};
          ASSERT_EQ(dst[i], want) << "dst+" << dstOff << " src+" << srcOff << " " << bytes
                                  << " B, byte " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace plexus
