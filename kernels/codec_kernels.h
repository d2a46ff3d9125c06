// Host launch functions of the CUDA codec kernels. Each mirrors a CPU reference codec
// (compress/) bit-for-bit in deterministic modes and draws the same Philox numbers in stochastic
// ones, and writes the same self-describing payload. All pointers are device pointers; every
// function validates sizes on the host, enqueues on `stream` without synchronising (unless it
// says otherwise) and returns InvalidArgument for bad sizes or Internal for a CUDA error.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "compress/codec.h"
#include "compress/payload.h"

namespace plexus::kernels {

/// Encodes n floats to fp16 or bf16 (`id`), with error feedback when `ef` is non-null. `out`
/// holds kPayloadHeaderBytes + 2n bytes.
Status castEncode(CodecId id, const float* in, float* ef, size_t n, uint8_t* out,
                  cudaStream_t stream);

/// Bucketed min-max quantization (quant codec; `stochastic` uses Philox(seed, step, i)).
/// `out` holds kPayloadHeaderBytes + codec::quantBodyBytes(n, bucket, bits, 2) bytes.
Status quantEncode(const float* in, float* ef, size_t n, int bits, uint32_t bucket, bool stochastic,
                   const EncodeOptions& options, uint8_t* out, cudaStream_t stream);

/// 1-bit sign with per-bucket scale. `out` holds kPayloadHeaderBytes +
/// codec::quantBodyBytes(n, bucket, 1, 1) bytes.
Status signEncode(const float* in, float* ef, size_t n, uint32_t bucket, uint8_t* out,
                  cudaStream_t stream);

/// Scratch bytes topkEncode needs for n elements and k.
size_t topkWorkspaceBytes(size_t n, uint64_t k);
/// Top-k (exact: radix select, ties to the lowest index; threshold: sampled estimate, one
/// selection pass). `out` holds kPayloadHeaderBytes + 8k bytes; the header's k' says how many
/// pairs were stored (always k when exact). `workspace` holds topkWorkspaceBytes(n, k).
Status topkEncode(const float* in, float* ef, size_t n, uint64_t k, bool threshold, uint8_t* out,
                  void* workspace, cudaStream_t stream);

/// Scratch bytes powerSgdEncode needs.
size_t powerSgdWorkspaceBytes(uint32_t rows, uint32_t cols, uint32_t rank);
/// One PowerSGD step on a rows x cols matrix. `q` (cols x rank) is the warm start, replaced by
/// the new Q; initialise it with codec::powerSgdInitQ to match the CPU codec. `out` holds
/// kPayloadHeaderBytes + 4 (rows + cols) rank bytes.
Status powerSgdEncode(const float* in, float* ef, uint32_t rows, uint32_t cols, uint32_t rank,
                      float* q, uint8_t* out, void* workspace, cudaStream_t stream);

/// Copies the 32-byte header of a device payload to the host and validates it against
/// `payloadBytes` (synchronises `stream`).
StatusOr<PayloadHeader> readDeviceHeader(const uint8_t* payload, size_t payloadBytes,
                                         cudaStream_t stream);

/// Decodes (or, with `accumulate`, adds) a device payload whose header `h` was read with
/// readDeviceHeader into out[0, h.count); outCount is out's capacity. Any codec but zstd.
/// Top-k indices are checked on the device: an out-of-range or unordered index is skipped and
/// reported as InvalidArgument, which makes this call synchronise `stream` for top-k payloads.
Status decode(const PayloadHeader& h, const uint8_t* payload, float* out, size_t outCount,
              bool accumulate, cudaStream_t stream);

}  // namespace plexus::kernels
