#include "bench/perf/sweep.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench/perf/perf_values.h"
#include "src/config.h"

namespace plexus::perf {
namespace {

struct Measurement {
  double timeUs = 0, algbw = 0, busbw = 0;
  int64_t wrong = -1;  // -1: not checked
};

struct Row {
  size_t bytes = 0, count = 0;
  Measurement outOfPlace, inPlace;
};

// nccl-tests' type names in the table, in DataType order.
const char* tableTypeName(DataType t) {
  static const char* kNames[] = {"float", "double", "half",  "bfloat16",
                                 "int8",  "uint8",  "int32", "int64"};
  return kNames[static_cast<int>(t)];
}

// Times `iters` calls after `warmup` untimed ones; the slowest rank's average is the time, as in
// nccl-tests. The check runs afterwards on fresh inputs, so a timed loop that accumulates in
// place (the in-place rows) cannot hide or cause a wrong result.
Measurement measure(SweepBackend& b, const SweepOptions& o, void* send, void* recv, size_t count,
                    size_t bytes) {
  Measurement m;
  b.prepare(send, recv, count);
  b.barrier();
  for (int i = 0; i < o.warmup; ++i) b.run(send, recv, count);
  b.barrier();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < o.iters; ++i) b.run(send, recv, count);
  double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
      o.iters;
  m.timeUs = b.agree(us, true);
  m.algbw = static_cast<double>(bytes) / m.timeUs / 1e3;  // GB/s
  m.busbw = m.algbw * b.busFactor();
  if (o.check) {
    b.fill(send, count, o);
    b.run(send, recv, count);
    m.wrong =
        static_cast<int64_t>(b.agree(static_cast<double>(b.countWrong(recv, count, o)), false));
  }
  return m;
}

void printHeader(SweepBackend& b, const SweepOptions& o) {
  std::printf("# %s: %d ranks, transport %s, algorithm %s, %d iters, %d warmup%s\n",
              b.title().c_str(), b.size(), b.transport().c_str(), b.algorithm().c_str(), o.iters,
              o.warmup, o.registered ? ", buffers from the library's allocator (-R 1)" : "");
  std::printf("#\n# %10s  %12s  %8s  %6s  %6s %33s %33s\n", "", "", "", "", "", "out-of-place",
              "in-place");
  std::printf("# %10s  %12s  %8s  %6s  %6s  %8s  %7s  %7s  %6s  %8s  %7s  %7s  %6s\n", "size",
              "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw",
              "busbw", "#wrong");
  std::printf("# %10s  %12s  %8s  %6s  %6s  %8s  %7s  %7s  %6s  %8s  %7s  %7s  %6s\n", "(B)",
              "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)",
              "");
}

std::string wrongText(int64_t w) { return w < 0 ? "N/A" : std::to_string(w); }

void printRow(const Row& r, const SweepBackend& b, const SweepOptions& o) {
  const Measurement &x = r.outOfPlace, &y = r.inPlace;
  std::printf("  %10zu  %12zu  %8s  %6s  %6d  %8.2f  %7.2f  %7.2f  %6s  %8.2f  %7.2f  %7.2f  %6s\n",
              r.bytes, r.count, tableTypeName(o.type), reduceOpName(o.op), b.rooted() ? o.root : -1,
              x.timeUs, x.algbw, x.busbw, wrongText(x.wrong).c_str(), y.timeUs, y.algbw, y.busbw,
              wrongText(y.wrong).c_str());
  std::fflush(stdout);
}

std::string jsonMeasurement(const Measurement& x) {
  return "{\"time_us\": " + std::to_string(x.timeUs) + ", \"algbw\": " + std::to_string(x.algbw) +
         ", \"busbw\": " + std::to_string(x.busbw) + ", \"wrong\": " + std::to_string(x.wrong) +
         "}";
}

// The schema of plexus-perf's --json, so that one reader handles every tool.
void writeJson(SweepBackend& b, const SweepOptions& o, const std::vector<Row>& rows, double avg) {
  FILE* f = std::fopen(o.json.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "%s: cannot write %s\n", b.title().c_str(), o.json.c_str());
    std::exit(1);
  }
  std::fprintf(f,
               "{\"collective\": \"%s\", \"ranks\": %d, \"transport\": \"%s\", "
               "\"algorithm\": \"%s\", \"type\": \"%s\", \"op\": \"%s\", \"results\": [\n",
               b.collective().c_str(), b.size(), b.transport().c_str(), b.algorithm().c_str(),
               dataTypeName(o.type), reduceOpName(o.op));
  for (size_t i = 0; i < rows.size(); ++i) {
    std::fprintf(f,
                 "  {\"bytes\": %zu, \"count\": %zu, \"out_of_place\": %s, \"in_place\": %s}%s\n",
                 rows[i].bytes, rows[i].count, jsonMeasurement(rows[i].outOfPlace).c_str(),
                 jsonMeasurement(rows[i].inPlace).c_str(), i + 1 < rows.size() ? "," : "");
  }
  std::fprintf(f, "], \"avg_busbw\": %f}\n", avg);
  std::fclose(f);
}

