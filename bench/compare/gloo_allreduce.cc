// plexus-compare-gloo: the plexus-perf all-reduce sweep run on Gloo (Debian libgloo-dev), TCP
// transport on loopback, the peer that compare.py measures Plexus against.
//
//   plexusrun -n N plexus-compare-gloo -a ring_chunked|halving_doubling [sweep flags as
//   plexus-perf] [--json FILE]        (or mpirun -np N ...)
//
// Ranks come from RANK/WORLD_SIZE (plexusrun, torchrun) or OMPI_COMM_WORLD_RANK/SIZE (mpirun).
// They meet through a gloo::rendezvous::FileStore in $PLEXUS_GLOO_STORE, by default a directory
// named after the launcher's pid (the parent every local rank shares), removed at the end.
//
// Gloo's algorithms reduce in place on buffers bound when the algorithm object is built, so the
// object is built once per size outside the timed loop (as Gloo's own benchmark does), and the
// out-of-place rows include the copy of the input into the output that an out-of-place caller
// of Gloo has to make.
#include <gloo/allreduce_halving_doubling.h>
#include <gloo/allreduce_ring.h>
#include <gloo/allreduce_ring_chunked.h>
#include <gloo/barrier_all_to_one.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "bench/perf/sweep.h"

namespace plexus::compare {

using perf::SweepBackend;
using perf::SweepOptions;

namespace {

// Long enough for a 64 MiB all-reduce on four ranks sharing two busy cores.
constexpr std::chrono::seconds kGlooTimeout{300};

enum class GlooAlgorithm { kRingChunked, kHalvingDoubling };

template <typename T>
const gloo::ReductionFunction<T>* reductionFor(ReduceOp op) {
  switch (op) {
    case ReduceOp::kProd:
      return gloo::ReductionFunction<T>::product;
    case ReduceOp::kMin:
      return gloo::ReductionFunction<T>::min;
    case ReduceOp::kMax:
      return gloo::ReductionFunction<T>::max;
    default:
      return gloo::ReductionFunction<T>::sum;
  }
}

template <typename T>
std::unique_ptr<gloo::Algorithm> makeTyped(GlooAlgorithm a,
                                           const std::shared_ptr<gloo::Context>& context, void* buf,
                                           size_t count, ReduceOp op) {
  std::vector<T*> ptrs{static_cast<T*>(buf)};
  const int n = static_cast<int>(count);
  if (a == GlooAlgorithm::kRingChunked) {
    return std::make_unique<gloo::AllreduceRingChunked<T>>(context, ptrs, n, reductionFor<T>(op));
  }
  return std::make_unique<gloo::AllreduceHalvingDoubling<T>>(context, ptrs, n, reductionFor<T>(op));
}

std::unique_ptr<gloo::Algorithm> makeAllreduce(GlooAlgorithm a, DataType type,
                                               const std::shared_ptr<gloo::Context>& context,
                                               void* buf, size_t count, ReduceOp op) {
  switch (type) {
    case DataType::kFloat64:
      return makeTyped<double>(a, context, buf, count, op);
    case DataType::kInt32:
      return makeTyped<int32_t>(a, context, buf, count, op);
    case DataType::kInt64:
      return makeTyped<int64_t>(a, context, buf, count, op);
    default:
      return makeTyped<float>(a, context, buf, count, op);
  }
}

// The first of `names` set in the environment, as an int; -1 when none is.
int envInt(std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (const char* v = std::getenv(n)) return std::atoi(v);
  }
  return -1;
}

class GlooBackend : public SweepBackend {
 public:
  GlooBackend(const SweepOptions& o, GlooAlgorithm algorithm, int rank, int size,
              std::string storeDir)
      : algorithm_(algorithm),
        type_(o.type),
        op_(o.op),
        elemSize_(dataTypeSize(o.type)),
        storeDir_(std::move(storeDir)) {
    std::filesystem::create_directories(storeDir_);
    gloo::transport::tcp::attr attr;
    attr.hostname = "127.0.0.1";
    auto device = gloo::transport::tcp::CreateDevice(attr);
    auto context = std::make_shared<gloo::rendezvous::Context>(rank, size);
    context->setTimeout(kGlooTimeout);
    gloo::rendezvous::FileStore store(storeDir_);
    context->connectFullMesh(store, device);
    context_ = std::move(context);
  }
  /// Removes the rendezvous store: every rank is done with it once all reach the barrier.
  /// Not a destructor, because a barrier can throw.
  void finish() {
    barrier();
    if (rank() == 0) std::filesystem::remove_all(storeDir_);
  }
  int rank() const override { return context_->rank; }
  int size() const override { return context_->size; }
  std::string transport() const override { return "gloo tcp 127.0.0.1"; }
  std::string algorithm() const override {
    return algorithm_ == GlooAlgorithm::kRingChunked ? "ring_chunked" : "halving_doubling";
  }
  void prepare(const void*, void* recv, size_t count) override {
    if (plan_ != nullptr && planBuf_ == recv && planCount_ == count) return;
    plan_.reset();  // frees Gloo's buffers before the new plan registers its own
    plan_ = makeAllreduce(algorithm_, type_, context_, recv, count, op_);
    planBuf_ = recv;
    planCount_ = count;
  }
  void run(const void* send, void* recv, size_t count) override {
    if (send != recv) std::memcpy(recv, send, count * elemSize_);
    plan_->run();
  }
  void barrier() override { gloo::BarrierAllToOne(context_).run(); }
  double agree(double v, bool max) override {
    gloo::AllreduceRing<double> reduce(
        context_, {&v}, 1,
        max ? gloo::ReductionFunction<double>::max : gloo::ReductionFunction<double>::sum);
    reduce.run();
    return v;
  }

