// plexus-micro-reduce: bandwidth of the CPU reduction kernels next to memcpy in the same run.
//
// Every row counts the bytes the loop touches: a + b + dst (3 x size) for a reduction and
// src + dst (2 x size) for memcpy, so "bytes per second" compares like with like. `size` is the
// size of one buffer: 64 KiB and 1 MiB are typical ring chunks (cache resident), 32 MiB per
// buffer is memory bound. After the usual Google Benchmark output, a table gives each row's
// bandwidth as a fraction of memcpy's at the same size, the ratio every claim should quote.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "src/reduce_cpu.h"
#include "src/reduce_cpu_internal.h"

namespace plexus {
namespace {

constexpr size_t kSizes[] = {size_t{64} << 10, size_t{1} << 20, size_t{32} << 20};

/// Buffers of `bytes` each, filled with small normal values of `type` (no denormal slow paths,
/// nothing that overflows when a benchmark accumulates in place).
struct Buffers {
  std::vector<unsigned char> a, b, dst;
  Buffers(DataType type, size_t bytes) : a(bytes), b(bytes), dst(bytes) {
    const float f = 1.0f / 1024;
    const double d = f;
    const uint16_t h = floatToHalf(f), bf = floatToBfloat16(f);
    const int8_t one = 1;  // for every integer type: the low byte of each element
    const void* value = type == DataType::kFloat32    ? static_cast<const void*>(&f)
                        : type == DataType::kFloat64  ? static_cast<const void*>(&d)
                        : type == DataType::kFloat16  ? static_cast<const void*>(&h)
                        : type == DataType::kBFloat16 ? static_cast<const void*>(&bf)
                                                      : static_cast<const void*>(&one);
    const size_t elem = dataTypeSize(type);
    const size_t valueBytes = value == &one ? 1 : elem;
    for (size_t off = 0; off + elem <= bytes; off += elem) {
      std::memcpy(a.data() + off, value, valueBytes);
      std::memcpy(b.data() + off, value, valueBytes);
    }
  }
};

void memcpyBench(benchmark::State& state, size_t bytes) {
  Buffers buf(DataType::kUInt8, bytes);
  for (auto _ : state) {
    std::memcpy(buf.dst.data(), buf.a.data(), bytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 2 * bytes));
}

enum class Layout { kSeparate, kInPlace };  // in place: dst == a, what the ring does

void reduceBench(benchmark::State& state, ReduceIsa isa, DataType type, ReduceOp op, Layout layout,
                 size_t bytes) {
  Buffers buf(type, bytes);
  const size_t count = bytes / dataTypeSize(type);
  unsigned char* dst = layout == Layout::kInPlace ? buf.a.data() : buf.dst.data();
  for (auto _ : state) {
    reduceCpuOn(isa, type, op, dst, buf.a.data(), buf.b.data(), count);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 3 * bytes));
}

std::string sizeName(size_t bytes) {
  return bytes >= (size_t{1} << 20) ? std::to_string(bytes >> 20) + "MiB"
                                    : std::to_string(bytes >> 10) + "KiB";
}

/// Console output as usual, plus a closing table of each row's bandwidth over memcpy's.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      const auto it = run.counters.find("bytes_per_second");
      if (it != run.counters.end()) rows_.push_back({run.benchmark_name(), it->second.value});
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::map<std::string, double> memcpyBySize;
    for (const Row& row : rows_) {
      if (row.name.rfind("memcpy/", 0) == 0) memcpyBySize[row.name.substr(7)] = row.bytesPerSec;
    }
    std::printf("\n%-40s %10s %10s\n", "benchmark", "GB/s", "vs memcpy");
    for (const Row& row : rows_) {
      const std::string size = row.name.substr(row.name.rfind('/') + 1);
      const auto base = memcpyBySize.find(size);
      const double ratio = base == memcpyBySize.end() ? 0 : row.bytesPerSec / base->second;
      std::printf("%-40s %10.1f %10.2f\n", row.name.c_str(), row.bytesPerSec / 1e9, ratio);
    }
  }

 private:
  struct Row {
    std::string name;
    double bytesPerSec;
  };
  std::vector<Row> rows_;
};

void registerAll() {
  const ReduceIsa best = selectedReduceIsa();
  for (size_t bytes : kSizes) {
    const std::string size = sizeName(bytes);
    benchmark::RegisterBenchmark(("memcpy/" + size).c_str(), memcpyBench, bytes);
    auto add = [&](ReduceIsa isa, DataType type, ReduceOp op, Layout layout) {
      std::string name = std::string("reduce/") + dataTypeName(type) + "/" + reduceOpName(op);
      if (layout == Layout::kInPlace) name += "/inplace";
      if (isa != best) name += std::string("/") + reduceIsaName(isa);
      benchmark::RegisterBenchmark((name + "/" + size).c_str(), reduceBench, isa, type, op, layout,
                                   bytes);
    };
    for (int t = 0; t < kNumDataTypes; ++t) {
      add(best, static_cast<DataType>(t), ReduceOp::kSum, Layout::kSeparate);
    }
    add(best, DataType::kFloat32, ReduceOp::kMax, Layout::kSeparate);
    add(best, DataType::kFloat32, ReduceOp::kSum, Layout::kInPlace);
    // The portable path, for the cost of a CPU without AVX2/F16C.
    if (best != ReduceIsa::kBaseline) {
      for (DataType type : {DataType::kFloat32, DataType::kFloat16, DataType::kBFloat16}) {
        add(ReduceIsa::kBaseline, type, ReduceOp::kSum, Layout::kSeparate);
      }
    }
  }
}

}  // namespace
}  // namespace plexus

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::printf("reduction kernels: %s\n", plexus::reduceIsaName(plexus::selectedReduceIsa()));
  plexus::registerAll();
  plexus::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
