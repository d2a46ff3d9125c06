// CUDA error -> Status for the kernels' host code, and the launch geometry helpers they share.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "plexus/status.h"

namespace plexus::kernels {

/// OK, or Internal naming `what` and the CUDA error.
inline Status cudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return okStatus();
  return internalError(std::string(what) + ": " + cudaGetErrorName(err) + " (" +
                       cudaGetErrorString(err) + ")");
}

/// The launch error of the last kernel, as a Status.
inline Status lastLaunch(const char* what) { return cudaStatus(cudaGetLastError(), what); }

/// Blocks of `threads` covering `work` items, capped at a grid-stride friendly 65535 * 16.
inline unsigned blocksFor(size_t work, unsigned threads) {
  const size_t b = (work + threads - 1) / threads;
  return static_cast<unsigned>(b == 0 ? 1 : (b > 1048560 ? 1048560 : b));
}

}  // namespace plexus::kernels
