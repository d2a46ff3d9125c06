// Bit-sliced packing. SSE2 (the x86-64 baseline) turns one bit plane of 16 codes into 16 bits with
// a shift and a movemask; other targets use the portable loop, which gives the same words.
#include "compress/bit_pack.h"

#include <cstring>

#include "compress/quant_layout.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace plexus::codec {

void packGroup(const uint8_t* codes, size_t n, int bits, uint32_t* words) {
#if defined(__SSE2__)
  alignas(16) uint8_t padded[32];
  if (n < 32) {
    std::memset(padded, 0, sizeof padded);
    std::memcpy(padded, codes, n);
    codes = padded;
  }
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + 16));
  for (int p = 0; p < bits; ++p) {
    // Shifting 16-bit lanes left by 7 - p puts bit p of every byte in that byte's top bit;
    // bits carried across the byte boundary land at most at bit 14 of the lane.
    const __m128i count = _mm_cvtsi32_si128(7 - p);
    const uint32_t a = static_cast<uint32_t>(_mm_movemask_epi8(_mm_sll_epi16(lo, count)));
    const uint32_t b = static_cast<uint32_t>(_mm_movemask_epi8(_mm_sll_epi16(hi, count)));
    words[p] = a | (b << 16);
  }
#else
  for (int p = 0; p < bits; ++p) {
    uint32_t w = 0;
    for (size_t l = 0; l < n; ++l) w |= static_cast<uint32_t>((codes[l] >> p) & 1u) << l;
    words[p] = w;
  }
#endif
}

void unpackGroup(const uint32_t* words, size_t n, int bits, uint8_t* codes) {
  for (size_t l = 0; l < n; ++l) {
    uint32_t c = 0;
    for (int p = 0; p < bits; ++p) c |= ((words[p] >> l) & 1u) << p;
    codes[l] = static_cast<uint8_t>(c);
  }
}

namespace {

// Calls fn(elementOffset, n, wordOffset) for every 32-element group of the bucketed layout.
template <typename Fn>
void forEachGroup(size_t count, int bits, uint32_t bucket, Fn fn) {
  size_t word = 0;
  for (size_t start = 0; start < count; start += bucket) {
    const size_t n = count - start < bucket ? count - start : bucket;
    for (size_t g = 0; g < n; g += 32) {
      fn(start + g, n - g < 32 ? n - g : 32, word);
      word += static_cast<size_t>(bits);
    }
  }
}

}  // namespace

void packCodes(std::span<const uint8_t> codes, int bits, uint32_t bucket,
               std::span<uint32_t> words) {
  forEachGroup(codes.size(), bits, bucket, [&](size_t e, size_t n, size_t w) {
    packGroup(codes.data() + e, n, bits, words.data() + w);
  });
}

void unpackCodes(std::span<const uint32_t> words, int bits, uint32_t bucket,
                 std::span<uint8_t> codes) {
  forEachGroup(codes.size(), bits, bucket, [&](size_t e, size_t n, size_t w) {
    unpackGroup(words.data() + w, n, bits, codes.data() + e);
  });
}

}  // namespace plexus::codec
