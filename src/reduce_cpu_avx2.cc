// The reduction kernels compiled for AVX2 + F16C, selected at run time by reduce_cpu.cc.
//
// Only the functions defined after the target pragma use AVX2, so the library still runs on any
// x86-64; the dispatcher calls in here only after the CPU reports AVX2 and F16C. The portable
// loops of reduce_cpu_kernels.h vectorise 256 bits wide here; f16 gets hand-written F16C
// conversions, which the compiler does not generate from the integer conversion code.
#include "src/reduce_cpu_internal.h"

#if PLEXUS_REDUCE_HAVE_AVX2

// Every header is included before the target switch so that no inline function from a library
// header is compiled (and possibly kept by the linker) with AVX2 instructions.
#include <immintrin.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,f16c")
#endif

#define PLEXUS_REDUCE_ISA_NS reduce_avx2
#include "src/reduce_cpu_kernels.h"

namespace plexus::reduce_avx2 {
namespace {

// vcvtps2ph's rounding immediate: nearest even, whatever MXCSR says, without raising exceptions.
constexpr int kHalfRounding = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
constexpr size_t kLanes = 8;

inline __m256 loadHalves(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline void storeHalves(uint16_t* p, __m256 v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, kHalfRounding));
}

// The tail (fewer than eight elements) goes through the same instructions via a small buffer,
// so every element of a call is rounded by the same code whatever its position. With kTwice the
// result goes to dst2 as well.
template <typename Op, bool kTwice>
void reduceHalfF16cInto(void* dst, void* dst2, const void* a, const void* b, size_t count) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  uint16_t* d2 = static_cast<uint16_t*>(dst2);
  const uint16_t* x = static_cast<const uint16_t*>(a);
  const uint16_t* y = static_cast<const uint16_t*>(b);
  size_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    const __m256 v = Op::apply(loadHalves(x + i), loadHalves(y + i));
    storeHalves(d + i, v);
    if constexpr (kTwice) storeHalves(d2 + i, v);
  }
  if (i < count) {
    const size_t rest = count - i;
    uint16_t tx[kLanes] = {};
    uint16_t ty[kLanes] = {};
    uint16_t td[kLanes];
    std::memcpy(tx, x + i, rest * sizeof(uint16_t));
    std::memcpy(ty, y + i, rest * sizeof(uint16_t));
    storeHalves(td, Op::apply(loadHalves(tx), loadHalves(ty)));
    std::memcpy(d + i, td, rest * sizeof(uint16_t));
    if constexpr (kTwice) std::memcpy(d2 + i, td, rest * sizeof(uint16_t));
  }
}

template <typename Op>
void reduceHalfF16c(void* dst, const void* a, const void* b, size_t count) {
  reduceHalfF16cInto<Op, false>(dst, nullptr, a, b, count);
}

template <typename Op>
void reduceHalfTwiceF16c(void* dst, void* dst2, const void* a, const void* b, size_t count) {
  reduceHalfF16cInto<Op, true>(dst, dst2, a, b, count);
}

void divideHalfF16c(void* dst, size_t count, int divisor) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  const __m256 divisorValue = _mm256_set1_ps(static_cast<float>(divisor));
  size_t i = 0;
  for (; i + kLanes <= count; i += kLanes) storeHalves(d + i, loadHalves(d + i) / divisorValue);
  if (i < count) {
    const size_t rest = count - i;
    uint16_t t[kLanes] = {};
    std::memcpy(t, d + i, rest * sizeof(uint16_t));
    storeHalves(t, loadHalves(t) / divisorValue);
    std::memcpy(d + i, t, rest * sizeof(uint16_t));
  }
}

ReduceKernels makeKernels() {
  ReduceKernels table = portableKernelsButHalf();
  const int t = static_cast<int>(DataType::kFloat16);
  table.reduce[t][static_cast<int>(ReduceOp::kSum)] = &reduceHalfF16c<SumOp>;
  table.reduce[t][static_cast<int>(ReduceOp::kProd)] = &reduceHalfF16c<ProdOp>;
  table.reduce[t][static_cast<int>(ReduceOp::kMin)] = &reduceHalfF16c<MinOp>;
  table.reduce[t][static_cast<int>(ReduceOp::kMax)] = &reduceHalfF16c<MaxOp>;
  table.reduceTwice[t][static_cast<int>(ReduceOp::kSum)] = &reduceHalfTwiceF16c<SumOp>;
  table.reduceTwice[t][static_cast<int>(ReduceOp::kProd)] = &reduceHalfTwiceF16c<ProdOp>;
  table.reduceTwice[t][static_cast<int>(ReduceOp::kMin)] = &reduceHalfTwiceF16c<MinOp>;
  table.reduceTwice[t][static_cast<int>(ReduceOp::kMax)] = &reduceHalfTwiceF16c<MaxOp>;
  table.divide[t] = &divideHalfF16c;
  return table;
}

}  // namespace

const ReduceKernels* kernels() {
  static const ReduceKernels table = makeKernels();
  return &table;
}

}  // namespace plexus::reduce_avx2

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // not x86-64: no AVX2 level

namespace plexus::reduce_avx2 {
const ReduceKernels* kernels() { return nullptr; }
}  // namespace plexus::reduce_avx2

#endif
