// Lossless zstd of the f32 bytes, for sparse payloads and checkpoints. Header: p0 = level
// (informational). Body: one zstd frame whose content size must be exactly 4 * count. Without
// zstd in the build every entry point returns Unimplemented.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "compress/codecs.h"

#if defined(PLEXUS_HAVE_ZSTD)
#include <zstd.h>
#endif

namespace plexus {
namespace {

#if defined(PLEXUS_HAVE_ZSTD)

struct FreeCCtx {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct FreeDCtx {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

Status corruptedFrame(size_t code) {
  return invalidArgument(std::string("zstd payload corrupted: ") +
                         (ZSTD_isError(code) ? ZSTD_getErrorName(code) : "short frame"));
}

// One decompression context per thread, kept across calls (decode is const and may run
// concurrently); creating one per call costs more than decoding a small payload.
ZSTD_DCtx* threadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, FreeDCtx> dctx(ZSTD_createDCtx());
  return dctx.get();
}

class ZstdCodec final : public Codec {
 public:
  explicit ZstdCodec(int level) : level_(level), cctx_(ZSTD_createCCtx()) {}

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
    if (cctx_ == nullptr) return internalError("zstd codec: out of memory for a context");
    // The same frame as ZSTD_compress at this level, without a context allocation per call.
    const size_t z =
        ZSTD_compressCCtx(cctx_.get(), out.data() + kPayloadHeaderBytes,
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
  std::unique_ptr<ZSTD_CCtx, FreeCCtx> cctx_;  // encode() may mutate codec state (codec.h)
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
  ZSTD_DCtx* dctx = threadDCtx();
  if (dctx == nullptr) return internalError("zstd: out of memory for a context");
  if (!accumulate) {
    // The capacity is exactly 4 * count, so even a lying frame cannot write past it.
    const size_t got = ZSTD_decompressDCtx(dctx, out.data(), 4 * h.count, body, h.bodyBytes);
    if (ZSTD_isError(got) || got != 4 * h.count) return corruptedFrame(got);
    return okStatus();
  }
  // Accumulate: decompress a cache-sized piece at a time and add it, instead of a count-sized
  // temporary. A piece may end inside a float; those bytes move to the front of the next one.
  constexpr size_t kPiece = size_t{64} << 10;  // floats
  std::vector<float> piece(static_cast<size_t>(std::min<uint64_t>(h.count, kPiece)) + 1);
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
  ZSTD_inBuffer in{body, h.bodyBytes, 0};
  uint64_t done = 0;   // floats added
  size_t carried = 0;  // bytes of a partial float at the front of `piece`
  for (size_t ret = 1; ret != 0;) {
    // Never more than 4 * count bytes in all, as in the one-shot decode.
    const size_t want = static_cast<size_t>(std::min<uint64_t>(h.count - done, kPiece));
    ZSTD_outBuffer o{piece.data(), 4 * want, carried};
    const size_t inBefore = in.pos;
    ret = ZSTD_decompressStream(dctx, &o, &in);
    if (ZSTD_isError(ret)) return corruptedFrame(ret);
    if (ret != 0 && in.pos == inBefore && o.pos == carried) return corruptedFrame(0);  // stuck
    const size_t whole = o.pos / 4;
    for (size_t i = 0; i < whole; ++i) out[done + i] = codec::addRn(out[done + i], piece[i]);
    done += whole;
    carried = o.pos % 4;
    std::memmove(piece.data(), reinterpret_cast<const uint8_t*>(piece.data()) + 4 * whole, carried);
  }
  if (done != h.count) return corruptedFrame(0);
  if (in.pos < in.size) {
    // What follows the frame must decode to nothing, as ZSTD_decompress into 4 * count requires.
    const size_t rest = ZSTD_decompressDCtx(dctx, piece.data(), 0, body + in.pos, in.size - in.pos);
    if (ZSTD_isError(rest) || rest != 0) return corruptedFrame(rest);
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
