// CPU codec throughput (GB/s of f32 input) beside memcpy of the same bytes on one core, from one
// run: `plexus-micro-codecs`. Compare each codec's bytes_per_second with BM_Memcpy's.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "compress/codec.h"

namespace {

constexpr size_t kCount = size_t{1} << 22;  // 16 MiB of f32: beyond L2, like a gradient bucket

std::vector<float> input() {
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(kCount);
  for (float& x : v) x = dist(rng);
  return v;
}

void BM_Memcpy(benchmark::State& state) {
  const std::vector<float> in = input();
  std::vector<float> out(kCount);
  for (auto _ : state) {
    std::memcpy(out.data(), in.data(), 4 * kCount);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * 4 * kCount);
}
BENCHMARK(BM_Memcpy)->Unit(benchmark::kMillisecond);

// Encode with error feedback (range(0) == 1) or without.
void BM_Encode(benchmark::State& state, const char* spec) {
  auto codec = plexus::makeCodec(spec);
  if (!codec.ok()) {
    state.SkipWithError(codec.status().toString().c_str());
    return;
  }
  const std::vector<float> in = input();
  std::vector<float> ef(state.range(0) ? kCount : 0, 0.0f);
  std::vector<uint8_t> out((*codec)->maxEncodedBytes(kCount));
  uint64_t step = 0;
  for (auto _ : state) {
    auto n = (*codec)->encode(in, ef, out, {.seed = 7, .step = step++});
    if (!n.ok()) state.SkipWithError(n.status().toString().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * 4 * kCount);
}

void BM_Decode(benchmark::State& state, const char* spec) {
  auto codec = plexus::makeCodec(spec);
  if (!codec.ok()) {
    state.SkipWithError(codec.status().toString().c_str());
    return;
  }
  const std::vector<float> in = input();
  std::vector<uint8_t> out((*codec)->maxEncodedBytes(kCount));
  auto n = (*codec)->encode(in, {}, out, {});
  if (!n.ok()) {
    state.SkipWithError(n.status().toString().c_str());
    return;
  }
  out.resize(*n);
  std::vector<float> dec(kCount);
  for (auto _ : state) {
    const plexus::Status s =
        state.range(0) ? (*codec)->decodeAccumulate(out, dec) : (*codec)->decode(out, dec);
    if (!s.ok()) state.SkipWithError(s.toString().c_str());
    benchmark::DoNotOptimize(dec.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * 4 * kCount);
}

#define PLEXUS_CODEC_BENCH(name, spec)     \
  BENCHMARK_CAPTURE(BM_Encode, name, spec) \
      ->ArgName("ef")                      \
      ->Arg(0)                             \
      ->Arg(1)                             \
      ->Unit(benchmark::kMillisecond);     \
  BENCHMARK_CAPTURE(BM_Decode, name, spec) \
      ->ArgName("acc")                     \
      ->Arg(0)                             \
      ->Arg(1)                             \
      ->Unit(benchmark::kMillisecond)

PLEXUS_CODEC_BENCH(fp16, "fp16");
PLEXUS_CODEC_BENCH(bf16, "bf16");
PLEXUS_CODEC_BENCH(quant8, "quant:bits=8");
PLEXUS_CODEC_BENCH(quant4, "quant:bits=4");
PLEXUS_CODEC_BENCH(quant2_stochastic, "quant:bits=2,round=stochastic");
PLEXUS_CODEC_BENCH(sign, "sign");
PLEXUS_CODEC_BENCH(topk_exact_1pct, "topk:ratio=0.01");
PLEXUS_CODEC_BENCH(topk_threshold_1pct, "topk:ratio=0.01,mode=threshold");
PLEXUS_CODEC_BENCH(zstd1, "zstd:level=1");

}  // namespace

BENCHMARK_MAIN();
