// The nccl-tests-style sweep of plexus-perf and of the peer benchmarks (bench/compare/
// mpi_allreduce, gloo_allreduce): flag parsing (-b -e -f -n -w -c -d -o -r -a --json), the size
// loop, timing, result checking, the table and the JSON file, written once so that every tool
// prints the same columns and compare.py, plexus_tune_check.py and the test-bed scripts read them
// alike.
//
// A library plugs in as a SweepBackend: its rank and world, one collective call, a barrier and a
// scalar reduction to agree on times and error counts. Everything a library does not provide
// natively (out-of-place for an in-place-only library) is the backend's business and is timed.
// The per-collective hooks (counts, buffer layout, bus factor, fill, check) default to the
// all-reduce; plexus-perf's backend forwards them to its PerfCollective (perf_collective.h).
#pragma once

#include <cstddef>
#include <string>

#include "plexus/types.h"

namespace plexus::perf {

/// What the command line asked for; the same flags and defaults in every tool.
struct SweepOptions {
  size_t minBytes = 8, maxBytes = size_t{32} << 20;
  int factor = 2, iters = 20, warmup = 5;
  bool check = true;
  DataType type = DataType::kFloat32;
  ReduceOp op = ReduceOp::kSum;
  int root = 0;             // -r, for rooted collectives
  std::string algorithm;    // -a as given; each backend says which names it knows
  std::string json;         // --json FILE, written by rank 0
  bool registered = false;  // -R 1: buffers from the library's allocator (nccl-tests' -R)
};

/// How a tool names itself in its usage and error messages.
struct SweepProgram {
  std::string name;      ///< "plexus-perf", "plexus-compare-mpi"
  std::string operands;  ///< what the synopsis shows before the flags ("COLLECTIVE"), or empty
  std::string more;      ///< the lines after the synopsis: the -a names, the collectives
};

/// Prints `why` and the usage to stderr and exits with 2 (bad arguments).
[[noreturn]] void sweepUsage(const SweepProgram& program, const std::string& why);
/// True for -h and --help, which print the usage to stdout and exit 0 (parseSweepOptions does
/// so wherever they stand; a program with operands checks its first argument itself).
bool isHelpFlag(const char* arg);
[[noreturn]] void sweepHelp(const SweepProgram& program);

/// One library's collective over its own world of ranks. Methods are called by every rank in
/// the same order (they are collective). Failures end the process: the benchmarks have nothing
/// to recover.
class SweepBackend {
 public:
  virtual ~SweepBackend() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Table header and JSON "transport", e.g. "Open MPI v4.1.4" or "gloo tcp 127.0.0.1".
  virtual std::string transport() const = 0;
  /// The algorithm in use, for the header and JSON ("auto" when the library picks).
  virtual std::string algorithm() const = 0;
  /// The collective's name in the JSON.
  virtual std::string collective() const { return "allreduce"; }
  /// What the table's first line names: the collective, or the tool and the collective.
  virtual std::string title() const { return collective(); }
  /// Elements per rank for a message of `bytes` (nccl-tests' "count" column).
  virtual size_t countFor(size_t bytes, size_t elemSize) const;
  /// The message size of `count` (nccl-tests' "size" column; the inverse of countFor).
  virtual size_t bytesFor(size_t count, size_t elemSize) const { return count * elemSize; }
  /// Elements the send and the receive buffer need for `count` (all-gather receives ranks x
  /// count).
  virtual size_t sendCountFor(size_t count) const { return count; }
  virtual size_t recvCountFor(size_t count) const { return count; }
  /// Where the in-place call's send and receive lie in `buf`, which holds the larger of the two
  /// buffers: both at `buf` for the all-reduce; all-gather sends from this rank's block.
  virtual void inPlace(void* buf, size_t count, size_t elemSize, void** send, void** recv) const;
  /// busbw = algbw x this: 2(n-1)/n for the all-reduce, the traffic of the optimal algorithm.
  virtual double busFactor() const;
  /// True when the root column applies.
  virtual bool rooted() const { return false; }
  /// Writes this rank's deterministic input (bench/perf/perf_values.h) into `send`.
  virtual void fill(void* send, size_t count, const SweepOptions& o) const;
  /// Wrong elements in `recv` after one call on fill()'s inputs.
  virtual size_t countWrong(const void* recv, size_t count, const SweepOptions& o) const;
  /// `bytes` of zeroed memory, 64-byte aligned, for the sweep's buffers (with -R 1 a backend
  /// takes them from its library's allocator, as plexus-perf does from plexus::memAlloc; a
  /// backend without one exits with 2, saying so), and its release.
  virtual void* allocate(size_t bytes, const SweepOptions& o);
  virtual void release(void* p, const SweepOptions& o);
  /// Called before timing `count` elements at `send` -> `recv` (send == recv: in place), so
  /// that a library which binds buffers to a plan (Gloo) builds it outside the timed loop.
  virtual void prepare(const void* send, void* recv, size_t count) {
    (void)send, (void)recv, (void)count;
  }
  /// One call of the collective on `count` elements; in place when `send` is where inPlace()
  /// put it.
  virtual void run(const void* send, void* recv, size_t count) = 0;
  virtual void barrier() = 0;
  /// `v` reduced over all ranks: the maximum, or the sum when `max` is false.
  virtual double agree(double v, bool max) = 0;
};

/// Parses argv from `first` on (argv[0] is the program); on a bad flag prints the usage and
/// exits with 2.
SweepOptions parseSweepOptions(int argc, char** argv, int first, const SweepProgram& program);

/// Runs the sweep; rank 0 prints the table and writes the JSON. Returns the process exit code:
/// 0, 1 when any element was wrong, 2 when the options do not fit the job (-r past the ranks).
int runSweep(SweepBackend& backend, const SweepOptions& options);

/// True when MPI and Gloo reduce `o.type` with `o.op` natively: f32, f64, i32, i64; not avg.
/// Otherwise prints why and returns false.
bool peerSupports(const char* program, const SweepOptions& o);

}  // namespace plexus::perf
