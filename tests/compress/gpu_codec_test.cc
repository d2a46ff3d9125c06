// The CUDA codec kernels against the CPU reference: identical payload bytes and identical
// error-feedback residuals in every mode (stochastic rounding included, since both draw the same
// Philox numbers), identical decodes, and device-side rejection of corrupted top-k indices.
// Skips without a CUDA device.
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>

#include "compress/powersgd.h"
#include "compress/quant_layout.h"
#include "kernels/device_buffer.h"
#include "kernels/kernels.h"
#include "tests/compress/codec_test_util.h"

namespace plexus {
namespace {

using kernels::DeviceBuffer;
using testing::codecOrDie;
using testing::gaussian;

class GpuCodec : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      GTEST_SKIP() << "no CUDA device: GPU codec tests skipped";
    }
  }
};

// What one encode produced: payload bytes and the residual.
struct Encoded {
  std::vector<uint8_t> payload;
  std::vector<float> ef;
};

Encoded cpuEncode(Codec& codec, const std::vector<float>& in, std::vector<float> ef,
                  EncodeOptions options = {}) {
  Encoded r;
  r.payload.resize(codec.maxEncodedBytes(in.size()));
  StatusOr<size_t> n = codec.encode(in, ef, r.payload, options);
  EXPECT_TRUE(n.ok()) << n.status().toString();
  r.payload.resize(n.ok() ? *n : 0);
  r.ef = std::move(ef);
  return r;
}

// Runs `launch(in, ef, out)` on device copies and returns the payload (its length from the
// header) and the residual.
template <typename Launch>
Encoded gpuEncode(const std::vector<float>& in, const std::vector<float>& ef, size_t maxBytes,
                  Launch launch) {
  DeviceBuffer dIn(4 * in.size()), dEf(4 * in.size()), dOut(maxBytes);
  EXPECT_TRUE(dIn.ok() && dEf.ok() && dOut.ok());
  EXPECT_TRUE(dIn.upload(in) && dEf.upload(ef));
  EXPECT_EQ(cudaMemset(dOut.as<void>(), 0xAB, maxBytes), cudaSuccess);
  const Status s = launch(dIn.as<float>(), dEf.as<float>(), dOut.as<uint8_t>());
  EXPECT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  Encoded r;
  // The buffer may be longer than the payload (threshold top-k): cut at the header's length.
  std::vector<uint8_t> bytes = dOut.download<uint8_t>(maxBytes);
  uint64_t body = 0;
  std::memcpy(&body, bytes.data() + 24, 8);
  bytes.resize(std::min<size_t>(maxBytes, kPayloadHeaderBytes + body));
  r.payload = std::move(bytes);
  r.ef = dEf.download<float>(in.size());
  return r;
}

void expectSame(const Encoded& cpu, const Encoded& gpu, const std::string& what) {
  ASSERT_EQ(cpu.payload.size(), gpu.payload.size()) << what;
  for (size_t i = 0; i < cpu.payload.size(); ++i) {
    ASSERT_EQ(cpu.payload[i], gpu.payload[i]) << what << ": payload byte " << i;
  }
  ASSERT_EQ(cpu.ef.size(), gpu.ef.size()) << what;
  for (size_t i = 0; i < cpu.ef.size(); ++i) {
    ASSERT_EQ(std::memcmp(&cpu.ef[i], &gpu.ef[i], 4), 0)
        << what << ": residual " << i << " cpu " << cpu.ef[i] << " gpu " << gpu.ef[i];
  }
}

// GPU decode (and decode-accumulate) equals the CPU decode bit-for-bit.
void expectSameDecode(const Codec& codec, const std::vector<uint8_t>& payload, size_t n) {
  std::vector<float> cpu(n), cpuAcc = gaussian(n, 77);
  ASSERT_TRUE(codec.decode(payload, cpu).ok());
  const std::vector<float> base = cpuAcc;
  ASSERT_TRUE(codec.decodeAccumulate(payload, cpuAcc).ok());
  DeviceBuffer dPayload(payload.size()), dOut(4 * n);
  ASSERT_TRUE(dPayload.upload(payload));
  StatusOr<PayloadHeader> h =
      kernels::readDeviceHeader(dPayload.as<uint8_t>(), payload.size(), nullptr);
  ASSERT_TRUE(h.ok()) << h.status().toString();
  ASSERT_TRUE(
      kernels::decode(*h, dPayload.as<uint8_t>(), dOut.as<float>(), n, false, nullptr).ok());
  std::vector<float> gpu = dOut.download<float>(n);
  EXPECT_EQ(std::memcmp(gpu.data(), cpu.data(), 4 * n), 0) << codec.spec() << " decode";
  ASSERT_TRUE(dOut.upload(base));
  ASSERT_TRUE(kernels::decode(*h, dPayload.as<uint8_t>(), dOut.as<float>(), n, true, nullptr).ok());
  gpu = dOut.download<float>(n);
  EXPECT_EQ(std::memcmp(gpu.data(), cpuAcc.data(), 4 * n), 0) << codec.spec() << " accumulate";
}

