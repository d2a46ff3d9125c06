// The portable reduction kernels, written once and compiled once per instruction-set level.
//
// The including file defines PLEXUS_REDUCE_ISA_NS (reduce_baseline, reduce_avx2) and, for a
// level above the baseline, switches the target with a pragma before including this file. Every
// definition below then lands in that namespace, so the two compilations never share an inline
// symbol: the linker cannot pick an AVX2 copy of a helper for a caller on a baseline CPU.
//
// The loops are plain element-wise loops that GCC vectorises at -O3 (checked with
// -fopt-info-vec and in the assembly, for SSE2 and AVX2): each element is converted to its
// compute type, combined, and converted back, with no branch in the loop body.
#pragma once

#ifndef PLEXUS_REDUCE_ISA_NS
#error "define PLEXUS_REDUCE_ISA_NS before including src/reduce_cpu_kernels.h"
#endif

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "plexus/types.h"
#include "src/reduce_cpu_internal.h"

// dst may equal a or b exactly, so the pointers cannot be __restrict. An exact alias has only
// same-index dependences, which vectorisation preserves (each vector is loaded before the store
// to the same lanes), so promising "no loop-carried dependence" is true and saves the runtime
// overlap test the compiler would otherwise emit. A partial overlap would break it (the header
// forbids it).
#if defined(__clang__)
#define PLEXUS_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define PLEXUS_IVDEP _Pragma("GCC ivdep")
#else
#define PLEXUS_IVDEP
#endif

// The element-level helpers below are small but many deep; GCC's inliner gives up on the f16
// chain of them, and a call in the loop body stops vectorisation. Force them in.
#if defined(__GNUC__) || defined(__clang__)
#define PLEXUS_REDUCE_INLINE [[gnu::always_inline]] inline
#else
#define PLEXUS_REDUCE_INLINE inline
#endif

