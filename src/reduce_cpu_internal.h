// Internals of the CPU reductions shared by the per-ISA kernel files, the dispatcher, the tests
// and the micro-benchmark: the kernel table each ISA fills and entry points that pick an ISA
// explicitly (so a test can compare the AVX2 path with the baseline path bit for bit).
#pragma once

#include <cstddef>
#include <cstdint>

#include "plexus/types.h"

// The AVX2 level is compiled where the compiler can target it per function.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PLEXUS_REDUCE_HAVE_AVX2 1
#else
#define PLEXUS_REDUCE_HAVE_AVX2 0
#endif

namespace plexus {

/// One reduction kernel: dst[i] = a[i] op b[i]; dst may equal a or b exactly.
using ReduceKernelFn = void (*)(void* dst, const void* a, const void* b, size_t count);
/// The same, writing the result to two places: dst[i] = dst2[i] = a[i] op b[i]; each of dst and
/// dst2 may equal a or b exactly, and they must not overlap each other.
using ReduceTwiceKernelFn = void (*)(void* dst, void* dst2, const void* a, const void* b,
                                     size_t count);
/// One division kernel: dst[i] /= divisor, divisor > 0.
using DivideKernelFn = void (*)(void* dst, size_t count, int divisor);

/// Operators that have a kernel of their own; kAvg is served by kSum.
inline constexpr int kNumKernelOps = 4;

/// Every kernel of one instruction-set level, indexed by DataType and ReduceOp value.
struct ReduceKernels {
  ReduceKernelFn reduce[kNumDataTypes][kNumKernelOps];
  ReduceTwiceKernelFn reduceTwice[kNumDataTypes][kNumKernelOps];
  DivideKernelFn divide[kNumDataTypes];

  /// True when every entry is set (a DataType added to the enum but not here fails this).
  bool complete() const {
    for (int t = 0; t < kNumDataTypes; ++t) {
      for (int op = 0; op < kNumKernelOps; ++op) {
        if (reduce[t][op] == nullptr || reduceTwice[t][op] == nullptr) return false;
      }
      if (divide[t] == nullptr) return false;
    }
    return true;
  }
};

/// Instruction-set levels the reductions are compiled for. kBaseline runs on every x86-64 (and
/// on any other architecture); kAvx2 needs AVX2 and F16C.
enum class ReduceIsa : uint8_t {
  kBaseline = 0,
  kAvx2 = 1,
};
/// Number of ReduceIsa values.
inline constexpr int kNumReduceIsas = 2;

/// "baseline" or "avx2".
const char* reduceIsaName(ReduceIsa isa);
/// True when `isa` was compiled in and this CPU (and OS) can run it.
bool reduceIsaAvailable(ReduceIsa isa);
/// The level reduceCpu and divideInPlace use: the best available one, chosen once per process.
ReduceIsa selectedReduceIsa();

/// reduceCpu on an explicit level, which must be available (tests and benchmarks only).
void reduceCpuOn(ReduceIsa isa, DataType type, ReduceOp op, void* dst, const void* a, const void* b,
                 size_t count);
/// reduceCpuTwice on an explicit level, which must be available (tests and benchmarks only).
void reduceCpuTwiceOn(ReduceIsa isa, DataType type, ReduceOp op, void* dst, void* dst2,
                      const void* a, const void* b, size_t count);
/// divideInPlace on an explicit level, which must be available (tests and benchmarks only).
void divideInPlaceOn(ReduceIsa isa, DataType type, void* dst, size_t count, int divisor);

namespace reduce_baseline {
/// Kernels compiled for the baseline target of the build (SSE2 on x86-64).
const ReduceKernels& kernels();
}  // namespace reduce_baseline

namespace reduce_avx2 {
/// Kernels compiled for AVX2 + F16C; nullptr when the build does not target x86-64. Runs AVX2
/// code itself: call it only once reduceIsaAvailable(ReduceIsa::kAvx2) holds.
const ReduceKernels* kernels();
}  // namespace reduce_avx2

}  // namespace plexus
