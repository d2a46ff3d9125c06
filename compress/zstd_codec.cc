// Lossless zstd of the f32 bytes, for sparse payloads and checkpoints. Header: p0 = level
// (informational). Body: one zstd frame whose content size must be exactly 4 * count. Without
// zstd in the build every entry point returns Unimplemented.
#include <string>
#include <vector>

#include "compress/codecs.h"

#if defined(PLEXUS_HAVE_ZSTD)
#include <zstd.h>
#endif

namespace plexus {
namespace {

#if defined(PLEXUS_HAVE_ZSTD)

class ZstdCodec final : public Codec {
 public:
  explicit ZstdCodec(int level) : level_(level) {}

  CodecId id() const override { return CodecId::kZstd; }
  std::string spec() const override { return "zstd:level=" + std::to_string(level_); }
  size_t maxEncodedBytes(size_t count) const override {
    return kPayloadHeaderBytes + ZSTD_compressBound(4 * count);
  }

  StatusOr<size_t> encode(std::span<const float> input, std::span<float> ef, std::span<uint8_t> out,
                          const EncodeOptions&) override {
    PLEXUS_TRY(checkEncodeArgs(*this, input, ef, out));
    const float* c = input.data();
    if (!ef.empty()) {
      for (size_t i = 0; i < input.size(); ++i) ef[i] = codec::addRn(input[i], ef[i]);
      c = ef.data();
    }
    const size_t z = ZSTD_compress(out.data() + kPayloadHeaderBytes,
                                   out.size() - kPayloadHeaderBytes, c, 4 * input.size(), level_);
    if (ZSTD_isError(z)) {
      return internalError(std::string("zstd codec: compression failed: ") + ZSTD_getErrorName(z));
    }
    // Lossless: the whole of c was sent, nothing is left to feed back.
    for (float& e : ef) e = 0.0f;
    PayloadHeader h;
    h.codec = CodecId::kZstd;
    h.p0 = static_cast<uint8_t>(level_ < 0 ? 0 : level_);
    h.count = input.size();
    h.bodyBytes = z;
    writePayloadHeader(h, out.data());
    return kPayloadHeaderBytes + z;
  }

 private:
  int level_;
};

#else

Status noZstd() {
  return unimplemented(
      "zstd codec: this build has no zstd (install libzstd-dev and reconfigure with "
      "-DPLEXUS_WITH_ZSTD=ON)");
}

#endif  // PLEXUS_HAVE_ZSTD

}  // namespace

StatusOr<std::unique_ptr<Codec>> makeZstdCodec(int level) {
#if defined(PLEXUS_HAVE_ZSTD)
  if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) {
    return invalidArgument("zstd codec: level " + std::to_string(level) + " out of range");
  }
  return std::unique_ptr<Codec>(std::make_unique<ZstdCodec>(level));
#else
  (void)level;
  return noZstd();
#endif
}

Status decodeZstdBody(const PayloadHeader& h, const uint8_t* body, std::span<float> out,
                      bool accumulate) {
#if defined(PLEXUS_HAVE_ZSTD)
  const unsigned long long size = ZSTD_getFrameContentSize(body, h.bodyBytes);
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size / 4 != h.count ||
      size % 4 != 0) {
    return invalidArgument("zstd payload corrupted: frame content size does not match " +
                           std::to_string(h.count) + " elements");
  }
  std::vector<float> tmp(accumulate ? h.count : 0);
  float* dst = accumulate ? tmp.data() : out.data();
  // The capacity is exactly 4 * count, so even a lying frame cannot write past it.
  const size_t got = ZSTD_decompress(dst, 4 * h.count, body, h.bodyBytes);
  if (ZSTD_isError(got) || got != 4 * h.count) {
    return invalidArgument(std::string("zstd payload corrupted: ") +
                           (ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short frame"));
  }
  if (accumulate) {
    for (uint64_t i = 0; i < h.count; ++i) out[i] = codec::addRn(out[i], tmp[i]);
  }
  return okStatus();
#else
  (void)h, (void)body, (void)out, (void)accumulate;
  return noZstd();
#endif
}

StatusOr<std::vector<uint8_t>> zstdCompressBytes(std::span<const uint8_t> bytes, int level) {
#if defined(PLEXUS_HAVE_ZSTD)
  std::vector<uint8_t> out(ZSTD_compressBound(bytes.size()));
  const size_t z = ZSTD_compress(out.data(), out.size(), bytes.data(), bytes.size(), level);
  if (ZSTD_isError(z)) return internalError(std::string("zstd: ") + ZSTD_getErrorName(z));
  out.resize(z);
  return out;
#else
  (void)bytes, (void)level;
  return noZstd();
#endif
}

StatusOr<std::vector<uint8_t>> zstdDecompressBytes(std::span<const uint8_t> frame,
                                                   size_t maxBytes) {
#if defined(PLEXUS_HAVE_ZSTD)
  const unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > maxBytes) {
    return invalidArgument("zstd: corrupted frame or content larger than " +
                           std::to_string(maxBytes) + " bytes");
  }
  std::vector<uint8_t> out(size);
  const size_t got = ZSTD_decompress(out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(got) || got != size) {
    return invalidArgument(std::string("zstd: corrupted frame: ") +
                           (ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short frame"));
  }
  return out;
#else
  (void)frame, (void)maxBytes;
  return noZstd();
#endif
}

}  // namespace plexus