namespace plexus::PLEXUS_REDUCE_ISA_NS {

// ---- f16 and bf16 conversions ----
// Branch-free and in 32-bit lanes (the 16-bit value in the low bits of a uint32_t) so that loops
// over them vectorise, SSE2 included. Integer or exact float steps only: the results do not
// depend on the rounding mode, nor on FTZ/DAZ.

/// c ? a : b through a mask. GCC turns a ?: next to float arithmetic into a branch, sinks the
/// arithmetic into it, and then cannot vectorise the loop (float operations "may trap").
PLEXUS_REDUCE_INLINE uint32_t selectBits(bool c, uint32_t a, uint32_t b) {
  const uint32_t mask = 0u - static_cast<uint32_t>(c);
  return (a & mask) | (b & ~mask);
}

/// binary16 -> binary32, exact. A NaN comes back quiet with its payload, as F16C's vcvtph2ps does.
PLEXUS_REDUCE_INLINE float widenHalf(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t magnitude = h & 0x7FFFu;
  // Normal numbers: move the fields into place and rebias the exponent from 15 to 127.
  uint32_t bits = (magnitude << 13) + 0x38000000u;
  // Inf and NaN keep an all-ones exponent; a NaN gets the quiet bit.
  const uint32_t special = (magnitude << 13) | 0x7F800000u | (magnitude > 0x7C00u ? 0x400000u : 0u);
  bits = selectBits(magnitude >= 0x7C00u, special, bits);
  // Zero and subnormals are magnitude * 2^-24; the product is exact.
  const float small = static_cast<float>(static_cast<int32_t>(magnitude)) * 0x1p-24f;
  bits = selectBits(magnitude < 0x0400u, std::bit_cast<uint32_t>(small), bits);
  return std::bit_cast<float>(bits | sign);
}

/// binary32 -> binary16 (in the low 16 bits), round to nearest even, overflow to inf. A NaN stays
/// NaN: quieted, with the top of its payload, as F16C's vcvtps2ph does; the two agree bit for bit
/// on all 2^32 inputs.
PLEXUS_REDUCE_INLINE uint32_t narrowHalf(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7FFFFFFFu;
  // Normal results: rebias, then round away 13 mantissa bits (0xFFF plus the kept lsb is "half
  // rounds to even"). A carry out of the mantissa bumps the exponent, up to inf at 0x7C00.
  const uint32_t rebiased = ax - 0x38000000u;  // wraps for small ax; not selected then
  uint32_t bits = (rebiased + 0xFFFu + ((rebiased >> 13) & 1u)) >> 13;
  // Subnormal results (|f| < 2^-14) are |f| / 2^-24 rounded to an integer, carrying into 0x0400
  // (the smallest normal) at the top. The scaling is exact; truncate, then round the exact
  // remainder to even by hand (a rounding float->int conversion would follow the rounding
  // mode). Clamping the input keeps the conversion in range in the lanes not selected.
  const bool isSmall = ax < 0x38800000u;
  const float scaled = std::bit_cast<float>(selectBits(isSmall, ax, 0x38800000u)) * 0x1p24f;
  const uint32_t whole = static_cast<uint32_t>(static_cast<int32_t>(scaled));
  const float rest = scaled - static_cast<float>(static_cast<int32_t>(whole));
  const uint32_t up = static_cast<uint32_t>(rest > 0.5f) |
                      (static_cast<uint32_t>(rest == 0.5f) & whole);  // & whole: its low bit
  bits = selectBits(isSmall, whole + (up & 1u), bits);
  // 65520 and above round to inf (65504 is the largest finite half, 65520 the tie above it).
  bits = selectBits(ax >= 0x477FF000u, 0x7C00u, bits);
  bits = selectBits(ax > 0x7F800000u, 0x7E00u | ((ax >> 13) & 0x3FFu), bits);
  return bits | sign;
}

/// bfloat16 -> binary32, exact (bfloat16 is the top half of a binary32).
PLEXUS_REDUCE_INLINE float widenBFloat16(uint32_t b) { return std::bit_cast<float>(b << 16); }

/// binary32 -> bfloat16 (in the low 16 bits), round to nearest even (overflow reaches inf by the
/// same carry). A NaN keeps its sign and the top of its payload and gets the quiet bit (as
/// vcvtneps2bf16 does).
PLEXUS_REDUCE_INLINE uint32_t narrowBFloat16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t rounded = (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
  const uint32_t nan = (x >> 16) | 0x40u;
  return selectBits(f != f, nan, rounded);  // one float compare: cheaper than |x| > inf
}

/// narrowBFloat16 without the NaN case, for results computed from bfloat16 operands: such a NaN
/// is an operand's (quieted; its low 16 bits are zero) or the default NaN (low bits zero too),
/// so the rounding add cannot carry out of the low half and the result is the same as
/// narrowBFloat16's. Three vector operations fewer per eight elements on a compute-bound loop.
PLEXUS_REDUCE_INLINE uint32_t narrowBFloat16Result(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  return (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
}

// ---- element types: how a stored element becomes a compute value and back ----

/// A type computed in itself.
template <typename T>
struct Native {
  using Storage = T;
  using Compute = T;
  PLEXUS_REDUCE_INLINE static T widen(T x) { return x; }
  PLEXUS_REDUCE_INLINE static T narrow(T x) { return x; }
};

/// IEEE binary16 stored as its bits, computed in f32.
struct Half {
  using Storage = uint16_t;
  using Compute = float;
  PLEXUS_REDUCE_INLINE static float widen(uint32_t h) { return widenHalf(h); }
  PLEXUS_REDUCE_INLINE static uint32_t narrow(float f) { return narrowHalf(f); }
};

/// bfloat16 stored as its bits, computed in f32. narrow() only ever sees results of the
/// operators below applied to widened bfloat16 values.
struct BFloat16 {
  using Storage = uint16_t;
  using Compute = float;
  PLEXUS_REDUCE_INLINE static float widen(uint32_t b) { return widenBFloat16(b); }
  PLEXUS_REDUCE_INLINE static uint32_t narrow(float f) { return narrowBFloat16Result(f); }
};

// ---- operators ----
// Each apply() also compiles for GCC vector types of floats (the F16C kernel feeds it eight lanes
// at a time): comparisons then yield lane masks and ?: selects per lane.

/// Integer sum and product wrap: they are computed in the unsigned type (no signed-overflow UB)
/// and converted back, which C++20 defines as modular.
struct SumOp {
  template <typename T>
  PLEXUS_REDUCE_INLINE static T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      using U = std::make_unsigned_t<T>;
      return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
    } else {
      return a + b;
    }
  }
};

struct ProdOp {
  template <typename T>
  PLEXUS_REDUCE_INLINE static T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      using U = std::make_unsigned_t<T>;
      return static_cast<T>(static_cast<U>(a) * static_cast<U>(b));
    } else {
      return a * b;
    }
  }
};

/// The default quiet NaN as F, a float or double or a GCC vector of floats.
template <typename F>
PLEXUS_REDUCE_INLINE F defaultNan() {
  if constexpr (std::is_floating_point_v<F>) {
    return std::numeric_limits<F>::quiet_NaN();
  } else {
    static_assert(sizeof(F{}[0]) == sizeof(float), "vectors of float only");
    return F{} + std::numeric_limits<float>::quiet_NaN();  // broadcast
  }
}

