// plexus-micro-codecs: CPU codec throughput beside memcpy on one core, from one run.
//
// Every row counts the f32 input bytes (4 x count), memcpy included (it copies the same 4 x count
// bytes), so a codec row over the memcpy row of the same count is the fraction of one core's
// memcpy bandwidth the codec reaches. 1M floats (4 MiB) is a cache-sized bucket, 16M floats
// (64 MiB) is memory bound. Encode rows run without (ef:0) and with (ef:1) error feedback,
// decode rows store (acc:0) or accumulate (acc:1). After the usual output a table gives each row
// in GB/s and as a fraction of memcpy at the same count (medians when run with repetitions):
//   plexus-micro-codecs --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compress/codec.h"

namespace {

constexpr int64_t kCounts[] = {int64_t{1} << 20, int64_t{1} << 24};

// N(0, 1) inputs, made once per count: generating 16M normals takes longer than the benchmark.
const std::vector<float>& input(size_t count) {
  static std::map<size_t, std::vector<float>> cache;
  std::vector<float>& v = cache[count];
  if (v.empty()) {
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    v.resize(count);
    for (float& x : v) x = dist(rng);
  }
  return v;
}

// The spec for `count` elements: PowerSGD takes the square matrix of that many elements.
std::string specFor(const char* spec, size_t count) {
  if (std::strncmp(spec, "powersgd", 8) != 0) return spec;
  const auto side = static_cast<size_t>(std::sqrt(static_cast<double>(count)));
  return std::string(spec) + ",rows=" + std::to_string(side) + ",cols=" + std::to_string(side);
}

void BM_Memcpy(benchmark::State& state) {
  const size_t count = static_cast<size_t>(state.range(0));
  const std::vector<float>& in = input(count);
  std::vector<float> out(count);
  for (auto _ : state) {
    std::memcpy(out.data(), in.data(), 4 * count);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * 4 * int64_t(count));
}

std::unique_ptr<plexus::Codec> codecFor(benchmark::State& state, const char* spec, size_t count) {
  auto codec = plexus::makeCodec(specFor(spec, count));
  if (!codec.ok()) {
    state.SkipWithError(codec.status().toString().c_str());
    return nullptr;
  }
  return std::move(codec.value());
}

// Encode with error feedback (range(1) == 1) or without.
void BM_Encode(benchmark::State& state, const char* spec) {
  const size_t count = static_cast<size_t>(state.range(0));
  std::unique_ptr<plexus::Codec> codec = codecFor(state, spec, count);
  if (codec == nullptr) return;
  const std::vector<float>& in = input(count);
  std::vector<float> ef(state.range(1) ? count : 0, 0.0f);
  std::vector<uint8_t> out(codec->maxEncodedBytes(count));
  uint64_t step = 0;
  for (auto _ : state) {
    auto n = codec->encode(in, ef, out, {.seed = 7, .step = step++});
    if (!n.ok()) state.SkipWithError(n.status().toString().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * 4 * int64_t(count));
}

// Decode into (range(1) == 0) or accumulate into (1) a buffer of count floats.
void BM_Decode(benchmark::State& state, const char* spec) {
  const size_t count = static_cast<size_t>(state.range(0));
  std::unique_ptr<plexus::Codec> codec = codecFor(state, spec, count);
  if (codec == nullptr) return;
  std::vector<uint8_t> out(codec->maxEncodedBytes(count));
  auto n = codec->encode(input(count), {}, out, {});
  if (!n.ok()) {
    state.SkipWithError(n.status().toString().c_str());
    return;
  }
  out.resize(*n);
  std::vector<float> dec(count, 0.0f);
  for (auto _ : state) {
    const plexus::Status s =
        state.range(1) ? codec->decodeAccumulate(out, dec) : codec->decode(out, dec);
    if (!s.ok()) state.SkipWithError(s.toString().c_str());
    benchmark::DoNotOptimize(dec.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * 4 * int64_t(count));
}

BENCHMARK(BM_Memcpy)->ArgName("n")->Arg(kCounts[0])->Arg(kCounts[1])->Unit(benchmark::kMillisecond);

#define PLEXUS_CODEC_BENCH(name, spec)                  \
  BENCHMARK_CAPTURE(BM_Encode, name, spec)              \
      ->ArgNames({"n", "ef"})                           \
      ->ArgsProduct({{kCounts[0], kCounts[1]}, {0, 1}}) \
      ->Unit(benchmark::kMillisecond);                  \
  BENCHMARK_CAPTURE(BM_Decode, name, spec)              \
      ->ArgNames({"n", "acc"})                          \
      ->ArgsProduct({{kCounts[0], kCounts[1]}, {0, 1}}) \
      ->Unit(benchmark::kMillisecond)

PLEXUS_CODEC_BENCH(fp16, "fp16");
PLEXUS_CODEC_BENCH(bf16, "bf16");
PLEXUS_CODEC_BENCH(quant8, "quant:bits=8");
PLEXUS_CODEC_BENCH(quant4, "quant:bits=4");
PLEXUS_CODEC_BENCH(quant1, "quant:bits=1");
PLEXUS_CODEC_BENCH(quant8_stochastic, "quant:bits=8,round=stochastic");
PLEXUS_CODEC_BENCH(quant2_stochastic, "quant:bits=2,round=stochastic");
PLEXUS_CODEC_BENCH(sign, "sign");
PLEXUS_CODEC_BENCH(topk_exact_1pct, "topk:ratio=0.01");
PLEXUS_CODEC_BENCH(topk_threshold_1pct, "topk:ratio=0.01,mode=threshold");
PLEXUS_CODEC_BENCH(powersgd_rank4, "powersgd:rank=4");
PLEXUS_CODEC_BENCH(zstd1, "zstd:level=1");

// Console output as usual, then each row (the median when there are repetitions) in GB/s and
// over memcpy's GB/s at the same count.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      const auto it = run.counters.find("bytes_per_second");
      if (run.error_occurred || it == run.counters.end()) continue;
      if (!median && (run.run_type != Run::RT_Iteration || run.repetitions > 1)) continue;
      std::string name = run.run_name.str();
      rows_.push_back({name, it->second.value});
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::map<std::string, double> memcpyByCount;  // "n:1048576" -> bytes per second
    for (const Row& row : rows_) {
      if (row.name.rfind("BM_Memcpy/", 0) == 0) memcpyByCount[row.name.substr(10)] = row.rate;
    }
    std::printf("\n%-52s %8s %10s\n", "benchmark (median)", "GB/s", "vs memcpy");
    for (const Row& row : rows_) {
      const size_t at = row.name.find("/n:");
      const std::string count = row.name.substr(at + 1, row.name.find('/', at + 1) - at - 1);
      const auto base = memcpyByCount.find(count);
      const double ratio = base == memcpyByCount.end() ? 0 : row.rate / base->second;
      std::printf("%-52s %8.2f %10.2f\n", row.name.c_str(), row.rate / 1e9, ratio);
    }
  }

 private:
  struct Row {
    std::string name;
    double rate;
  };
  std::vector<Row> rows_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
