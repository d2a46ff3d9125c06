// Internals of the codec kernel levels shared by the dispatcher (simd.cc) and the per-level
// files: which levels the build compiles and how each hands out its table.
#pragma once

#include <cstddef>
#include <cstdint>

#include "compress/simd.h"

// The AVX2 level is compiled where the compiler can target it per function.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PLEXUS_CODEC_HAVE_AVX2 1
#else
#define PLEXUS_CODEC_HAVE_AVX2 0
#endif

// Brackets the AVX2 code of a simd_avx2_*.cc file, after every #include, so that no inline
// function of a library header is compiled (and possibly kept by the linker) with AVX2.
#if defined(__clang__)
#define PLEXUS_CODEC_AVX2_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx2,f16c\"))), apply_to = function)")
#define PLEXUS_CODEC_AVX2_END _Pragma("clang attribute pop")
#else
#define PLEXUS_CODEC_AVX2_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,f16c\")")
#define PLEXUS_CODEC_AVX2_END _Pragma("GCC pop_options")
#endif

namespace plexus::codec {

namespace simd_scalar {
/// The reference kernels (simd_scalar.cc).
const SimdKernels& kernels();
}  // namespace simd_scalar

namespace simd_avx2 {
/// The AVX2 + F16C kernels; nullptr when the build does not target x86-64. Call it only once
/// simdLevelAvailable(SimdLevel::kAvx2) holds.
const SimdKernels* kernels();

// The pieces of that table, defined in simd_avx2_*.cc (SimdKernels documents each).
void quantEncodeBucket(const float* g, float* ef, size_t n, int bits, const float* u, float* mn,
                       float* scale, uint8_t* codes);
void quantDecodeBucket(const uint8_t* codes, size_t n, int bits, float mn, float scale, float* out,
                       bool accumulate);
void signEncodeBucket(const float* g, float* ef, size_t n, float* scale, uint8_t* codes);
void signDecodeBucket(const uint8_t* codes, size_t n, float scale, float* out, bool accumulate);
void philoxUniforms(uint64_t seed, uint64_t step, uint64_t first, size_t blocks, float* u);
// philoxUniforms picks one of these: 256-bit vectors, or 512-bit ones (simd_avx512_philox.cc)
// where philoxAvx512Available(). Declared for the tests, which check both.
void philoxUniformsAvx2(uint64_t seed, uint64_t step, uint64_t first, size_t blocks, float* u);
bool philoxAvx512Available();
void philoxUniformsAvx512(uint64_t seed, uint64_t step, uint64_t first, size_t blocks, float* u);
void powerSgdMq(const float* m, const float* q, size_t rows, size_t cols, size_t r, float* p);
void powerSgdMtp(const float* m, const float* p, size_t rows, size_t cols, size_t r, float* q);
void powerSgdReconstruct(const float* p, const float* q, size_t rows, size_t cols, size_t r,
                         float* out, int mode);
}  // namespace simd_avx2

}  // namespace plexus::codec
