// 1-bit sign with scale, the compressor of EF-signSGD (Karimireddy et al., 2019), per bucket.
// Header: p0 = 1 (bits), param = bucket size. Body: quant_layout.h with one f32 scale per bucket.
// scale = mean |c| of the bucket, summed in the order of a warp (lane l takes elements 32g + l in
// order of g, then the xor butterfly), so that the CUDA kernel reproduces it bit-for-bit.
#include <cstring>
#include <string>

#include "compress/codecs.h"
#include "compress/quant_layout.h"
#include "compress/simd.h"

namespace plexus {
namespace {

class SignCodec final : public Codec {
 public:
  explicit SignCodec(uint32_t bucket) : bucket_(bucket) {}

  CodecId id() const override { return CodecId::kSign; }
  std::string spec() const override { return "sign:bucket=" + std::to_string(bucket_); }
  size_t maxEncodedBytes(size_t count) const override {
    return kPayloadHeaderBytes + codec::quantBodyBytes(count, bucket_, 1, 1);
  }

  StatusOr<size_t> encode(std::span<const float> input, std::span<float> ef, std::span<uint8_t> out,
                          const EncodeOptions&) override {
    PLEXUS_TRY(checkEncodeArgs(*this, input, ef, out));
    const size_t count = input.size();
    PayloadHeader h;
    h.codec = CodecId::kSign;
    h.p0 = 1;
    h.count = count;
    h.param = bucket_;
    h.bodyBytes = codec::quantBodyBytes(count, bucket_, 1, 1);
    writePayloadHeader(h, out.data());
    uint8_t* meta = out.data() + kPayloadHeaderBytes;
    uint8_t* codes = meta + 4 * codec::bucketCount(count, bucket_);
    const codec::SimdKernels& kernels = codec::simdKernels();
    for (size_t start = 0; start < count; start += bucket_) {
      const size_t n = count - start < bucket_ ? count - start : bucket_;
      float scale;
      kernels.signEncodeBucket(input.data() + start, ef.empty() ? nullptr : ef.data() + start, n,
                               &scale, codes);
      std::memcpy(meta, &scale, 4);
      meta += 4;
      codes += 4 * codec::bucketCodeWords(n, 1);
    }
    return kPayloadHeaderBytes + h.bodyBytes;
  }

 private:
  uint32_t bucket_;
};

}  // namespace

StatusOr<std::unique_ptr<Codec>> makeSignCodec(uint32_t bucket) {
  if (bucket == 0) return invalidArgument("sign codec: bucket size must be at least 1");
  return std::unique_ptr<Codec>(std::make_unique<SignCodec>(bucket));
}

Status decodeSignBody(const PayloadHeader& h, const uint8_t* body, std::span<float> out,
                      bool accumulate) {
  const uint32_t bucket = h.param;
  const uint8_t* meta = body;
  const uint8_t* codes = body + 4 * codec::bucketCount(h.count, bucket);
  const codec::SimdKernels& kernels = codec::simdKernels();
  for (uint64_t start = 0; start < h.count; start += bucket) {
    const uint64_t n = h.count - start < bucket ? h.count - start : bucket;
    float scale;
    std::memcpy(&scale, meta, 4);
    meta += 4;
    if (!(scale >= 0.0f)) return invalidArgument("sign payload corrupted: negative scale");
    kernels.signDecodeBucket(codes, n, scale, out.data() + start, accumulate);
    codes += 4 * codec::bucketCodeWords(n, 1);
  }
  return okStatus();
}

}  // namespace plexus
