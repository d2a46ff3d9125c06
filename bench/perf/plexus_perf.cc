// plexus-perf: nccl-tests-style sweep of one collective over message sizes.
//
//   plexus-perf COLLECTIVE [-b MIN] [-e MAX] [-f FACTOR] [-n ITERS] [-w WARMUP] [-c CHECK]
//               [-d TYPE] [-o OP] [-r ROOT] [-a ALGO] [--json FILE]
//
// Run it under a launcher (plexusrun, torchrun, mpirun, srun): every rank runs the same sweep;
// rank 0 prints the table. Times are the slowest rank's average per iteration; algbw = bytes /
// time; busbw = algbw × the collective's factor; #wrong counts wrong elements over all ranks
// (checked on a separate run with fresh inputs, as nccl-tests does). Exits 1 when any value is
// wrong, 2 on bad arguments.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/perf/perf_collective.h"
#include "plexus/plexus.h"
#include "src/config.h"

namespace plexus::perf {
namespace {

struct Args {
  std::string collective;
  size_t minBytes = 8, maxBytes = 32u << 20;
  int factor = 2, iters = 20, warmup = 5;
  bool check = true;
  PerfParams params;
  std::string json;
};

struct Measurement {
  double timeUs = 0, algbw = 0, busbw = 0;
  int64_t wrong = -1;  // -1: not checked
};

struct Row {
  size_t bytes = 0, count = 0;
  Measurement outOfPlace, inPlace;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "plexus-perf: %s\nusage: plexus-perf COLLECTIVE [-b MIN] [-e MAX] [-f FACTOR] "
               "[-n ITERS] [-w WARMUP] [-c 0|1] [-d TYPE] [-o OP] [-r ROOT] [-a ALGO] "
               "[--json FILE]\ncollectives:",
               why);
  for (const auto& n : perfCollectiveNames()) std::fprintf(stderr, " %s", n.c_str());
  std::fprintf(stderr, "\n");
  std::exit(2);
}

int parseInt(const char* flag, const char* v, int lo, int hi) {
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || x < lo || x > hi) {
    usage((std::string(flag) + " wants an integer in [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "], got '" + v + "'")
              .c_str());
  }
  return static_cast<int>(x);
}

Args parseArgs(int argc, char** argv) {
  Args a;
  if (argc < 2) usage("missing COLLECTIVE");
  a.collective = argv[1];
  if (findPerfCollective(a.collective) == nullptr) {
    usage(("unknown collective '" + a.collective + "'").c_str());
  }
  for (int i = 2; i < argc; ++i) {
    std::string f = argv[i];
    if (i + 1 >= argc) usage((f + " needs a value").c_str());
    const char* v = argv[++i];
    if (f == "-b" || f == "-e") {
      size_t bytes = 0;
      if (!parseByteSize(v, &bytes) || bytes > (size_t{16} << 30)) {
        usage((f + " wants a size like 8, 64k, 32M").c_str());
      }
      (f == "-b" ? a.minBytes : a.maxBytes) = bytes;
    } else if (f == "-f") {
      a.factor = parseInt("-f", v, 2, 1024);
    } else if (f == "-n") {
      a.iters = parseInt("-n", v, 1, 1000000);
    } else if (f == "-w") {
      a.warmup = parseInt("-w", v, 0, 1000000);
    } else if (f == "-c") {
      a.check = parseInt("-c", v, 0, 1) == 1;
    } else if (f == "-d") {
      if (!parseDataType(v, &a.params.type))
        usage((std::string("unknown type '") + v + "'").c_str());
    } else if (f == "-o") {
      if (!parseReduceOp(v, &a.params.op)) usage((std::string("unknown op '") + v + "'").c_str());
    } else if (f == "-r") {
      a.params.root = parseInt("-r", v, 0, 1 << 20);
    } else if (f == "-a") {
      a.params.algorithm = std::string(v) == "auto" ? "" : v;  // "auto": the selector's choice
    } else if (f == "--json") {
      a.json = v;
    } else {
      usage(("unknown option " + f).c_str());
    }
  }
  if (a.minBytes > a.maxBytes) usage("-b is larger than -e");
  return a;
}

// nccl-tests' type names in the table.
const char* tableTypeName(DataType t) {
  static const char* kNames[] = {"float", "double", "half",  "bfloat16",
                                 "int8",  "uint8",  "int32", "int64"};
  return kNames[static_cast<int>(t)];
}

