// Top-k sparsification by magnitude. Header: p0 = 0 exact / 1 threshold-estimated, param = k'
// (pairs stored). Body: k' u32 indices, strictly increasing, then k' f32 values.
//
// Magnitudes compare as the u32 key bits(c) & 0x7fffffff, which orders non-NaN magnitudes like
// floats and gives the CUDA kernels an integer radix to select on.
//  - exact: t = the k-th largest key; all elements with key > t, then the lowest-indexed
//    elements with key == t until k are taken.
//  - threshold: t = the ceil(k * S / n)-th largest key of S = min(n, 4096) samples at indices
//    floor(j * n / S); the first k elements (by index) with key >= t are taken. One pass over the
//    input after a tiny sample; k' may be below k when the estimate is high.
// Selected elements decode exactly, so error feedback leaves e' = 0 there and c elsewhere.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "compress/codecs.h"
#include "compress/topk.h"

namespace plexus {
namespace {

uint32_t keyOf(float c) { return codec::floatBits(c) & 0x7fffffffu; }

class TopKCodec final : public Codec {
 public:
  TopKCodec(uint64_t k, double ratio, bool threshold)
      : k_(k), ratio_(ratio), threshold_(threshold) {}

  CodecId id() const override { return CodecId::kTopK; }
  std::string spec() const override {
    std::string s =
        k_ > 0 ? "topk:k=" + std::to_string(k_) : "topk:ratio=" + std::to_string(ratio_);
    return s + ",mode=" + (threshold_ ? "threshold" : "exact");
  }
  size_t maxEncodedBytes(size_t count) const override {
    return kPayloadHeaderBytes + 8 * std::min<uint64_t>(kFor(count), count);
  }

  StatusOr<size_t> encode(std::span<const float> input, std::span<float> ef, std::span<uint8_t> out,
                          const EncodeOptions&) override {
    const size_t n = input.size();
    const uint64_t k = kFor(n);
    if (k > n) {
      return invalidArgument("topk codec: k = " + std::to_string(k) + " is larger than the " +
                             std::to_string(n) + "-element tensor");
    }
    if (n > 0xffffffffull) return invalidArgument("topk codec: more than 2^32 - 1 elements");
    PLEXUS_TRY(checkEncodeArgs(*this, input, ef, out));
    const float* c = input.data();
    if (!ef.empty()) {
      for (size_t i = 0; i < n; ++i) ef[i] = codec::addRn(input[i], ef[i]);
      c = ef.data();
    }
    TopKSelection sel = threshold_ ? topkThresholdSelection(c, n, k) : topkExactSelection(c, n, k);
    uint8_t* idx = out.data() + kPayloadHeaderBytes;
    uint8_t* val = idx + 4 * sel.indices.size();
    // Selection is done; write pairs in index order (selection functions return them sorted).
    for (size_t j = 0; j < sel.indices.size(); ++j) {
      const uint32_t i = sel.indices[j];
      std::memcpy(idx + 4 * j, &i, 4);
      std::memcpy(val + 4 * j, &c[i], 4);
      if (!ef.empty()) ef[i] = 0.0f;
    }
    PayloadHeader h;
    h.codec = CodecId::kTopK;
    h.p0 = threshold_ ? 1 : 0;
    h.count = n;
    h.param = static_cast<uint32_t>(sel.indices.size());
    h.bodyBytes = 8 * sel.indices.size();
    writePayloadHeader(h, out.data());
    return kPayloadHeaderBytes + h.bodyBytes;
  }

 private:
  uint64_t kFor(size_t count) const {
    return k_ > 0 ? k_ : static_cast<uint64_t>(std::ceil(ratio_ * static_cast<double>(count)));
  }

  uint64_t k_;
  double ratio_;
  bool threshold_;
};

// The m-th largest (1-based) of keys; reorders keys.
uint32_t mthLargest(std::vector<uint32_t>& keys, size_t m) {
  std::nth_element(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(m - 1), keys.end(),
                   [](uint32_t a, uint32_t b) { return a > b; });
  return keys[m - 1];
}

}  // namespace

TopKSelection topkExactSelection(const float* c, size_t n, uint64_t k) {
  TopKSelection sel;
  if (k == 0 || n == 0) return sel;
  std::vector<uint32_t> keys(n);
  for (size_t i = 0; i < n; ++i) keys[i] = keyOf(c[i]);
  sel.threshold = mthLargest(keys, k);
  size_t greater = 0;
  for (size_t i = 0; i < n; ++i) greater += keyOf(c[i]) > sel.threshold;
  size_t ties = k - greater;  // >= 1: the k-th largest itself is a tie
  sel.indices.reserve(k);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t key = keyOf(c[i]);
    if (key > sel.threshold || (key == sel.threshold && ties > 0 && ties--)) {
      sel.indices.push_back(static_cast<uint32_t>(i));
    }
  }
  return sel;
}

uint32_t topkEstimateThreshold(const float* c, size_t n, uint64_t k) {
  const size_t s = std::min<size_t>(n, kTopKSamples);
  std::vector<uint32_t> keys(s);
  for (size_t j = 0; j < s; ++j) keys[j] = keyOf(c[topkSampleIndex(j, n, s)]);
  size_t m = static_cast<size_t>((k * s + n - 1) / n);
  m = std::clamp<size_t>(m, 1, s);
  return mthLargest(keys, m);
}

TopKSelection topkThresholdSelection(const float* c, size_t n, uint64_t k) {
  TopKSelection sel;
  if (k == 0 || n == 0) return sel;
  sel.threshold = topkEstimateThreshold(c, n, k);
  sel.indices.reserve(k);
  for (size_t i = 0; i < n && sel.indices.size() < k; ++i) {
    if (keyOf(c[i]) >= sel.threshold) sel.indices.push_back(static_cast<uint32_t>(i));
  }
  return sel;
}

StatusOr<std::unique_ptr<Codec>> makeTopKCodec(uint64_t k, double ratio, bool threshold) {
  if (k == 0 && !(ratio > 0.0 && ratio <= 1.0)) {
    return invalidArgument("topk codec: give k >= 1 or 0 < ratio <= 1");
  }
  return std::unique_ptr<Codec>(std::make_unique<TopKCodec>(k, ratio, threshold));
}

Status decodeTopKBody(const PayloadHeader& h, const uint8_t* body, std::span<float> out,
                      bool accumulate) {
  const uint64_t k = h.param;
  // Validate every index before writing, so a corrupted payload leaves `out` untouched.
  uint32_t prev = 0;
  for (uint64_t j = 0; j < k; ++j) {
    uint32_t i;
    std::memcpy(&i, body + 4 * j, 4);
    if (i >= h.count || (j > 0 && i <= prev)) {
      return invalidArgument("topk payload corrupted: index " + std::to_string(i) +
                             " out of range or out of order at pair " + std::to_string(j));
    }
    prev = i;
  }
  if (!accumulate) std::fill(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(h.count), 0.0f);
  for (uint64_t j = 0; j < k; ++j) {
    uint32_t i;
    float v;
    std::memcpy(&i, body + 4 * j, 4);
    std::memcpy(&v, body + 4 * k + 4 * j, 4);
    storeOrAdd(&out[i], v, accumulate);
  }
  return okStatus();
}

}  // namespace plexus
