// Bucketed min-max quantization (CPU reference). Header: p0 = bits, p1 = 1 when stochastic,
// param = bucket size. Body: quant_layout.h. Per bucket, in the order the CUDA kernel mirrors:
// c = g + e; mn, mx = min, max of c (canonical zero); scale = (mx - mn) / (2^bits - 1);
// q = quantCode(c); e' = c - (mn + q * scale). The per-bucket loops are simd.h kernels.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "compress/codecs.h"
#include "compress/quant_layout.h"
#include "compress/simd.h"

namespace plexus {
namespace {

class QuantCodec final : public Codec {
 public:
  QuantCodec(int bits, uint32_t bucket, bool stochastic)
      : bits_(bits), bucket_(bucket), stochastic_(stochastic) {}

  CodecId id() const override { return CodecId::kQuant; }
  std::string spec() const override {
    return "quant:bits=" + std::to_string(bits_) + ",bucket=" + std::to_string(bucket_) +
           ",round=" + (stochastic_ ? "stochastic" : "nearest");
  }
  size_t maxEncodedBytes(size_t count) const override {
    return kPayloadHeaderBytes + codec::quantBodyBytes(count, bucket_, bits_, 2);
  }

  StatusOr<size_t> encode(std::span<const float> input, std::span<float> ef, std::span<uint8_t> out,
                          const EncodeOptions& options) override {
    PLEXUS_TRY(checkEncodeArgs(*this, input, ef, out));
    const size_t count = input.size();
    PayloadHeader h;
    h.codec = CodecId::kQuant;
    h.p0 = static_cast<uint8_t>(bits_);
    h.p1 = stochastic_ ? 1 : 0;
    h.count = count;
    h.param = bucket_;
    h.bodyBytes = codec::quantBodyBytes(count, bucket_, bits_, 2);
    writePayloadHeader(h, out.data());
    uint8_t* meta = out.data() + kPayloadHeaderBytes;
    uint8_t* codes = meta + 8 * codec::bucketCount(count, bucket_);

    const codec::SimdKernels& kernels = codec::simdKernels();
    UniformWindow uniforms(options, stochastic_ ? std::min<size_t>(bucket_, count) : 0, count,
                           kernels);
    for (size_t start = 0; start < count; start += bucket_) {
      const size_t n = count - start < bucket_ ? count - start : bucket_;
      float mn, scale;
      kernels.quantEncodeBucket(input.data() + start, ef.empty() ? nullptr : ef.data() + start, n,
                                bits_, stochastic_ ? uniforms.at(start, n) : nullptr, &mn, &scale,
                                codes);
      std::memcpy(meta, &mn, 4);
      std::memcpy(meta + 4, &scale, 4);
      meta += 8;
      codes += 4 * codec::bucketCodeWords(n, bits_);
    }
    return kPayloadHeaderBytes + h.bodyBytes;
  }

 private:
  // The uniform numbers of stochastic rounding, drawn a few whole Philox blocks (128 elements)
  // ahead of the bucket being encoded, so that buckets which share a block draw it once.
  class UniformWindow {
   public:
    UniformWindow(const EncodeOptions& o, size_t bucket, size_t count,
                  const codec::SimdKernels& kernels)
        : options_(o), kernels_(kernels), count_(count) {
      if (bucket > 0) u_.resize(std::max<size_t>(bucket + 2 * kBlock, kAhead + kBlock));
    }

    // u[i] = philoxUniform(seed, step, start + i) for i < n.
    const float* at(size_t start, size_t n) {
      const size_t first = start & ~(kBlock - 1);
      if (start + n > end_) {
        // Keep the blocks already drawn from `first` on, then draw up to kAhead elements ahead.
        const size_t keep = end_ > first ? end_ - first : 0;
        if (keep > 0) std::memmove(u_.data(), u_.data() + (first - begin_), 4 * keep);
        begin_ = first;
        const size_t end = std::min(std::max(roundUp(start + n), first + kAhead), roundUp(count_));
        kernels_.philoxUniforms(options_.seed, options_.step, first + keep,
                                (end - first - keep) / kBlock, u_.data() + keep);
        end_ = end;
      }
      return u_.data() + (start - begin_);
    }

   private:
    static constexpr size_t kBlock = 128, kAhead = 2048;
    static size_t roundUp(size_t i) { return (i + kBlock - 1) & ~(kBlock - 1); }

    const EncodeOptions& options_;
    const codec::SimdKernels& kernels_;
    size_t count_;
    size_t begin_ = 0, end_ = 0;  // u_ holds the uniforms of elements [begin_, end_)
    std::vector<float> u_;
  };

  int bits_;
  uint32_t bucket_;
  bool stochastic_;
};

}  // namespace

StatusOr<std::unique_ptr<Codec>> makeQuantCodec(int bits, uint32_t bucket, bool stochastic) {
  if (bits < 1 || bits > 8) {
    return invalidArgument("quant codec: bits must be 1-8, got " + std::to_string(bits));
  }
  if (bucket == 0) return invalidArgument("quant codec: bucket size must be at least 1");
  return std::unique_ptr<Codec>(std::make_unique<QuantCodec>(bits, bucket, stochastic));
}

Status decodeQuantBody(const PayloadHeader& h, const uint8_t* body, std::span<float> out,
                       bool accumulate) {
  const int bits = h.p0;
  const uint32_t bucket = h.param;
  const uint8_t* meta = body;
  const uint8_t* codes = body + 8 * codec::bucketCount(h.count, bucket);
  const codec::SimdKernels& kernels = codec::simdKernels();
  for (uint64_t start = 0; start < h.count; start += bucket) {
    const uint64_t n = h.count - start < bucket ? h.count - start : bucket;
    float mn, scale;
    std::memcpy(&mn, meta, 4);
    std::memcpy(&scale, meta + 4, 4);
    meta += 8;
    if (!(scale >= 0.0f)) {
      return invalidArgument("quant payload corrupted: negative or NaN bucket scale");
    }
    kernels.quantDecodeBucket(codes, n, bits, mn, scale, out.data() + start, accumulate);
    codes += 4 * codec::bucketCodeWords(n, bits);
  }
  return okStatus();
}

}  // namespace plexus
