// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), the
// counter-based generator behind stochastic rounding. A counter-based generator makes the random
// number of element i a pure function of (seed, step, i), so the CPU reference and a CUDA kernel
// with any thread layout draw identical bits without sharing generator state.
#pragma once

#include <cstdint>

#include "compress/codec_math.h"

namespace plexus::codec {

/// Four 32-bit outputs of one Philox call.
struct Philox4 {
  uint32_t v[4];
};

/// Philox4x32 with 10 rounds on counter (c0..c3) and key (k0, k1); matches Random123 and cuRAND.
PLEXUS_HD Philox4 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                             uint32_t k1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

/// Elements draw their numbers in blocks of 128: element i uses output (i / 32) % 4 of the call
/// whose counter is (i / 128) * 32 + i % 32. A warp whose lane l owns elements 32t + l of a
/// 128-element block then needs one Philox call per lane per block, and the CPU reference needs
/// one call per four elements; the numbers depend only on i, never on the thread layout.
PLEXUS_HD uint64_t philoxCounterOf(uint64_t i) { return ((i >> 7) << 5) | (i & 31u); }
/// Which of the four outputs element i takes.
PLEXUS_HD int philoxLaneOf(uint64_t i) { return static_cast<int>((i >> 5) & 3u); }

/// The Philox call serving element index i (see philoxCounterOf) for `seed` and `step`.
PLEXUS_HD Philox4 philoxBlock(uint64_t seed, uint64_t step, uint64_t i) {
  const uint64_t c = philoxCounterOf(i);
  return philox4x32(static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32),
                    static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32),
                    static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

/// A 32-bit output as a uniform float in [0, 1): the top 24 bits times 2^-24 (exact).
PLEXUS_HD float uniformOf(uint32_t r) {
  return mulRn(static_cast<float>(r >> 8), 5.9604644775390625e-8f);
}

/// The uniform number of element i: what the CPU reference and every kernel use.
PLEXUS_HD float philoxUniform(uint64_t seed, uint64_t step, uint64_t i) {
  return uniformOf(philoxBlock(seed, step, i).v[philoxLaneOf(i)]);
}

}  // namespace plexus::codec
