// The Codec interface: lossy and lossless compression of f32 gradients, with error feedback fused
// into encode and a decode-accumulate for reductions. Payloads are self-describing (payload.h) so a
// receiver can check what it got before touching memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "plexus/status.h"

namespace plexus {

/// Codec family; the value travels in every payload header, so values are stable.
enum class CodecId : uint8_t {
  kFp16 = 1,      ///< cast to IEEE binary16
  kBf16 = 2,      ///< cast to bfloat16
  kQuant = 3,     ///< bucketed min-max quantization, 1-8 bits
  kSign = 4,      ///< 1-bit sign with a per-bucket scale (EF-signSGD)
  kTopK = 5,      ///< top-k sparsification (values + indices)
  kPowerSgd = 6,  ///< rank-r factorisation of a 2-D tensor
  kZstd = 7,      ///< lossless zstd of the f32 bytes
};
/// Largest CodecId value (for validating headers).
inline constexpr uint8_t kMaxCodecId = 7;
/// "fp16", "bf16", "quant", "sign", "topk", "powersgd", "zstd"; "invalid" otherwise.
const char* codecIdName(CodecId id);

/// Per-call inputs to encode. Stochastic codecs draw element i's random number from
/// Philox(seed, step, i) (philox.h), so the same options give the same bits on CPU and GPU.
struct EncodeOptions {
  uint64_t seed = 0;  ///< Philox key; e.g. a per-run seed
  uint64_t step = 0;  ///< training step; a new step draws fresh numbers
};

/// A compression method for f32 tensors.
///
/// Error feedback: when encode() gets a non-empty `errorFeedback` e (same length as the input g),
/// it compresses c = g + e instead of g and leaves e' = c - deq(q) in e, where deq(q) is exactly
/// what decode() returns. e' is the correctly rounded f32 residual: deq(q) + e' == c in f32
/// whenever c - deq(q) is representable (always for fp16, bf16, top-k, zstd; for quant, sign and
/// PowerSGD whenever deq(q) is within a factor two of c, by Sterbenz's lemma); otherwise the
/// part not carried forward is at most half an ulp of e'. See tests/compress for the exact check.
///
/// Thread safety: encode() may mutate codec state (PowerSGD's warm start); decode() is const and
/// safe to call concurrently.
class Codec {
 public:
  virtual ~Codec() = default;

  /// The family.
  virtual CodecId id() const = 0;
  /// The spec string that recreates this codec with makeCodec(), e.g. "quant:bits=4,bucket=512".
  virtual std::string spec() const = 0;
  /// Upper bound of encode()'s output, header included, for `count` elements; known before
  /// encoding so callers can size send buffers once.
  virtual size_t maxEncodedBytes(size_t count) const = 0;

  /// Encodes `input` into `out` and returns the bytes written. `errorFeedback` is empty (no
  /// error feedback) or input.size() floats updated in place. Fails with InvalidArgument when
  /// `out` is smaller than maxEncodedBytes(input.size()) or the sizes do not fit the codec.
  virtual StatusOr<size_t> encode(std::span<const float> input, std::span<float> errorFeedback,
                                  std::span<uint8_t> out, const EncodeOptions& options) = 0;

  /// Decodes `payload` into out[0, count) where count is the payload's element count. Fails with
  /// InvalidArgument on a truncated or corrupted payload, a payload of another codec, or
  /// out.size() < count; nothing outside `payload` is read and nothing outside out[0, count) is
  /// written (on failure `out` may be partially written).
  Status decode(std::span<const uint8_t> payload, std::span<float> out) const;
  /// As decode(), but adds the decoded values into out (the step of a reduction).
  Status decodeAccumulate(std::span<const uint8_t> payload, std::span<float> out) const;
};

/// Decodes any payload by the codec id in its header (decode or accumulate into `out`).
Status decodePayload(std::span<const uint8_t> payload, std::span<float> out, bool accumulate);

/// Makes a codec from a spec: "fp16", "bf16", "quant[:bits=B,bucket=N,round=nearest|stochastic]",
/// "sign[:bucket=N]", "topk:k=K[,mode=exact|threshold]" (or ratio=R for k = ceil(R * count) at
/// encode), "powersgd:rows=R,cols=C[,rank=r,seed=S]", "zstd[:level=L]". InvalidArgument for an
/// unknown name or a bad parameter (bits outside 1-8, bucket 0, ...).
StatusOr<std::unique_ptr<Codec>> makeCodec(const std::string& spec);

/// zstd of arbitrary bytes (sparse payloads, checkpoints); Unimplemented without zstd.
StatusOr<std::vector<uint8_t>> zstdCompressBytes(std::span<const uint8_t> bytes, int level);
/// The inverse; InvalidArgument for a corrupted frame or content larger than `maxBytes`.
StatusOr<std::vector<uint8_t>> zstdDecompressBytes(std::span<const uint8_t> frame, size_t maxBytes);

}  // namespace plexus
