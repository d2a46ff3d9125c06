// Decoders of the kernel files, for the dispatch in quant_kernels.cu.
#pragma once

#include <cuda_runtime.h>

#include "compress/payload.h"

namespace plexus::kernels {

/// Top-k decode; synchronises `stream` to report bad indices.
Status topkDecode(const PayloadHeader& h, const uint8_t* payload, float* out, bool accumulate,
                  cudaStream_t stream);
/// PowerSGD decode: out = P Q^T (or +=).
Status powerSgdDecode(const PayloadHeader& h, const uint8_t* payload, float* out, bool accumulate,
                      cudaStream_t stream);

}  // namespace plexus::kernels
