// GPU codec throughput: each kernel's GB/s of f32 input and its fraction of the device-to-device
// cudaMemcpy bandwidth measured in the same run, plus threshold top-k against a sort-based exact
// top-k (cub radix sort of magnitude keys with indices), the baseline we can build without
// PyTorch; the issue's torch.topk comparison needs a CUDA build of torch.
// `plexus-gpu-codecs [elements]` (default 2^26 = 256 MiB of f32).
#include <cstdio>
#include <cstdlib>
#include <cub/device/device_radix_sort.cuh>
#include <functional>
#include <vector>

#include "compress/quant_layout.h"
#include "kernels/device_buffer.h"
#include "kernels/kernels.h"

namespace {

using plexus::kernels::DeviceBuffer;

// Mean milliseconds of fn over `iters` runs after 3 warm-ups, timed with events.
float timeMs(const std::function<void()>& fn, int iters = 20) {
  for (int i = 0; i < 3; ++i) fn();
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a);
  for (int i = 0; i < iters; ++i) fn();
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / iters;
}

__global__ void fillKernel(float* x, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    x[i] = (static_cast<float>(h & 0xffffff) / 16777216.0f - 0.5f) * 2.0f;
  }
}

__global__ void keysKernel(const float* x, size_t n, uint32_t* keys, uint32_t* idx) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    keys[i] = __float_as_uint(x[i]) & 0x7fffffffu;
    idx[i] = static_cast<uint32_t>(i);
  }
}

void check(const plexus::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "plexus-gpu-codecs: %s\n", s.toString().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("plexus-gpu-codecs: no CUDA device, nothing to measure\n");
    return 0;
  }
  const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : size_t{1} << 26;
  const double inBytes = 4.0 * n;
  DeviceBuffer g(4 * n), ef(4 * n), copy(4 * n), out(4 * n + 4096);
  fillKernel<<<1024, 256>>>(g.as<float>(), n, 1);
  cudaMemset(ef.as<void>(), 0, 4 * n);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);

  const float copyMs = timeMs(
      [&] { cudaMemcpyAsync(copy.as<void>(), g.as<void>(), 4 * n, cudaMemcpyDeviceToDevice); });
  const double copyGBs = inBytes / copyMs / 1e6;  // bytes copied per second (reads = writes)
  std::printf("# %s, %zu f32 elements (%.0f MiB)\n", prop.name, n, inBytes / (1 << 20));
  std::printf("# D2D cudaMemcpy: %.1f GB/s copied (%.1f GB/s of traffic)\n", copyGBs, 2 * copyGBs);
  std::printf("%-34s %9s %12s %11s %14s\n", "# kernel", "ms", "GB/s(in)", "frac(copy)",
              "traffic/bound");

  // `traffic` is the bytes the kernel must move (reads + writes); the bound is the copy's
  // traffic rate, so traffic/bound is the fraction of the achievable memory-traffic rate.
  auto report = [&](const char* name, double traffic, const std::function<void()>& fn) {
    const float ms = timeMs(fn);
    const double gbs = inBytes / ms / 1e6;
    std::printf("%-34s %9.3f %12.1f %11.2f %14.2f\n", name, ms, gbs, gbs / copyGBs,
                traffic / ms / 1e6 / (2 * copyGBs));
  };
  float* e = ef.as<float>();
  uint8_t* o = out.as<uint8_t>();
  const float* in = g.as<float>();
  report("fp16 encode + EF", 14.0 * n,
         [&] { check(plexus::kernels::castEncode(plexus::CodecId::kFp16, in, e, n, o, nullptr)); });
  report("bf16 encode", 6.0 * n, [&] {
    check(plexus::kernels::castEncode(plexus::CodecId::kBf16, in, nullptr, n, o, nullptr));
  });
  for (int bits : {1, 2, 4, 8}) {
    char name[64];
    const double payload = double(plexus::codec::quantBodyBytes(n, 512, bits, 2));
    std::snprintf(name, sizeof name, "quant%d bucket512 RTN + EF", bits);
    report(name, 12.0 * n + payload, [&] {
      check(plexus::kernels::quantEncode(in, e, n, bits, 512, false, {}, o, nullptr));
    });
    std::snprintf(name, sizeof name, "quant%d bucket512 stochastic + EF", bits);
    report(name, 12.0 * n + payload, [&] {
      check(plexus::kernels::quantEncode(in, e, n, bits, 512, true, {.seed = 1, .step = 2}, o,
                                         nullptr));
    });
  }
  report("sign bucket512 + EF", 12.0 * n + n / 8.0,
         [&] { check(plexus::kernels::signEncode(in, e, n, 512, o, nullptr)); });

  // Top-k at k = 1%: threshold (ours), exact (ours), and the sort-based exact baseline.
  const uint64_t k = n / 100;
  DeviceBuffer ws(plexus::kernels::topkWorkspaceBytes(n, k));
  report("topk threshold k=1%", 4.0 * n + 8.0 * k, [&] {
    check(plexus::kernels::topkEncode(in, nullptr, n, k, true, o, ws.as<void>(), nullptr));
  });
  report("topk exact (radix select) k=1%", 4.0 * n + 8.0 * k, [&] {
    check(plexus::kernels::topkEncode(in, nullptr, n, k, false, o, ws.as<void>(), nullptr));
  });
  DeviceBuffer keys(4 * n), keysOut(4 * n), idx(4 * n), idxOut(4 * n);
  size_t tempBytes = 0;
  cub::DeviceRadixSort::SortPairsDescending(nullptr, tempBytes, keys.as<uint32_t>(),
                                            keysOut.as<uint32_t>(), idx.as<uint32_t>(),
                                            idxOut.as<uint32_t>(), static_cast<int>(n));
  DeviceBuffer temp(tempBytes);
  report("topk baseline: cub radix sort", 4.0 * n + 8.0 * k, [&] {
    keysKernel<<<1024, 256>>>(in, n, keys.as<uint32_t>(), idx.as<uint32_t>());
    cub::DeviceRadixSort::SortPairsDescending(temp.as<void>(), tempBytes, keys.as<uint32_t>(),
                                              keysOut.as<uint32_t>(), idx.as<uint32_t>(),
                                              idxOut.as<uint32_t>(), static_cast<int>(n));
  });
  std::printf("# torch.topk comparison: needs a CUDA build of PyTorch (not available here)\n");
  return cudaDeviceSynchronize() == cudaSuccess ? 0 : 1;
}