 private:
  GlooAlgorithm algorithm_;
  DataType type_;
  ReduceOp op_;
  size_t elemSize_;
  std::string storeDir_;
  std::shared_ptr<gloo::Context> context_;
  std::unique_ptr<gloo::Algorithm> plan_;
  void* planBuf_ = nullptr;
  size_t planCount_ = 0;
};

int run(int argc, char** argv) {
  SweepOptions options = perf::parseSweepOptions(
      argc, argv, 1, {"plexus-compare-gloo", "", "algorithms (-a): ring_chunked halving_doubling"});
  if (!perf::peerSupports(argv[0], options)) return 2;
  GlooAlgorithm algorithm = GlooAlgorithm::kRingChunked;
  if (options.algorithm == "halving_doubling") {
    algorithm = GlooAlgorithm::kHalvingDoubling;
  } else if (!options.algorithm.empty() && options.algorithm != "ring_chunked") {
    std::fprintf(stderr, "%s: -a wants ring_chunked or halving_doubling\n", argv[0]);
    return 2;
  }
  const int rank = envInt({"RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"});
  const int size = envInt({"WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"});
  if (rank < 0 || size < 1 || rank >= size) {
    std::fprintf(stderr, "%s: no rank in the environment: run it under plexusrun or mpirun\n",
                 argv[0]);
    return 2;
  }
  const char* dir = std::getenv("PLEXUS_GLOO_STORE");
  std::string storeDir = dir != nullptr ? dir
                                        : "/tmp/plexus-gloo-" + std::to_string(getuid()) + "-" +
                                              std::to_string(getppid());
  try {
    GlooBackend backend(options, algorithm, rank, size, storeDir);
    int rc = perf::runSweep(backend, options);
    backend.finish();
    return rc;
  } catch (const std::exception& e) {  // Gloo reports every failure by throwing
    std::fprintf(stderr, "%s: rank %d: %s\n", argv[0], rank, e.what());
    return 1;
  }
}

}  // namespace
}  // namespace plexus::compare

int main(int argc, char** argv) { return plexus::compare::run(argc, argv); }
