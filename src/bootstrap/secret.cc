// The per-job secret: parsed from hex, hashed from any other text (SHA-256, so that every rank
// given the same text derives the same 32 bytes), or drawn from the OS.
#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "src/bootstrap/store.h"

namespace plexus::bootstrap {
namespace {

// SHA-256 (FIPS 180-4). Small and dependency-free; speed is irrelevant for a few short strings.
class Sha256 {
 public:
  void update(const uint8_t* data, size_t size) {
    for (size_t i = 0; i < size; ++i) {
      block_[blockUsed_++] = data[i];
      if (blockUsed_ == 64) {
        compress();
        blockUsed_ = 0;
      }
    }
    bits_ += static_cast<uint64_t>(size) * 8;
  }

  Secret finish() {
    const uint64_t bits = bits_;
    const uint8_t one = 0x80, zero = 0;
    update(&one, 1);
    while (blockUsed_ != 56) update(&zero, 1);
    uint8_t length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    update(length, 8);
    Secret digest{};
    for (int i = 0; i < 8; ++i) {
      for (int b = 0; b < 4; ++b) digest[4 * i + b] = static_cast<uint8_t>(h_[i] >> (24 - 8 * b));
    }
    return digest;
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void compress() {
    static constexpr uint32_t kK[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = static_cast<uint32_t>(block_[4 * i]) << 24 | block_[4 * i + 1] << 16 |
             block_[4 * i + 2] << 8 | block_[4 * i + 3];
    }
    for (int i = 16; i < 64; ++i) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t v[8];
    std::memcpy(v, h_, sizeof(v));
    for (int i = 0; i < 64; ++i) {
      uint32_t s1 = rotr(v[4], 6) ^ rotr(v[4], 11) ^ rotr(v[4], 25);
      uint32_t choice = (v[4] & v[5]) ^ (~v[4] & v[6]);
      uint32_t t1 = v[7] + s1 + choice + kK[i] + w[i];
      uint32_t s0 = rotr(v[0], 2) ^ rotr(v[0], 13) ^ rotr(v[0], 22);
      uint32_t majority = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
      std::memmove(v + 1, v, 7 * sizeof(uint32_t));
      v[4] += t1;
      v[0] = t1 + s0 + majority;
    }
    for (int i = 0; i < 8; ++i) h_[i] += v[i];
  }

  uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t block_[64] = {};
  size_t blockUsed_ = 0;
  uint64_t bits_ = 0;
};

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Secret secretFromString(const std::string& text) {
  Secret secret{};
  bool isHex = text.size() == 2 * secret.size();
  for (size_t i = 0; isHex && i < secret.size(); ++i) {
    int hi = hexDigit(text[2 * i]), lo = hexDigit(text[2 * i + 1]);
    isHex = hi >= 0 && lo >= 0;
    secret[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  if (isHex) return secret;
  Sha256 hash;
  hash.update(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  return hash.finish();
}

StatusOr<Secret> randomSecret() {
  Secret secret{};
  size_t filled = 0;
  while (filled < secret.size()) {
    ssize_t n = ::getrandom(secret.data() + filled, secret.size() - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return internalError(std::string("getrandom: ") + std::strerror(errno));
    filled += static_cast<size_t>(n);
  }
  return secret;
}

}  // namespace plexus::bootstrap
