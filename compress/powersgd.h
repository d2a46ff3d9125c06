// PowerSGD (Vogels et al., 2019) arithmetic shared by the CPU codec and the CUDA kernels: one
// power iteration with a warm-started Q. For M (rows x cols, row-major) and Q (cols x r):
//   P = M Q;  P = orthonormalise(P) (Gram-Schmidt);  Q = M^T P;  payload = (P, Q);  M^ = P Q^T.
// Every sum runs in a fixed order that a CUDA kernel reproduces: matrix products sum over the
// inner index sequentially; column dot products use 256 strided partial sums followed by a
// pairwise tree (the shape of a 256-thread block reduction).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "compress/codec_math.h"
#include "compress/philox.h"

namespace plexus::codec {

/// Threads of the reduction tree behind column dot products.
inline constexpr int kPowerSgdTree = 256;

/// Columns whose norm is at or below this are zeroed rather than normalised.
inline constexpr float kPowerSgdEps = 1e-30f;

/// The initial warm-start Q entry i: uniform in [-1, 1) from Philox(seed, step 0, i).
PLEXUS_HD float powerSgdInitQ(uint64_t seed, uint64_t i) {
  return subRn(mulRn(philoxUniform(seed, 0, i), 2.0f), 1.0f);
}

/// Correctly rounded square root.
PLEXUS_HD float sqrtRn(float x) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

}  // namespace plexus::codec
