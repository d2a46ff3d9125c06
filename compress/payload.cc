// Header parsing and the codec-id dispatch of decodePayload.
#include "compress/payload.h"

#include <string>

#include "compress/quant_layout.h"

namespace plexus {

const char* codecIdName(CodecId id) {
  switch (id) {
    case CodecId::kFp16:
      return "fp16";
    case CodecId::kBf16:
      return "bf16";
    case CodecId::kQuant:
      return "quant";
    case CodecId::kSign:
      return "sign";
    case CodecId::kTopK:
      return "topk";
    case CodecId::kPowerSgd:
      return "powersgd";
    case CodecId::kZstd:
      return "zstd";
  }
  return "invalid";
}

namespace {

template <typename T>
T readLe(const uint8_t* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(p[i]) << (8 * i);
  return v;
}

}  // namespace

StatusOr<PayloadHeader> readPayloadHeader(std::span<const uint8_t> payload) {
  return parsePayloadHeader(payload.data(), payload.size(), payload.size());
}

StatusOr<PayloadHeader> parsePayloadHeader(const uint8_t* p, size_t headerBytes,
                                           size_t payloadBytes) {
  if (headerBytes < kPayloadHeaderBytes || payloadBytes < kPayloadHeaderBytes) {
    return invalidArgument("codec payload truncated: " + std::to_string(payloadBytes) +
                           " bytes, shorter than the 32-byte header");
  }
  if (readLe<uint32_t>(p) != kPayloadMagic) {
    return invalidArgument("codec payload corrupted: bad magic (not a Plexus codec payload)");
  }
  if (readLe<uint32_t>(p + 20) != payloadHeaderCheck(p)) {
    return invalidArgument("codec payload corrupted: header check mismatch");
  }
  if (p[5] != kPayloadVersion) {
    return invalidArgument("codec payload version " + std::to_string(p[5]) + " unsupported (" +
                           "this build reads version " + std::to_string(kPayloadVersion) + ")");
  }
  if (p[4] == 0 || p[4] > kMaxCodecId) {
    return invalidArgument("codec payload corrupted: unknown codec id " + std::to_string(p[4]));
  }
  PayloadHeader h;
  h.codec = static_cast<CodecId>(p[4]);
  h.p0 = p[6];
  h.p1 = p[7];
  h.count = readLe<uint64_t>(p + 8);
  h.param = readLe<uint32_t>(p + 16);
  h.bodyBytes = readLe<uint64_t>(p + 24);
  const uint64_t body = payloadBytes - kPayloadHeaderBytes;
  if (h.bodyBytes != body) {
    return invalidArgument(std::string("codec payload (") + codecIdName(h.codec) + ") " +
                           (h.bodyBytes > body ? "truncated" : "has trailing bytes") +
                           ": header says " + std::to_string(h.bodyBytes) + " body bytes, got " +
                           std::to_string(body));
  }
  return h;
}

Status checkBodyLayout(const PayloadHeader& h) {
  bool ok = true;
  switch (h.codec) {
    case CodecId::kFp16:
    case CodecId::kBf16:
      ok = h.bodyBytes == 2 * h.count;
      break;
    case CodecId::kQuant:
    case CodecId::kSign: {
      const bool sign = h.codec == CodecId::kSign;
      // Every element takes at least one bit, which bounds count before any size arithmetic.
      ok = h.p0 >= 1 && h.p0 <= (sign ? 1 : 8) && h.param >= 1 && h.count <= 8 * h.bodyBytes &&
           h.bodyBytes == codec::quantBodyBytes(h.count, h.param, h.p0, sign ? 1 : 2);
      break;
    }
    case CodecId::kTopK:
      ok = h.p0 <= 1 && h.param <= h.count && h.bodyBytes == 8ull * h.param;
      break;
    case CodecId::kPowerSgd: {
      const uint64_t rows = h.param, r = h.p1, cols = rows == 0 ? 0 : h.count / rows;
      // Bound the factors by the body before multiplying, so corrupted sizes cannot overflow.
      ok = rows > 0 && r > 0 && cols > 0 && rows * cols == h.count && r <= h.bodyBytes &&
           rows + cols <= h.bodyBytes / 4 / r && h.bodyBytes == 4 * (rows + cols) * r;
      break;
    }
    case CodecId::kZstd:
      ok = true;
      break;  // the frame describes itself
  }
  if (ok) return okStatus();
  return invalidArgument(std::string(codecIdName(h.codec)) + " payload corrupted: parameters (" +
                         std::to_string(h.p0) + ", " + std::to_string(h.p1) + ", " +
                         std::to_string(h.param) + ") and " + std::to_string(h.count) +
                         " elements do not match " + std::to_string(h.bodyBytes) + " body bytes");
}

StatusOr<PayloadHeader> checkPayload(std::span<const uint8_t> payload, CodecId expected,
                                     size_t outCount) {
  StatusOr<PayloadHeader> h = readPayloadHeader(payload);
  if (!h.ok()) return h.status();
  if (h->codec != expected) {
    return invalidArgument(std::string("codec mismatch: payload is ") + codecIdName(h->codec) +
                           ", decoder is " + codecIdName(expected));
  }
  PLEXUS_TRY(checkBodyLayout(*h));
  if (h->count > outCount) {
    return invalidArgument(std::string("decode buffer too small for ") + codecIdName(expected) +
                           " payload: " + std::to_string(h->count) + " elements into " +
                           std::to_string(outCount));
  }
  return h;
}

}  // namespace plexus
