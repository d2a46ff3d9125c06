// fp16 and bf16 casting: body = count u16 values. Both conversions round to nearest even and
// saturate finite overflow (codec_math.h), so the residual c - deq is always representable
// (deq is within half a 16-bit ulp of c, or zero) and error feedback conserves exactly.
#include <cstring>
#include <string>

#include "compress/codecs.h"

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
    if (id_ == CodecId::kFp16) {
      run(input, ef, body, codec::floatToHalfSat, codec::halfToFloat);
    } else {
      run(input, ef, body, codec::floatToBf16Sat, codec::bf16ToFloat);
    }
    return kPayloadHeaderBytes + 2 * n;
  }

 private:
  // Templated on the conversion so that each variant inlines into a tight loop.
  template <typename To, typename From>
  static void run(std::span<const float> in, std::span<float> ef, uint8_t* body, To to, From from) {
    const size_t n = in.size();
    constexpr size_t kChunk = 256;
    uint16_t tmp[kChunk];
    for (size_t base = 0; base < n; base += kChunk) {
      const size_t m = n - base < kChunk ? n - base : kChunk;
      if (ef.empty()) {
        for (size_t i = 0; i < m; ++i) tmp[i] = to(in[base + i]);
      } else {
        for (size_t i = 0; i < m; ++i) {
          const float c = codec::addRn(in[base + i], ef[base + i]);
          tmp[i] = to(c);
          ef[base + i] = codec::subRn(c, from(tmp[i]));
        }
      }
      std::memcpy(body + 2 * base, tmp, 2 * m);  // body may be unaligned
    }
  }

  CodecId id_;
};

}  // namespace

std::unique_ptr<Codec> makeCastCodec(CodecId id) { return std::make_unique<CastCodec>(id); }

Status decodeCastBody(const PayloadHeader& h, const uint8_t* body, std::span<float> out,
                      bool accumulate) {
  const bool half = h.codec == CodecId::kFp16;
  for (uint64_t i = 0; i < h.count; ++i) {
    uint16_t v;
    std::memcpy(&v, body + 2 * i, 2);
    storeOrAdd(&out[i], half ? codec::halfToFloat(v) : codec::bf16ToFloat(v), accumulate);
  }
  return okStatus();
}

}  // namespace plexus