// Float min and max follow IEEE 754-2019 minimum/maximum: NaN if either operand is NaN, and
// -0 < +0. The NaN is always the default quiet NaN (0x7FC00000, f16 0x7E00, bf16 0x7FC0), so
// the result's bits do not depend on operand order: ranks that combine the same values in
// different orders get the same bytes, which a bare `a < b ? a : b` (or minps) does not give.
//
// Written for minps/maxps: `a < b ? a : b` is minps(a, b), which returns b on equal or unordered
// operands. The two operand orders differ only on +-0 (and NaN), where OR (min) or AND (max) of
// the two results gives the signed-zero answer; the NaN case is selected last. `a != a` is the
// NaN test; the build does not use -ffast-math.
template <typename F, bool kIsMax>
PLEXUS_REDUCE_INLINE F floatMinMax(F a, F b) {
  using Bits =
      std::conditional_t<std::is_floating_point_v<F>,
                         std::conditional_t<sizeof(F) == 4, uint32_t, uint64_t>, decltype(a == b)>;
  // __builtin_bit_cast rather than std::bit_cast, which is a function template declared
  // without AVX: passing a 256-bit vector through it would change its ABI.
  const Bits x = __builtin_bit_cast(Bits, kIsMax ? (a > b ? a : b) : (a < b ? a : b));
  const Bits y = __builtin_bit_cast(Bits, kIsMax ? (b > a ? b : a) : (b < a ? b : a));
  const Bits r = kIsMax ? (x & y) : (x | y);
  const Bits nan = __builtin_bit_cast(Bits, defaultNan<F>());
  // Mask select (see selectBits); for vectors the comparison already yields the mask.
  const Bits isNan = ((a != a) | (b != b)) ? ~Bits{} : Bits{};
  return __builtin_bit_cast(F, (nan & isNan) | (r & ~isNan));
}

struct MinOp {
  template <typename T>
  PLEXUS_REDUCE_INLINE static T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      return a < b ? a : b;
    } else {
      return floatMinMax<T, false>(a, b);
    }
  }
};

struct MaxOp {
  template <typename T>
  PLEXUS_REDUCE_INLINE static T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      return a > b ? a : b;
    } else {
      return floatMinMax<T, true>(a, b);
    }
  }
};

// ---- kernels ----

/// True for the 16-bit float types (stored as bits, computed in f32).
template <typename E>
inline constexpr bool kIsFloat16Type =
    sizeof(typename E::Storage) == 2 && std::is_floating_point_v<typename E::Compute>;

// f16 and bf16 go two elements per 32-bit word, so that every vector operation works on 32-bit
// lanes: no widening shuffles and no packing, which would cost more than the arithmetic. Each
// half of a word is an element wherever it sits, so byte order does not matter. The narrow
// functions return values below 0x10000.
PLEXUS_REDUCE_INLINE uint32_t loadWord(const void* p, size_t i) {
  uint32_t w;
  std::memcpy(&w, static_cast<const unsigned char*>(p) + 4 * i, 4);
  return w;
}

PLEXUS_REDUCE_INLINE void storeWord(void* p, size_t i, uint32_t w) {
  std::memcpy(static_cast<unsigned char*>(p) + 4 * i, &w, 4);
}

template <typename E, typename Op>
PLEXUS_REDUCE_INLINE uint32_t reducePair(uint32_t x, uint32_t y) {
  const uint32_t lo = E::narrow(Op::apply(E::widen(x & 0xFFFFu), E::widen(y & 0xFFFFu)));
  const uint32_t hi = E::narrow(Op::apply(E::widen(x >> 16), E::widen(y >> 16)));
  return lo | (hi << 16);
}

// dst[i] = a[i] op b[i], and with kTwice dst2[i] too (the shm all-reduce's block goes to the
// region and to the output in one pass).
template <typename E, typename Op, bool kTwice>
void reduceInto(void* dst, void* dst2, const void* a, const void* b, size_t count) {
  using S = typename E::Storage;
  S* d = static_cast<S*>(dst);
  S* d2 = static_cast<S*>(dst2);
  const S* x = static_cast<const S*>(a);
  const S* y = static_cast<const S*>(b);
  if constexpr (kIsFloat16Type<E>) {
    const size_t words = count / 2;
    PLEXUS_IVDEP
    for (size_t i = 0; i < words; ++i) {
      const uint32_t w = reducePair<E, Op>(loadWord(x, i), loadWord(y, i));
      storeWord(d, i, w);
      if constexpr (kTwice) storeWord(d2, i, w);
    }
    if (count % 2 != 0) {
      const S v = static_cast<S>(reducePair<E, Op>(x[count - 1], y[count - 1]));
      d[count - 1] = v;
      if constexpr (kTwice) d2[count - 1] = v;
    }
  } else {
    PLEXUS_IVDEP
    for (size_t i = 0; i < count; ++i) {
      const S v = E::narrow(Op::apply(E::widen(x[i]), E::widen(y[i])));
      d[i] = v;
      if constexpr (kTwice) d2[i] = v;
    }
  }
}

