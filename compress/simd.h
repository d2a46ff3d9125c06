// The hot loops of the CPU codecs behind a table of kernels per instruction-set level, chosen
// once per process: the portable reference (simd_scalar.cc, the arithmetic the CUDA kernels are
// tested against) and AVX2 + F16C (simd_avx2_*.cc), which must give the same bytes and the same
// error-feedback residuals for every input. The codecs own headers, buckets and validation; a
// kernel sees plain pointers whose bounds the codec has checked.
#pragma once

#include <cstddef>
#include <cstdint>

namespace plexus::codec {

/// Instruction-set levels of the codec kernels. kScalar runs everywhere; kAvx2 needs AVX2 and
/// F16C on x86-64.
enum class SimdLevel : uint8_t {
  kScalar = 0,
  kAvx2 = 1,
};

/// "scalar" or "avx2".
const char* simdLevelName(SimdLevel level);
/// True when `level` was compiled in and this CPU (and OS) can run it.
bool simdLevelAvailable(SimdLevel level);
/// The level the codecs use: the best available one, unless overridden.
SimdLevel simdLevel();
/// Makes every codec use `level` (which must be available) from now on, so that tests and
/// benchmarks can compare the levels. Not for concurrent use with encodes and decodes.
void overrideSimdLevel(SimdLevel level);

/// The kernels of one level. `ef` arguments are nullptr without error feedback; otherwise the
/// kernel replaces ef[i] by c - deq(q) where c = g[i] + ef[i] (f32) is what it encodes.
/// `accumulate` selects out[i] += v over out[i] = v.
struct SimdKernels {
  /// fp16 (half) or bf16 casts of n elements; `bytes` holds n unaligned u16.
  void (*castEncode)(bool half, const float* g, float* ef, uint8_t* bytes, size_t n);
  void (*castDecode)(bool half, const uint8_t* bytes, float* out, size_t n, bool accumulate);

  /// One quant bucket of n >= 1 elements at `bits`: its min and scale, and its code words
  /// (quant_layout.h) written unaligned to `codes`. `u` holds the uniform numbers of the bucket's
  /// elements for stochastic rounding, nullptr for round-to-nearest.
  void (*quantEncodeBucket)(const float* g, float* ef, size_t n, int bits, const float* u,
                            float* mn, float* scale, uint8_t* codes);
  void (*quantDecodeBucket)(const uint8_t* codes, size_t n, int bits, float mn, float scale,
                            float* out, bool accumulate);

  /// One sign bucket of n >= 1 elements: its scale and its one-bit code words.
  void (*signEncodeBucket)(const float* g, float* ef, size_t n, float* scale, uint8_t* codes);
  void (*signDecodeBucket)(const uint8_t* codes, size_t n, float scale, float* out,
                           bool accumulate);

  /// u[j] = philoxUniform(seed, step, first + j) for j < 128 * blocks; `first` is a multiple of
  /// 128, so whole Philox blocks are drawn.
  void (*philoxUniforms)(uint64_t seed, uint64_t step, uint64_t first, size_t blocks, float* u);

  /// Top-k candidates: folds error feedback over [begin, end) (ef[i] = g[i] + ef[i]), then
  /// writes to `out` every i in [begin, end) whose key (|c| bits) is >= lo, in increasing
  /// order, and returns how many it wrote. `out` has room for end - begin + 7 indices (the
  /// kernel may scribble past the ones it returns).
  size_t (*collectAtLeast)(const float* g, float* ef, size_t begin, size_t end, uint32_t lo,
                           uint32_t* out);

  /// PowerSGD products on a rows x cols row-major M, r columns (powersgd.h fixes the order of
  /// every sum): p = M q (q cols x r), then q = M^T p, then out = P Q^T stored, accumulated or
  /// (subtract) subtracted from out.
  void (*powerSgdMq)(const float* m, const float* q, size_t rows, size_t cols, size_t r, float* p);
  void (*powerSgdMtp)(const float* m, const float* p, size_t rows, size_t cols, size_t r, float* q);
  void (*powerSgdReconstruct)(const float* p, const float* q, size_t rows, size_t cols, size_t r,
                              float* out, int mode);
};

/// powerSgdReconstruct modes.
inline constexpr int kStoreOut = 0, kAddToOut = 1, kSubtractFromOut = 2;

/// The kernels of the level in use (simdLevel()).
const SimdKernels& simdKernels();
/// The kernels of an available level.
const SimdKernels& simdKernelsOf(SimdLevel level);

}  // namespace plexus::codec
