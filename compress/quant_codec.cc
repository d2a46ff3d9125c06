// Bucketed min-max quantization (CPU reference). Header: p0 = bits, p1 = 1 when stochastic,
// param = bucket size. Body: quant_layout.h. Per bucket, in the order the CUDA kernel mirrors:
// c = g + e; mn, mx = min, max of c (canonical zero); scale = (mx - mn) / (2^bits - 1);
// q = quantCode(c); e' = c - (mn + q * scale).
#include <cstring>
#include <string>
#include <vector>

#include "compress/bit_pack.h"
#include "compress/codecs.h"
#include "compress/philox.h"
#include "compress/quant_layout.h"

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

    const uint32_t levels = (1u << bits_) - 1u;
    std::vector<uint8_t> q(bucket_);
    std::vector<float> u(stochastic_ ? bucket_ : 0);
    uint32_t words[8];
    for (size_t start = 0; start < count; start += bucket_) {
      const size_t n = count - start < bucket_ ? count - start : bucket_;
      float* e = ef.empty() ? nullptr : ef.data() + start;
      const float* c =
          codec::foldErrorFeedback(input.data(), ef.empty() ? nullptr : ef.data(), start, n);
      float mn = c[0], mx = c[0];
      for (size_t i = 1; i < n; ++i) {
        mn = codec::minOf(mn, c[i]);
        mx = codec::maxOf(mx, c[i]);
      }
      mn = codec::canonicalZero(mn);
      mx = codec::canonicalZero(mx);
      const float scale = codec::quantScale(mn, mx, levels);
      std::memcpy(meta, &mn, 4);
      std::memcpy(meta + 4, &scale, 4);
      meta += 8;
      if (stochastic_) fillUniform(options, start, n, u.data());
      for (size_t i = 0; i < n; ++i) {
        const uint32_t code =
            codec::quantCode(c[i], mn, scale, levels, stochastic_, stochastic_ ? u[i] : 0.0f);
        q[i] = static_cast<uint8_t>(code);
        if (e != nullptr) e[i] = codec::subRn(c[i], codec::dequantize(code, mn, scale));
      }
      for (size_t g = 0; g < n; g += 32) {
        codec::packGroup(q.data() + g, n - g < 32 ? n - g : 32, bits_, words);
        std::memcpy(codes, words, 4 * static_cast<size_t>(bits_));
        codes += 4 * static_cast<size_t>(bits_);
      }
    }
    return kPayloadHeaderBytes + h.bodyBytes;
  }

 private:
  // u[i] = philoxUniform(seed, step, start + i) for i < n, one Philox call per four elements.
  static void fillUniform(const EncodeOptions& o, size_t start, size_t n, float* u) {
    const size_t end = start + n;
    for (size_t block = start & ~size_t{127}; block < end; block += 128) {
      for (size_t lane = 0; lane < 32; ++lane) {
        const codec::Philox4 r = codec::philoxBlock(o.seed, o.step, block + lane);
        for (size_t t = 0; t < 4; ++t) {
          const size_t i = block + 32 * t + lane;
          if (i >= start && i < end) u[i - start] = codec::uniformOf(r.v[t]);
        }
      }
    }
  }

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
  uint8_t q[32];
  uint32_t words[8];
  for (uint64_t start = 0; start < h.count; start += bucket) {
    const uint64_t n = h.count - start < bucket ? h.count - start : bucket;
    float mn, scale;
    std::memcpy(&mn, meta, 4);
    std::memcpy(&scale, meta + 4, 4);
    meta += 8;
    if (!(scale >= 0.0f)) {
      return invalidArgument("quant payload corrupted: negative or NaN bucket scale");
    }
    for (uint64_t g = 0; g < n; g += 32) {
      const size_t m = n - g < 32 ? n - g : 32;
      std::memcpy(words, codes, 4 * static_cast<size_t>(bits));
      codes += 4 * static_cast<size_t>(bits);
      codec::unpackGroup(words, m, bits, q);
      for (size_t l = 0; l < m; ++l) {
        storeOrAdd(&out[start + g + l], codec::dequantize(q[l], mn, scale), accumulate);
      }
    }
  }
  return okStatus();
}

}  // namespace plexus
