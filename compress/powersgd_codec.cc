// PowerSGD codec (CPU reference). Header: param = rows, p1 = rank; cols = count / rows.
// Body: P (rows x r f32, row-major) then Q (cols x r f32, row-major). The codec keeps Q between
// encodes (the warm start that makes one power iteration per step enough).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "compress/codecs.h"
#include "compress/powersgd.h"
#include "compress/simd.h"

namespace plexus {
namespace {

using codec::addRn;
using codec::mulRn;

// The rank travels in a u8 header field; PowerSGD ranks are small (1-32 in practice).
constexpr uint32_t kMaxRank = 255;

// Column dot product of a and b (column ja / jb of rows x r matrices) in the tree order.
float columnDot(const float* a, int ja, const float* b, int jb, size_t rows, size_t r) {
  float partial[codec::kPowerSgdTree] = {};
  for (size_t i = 0; i < rows; ++i) {
    float& p = partial[i % codec::kPowerSgdTree];
    p = addRn(p, mulRn(a[i * r + ja], b[i * r + jb]));
  }
  for (int s = codec::kPowerSgdTree / 2; s >= 1; s /= 2) {
    for (int t = 0; t < s; ++t) partial[t] = addRn(partial[t], partial[t + s]);
  }
  return partial[0];
}

// Gram-Schmidt on the columns of P (rows x r), in place.
void orthonormalise(float* p, size_t rows, size_t r) {
  for (size_t j = 0; j < r; ++j) {
    for (size_t jj = 0; jj < j; ++jj) {
      const float d = columnDot(p, static_cast<int>(j), p, static_cast<int>(jj), rows, r);
      for (size_t i = 0; i < rows; ++i) {
        p[i * r + j] = codec::subRn(p[i * r + j], mulRn(d, p[i * r + jj]));
      }
    }
    const float norm =
        codec::sqrtRn(columnDot(p, static_cast<int>(j), p, static_cast<int>(j), rows, r));
    for (size_t i = 0; i < rows; ++i) {
      p[i * r + j] = norm > codec::kPowerSgdEps ? codec::divRn(p[i * r + j], norm) : 0.0f;
    }
  }
}

class PowerSgdCodec final : public Codec {
 public:
  PowerSgdCodec(uint32_t rows, uint32_t cols, uint32_t rank, uint64_t seed)
      : rows_(rows), cols_(cols), rank_(rank), seed_(seed), q_(size_t{cols} * rank) {
    for (size_t i = 0; i < q_.size(); ++i) q_[i] = codec::powerSgdInitQ(seed, i);
  }

  CodecId id() const override { return CodecId::kPowerSgd; }
  std::string spec() const override {
    return "powersgd:rows=" + std::to_string(rows_) + ",cols=" + std::to_string(cols_) +
           ",rank=" + std::to_string(rank_) + ",seed=" + std::to_string(seed_);
  }
  size_t maxEncodedBytes(size_t) const override {
    return kPayloadHeaderBytes + 4 * (size_t{rows_} + cols_) * rank_;
  }

  StatusOr<size_t> encode(std::span<const float> input, std::span<float> ef, std::span<uint8_t> out,
                          const EncodeOptions&) override {
    const size_t rows = rows_, cols = cols_, r = rank_;
    if (input.size() != rows * cols) {
      return invalidArgument("powersgd codec: tensor has " + std::to_string(input.size()) +
                             " elements, expected " + std::to_string(rows) + " x " +
                             std::to_string(cols));
    }
    PLEXUS_TRY(checkEncodeArgs(*this, input, ef, out));
    const codec::SimdKernels& kernels = codec::simdKernels();
    const float* m = input.data();
    if (!ef.empty()) {
      for (size_t i = 0; i < input.size(); ++i) ef[i] = addRn(input[i], ef[i]);
      m = ef.data();
    }
    std::vector<float> p(rows * r);
    kernels.powerSgdMq(m, q_.data(), rows, cols, r, p.data());
    orthonormalise(p.data(), rows, r);
    kernels.powerSgdMtp(m, p.data(), rows, cols, r, q_.data());
    if (!ef.empty()) {
      // e' = c - P Q^T, with c in ef.
      kernels.powerSgdReconstruct(p.data(), q_.data(), rows, cols, r, ef.data(),
                                  codec::kSubtractFromOut);
    }
    PayloadHeader h;
    h.codec = CodecId::kPowerSgd;
    h.count = rows * cols;
    h.param = rows_;
    h.p1 = static_cast<uint8_t>(rank_);
    h.bodyBytes = 4 * (rows + cols) * r;
    writePayloadHeader(h, out.data());
    std::memcpy(out.data() + kPayloadHeaderBytes, p.data(), 4 * p.size());
    std::memcpy(out.data() + kPayloadHeaderBytes + 4 * p.size(), q_.data(), 4 * q_.size());
    return kPayloadHeaderBytes + h.bodyBytes;
  }

 private:
  uint32_t rows_, cols_, rank_;
  uint64_t seed_;
  std::vector<float> q_;  // warm start: the last Q
};

}  // namespace

StatusOr<std::unique_ptr<Codec>> makePowerSgdCodec(uint32_t rows, uint32_t cols, uint32_t rank,
                                                   uint64_t seed) {
  if (rows == 0 || cols == 0) return invalidArgument("powersgd codec: rows and cols must be >= 1");
  if (rank == 0 || rank > std::min({rows, cols, kMaxRank})) {
    return invalidArgument("powersgd codec: rank must be 1..min(rows, cols, 255), got " +
                           std::to_string(rank));
  }
  return std::unique_ptr<Codec>(std::make_unique<PowerSgdCodec>(rows, cols, rank, seed));
}

Status decodePowerSgdBody(const PayloadHeader& h, const uint8_t* body, std::span<float> out,
                          bool accumulate) {
  const uint64_t rows = h.param, r = h.p1;
  const uint64_t cols = rows == 0 ? 0 : h.count / rows;
  std::vector<float> p(rows * r), q(cols * r);
  std::memcpy(p.data(), body, 4 * p.size());
  std::memcpy(q.data(), body + 4 * p.size(), 4 * q.size());
  codec::simdKernels().powerSgdReconstruct(p.data(), q.data(), rows, cols, r, out.data(),
                                           accumulate ? codec::kAddToOut : codec::kStoreOut);
  return okStatus();
}

}  // namespace plexus