// A value agreed by all ranks (max or sum), through the communicator under test.
double agree(Communicator& comm, double v, ReduceOp op) {
  double out = 0;
  Status s = comm.allReduce(&v, &out, 1, DataType::kFloat64, op);
  if (!s.ok()) {
    std::fprintf(stderr, "plexus-perf: %s\n", s.toString().c_str());
    std::exit(1);
  }
  return out;
}

void die(const Status& s, const char* what) {
  std::fprintf(stderr, "plexus-perf: %s: %s\n", what, s.toString().c_str());
  std::exit(1);
}

Measurement measure(Communicator& comm, const PerfCollective& coll, const Args& a,
                    const PerfBuffers& buffers, size_t count, size_t bytes) {
  const void* send = buffers.send;
  void* recv = buffers.recv;
  Measurement m;
  for (int i = 0; i < a.warmup; ++i) {
    Status s = coll.run(comm, send, recv, count, a.params);
    if (!s.ok()) die(s, coll.name());
  }
  Status s = comm.barrier();
  if (!s.ok()) die(s, "barrier");
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < a.iters; ++i) {
    s = coll.run(comm, send, recv, count, a.params);
    if (!s.ok()) die(s, coll.name());
  }
  double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
      a.iters;
  m.timeUs = agree(comm, us, ReduceOp::kMax);
  m.algbw = bytes / m.timeUs / 1e3;  // GB/s
  m.busbw = m.algbw * coll.busFactor(comm.size());
  if (a.check) {
    coll.fill(const_cast<void*>(send), count, a.params, comm.rank(), comm.size());
    s = coll.run(comm, send, recv, count, a.params);
    if (!s.ok()) die(s, coll.name());
    double wrong = static_cast<double>(coll.check(recv, count, a.params, comm.rank(), comm.size()));
    m.wrong = static_cast<int64_t>(agree(comm, wrong, ReduceOp::kSum));
  }
  return m;
}

void printHeader(const Communicator& comm, const Args& a) {
  std::printf("# plexus-perf %s: %d ranks, transport %s, algorithm %s, %d iters, %d warmup\n",
              a.collective.c_str(), const_cast<Communicator&>(comm).size(),
              comm.transportName().c_str(),
              a.params.algorithm.empty() ? "auto" : a.params.algorithm.c_str(), a.iters, a.warmup);
  std::printf("#\n");
  std::printf("# %10s  %12s  %8s  %6s  %6s %33s %33s\n", "", "", "", "", "", "out-of-place",
              "in-place");
  std::printf("# %10s  %12s  %8s  %6s  %6s  %8s  %7s  %7s  %6s  %8s  %7s  %7s  %6s\n", "size",
              "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw",
              "busbw", "#wrong");
  std::printf("# %10s  %12s  %8s  %6s  %6s  %8s  %7s  %7s  %6s  %8s  %7s  %7s  %6s\n", "(B)",
              "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)",
              "");
}

std::string wrongText(int64_t w) { return w < 0 ? "N/A" : std::to_string(w); }

void printRow(const Row& r, const PerfCollective& coll, const Args& a) {
  std::printf("  %10zu  %12zu  %8s  %6s  %6d  %8.2f  %7.2f  %7.2f  %6s  %8.2f  %7.2f  %7.2f  %6s\n",
              r.bytes, r.count, tableTypeName(a.params.type), reduceOpName(a.params.op),
              coll.rooted() ? a.params.root : -1, r.outOfPlace.timeUs, r.outOfPlace.algbw,
              r.outOfPlace.busbw, wrongText(r.outOfPlace.wrong).c_str(), r.inPlace.timeUs,
              r.inPlace.algbw, r.inPlace.busbw, wrongText(r.inPlace.wrong).c_str());
  std::fflush(stdout);
}

