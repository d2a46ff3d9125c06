// The payload header every codec writes: 32 bytes, little-endian, in front of the codec's body.
// The header makes payloads self-describing (a receiver validates magic, version, codec, element
// count, parameters and the exact body length before it reads a byte of the body) and is written
// by host and device code alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "compress/codec.h"
#include "compress/codec_math.h"

namespace plexus {

/// "PXCZ" read as a little-endian u32.
inline constexpr uint32_t kPayloadMagic = 0x5A435850u;
/// Bumped whenever a body layout changes.
inline constexpr uint8_t kPayloadVersion = 1;
/// Header size; bodies start 32-byte aligned relative to the payload.
inline constexpr size_t kPayloadHeaderBytes = 32;

/// The decoded header. Field meaning per codec: see each codec's header.
struct PayloadHeader {
  CodecId codec = CodecId::kFp16;
  uint8_t p0 = 0;          ///< small parameter (bits, top-k mode, ...)
  uint8_t p1 = 0;          ///< small parameter (rounding mode, PowerSGD rank, ...)
  uint64_t count = 0;      ///< f32 elements encoded
  uint32_t param = 0;      ///< bucket size, stored k, PowerSGD rows
  uint64_t bodyBytes = 0;  ///< bytes following the header
};

/// FNV-1a of the header bytes other than the check field itself (bytes 20-23). It catches a
/// corrupted header whose fields still look plausible (e.g. a bucket size that happens to give
/// the same body length). Bodies carry no checksum: transports deliver bytes intact, and every
/// body length and index is validated anyway, so corruption there cannot cause an out-of-bounds
/// access, only wrong values.
PLEXUS_HD uint32_t payloadHeaderCheck(const uint8_t* header) {
  uint32_t h = 2166136261u;
  for (int i = 0; i < 32; ++i) {
    if (i >= 20 && i < 24) continue;
    h = (h ^ header[i]) * 16777619u;
  }
  return h;
}

/// Writes `h` into out[0, 32). Layout: magic u32, codec u8, version u8, p0 u8, p1 u8,
/// count u64, param u32, check u32 (payloadHeaderCheck), bodyBytes u64 (little-endian hosts and
/// GPUs only).
PLEXUS_HD void writePayloadHeader(const PayloadHeader& h, uint8_t* out) {
  const uint32_t magic = kPayloadMagic;
  const uint8_t small[4] = {static_cast<uint8_t>(h.codec), kPayloadVersion, h.p0, h.p1};
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(magic >> (8 * i));
  for (int i = 0; i < 4; ++i) out[4 + i] = small[i];
  for (int i = 0; i < 8; ++i) out[8 + i] = static_cast<uint8_t>(h.count >> (8 * i));
  for (int i = 0; i < 4; ++i) out[16 + i] = static_cast<uint8_t>(h.param >> (8 * i));
  for (int i = 0; i < 8; ++i) out[24 + i] = static_cast<uint8_t>(h.bodyBytes >> (8 * i));
  const uint32_t check = payloadHeaderCheck(out);
  for (int i = 0; i < 4; ++i) out[20 + i] = static_cast<uint8_t>(check >> (8 * i));
}

/// Parses and validates the header of `payload`: length, magic, version, codec id, and that the
/// body is exactly header.bodyBytes long (catches truncation and trailing bytes). Body contents
/// are the codec's to validate.
StatusOr<PayloadHeader> readPayloadHeader(std::span<const uint8_t> payload);

/// readPayloadHeader for a payload whose first `headerBytes` (<= 32) bytes are at `header` and
/// whose whole length is `payloadBytes` (for payloads in device memory).
StatusOr<PayloadHeader> parsePayloadHeader(const uint8_t* header, size_t headerBytes,
                                           size_t payloadBytes);

/// Checks that the header's parameters are valid for its codec and give exactly its bodyBytes
/// (the length checks every decoder, CPU or GPU, relies on).
Status checkBodyLayout(const PayloadHeader& h);

/// readPayloadHeader plus: the codec is `expected` and out.size() >= count.
StatusOr<PayloadHeader> checkPayload(std::span<const uint8_t> payload, CodecId expected,
                                     size_t outCount);

}  // namespace plexus
