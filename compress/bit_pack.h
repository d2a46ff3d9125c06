// Bit-sliced packing of small integer codes (quant_layout.h describes the layout). Exposed for the
// codecs and for the round-trip tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace plexus::codec {

/// Packs codes[0, n) (n <= 32, each < 2^bits, 1 <= bits <= 8) into words[0, bits): bit l of
/// word p is bit p of codes[l]; bits of absent elements (l >= n) are zero.
void packGroup(const uint8_t* codes, size_t n, int bits, uint32_t* words);
/// The inverse: codes[0, n) from words[0, bits).
void unpackGroup(const uint32_t* words, size_t n, int bits, uint8_t* codes);

/// Packs a whole tensor's codes in the bucketed layout: words.size() must be
/// totalCodeWords(codes.size(), bucket, bits). Used by tests; the codecs pack bucket by bucket.
void packCodes(std::span<const uint8_t> codes, int bits, uint32_t bucket,
               std::span<uint32_t> words);
/// The inverse of packCodes.
void unpackCodes(std::span<const uint32_t> words, int bits, uint32_t bucket,
                 std::span<uint8_t> codes);

}  // namespace plexus::codec