int parseInt(const SweepProgram& program, const std::string& flag, const char* v, int lo, int hi) {
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || x < lo || x > hi) {
    sweepUsage(program, flag + " wants an integer in [" + std::to_string(lo) + ", " +
                            std::to_string(hi) + "], got '" + v + "'");
  }
  return static_cast<int>(x);
}

void printUsage(std::FILE* to, const SweepProgram& program) {
  std::fprintf(to,
               "usage: %s%s%s [-b MIN] [-e MAX] [-f FACTOR] [-n ITERS] [-w WARMUP] "
               "[-c 0|1] [-d TYPE] [-o OP] [-r ROOT] [-a ALGO] [-R 0|1] [--json FILE]\n%s\n",
               program.name.c_str(), program.operands.empty() ? "" : " ", program.operands.c_str(),
               program.more.c_str());
}

}  // namespace

void sweepUsage(const SweepProgram& program, const std::string& why) {
  std::fprintf(stderr, "%s: %s\n", program.name.c_str(), why.c_str());
  printUsage(stderr, program);
  std::exit(2);
}

bool isHelpFlag(const char* arg) {
  return std::strcmp(arg, "-h") == 0 || std::strcmp(arg, "--help") == 0;
}

void sweepHelp(const SweepProgram& program) {
  printUsage(stdout, program);
  std::exit(0);
}

void* SweepBackend::allocate(size_t bytes, const SweepOptions& o) {
  if (o.registered) {
    std::fprintf(stderr, "%s: -R 1 (buffers from the library's allocator) is not supported\n",
                 title().c_str());
    std::exit(2);
  }
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (p == nullptr) {
    std::fprintf(stderr, "%s: cannot allocate %zu bytes\n", title().c_str(), bytes);
    std::exit(1);
  }
  std::memset(p, 0, bytes);
  return p;
}

void SweepBackend::release(void* p, const SweepOptions&) { std::free(p); }

size_t SweepBackend::countFor(size_t bytes, size_t elemSize) const {
  return std::max<size_t>(1, bytes / elemSize);
}

void SweepBackend::inPlace(void* buf, size_t, size_t, void** send, void** recv) const {
  *send = buf;
  *recv = buf;
}

// Each rank sends and receives 2(n-1)/n of the buffer in a bandwidth-optimal all-reduce,
// whatever the library actually does (nccl-tests).
double SweepBackend::busFactor() const { return 2.0 * (size() - 1) / size(); }

void SweepBackend::fill(void* send, size_t count, const SweepOptions& o) const {
  for (size_t i = 0; i < count; ++i) {
    perf::storeValue(o.type, send, i, perf::inputValue(o.op, rank(), i));
  }
}

size_t SweepBackend::countWrong(const void* recv, size_t count, const SweepOptions& o) const {
  size_t wrong = 0;
  for (size_t i = 0; i < count; ++i) {
    wrong += !perf::matchesValue(o.type, recv, i, perf::expectedValue(o.op, size(), i, o.type));
  }
  return wrong;
}

bool peerSupports(const char* program, const SweepOptions& o) {
  const bool type = o.type == DataType::kFloat32 || o.type == DataType::kFloat64 ||
                    o.type == DataType::kInt32 || o.type == DataType::kInt64;
  if (!type || o.op == ReduceOp::kAvg) {
    std::fprintf(stderr, "%s: %s %s is not a native all-reduce of MPI and Gloo\n", program,
                 dataTypeName(o.type), reduceOpName(o.op));
  }
  return type && o.op != ReduceOp::kAvg;
}

