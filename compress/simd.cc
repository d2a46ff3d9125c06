// The once-per-process choice of codec kernel level, and the override tests use to run every
// level side by side.
#include "compress/simd.h"

#include <atomic>

#include "compress/simd_internal.h"
#include "src/check.h"
#include "src/reduce_cpu_internal.h"

namespace plexus::codec {
namespace {

SimdLevel bestLevel() {
  return simdLevelAvailable(SimdLevel::kAvx2) ? SimdLevel::kAvx2 : SimdLevel::kScalar;
}

// The level in use. Codecs read it once per encode or decode, so a relaxed atomic load costs
// nothing next to the work and keeps the override well defined.
std::atomic<SimdLevel>& current() {
  static std::atomic<SimdLevel> level{bestLevel()};
  return level;
}

}  // namespace

const char* simdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return "scalar";
    case SimdLevel::kAvx2:
      return "avx2";
  }
  return "invalid";
}

bool simdLevelAvailable(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return true;
    case SimdLevel::kAvx2:
      // The CPU reductions need the same AVX2 + F16C and already ask the CPU (and OS) once.
      return PLEXUS_CODEC_HAVE_AVX2 && reduceIsaAvailable(ReduceIsa::kAvx2);
  }
  return false;
}

SimdLevel simdLevel() { return current().load(std::memory_order_relaxed); }

void overrideSimdLevel(SimdLevel level) {
  PLEXUS_CHECK(simdLevelAvailable(level));
  current().store(level, std::memory_order_relaxed);
}

const SimdKernels& simdKernels() { return simdKernelsOf(simdLevel()); }

const SimdKernels& simdKernelsOf(SimdLevel level) {
  PLEXUS_CHECK(simdLevelAvailable(level));
  if (level == SimdLevel::kAvx2) return *simd_avx2::kernels();
  return simd_scalar::kernels();
}

}  // namespace plexus::codec