template <typename E, typename Op>
void reduceKernel(void* dst, const void* a, const void* b, size_t count) {
  reduceInto<E, Op, false>(dst, nullptr, a, b, count);
}

template <typename E, typename Op>
void reduceTwiceKernel(void* dst, void* dst2, const void* a, const void* b, size_t count) {
  reduceInto<E, Op, true>(dst, dst2, a, b, count);
}

/// Floats divide in their compute type. Integers up to 32 bits divide in double and truncate,
/// which vectorises (x86 has no SIMD integer division) and is exact: for |x|, d < 2^31 a
/// non-integer quotient lies at least 1/d from every integer while the rounding error is below
/// |x/d| * 2^-53 < 1/d, so truncation sees the exact quotient's integer part.
template <typename E>
void divideKernel(void* dst, size_t count, int divisor) {
  using S = typename E::Storage;
  using C = typename E::Compute;
  S* d = static_cast<S*>(dst);
  if constexpr (kIsFloat16Type<E>) {
    const float divisorValue = static_cast<float>(divisor);
    auto divide = [divisorValue](uint32_t w) {
      const uint32_t lo = E::narrow(E::widen(w & 0xFFFFu) / divisorValue);
      const uint32_t hi = E::narrow(E::widen(w >> 16) / divisorValue);
      return lo | (hi << 16);
    };
    const size_t words = count / 2;
    PLEXUS_IVDEP
    for (size_t i = 0; i < words; ++i) storeWord(d, i, divide(loadWord(d, i)));
    if (count % 2 != 0) d[count - 1] = static_cast<S>(divide(d[count - 1]));
  } else if constexpr (std::is_floating_point_v<C>) {
    const C divisorValue = static_cast<C>(divisor);
    PLEXUS_IVDEP
    for (size_t i = 0; i < count; ++i) d[i] = E::narrow(E::widen(d[i]) / divisorValue);
  } else if constexpr (sizeof(C) <= 4) {
    const double divisorValue = divisor;
    PLEXUS_IVDEP
    for (size_t i = 0; i < count; ++i) {
      d[i] = static_cast<C>(static_cast<double>(d[i]) / divisorValue);
    }
  } else {
    const C divisorValue = divisor;
    for (size_t i = 0; i < count; ++i) d[i] = d[i] / divisorValue;
  }
}

/// Fills the row of `table` for one element type with the portable kernels.
template <typename E>
void fillKernels(ReduceKernels& table, DataType type) {
  const int t = static_cast<int>(type);
  table.reduce[t][static_cast<int>(ReduceOp::kSum)] = &reduceKernel<E, SumOp>;
  table.reduce[t][static_cast<int>(ReduceOp::kProd)] = &reduceKernel<E, ProdOp>;
  table.reduce[t][static_cast<int>(ReduceOp::kMin)] = &reduceKernel<E, MinOp>;
  table.reduce[t][static_cast<int>(ReduceOp::kMax)] = &reduceKernel<E, MaxOp>;
  table.reduceTwice[t][static_cast<int>(ReduceOp::kSum)] = &reduceTwiceKernel<E, SumOp>;
  table.reduceTwice[t][static_cast<int>(ReduceOp::kProd)] = &reduceTwiceKernel<E, ProdOp>;
  table.reduceTwice[t][static_cast<int>(ReduceOp::kMin)] = &reduceTwiceKernel<E, MinOp>;
  table.reduceTwice[t][static_cast<int>(ReduceOp::kMax)] = &reduceTwiceKernel<E, MaxOp>;
  table.divide[t] = &divideKernel<E>;
}

/// The portable kernels for every DataType but f16, whose best kernel depends on the level (the
/// caller fills it: fillKernels<Half> or hardware conversions).
inline ReduceKernels portableKernelsButHalf() {
  ReduceKernels table{};
  fillKernels<Native<float>>(table, DataType::kFloat32);
  fillKernels<Native<double>>(table, DataType::kFloat64);
  fillKernels<BFloat16>(table, DataType::kBFloat16);
  fillKernels<Native<int8_t>>(table, DataType::kInt8);
  fillKernels<Native<uint8_t>>(table, DataType::kUInt8);
  fillKernels<Native<int32_t>>(table, DataType::kInt32);
  fillKernels<Native<int64_t>>(table, DataType::kInt64);
  return table;
}

}  // namespace plexus::PLEXUS_REDUCE_ISA_NS