void writeJson(const std::string& path, const Communicator& comm, const Args& a,
               const std::vector<Row>& rows, double avgBusbw) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "plexus-perf: cannot write %s\n", path.c_str());
    std::exit(1);
  }
  auto m = [](const Measurement& x) {
    return "{\"time_us\": " + std::to_string(x.timeUs) + ", \"algbw\": " + std::to_string(x.algbw) +
           ", \"busbw\": " + std::to_string(x.busbw) + ", \"wrong\": " + std::to_string(x.wrong) +
           "}";
  };
  std::fprintf(f,
               "{\"collective\": \"%s\", \"ranks\": %d, \"transport\": \"%s\", "
               "\"algorithm\": \"%s\", \"type\": \"%s\", \"op\": \"%s\", \"results\": [\n",
               a.collective.c_str(), const_cast<Communicator&>(comm).size(),
               comm.transportName().c_str(),
               a.params.algorithm.empty() ? "auto" : a.params.algorithm.c_str(),
               dataTypeName(a.params.type), reduceOpName(a.params.op));
  for (size_t i = 0; i < rows.size(); ++i) {
    std::fprintf(f,
                 "  {\"bytes\": %zu, \"count\": %zu, \"out_of_place\": %s, \"in_place\": %s}%s\n",
                 rows[i].bytes, rows[i].count, m(rows[i].outOfPlace).c_str(),
                 m(rows[i].inPlace).c_str(), i + 1 < rows.size() ? "," : "");
  }
  std::fprintf(f, "], \"avg_busbw\": %f}\n", avgBusbw);
  std::fclose(f);
}

int run(int argc, char** argv) {
  Args a = parseArgs(argc, argv);
  const PerfCollective& coll = *findPerfCollective(a.collective);
  auto created = Communicator::createFromEnv();
  if (!created.ok()) die(created.status(), "cannot create the communicator");
  Communicator& comm = **created;
  if (coll.rooted() && a.params.root >= comm.size()) usage("-r ROOT is not a rank of this job");
  const size_t elem = dataTypeSize(a.params.type);
  const bool leader = comm.rank() == 0;
  const int n = comm.size();
  const size_t maxCount = coll.countFor(a.maxBytes, elem, n);
  // Room for the largest of the sweep's buffers; the in-place run uses `recv` alone.
  const size_t sendElems = coll.sendElems(maxCount, n), recvElems = coll.recvElems(maxCount, n);
  std::vector<uint64_t> send(sendElems * elem / 8 + 1),
      recv(std::max(sendElems, recvElems) * elem / 8 + 1);
  if (leader) printHeader(comm, a);
  std::vector<Row> rows;
  double busSum = 0;
  int64_t wrongTotal = 0;
  // One discarded pass of the first size: a process's first timed loop ran slow whatever its
  // size (2 ranks: 0.53-0.74 us at the first of 8 B..64 B, 0.42 at the rest, and likewise for a
  // sweep from 4 B), which put a warm-up artefact into the first row.
  {
    const size_t count = coll.countFor(a.minBytes, elem, n);
    coll.fill(send.data(), count, a.params, comm.rank(), n);
    Args once = a;
    once.check = false;
    measure(comm, coll, once, {send.data(), recv.data()}, count, coll.bytesFor(count, elem, n));
  }
  for (size_t bytes = a.minBytes;; bytes *= a.factor) {
    Row r;
    r.count = coll.countFor(bytes, elem, n);
    r.bytes = coll.bytesFor(r.count, elem, n);
    coll.fill(send.data(), r.count, a.params, comm.rank(), n);
    r.outOfPlace = measure(comm, coll, a, {send.data(), recv.data()}, r.count, r.bytes);
    PerfBuffers in = coll.inPlace(recv.data(), r.count, elem, comm.rank());
    coll.fill(const_cast<void*>(in.send), r.count, a.params, comm.rank(), n);
    r.inPlace = measure(comm, coll, a, in, r.count, r.bytes);
    if (leader) printRow(r, coll, a);
    busSum += r.outOfPlace.busbw;
    wrongTotal += std::max<int64_t>(0, r.outOfPlace.wrong) + std::max<int64_t>(0, r.inPlace.wrong);
    rows.push_back(r);
    if (bytes >= a.maxBytes || bytes > a.maxBytes / a.factor) break;
  }
  double avg = rows.empty() ? 0 : busSum / rows.size();
  if (leader) {
    std::printf("# Out of bounds values : %lld %s\n", static_cast<long long>(wrongTotal),
                wrongTotal == 0 ? "OK" : "FAILED");
    std::printf("# Avg bus bandwidth    : %g\n", avg);
    if (!a.json.empty()) writeJson(a.json, comm, a, rows, avg);
  }
  return wrongTotal == 0 ? 0 : 1;
}

}  // namespace
}  // namespace plexus::perf

int main(int argc, char** argv) { return plexus::perf::run(argc, argv); }
