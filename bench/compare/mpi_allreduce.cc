// plexus-compare-mpi: the plexus-perf all-reduce sweep run on MPI_Allreduce, the peer that
// compare.py measures Plexus against. Same flags, columns and JSON as plexus-perf:
//
//   mpirun -np N plexus-compare-mpi [-b MIN] [-e MAX] [-f FACTOR] [-n ITERS] [-w WARMUP]
//                                   [-c 0|1] [-d TYPE] [-o OP] [--json FILE]
//
// The library picks its algorithm (-a auto only): to steer Open MPI, set its MCA parameters
// (OMPI_MCA_coll_tuned_use_dynamic_rules=1, OMPI_MCA_coll_tuned_allreduce_algorithm=N).
#include <mpi.h>

#include <cstdio>
#include <string>

#include "bench/perf/sweep.h"

namespace plexus::compare {

using perf::SweepBackend;
using perf::SweepOptions;

namespace {

MPI_Datatype mpiType(DataType t) {
  switch (t) {
    case DataType::kFloat64:
      return MPI_DOUBLE;
    case DataType::kInt32:
      return MPI_INT32_T;
    case DataType::kInt64:
      return MPI_INT64_T;
    default:
      return MPI_FLOAT;
  }
}

MPI_Op mpiOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kProd:
      return MPI_PROD;
    case ReduceOp::kMin:
      return MPI_MIN;
    case ReduceOp::kMax:
      return MPI_MAX;
    default:
      return MPI_SUM;
  }
}

// MPI's default error handler aborts the job, which is what a benchmark wants on failure; the
// return codes are therefore not checked.
class MpiBackend : public SweepBackend {
 public:
  explicit MpiBackend(const SweepOptions& o) : type_(mpiType(o.type)), op_(mpiOp(o.op)) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string transport() const override {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    std::string s(version, static_cast<size_t>(len));
    s = s.substr(0, s.find_first_of(",\n"));  // "Open MPI v4.1.4"
    return s;
  }
  std::string algorithm() const override { return "auto"; }
  void run(const void* send, void* recv, size_t count) override {
    MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, static_cast<int>(count), type_, op_,
                  MPI_COMM_WORLD);
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
  double agree(double v, bool max) override {
    double out = 0;
    MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, max ? MPI_MAX : MPI_SUM, MPI_COMM_WORLD);
    return out;
  }

 private:
  MPI_Datatype type_;
  MPI_Op op_;
  int rank_ = 0, size_ = 1;
};

}  // namespace
}  // namespace plexus::compare

int main(int argc, char** argv) {
  using namespace plexus::compare;
  namespace perf = plexus::perf;
  // Flags first: a typo exits 2 on every rank before MPI starts, with nothing to clean up.
  SweepOptions options =
      perf::parseSweepOptions(argc, argv, 1, {"plexus-compare-mpi", "", "algorithms (-a): auto"});
  if (!perf::peerSupports(argv[0], options)) return 2;
  if (!options.algorithm.empty() && options.algorithm != "auto") {
    std::fprintf(stderr, "%s: -a: MPI_Allreduce has only 'auto' (see the MCA note in the source)\n",
                 argv[0]);
    return 2;
  }
  MPI_Init(&argc, &argv);
  int rc = 0;
  {
    MpiBackend backend(options);
    rc = perf::runSweep(backend, options);
  }
  MPI_Finalize();
  return rc;
}
