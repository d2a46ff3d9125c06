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
#include "compress/simd.h"
#include "compress/topk.h"

namespace plexus {
namespace {

uint32_t keyOf(float c) { return codec::floatBits(c) & 0x7fffffffu; }

// The m-th largest (1-based) of keys; reorders keys.
uint32_t mthLargest(std::vector<uint32_t>& keys, size_t m) {
  std::nth_element(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(m - 1), keys.end(),
                   [](uint32_t a, uint32_t b) { return a > b; });
  return keys[m - 1];
}

// The keys of c = g + ef (ef not yet folded, or nullptr) at the sample indices, and the sample
// rank that corresponds to k of n.
std::vector<uint32_t> sampleKeys(const float* g, const float* ef, size_t n) {
  std::vector<uint32_t> keys(std::min<size_t>(n, kTopKSamples));
  for (size_t j = 0; j < keys.size(); ++j) {
    const size_t i = topkSampleIndex(j, n, keys.size());
    keys[j] = keyOf(ef != nullptr ? codec::addRn(g[i], ef[i]) : g[i]);
  }
  return keys;
}
size_t sampleRank(uint64_t k, size_t n, size_t s) {
  return std::clamp<size_t>(static_cast<size_t>((k * s + n - 1) / n), 1, s);
}

// The first `limit` elements whose key is >= lo, with their keys and values, folding ef over
// all of it. Keys and values are read while the scanned piece is still in cache: read later,
// scattered over a tensor larger than the cache, they would cost a second pass.
struct Candidates {
  std::vector<uint32_t> indices, keys;
  std::vector<float> values;
};
Candidates collect(const float* g, float* ef, size_t n, uint32_t lo, size_t limit) {
  constexpr size_t kChunk = 16384;  // elements scanned per kernel call
  const codec::SimdKernels& kernels = codec::simdKernels();
  const float* c = ef != nullptr ? ef : g;
  Candidates found;
  std::vector<uint32_t> chunk(std::min(n, kChunk) + 7);
  for (size_t begin = 0; begin < n; begin += kChunk) {
    const size_t end = std::min(n, begin + kChunk);
    if (found.indices.size() >= limit) {
      if (ef == nullptr) break;
      lo = 0xffffffffu;  // only the fold is left to do
    }
    const size_t m = kernels.collectAtLeast(g, ef, begin, end, lo, chunk.data());
    for (size_t j = 0; j < m; ++j) {
      const float v = c[chunk[j]];
      found.indices.push_back(chunk[j]);
      found.keys.push_back(keyOf(v));
      found.values.push_back(v);
    }
  }
  if (found.indices.size() > limit) {
    found.indices.resize(limit);
    found.keys.resize(limit);
    found.values.resize(limit);
  }
  return found;
}

// exact by definition: every key, then the k-th largest by nth_element (c folded already).
TopKSelection exactOverAll(const float* c, size_t n, uint64_t k) {
  TopKSelection sel;
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
      sel.values.push_back(c[i]);
    }
  }
  return sel;
}

// The k largest lie among the elements whose key reaches a bound `lo` set a few standard
// deviations below the k-th largest sample, which one vectorised pass collects (about k of n).
// If fewer than k reach it (a sample far off, or k close to n) the selection runs over all n.
TopKSelection exactSelection(const float* g, float* ef, size_t n, uint64_t k) {
  if (k == 0 || n == 0) {
    if (ef != nullptr) (void)collect(g, ef, n, 0xffffffffu, 0);
    return {};
  }
  std::vector<uint32_t> samples = sampleKeys(g, ef, n);
  const size_t s = samples.size(), m = sampleRank(k, n, s);
  const size_t margin = m + static_cast<size_t>(4 * std::sqrt(static_cast<double>(m))) + 8;
  const float* c = ef != nullptr ? ef : g;
  if (margin < s) {
    const uint32_t lo = mthLargest(samples, margin);
    Candidates candidates = collect(g, ef, n, lo, n);
    const size_t count = candidates.indices.size();
    if (count >= k) {
      TopKSelection sel;
      std::vector<uint32_t> keys = candidates.keys;
      sel.threshold = mthLargest(keys, k);
      size_t greater = 0;
      for (uint32_t key : keys) greater += key > sel.threshold;
      size_t ties = k - greater;
      // Branch-free: about half the candidates are taken, in no predictable pattern.
      sel.indices.resize(k + 1);
      sel.values.resize(k + 1);
      size_t taken = 0;
      for (size_t j = 0; j < count; ++j) {
        const uint32_t key = candidates.keys[j];
        const bool tie = key == sel.threshold && ties > 0;
        ties -= tie;
        sel.indices[taken] = candidates.indices[j];
        sel.values[taken] = candidates.values[j];
        taken += (key > sel.threshold) | tie;
      }
      sel.indices.resize(k);
      sel.values.resize(k);
      return sel;
    }
  } else if (ef != nullptr) {
    (void)collect(g, ef, n, 0xffffffffu, 0);
  }
  return exactOverAll(c, n, k);
}

TopKSelection thresholdSelection(const float* g, float* ef, size_t n, uint64_t k) {
  if (k == 0 || n == 0) {
    if (ef != nullptr) (void)collect(g, ef, n, 0xffffffffu, 0);
    return {};
  }
  std::vector<uint32_t> samples = sampleKeys(g, ef, n);
  TopKSelection sel;
  sel.threshold = mthLargest(samples, sampleRank(k, n, samples.size()));
  Candidates found = collect(g, ef, n, sel.threshold, k);
  sel.indices = std::move(found.indices);
  sel.values = std::move(found.values);
  return sel;
}

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
    // Selection folds error feedback (ef = g + ef) in the same pass that finds candidates.
    float* e = ef.empty() ? nullptr : ef.data();
    const TopKSelection sel = threshold_ ? thresholdSelection(input.data(), e, n, k)
                                         : exactSelection(input.data(), e, n, k);
    uint8_t* idx = out.data() + kPayloadHeaderBytes;
    uint8_t* val = idx + 4 * sel.indices.size();
    // Selection is done; write pairs in index order (selection functions return them sorted).
    for (size_t j = 0; j < sel.indices.size(); ++j) {
      const uint32_t i = sel.indices[j];
      std::memcpy(idx + 4 * j, &i, 4);
      std::memcpy(val + 4 * j, &sel.values[j], 4);
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

}  // namespace

TopKSelection topkExactSelection(const float* c, size_t n, uint64_t k) {
  return exactSelection(c, nullptr, n, k);
}

uint32_t topkEstimateThreshold(const float* c, size_t n, uint64_t k) {
  std::vector<uint32_t> samples = sampleKeys(c, nullptr, n);
  return mthLargest(samples, sampleRank(k, n, samples.size()));
}

TopKSelection topkThresholdSelection(const float* c, size_t n, uint64_t k) {
  return thresholdSelection(c, nullptr, n, k);
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
