// Top-k selection rules (topk_codec.cc documents them), exposed so that the CUDA kernels' tests
// and benchmarks can compare against the CPU reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "compress/codec_math.h"

namespace plexus {

/// Samples drawn by the threshold estimate.
inline constexpr size_t kTopKSamples = 4096;

/// Index of sample j of s over n elements: floor(j * n / s) (n < 2^32, so no overflow).
PLEXUS_HD uint64_t topkSampleIndex(uint64_t j, uint64_t n, uint64_t s) { return j * n / s; }

/// A selection: indices in increasing order, the selected values and the key threshold used.
struct TopKSelection {
  std::vector<uint32_t> indices;
  std::vector<float> values;  ///< values[j] = c[indices[j]]
  uint32_t threshold = 0;
};

/// Exactly the k largest magnitudes (ties to the lowest index).
TopKSelection topkExactSelection(const float* c, size_t n, uint64_t k);
/// The sampled threshold key for k of n.
uint32_t topkEstimateThreshold(const float* c, size_t n, uint64_t k);
/// The first k elements whose key reaches the sampled threshold.
TopKSelection topkThresholdSelection(const float* c, size_t n, uint64_t k);

}  // namespace plexus
