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
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "bench/perf/perf_collective.h"
#include "bench/perf/sweep.h"
#include "plexus/plexus.h"

namespace plexus::perf {
namespace {

[[noreturn]] void die(const Status& s, const char* what) {
  std::fprintf(stderr, "plexus-perf: %s: %s\n", what, s.toString().c_str());
  std::exit(1);
}

// The sweep (sweep.h) over a Plexus communicator, one PerfCollective's counts, layout and
// values.
class PlexusBackend final : public SweepBackend {
 public:
  PlexusBackend(Communicator& comm, const PerfCollective& coll, const SweepOptions& o)
      : comm_(comm), coll_(coll) {
    params_.type = o.type;
    params_.op = o.op;
    params_.root = o.root;
    params_.algorithm = o.algorithm == "auto" ? "" : o.algorithm;  // empty: the selector picks
  }
  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  std::string transport() const override { return comm_.transportName(); }
  std::string algorithm() const override {
    return params_.algorithm.empty() ? "auto" : params_.algorithm;
  }
  std::string collective() const override { return coll_.name(); }
  std::string title() const override { return std::string("plexus-perf ") + coll_.name(); }
  size_t countFor(size_t bytes, size_t elemSize) const override {
    return coll_.countFor(bytes, elemSize, size());
  }
  size_t bytesFor(size_t count, size_t elemSize) const override {
    return coll_.bytesFor(count, elemSize, size());
  }
  size_t sendCountFor(size_t count) const override { return coll_.sendElems(count, size()); }
  size_t recvCountFor(size_t count) const override { return coll_.recvElems(count, size()); }
  void inPlace(void* buf, size_t count, size_t elemSize, void** send, void** recv) const override {
    const PerfBuffers b = coll_.inPlace(buf, count, elemSize, rank());
    *send = const_cast<void*>(b.send);
    *recv = b.recv;
  }
  double busFactor() const override { return coll_.busFactor(size()); }
  bool rooted() const override { return coll_.rooted(); }
  void fill(void* send, size_t count, const SweepOptions&) const override {
    coll_.fill(send, count, params_, rank(), size());
  }
  size_t countWrong(const void* recv, size_t count, const SweepOptions&) const override {
    return coll_.check(recv, count, params_, rank(), size());
  }
  // -R 1: memory the other ranks of the node can map (the shm all-reduce's zero-copy path).
  void* allocate(size_t bytes, const SweepOptions& o) override {
    if (!o.registered) return SweepBackend::allocate(bytes, o);
    void* p = nullptr;
    Status s = memAlloc(bytes, &p);
    if (!s.ok()) die(s, "memAlloc");
    return p;
  }
  void release(void* p, const SweepOptions& o) override {
    if (!o.registered) return SweepBackend::release(p, o);
    Status s = memFree(p);
    if (!s.ok()) die(s, "memFree");
  }
  void run(const void* send, void* recv, size_t count) override {
    Status s = coll_.run(comm_, send, recv, count, params_);
    if (!s.ok()) die(s, coll_.name());
  }
  void barrier() override {
    Status s = comm_.barrier();
    if (!s.ok()) die(s, "barrier");
  }
  // Through the communicator under test.
  double agree(double v, bool max) override {
    double out = 0;
    Status s =
        comm_.allReduce(&v, &out, 1, DataType::kFloat64, max ? ReduceOp::kMax : ReduceOp::kSum);
    if (!s.ok()) die(s, "agreeing on the results");
    return out;
  }

 private:
  Communicator& comm_;
  const PerfCollective& coll_;
  PerfParams params_;
};

int run(int argc, char** argv) {
  SweepProgram program{"plexus-perf", "COLLECTIVE", "collectives:"};
  for (const auto& n : perfCollectiveNames()) program.more += " " + n;
  if (argc < 2) sweepUsage(program, "missing COLLECTIVE");
  if (isHelpFlag(argv[1])) sweepHelp(program);
  const PerfCollective* coll = findPerfCollective(argv[1]);
  if (coll == nullptr) sweepUsage(program, std::string("unknown collective '") + argv[1] + "'");
  const SweepOptions options = parseSweepOptions(argc, argv, 2, program);
  auto created = Communicator::createFromEnv();
  if (!created.ok()) die(created.status(), "cannot create the communicator");
  PlexusBackend backend(**created, *coll, options);
  return runSweep(backend, options);
}

}  // namespace
}  // namespace plexus::perf

int main(int argc, char** argv) { return plexus::perf::run(argc, argv); }