const size_t kSizes[] = {1, 31, 1031, 100003};

TEST_F(GpuCodec, CastMatchesCpu) {
  for (CodecId id : {CodecId::kFp16, CodecId::kBf16}) {
    for (size_t n : kSizes) {
      std::unique_ptr<Codec> codec = codecOrDie(codecIdName(id));
      std::vector<float> in = gaussian(n, 1, 300.0f), ef = gaussian(n, 2, 0.01f);
      if (n > 10) in[3] = 1e9f;  // saturates
      const Encoded cpu = cpuEncode(*codec, in, ef);
      const Encoded gpu =
          gpuEncode(in, ef, codec->maxEncodedBytes(n), [&](float* i, float* e, uint8_t* o) {
            return kernels::castEncode(id, i, e, n, o, nullptr);
          });
      expectSame(cpu, gpu, codec->spec() + " n=" + std::to_string(n));
      expectSameDecode(*codec, cpu.payload, n);
    }
  }
}

TEST_F(GpuCodec, QuantMatchesCpuInBothRoundingModes) {
  const EncodeOptions options{.seed = 1234, .step = 56};
  for (int bits = 1; bits <= 8; ++bits) {
    for (uint32_t bucket : {512u, 100u, 2048u}) {
      for (bool stochastic : {false, true}) {
        for (size_t n : kSizes) {
          const std::string spec = "quant:bits=" + std::to_string(bits) +
                                   ",bucket=" + std::to_string(bucket) +
                                   (stochastic ? ",round=stochastic" : "");
          std::unique_ptr<Codec> codec = codecOrDie(spec);
          const std::vector<float> in = gaussian(n, bits), ef = gaussian(n, 9, 0.1f);
          const Encoded cpu = cpuEncode(*codec, in, ef, options);
          const Encoded gpu =
              gpuEncode(in, ef, codec->maxEncodedBytes(n), [&](float* i, float* e, uint8_t* o) {
                return kernels::quantEncode(i, e, n, bits, bucket, stochastic, options, o, nullptr);
              });
          expectSame(cpu, gpu, spec + " n=" + std::to_string(n));
          if (n == 1031) expectSameDecode(*codec, cpu.payload, n);
        }
      }
    }
  }
}

TEST_F(GpuCodec, StochasticRoundingIsUnbiasedOnTheGpu) {
  // Statistical check on the device alone: the mean decoded value over 2000 steps approaches c.
  const size_t n = 4096;
  const std::vector<float> in = gaussian(n, 5);
  std::vector<double> sum(n, 0.0);
  DeviceBuffer dIn(4 * n), dOut(kPayloadHeaderBytes + codec::quantBodyBytes(n, 512, 2, 2)),
      dDec(4 * n);
  ASSERT_TRUE(dIn.upload(in));
  const int kSteps = 2000;
  for (int step = 0; step < kSteps; ++step) {
    ASSERT_TRUE(kernels::quantEncode(dIn.as<float>(), nullptr, n, 2, 512, true,
                                     {.seed = 3, .step = uint64_t(step)}, dOut.as<uint8_t>(),
                                     nullptr)
                    .ok());
    StatusOr<PayloadHeader> h =
        kernels::readDeviceHeader(dOut.as<uint8_t>(), dOut.bytes(), nullptr);
    ASSERT_TRUE(h.ok()) << h.status().toString();
    ASSERT_TRUE(kernels::decode(*h, dOut.as<uint8_t>(), dDec.as<float>(), n, false, nullptr).ok());
    const std::vector<float> d = dDec.download<float>(n);
    for (size_t i = 0; i < n; ++i) sum[i] += d[i];
  }
  double worst = 0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(sum[i] / kSteps - in[i]));
  // Unit <= range / 3 ~ 3 for Gaussian buckets; 6 sigma of a mean of 2000 draws of sd <= 1.5.
  EXPECT_LT(worst, 6 * 1.5 / std::sqrt(double{kSteps}));
}