SweepOptions parseSweepOptions(int argc, char** argv, int first, const SweepProgram& program) {
  SweepOptions o;
  for (int i = first; i < argc; ++i) {
    std::string f = argv[i];
    if (isHelpFlag(argv[i])) sweepHelp(program);
    if (i + 1 >= argc) sweepUsage(program, f + " needs a value");
    const char* v = argv[++i];
    if (f == "-b" || f == "-e") {
      size_t bytes = 0;
      if (!parseByteSize(v, &bytes) || bytes > (size_t{16} << 30)) {
        sweepUsage(program, f + " wants a size like 8, 64k, 32M");
      }
      (f == "-b" ? o.minBytes : o.maxBytes) = bytes;
    } else if (f == "-f") {
      o.factor = parseInt(program, f, v, 2, 1024);
    } else if (f == "-n") {
      o.iters = parseInt(program, f, v, 1, 1000000);
    } else if (f == "-w") {
      o.warmup = parseInt(program, f, v, 0, 1000000);
    } else if (f == "-c") {
      o.check = parseInt(program, f, v, 0, 1) == 1;
    } else if (f == "-d") {
      if (!parseDataType(v, &o.type)) sweepUsage(program, std::string("unknown type '") + v + "'");
    } else if (f == "-o") {
      if (!parseReduceOp(v, &o.op)) sweepUsage(program, std::string("unknown op '") + v + "'");
    } else if (f == "-r") {
      o.root = parseInt(program, f, v, 0, 1 << 20);
    } else if (f == "-a") {
      o.algorithm = v;
    } else if (f == "-R") {
      o.registered = parseInt(program, f, v, 0, 1) == 1;
    } else if (f == "--json") {
      o.json = v;
    } else {
      sweepUsage(program, "unknown option " + f);
    }
  }
  if (o.minBytes > o.maxBytes) sweepUsage(program, "-b is larger than -e");
  return o;
}

int runSweep(SweepBackend& b, const SweepOptions& o) {
  const size_t elem = dataTypeSize(o.type);
  const bool leader = b.rank() == 0;
  if (b.rooted() && o.root >= b.size()) {
    std::fprintf(stderr, "%s: -r %d is not a rank of this job (%d ranks)\n", b.title().c_str(),
                 o.root, b.size());
    return 2;
  }
  const size_t maxCount = b.countFor(o.maxBytes, elem);
  // Room for the largest of the sweep's buffers; the in-place rows use `recv` alone.
  const size_t sendCount = b.sendCountFor(maxCount);
  // The sweep's buffers, from the backend (-R); released on every return.
  struct Buffer {
    SweepBackend& b;
    const SweepOptions& o;
    uint8_t* p;
    Buffer(SweepBackend& backend, const SweepOptions& opts, size_t bytes)
        : b(backend), o(opts), p(static_cast<uint8_t*>(backend.allocate(bytes, opts))) {}
    ~Buffer() { b.release(p, o); }
    uint8_t* data() const { return p; }
  };
  const Buffer send(b, o, sendCount * elem + 8),
      recv(b, o, std::max(sendCount, b.recvCountFor(maxCount)) * elem + 8);
  if (leader) printHeader(b, o);
  // One discarded pass of the first size: a process's first timed loop ran slow whatever its
  // size (plexus-perf, 2 ranks: 0.53-0.74 us at the first of 8 B..64 B, 0.42 at the rest),
  // which put a warm-up artefact into the first row.
  {
    const size_t count = b.countFor(o.minBytes, elem);
    b.fill(send.data(), count, o);
    SweepOptions once = o;
    once.check = false;
    measure(b, once, send.data(), recv.data(), count, b.bytesFor(count, elem));
  }
  std::vector<Row> rows;
  double busSum = 0;
  int64_t wrongTotal = 0;
  for (size_t bytes = o.minBytes;; bytes *= o.factor) {
    Row r;
    r.count = b.countFor(bytes, elem);
    r.bytes = b.bytesFor(r.count, elem);
    b.fill(send.data(), r.count, o);
    r.outOfPlace = measure(b, o, send.data(), recv.data(), r.count, r.bytes);
    void *inSend = nullptr, *inRecv = nullptr;
    b.inPlace(recv.data(), r.count, elem, &inSend, &inRecv);
    b.fill(inSend, r.count, o);
    r.inPlace = measure(b, o, inSend, inRecv, r.count, r.bytes);
    if (leader) printRow(r, b, o);
    busSum += r.outOfPlace.busbw;
    wrongTotal += std::max<int64_t>(0, r.outOfPlace.wrong) + std::max<int64_t>(0, r.inPlace.wrong);
    rows.push_back(r);
    if (bytes >= o.maxBytes || bytes > o.maxBytes / o.factor) break;
  }
  const double avg = rows.empty() ? 0 : busSum / static_cast<double>(rows.size());
  if (leader) {
    std::printf("# Out of bounds values : %lld %s\n", static_cast<long long>(wrongTotal),
                wrongTotal == 0 ? "OK" : "FAILED");
    std::printf("# Avg bus bandwidth    : %g\n", avg);
    if (!o.json.empty()) writeJson(b, o, rows, avg);
  }
  return wrongTotal == 0 ? 0 : 1;
}

}  // namespace plexus::perf
