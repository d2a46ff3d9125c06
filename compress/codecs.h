// Internal constructors and body decoders of each codec family; the registry (makeCodec,
// decodePayload) is the public way in. Each decoder gets a header that has been
// validated with checkPayload (codec id, checkBodyLayout, out.size() >= count) and validates the
// rest itself (top-k indices, bucket scales).
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "compress/codec.h"
#include "compress/payload.h"

namespace plexus {

/// The fp16 or bf16 cast codec (`id` is kFp16 or kBf16).
std::unique_ptr<Codec> makeCastCodec(CodecId id);
/// Min-max quantization to `bits` (1-8) per `bucket` elements (>= 1).
StatusOr<std::unique_ptr<Codec>> makeQuantCodec(int bits, uint32_t bucket, bool stochastic);
/// 1-bit sign with a per-bucket mean-magnitude scale.
StatusOr<std::unique_ptr<Codec>> makeSignCodec(uint32_t bucket);
/// Top-k by magnitude: k elements (k > 0), or ceil(ratio * count) when k == 0 (0 < ratio <= 1);
/// exact selection or the threshold-estimated one.
StatusOr<std::unique_ptr<Codec>> makeTopKCodec(uint64_t k, double ratio, bool threshold);
/// PowerSGD for a rows x cols row-major matrix, rank r, warm-started Q seeded by `seed`.
StatusOr<std::unique_ptr<Codec>> makePowerSgdCodec(uint32_t rows, uint32_t cols, uint32_t rank,
                                                   uint64_t seed);
/// Lossless zstd at `level`; Unimplemented when built without zstd.
StatusOr<std::unique_ptr<Codec>> makeZstdCodec(int level);

/// Body decoders: out[i] = v (accumulate false) or out[i] += v, i < header.count.
Status decodeCastBody(const PayloadHeader& h, const uint8_t* body, std::span<float> out,
                      bool accumulate);
Status decodeQuantBody(const PayloadHeader& h, const uint8_t* body, std::span<float> out,
                       bool accumulate);
Status decodeSignBody(const PayloadHeader& h, const uint8_t* body, std::span<float> out,
                      bool accumulate);
Status decodeTopKBody(const PayloadHeader& h, const uint8_t* body, std::span<float> out,
                      bool accumulate);
Status decodePowerSgdBody(const PayloadHeader& h, const uint8_t* body, std::span<float> out,
                          bool accumulate);
Status decodeZstdBody(const PayloadHeader& h, const uint8_t* body, std::span<float> out,
                      bool accumulate);

/// The common encode checks: errorFeedback empty or input-sized, out large enough.
Status checkEncodeArgs(const Codec& codec, std::span<const float> input,
                       std::span<float> errorFeedback, std::span<uint8_t> out);

/// Stores v into out (accumulate false) or adds it (true); the one place decoders write.
inline void storeOrAdd(float* out, float v, bool accumulate) {
  *out = accumulate ? codec::addRn(*out, v) : v;
}

}  // namespace plexus
