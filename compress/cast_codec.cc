// fp16 and bf16 casting: body = count u16 values. Both conversions round to nearest even and
// saturate finite overflow (codec_math.h), so the residual c - deq is always representable
// (deq is within half a 16-bit ulp of c, or zero) and error feedback conserves exactly.
#include <string>

#include "compress/codecs.h"
#include "compress/simd.h"

namespace plexus {
namespace {

class CastCodec final : public Codec {
 public:
  explicit CastCodec(CodecId id) : id_(id) {}

  CodecId id() const override { return id_; }
  std::string spec() const override { return codecIdName(id_); }
  size_t maxEncodedBytes(size_t count) const override { return kPayloadHeaderBytes + 2 * count; }

  StatusOr<size_t> encode(std::span<const float> input, std::span<float> ef, std::span<uint8_t> out,
                          const EncodeOptions&) override {
    PLEXUS_TRY(checkEncodeArgs(*this, input, ef, out));
    const size_t n = input.size();
    PayloadHeader h;
    h.codec = id_;
    h.count = n;
    h.bodyBytes = 2 * n;
    writePayloadHeader(h, out.data());
    uint8_t* body = out.data() + kPayloadHeaderBytes;
    codec::simdKernels().castEncode(id_ == CodecId::kFp16, input.data(),
                                    ef.empty() ? nullptr : ef.data(), body, n);
    return kPayloadHeaderBytes + 2 * n;
  }

 private:
  CodecId id_;
};

}  // namespace

std::unique_ptr<Codec> makeCastCodec(CodecId id) { return std::make_unique<CastCodec>(id); }

Status decodeCastBody(const PayloadHeader& h, const uint8_t* body, std::span<float> out,
                      bool accumulate) {
  codec::simdKernels().castDecode(h.codec == CodecId::kFp16, body, out.data(), h.count, accumulate);
  return okStatus();
}

}  // namespace plexus
