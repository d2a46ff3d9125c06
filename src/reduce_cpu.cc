// The CPU reduction entry points: validation, the once-per-process choice between the baseline
// kernels (compiled here) and the AVX2 + F16C kernels (reduce_cpu_avx2.cc), and the scalar f16 /
// bf16 conversions.
#include "src/reduce_cpu.h"

#include <algorithm>
#include <cstring>

#include "src/check.h"
#include "src/reduce_cpu_internal.h"

#if PLEXUS_REDUCE_HAVE_AVX2
#include <cpuid.h>
#endif
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#define PLEXUS_REDUCE_ISA_NS reduce_baseline
#include "src/reduce_cpu_kernels.h"

namespace plexus {
namespace {

bool cpuHasAvx2F16c() {
#if PLEXUS_REDUCE_HAVE_AVX2
  // The builtin also checks that the OS saves the YMM registers (XGETBV). F16C is read from
  // CPUID directly: Clang's builtin does not know the name.
  __builtin_cpu_init();
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
  return __builtin_cpu_supports("avx2") && f16c;
#else
  return false;
#endif
}

const ReduceKernels& kernelsFor(ReduceIsa isa) {
  PLEXUS_CHECK(reduceIsaAvailable(isa));
  if (isa == ReduceIsa::kAvx2) {
    static const bool complete = reduce_avx2::kernels()->complete();
    PLEXUS_CHECK(complete);
    return *reduce_avx2::kernels();
  }
  return reduce_baseline::kernels();
}

// Chosen once; the ring calls reduceCpu per chunk, so this must stay a load and an indirect call.
const ReduceKernels& selectedKernels() {
  static const ReduceKernels& kernels = kernelsFor(selectedReduceIsa());
  return kernels;
}

void reduceWith(const ReduceKernels& kernels, DataType type, ReduceOp op, void* dst, const void* a,
                const void* b, size_t count) {
  PLEXUS_CHECK(isValidDataType(type));
  PLEXUS_CHECK(isValidReduceOp(op));
  if (op == ReduceOp::kAvg) op = ReduceOp::kSum;  // the division is divideInPlace's job
  kernels.reduce[static_cast<int>(type)][static_cast<int>(op)](dst, a, b, count);
}

void reduceTwiceWith(const ReduceKernels& kernels, DataType type, ReduceOp op, void* dst,
                     void* dst2, const void* a, const void* b, size_t count) {
  PLEXUS_CHECK(isValidDataType(type));
  PLEXUS_CHECK(isValidReduceOp(op));
  if (op == ReduceOp::kAvg) op = ReduceOp::kSum;
  kernels.reduceTwice[static_cast<int>(type)][static_cast<int>(op)](dst, dst2, a, b, count);
}

void divideWith(const ReduceKernels& kernels, DataType type, void* dst, size_t count, int divisor) {
  PLEXUS_CHECK(isValidDataType(type));
  // Positive divisors only: the world size. (INT_MIN / -1 would also be undefined.)
  PLEXUS_CHECK(divisor > 0);
  kernels.divide[static_cast<int>(type)](dst, count, divisor);
}

}  // namespace

namespace reduce_baseline {
const ReduceKernels& kernels() {
  static const ReduceKernels table = [] {
    ReduceKernels t = portableKernelsButHalf();
    fillKernels<Half>(t, DataType::kFloat16);
    PLEXUS_CHECK(t.complete());
    return t;
  }();
  return table;
}
}  // namespace reduce_baseline

const char* reduceIsaName(ReduceIsa isa) {
  switch (isa) {
    case ReduceIsa::kBaseline:
      return "baseline";
    case ReduceIsa::kAvx2:
      return "avx2";
  }
  return "invalid";
}

bool reduceIsaAvailable(ReduceIsa isa) {
  switch (isa) {
    case ReduceIsa::kBaseline:
      return true;
    case ReduceIsa::kAvx2: {
      static const bool available = cpuHasAvx2F16c();
      return available;
    }
  }
  return false;
}

ReduceIsa selectedReduceIsa() {
  return reduceIsaAvailable(ReduceIsa::kAvx2) ? ReduceIsa::kAvx2 : ReduceIsa::kBaseline;
}

void reduceCpu(DataType type, ReduceOp op, void* dst, const void* a, const void* b, size_t count) {
  reduceWith(selectedKernels(), type, op, dst, a, b, count);
}

void reduceCpuTwice(DataType type, ReduceOp op, void* dst, void* dst2, const void* a, const void* b,
                    size_t count) {
  reduceTwiceWith(selectedKernels(), type, op, dst, dst2, a, b, count);
}

void streamingFence() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
}

void copyStreamingUnfenced(void* dst, const void* src, size_t bytes) {
#if defined(__x86_64__)
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  // Head up to a 16-byte boundary of dst and the tail by memcpy; 64 bytes (a line) per round
  // between them, loaded unaligned and stored aligned, streaming (SSE2: every x86-64 has it).
  const size_t head = std::min(bytes, (16 - reinterpret_cast<uintptr_t>(d) % 16) % 16);
  std::memcpy(d, s, head);
  d += head, s += head, bytes -= head;
  for (; bytes >= 64; d += 64, s += 64, bytes -= 64) {
    const __m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    const __m128i x1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16));
    const __m128i x2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 32));
    const __m128i x3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(d), x0);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 16), x1);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 32), x2);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 48), x3);
  }
  std::memcpy(d, s, bytes);
#else
  std::memcpy(dst, src, bytes);
#endif
}

void divideInPlace(DataType type, void* dst, size_t count, int divisor) {
  divideWith(selectedKernels(), type, dst, count, divisor);
}

void reduceCpuOn(ReduceIsa isa, DataType type, ReduceOp op, void* dst, const void* a, const void* b,
                 size_t count) {
  reduceWith(kernelsFor(isa), type, op, dst, a, b, count);
}

void reduceCpuTwiceOn(ReduceIsa isa, DataType type, ReduceOp op, void* dst, void* dst2,
                      const void* a, const void* b, size_t count) {
  reduceTwiceWith(kernelsFor(isa), type, op, dst, dst2, a, b, count);
}

void divideInPlaceOn(ReduceIsa isa, DataType type, void* dst, size_t count, int divisor) {
  divideWith(kernelsFor(isa), type, dst, count, divisor);
}

// The scalar conversions are the baseline ones; the F16C instructions give the same bits.
float halfToFloat(uint16_t h) { return reduce_baseline::widenHalf(h); }
uint16_t floatToHalf(float f) { return reduce_baseline::narrowHalf(f); }
float bfloat16ToFloat(uint16_t b) { return reduce_baseline::widenBFloat16(b); }
uint16_t floatToBfloat16(float f) { return reduce_baseline::narrowBFloat16(f); }

}  // namespace plexus
