// Fuzz target: decoding a compressed payload that a peer sent. The first byte picks decode or
// decode-accumulate and the output size; the rest is the payload. The decoder must reject bad
// payloads with a Status and never touch memory outside its spans (ASan checks that).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "compress/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool accumulate = (data[0] & 1) != 0;
  const size_t outCount = (data[0] >> 1) * 37u;  // 0 .. 4699 elements
  std::vector<float> out(outCount, 1.0f);
  (void)plexus::decodePayload(std::span<const uint8_t>(data + 1, size - 1), out, accumulate);
  return 0;
}
