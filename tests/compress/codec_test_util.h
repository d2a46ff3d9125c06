// Helpers shared by the codec tests: deterministic inputs and encode/decode wrappers.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compress/codec.h"

namespace plexus::testing {

/// n normally distributed floats (mean 0, stddev `sigma`) from `seed`.
inline std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

/// makeCodec that fails the test on error.
inline std::unique_ptr<Codec> codecOrDie(const std::string& spec) {
  StatusOr<std::unique_ptr<Codec>> c = makeCodec(spec);
  EXPECT_TRUE(c.ok()) << spec << ": " << c.status().toString();
  return c.ok() ? std::move(c.value()) : nullptr;
}

/// Encodes `in` (with error feedback `ef` when non-empty) and returns the payload.
inline std::vector<uint8_t> encodeOrDie(Codec& codec, const std::vector<float>& in,
                                        std::vector<float>* ef = nullptr,
                                        EncodeOptions options = {}) {
  std::vector<uint8_t> out(codec.maxEncodedBytes(in.size()));
  std::span<float> efSpan = ef ? std::span<float>(*ef) : std::span<float>();
  StatusOr<size_t> n = codec.encode(in, efSpan, out, options);
  EXPECT_TRUE(n.ok()) << codec.spec() << ": " << n.status().toString();
  out.resize(n.ok() ? n.value() : 0);
  return out;
}

/// Decodes a payload into `count` floats.
inline std::vector<float> decodeOrDie(const Codec& codec, const std::vector<uint8_t>& payload,
                                      size_t count) {
  std::vector<float> out(count, -7.0f);
  Status s = codec.decode(payload, out);
  EXPECT_TRUE(s.ok()) << codec.spec() << ": " << s.toString();
  return out;
}

}  // namespace plexus::testing