TEST_F(GpuCodec, SignMatchesCpu) {
  for (uint32_t bucket : {512u, 100u}) {
    for (size_t n : kSizes) {
      std::unique_ptr<Codec> codec = codecOrDie("sign:bucket=" + std::to_string(bucket));
      const std::vector<float> in = gaussian(n, 3), ef = gaussian(n, 4, 0.1f);
      const Encoded cpu = cpuEncode(*codec, in, ef);
      const Encoded gpu =
          gpuEncode(in, ef, codec->maxEncodedBytes(n), [&](float* i, float* e, uint8_t* o) {
            return kernels::signEncode(i, e, n, bucket, o, nullptr);
          });
      expectSame(cpu, gpu, codec->spec() + " n=" + std::to_string(n));
      if (n == 1031) expectSameDecode(*codec, cpu.payload, n);
    }
  }
}

TEST_F(GpuCodec, TopKMatchesCpu) {
  for (bool threshold : {false, true}) {
    for (size_t n : {size_t{1031}, size_t{100003}, size_t{1} << 20}) {
      for (uint64_t k : {uint64_t{1}, uint64_t{n / 100 + 1}, uint64_t{n}}) {
        const std::string spec =
            "topk:k=" + std::to_string(k) + (threshold ? ",mode=threshold" : "");
        std::unique_ptr<Codec> codec = codecOrDie(spec);
        std::vector<float> in = gaussian(n, 6), ef = gaussian(n, 7, 0.1f);
        in[10] = in[20] = in[30] = 50.0f;  // ties
        const Encoded cpu = cpuEncode(*codec, in, ef);
        DeviceBuffer ws(kernels::topkWorkspaceBytes(n, k));
        const Encoded gpu =
            gpuEncode(in, ef, codec->maxEncodedBytes(n), [&](float* i, float* e, uint8_t* o) {
              return kernels::topkEncode(i, e, n, k, threshold, o, ws.as<void>(), nullptr);
            });
        expectSame(cpu, gpu, spec + " n=" + std::to_string(n));
        if (n == 1031) expectSameDecode(*codec, cpu.payload, n);
      }
    }
  }
}

TEST_F(GpuCodec, PowerSgdMatchesCpuAcrossWarmStarts) {
  const uint32_t rows = 300, cols = 70, rank = 4;
  const size_t n = size_t{rows} * cols;
  std::unique_ptr<Codec> codec = codecOrDie("powersgd:rows=300,cols=70,rank=4,seed=9");
  std::vector<float> q(size_t{cols} * rank);
  for (size_t i = 0; i < q.size(); ++i) q[i] = codec::powerSgdInitQ(9, i);
  DeviceBuffer dQ(4 * q.size());
  ASSERT_TRUE(dQ.upload(q));
  std::vector<float> efCpu = gaussian(n, 8, 0.1f), efGpu = efCpu;
  for (int step = 0; step < 3; ++step) {
    const std::vector<float> in = gaussian(n, 20 + step);
    const Encoded cpu = cpuEncode(*codec, in, efCpu);
    const Encoded gpu =
        gpuEncode(in, efGpu, codec->maxEncodedBytes(n), [&](float* i, float* e, uint8_t* o) {
          return kernels::powerSgdEncode(i, e, rows, cols, rank, dQ.as<float>(), o, nullptr,
                                         nullptr);
        });
    expectSame(cpu, gpu, "powersgd step " + std::to_string(step));
    efCpu = cpu.ef;
    efGpu = gpu.ef;
    if (step == 0) expectSameDecode(*codec, cpu.payload, n);
  }
}

TEST_F(GpuCodec, CorruptedTopKIndicesAreRejectedOnTheDevice) {
  std::unique_ptr<Codec> codec = codecOrDie("topk:k=5");
  const std::vector<float> in = gaussian(100, 1);
  std::vector<uint8_t> p = cpuEncode(*codec, in, {}).payload;
  const uint32_t huge = 1u << 30;
  std::memcpy(p.data() + kPayloadHeaderBytes + 4, &huge, 4);
  DeviceBuffer dP(p.size()), dOut(400);
  ASSERT_TRUE(dP.upload(p));
  StatusOr<PayloadHeader> h = kernels::readDeviceHeader(dP.as<uint8_t>(), p.size(), nullptr);
  ASSERT_TRUE(h.ok());
  const Status s = kernels::decode(*h, dP.as<uint8_t>(), dOut.as<float>(), 100, false, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.toString();
  EXPECT_FALSE(kernels::readDeviceHeader(dP.as<uint8_t>(), p.size() - 1, nullptr).ok());
  EXPECT_FALSE(kernels::decode(*h, dP.as<uint8_t>(), dOut.as<float>(), 99, false, nullptr).ok());
}

}  // namespace
}  // namespace plexus
