// The collectives plexus-perf measures, with nccl-tests' counts and bus-bandwidth factors.
#include <memory>

#include "bench/perf/perf_collective.h"
#include "bench/perf/perf_values.h"
#include "src/communicator_impl.h"

namespace plexus::perf {
namespace {

// All-reduce: count = bytes / elem; busbw = algbw × 2(n−1)/n.
class AllReducePerf final : public PerfCollective {
 public:
  const char* name() const override { return "allreduce"; }
  size_t countFor(size_t bytes, size_t elemSize, int) const override { return bytes / elemSize; }
  double busFactor(int n) const override { return n > 1 ? 2.0 * (n - 1) / n : 0.0; }
  void fill(void* send, size_t count, const PerfParams& p, int rank, int) const override {
    for (size_t i = 0; i < count; ++i) storeValue(p.type, send, i, inputValue(p.op, rank, i));
  }
  Status run(Communicator& comm, const void* send, void* recv, size_t count,
             const PerfParams& p) const override {
    CollectiveRequest req;
    req.kind = CollectiveKind::kAllReduce;
    req.type = p.type;
    req.op = p.op;
    req.count = count;
    req.send = send;
    req.recv = recv;
    return comm.impl()->run(req, p.algorithm);
  }
  size_t check(const void* recv, size_t count, const PerfParams& p, int, int ranks) const override {
    size_t wrong = 0;
    for (size_t i = 0; i < count; ++i) {
      if (!matchesValue(p.type, recv, i, expectedValue(p.op, ranks, i, p.type))) ++wrong;
    }
    return wrong;
  }
};

}  // namespace

const PerfCollective* findPerfCollective(const std::string& name) {
  static const AllReducePerf allReduce;
  static const PerfCollective* const kAll[] = {&allReduce};
  for (const PerfCollective* c : kAll) {
    if (name == c->name()) return c;
  }
  return nullptr;
}

std::vector<std::string> perfCollectiveNames() { return {"allreduce"}; }

}  // namespace plexus::perf
