// plexus-tune's measurements on a live job: each applicable algorithm of a collective over a
// size sweep, and the cost of the job's links (ping-pong latency and bandwidth per link class,
// the CPU reduction rate). Every function here is collective over the communicator: all ranks
// call it with the same arguments, in the same order.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "plexus/communicator.h"
#include "src/tuning.h"

namespace plexus::tune {

struct SweepOptions {
  size_t minBytes = 8;
  size_t maxBytes = size_t{32} << 20;
  int factor = 4;
  int iters = 0;  ///< calls per timed repetition; 0: enough for `targetMs`
  int warmup = 2;
  int reps = 11;  ///< timed repetitions per algorithm and size, interleaved across algorithms
  /// Past `reps` passes, further passes until the sweep has run this long (at most
  /// kMaxPassesPerRep × reps passes): a shared VM's speed changes in spells of seconds, and
  /// a 2-second sweep sees only one of them (see sweep()).
  double minSeconds = 30;
  double targetMs = 5;
  /// How a candidate's repetitions make its score: the mean of its fastest quarter (its speed
  /// when the machine leaves it alone, robust to one lucky repetition), the fastest, or the
  /// median.
  enum class Stat { kFast, kMin, kMedian } stat = Stat::kFast;
  /// A size keeps the previous size's winner when it is within this fraction of the fastest:
  /// noise then does not cut the table into ranges that differ by nothing.
  double tolerance = 0.03;
  bool verbose = false;                 ///< progress lines list every repetition
  std::vector<std::string> algorithms;  ///< only these (by name); empty: all
  /// Also time the selector's own choice (the table the job reads, PLEXUS_ALGO, the cost
  /// model) as a candidate named kAuto, interleaved with the forced ones (plexus-tune --check).
  bool withAuto = false;
};

/// The candidate that runs each call with the selector's choice (SweepOptions::withAuto).
inline constexpr const char* kAuto = "auto";

/// One algorithm at one size: the slowest rank's time per call in each repetition.
struct CandidateTimes {
  std::string algorithm;
  std::vector<double> us;
  double scoreUs = 0;  ///< by SweepOptions::stat
};

struct SizeResult {
  size_t bytes = 0;
  std::vector<CandidateTimes> candidates;  ///< those that support the request at this size
  std::string winner;
  std::string chosen;  ///< with SweepOptions::withAuto: the algorithm the selector picks
};

struct CollectiveResult {
  CollectiveKind kind = CollectiveKind::kAllReduce;
  std::vector<SizeResult> sizes;
};

/// The collectives worth tuning on this job: those with more than one algorithm, and for each
/// the names of its algorithms in registration order. `hier` is left out when the job has
/// nothing to compose (one node, or one rank per node: it runs the ring then).
std::vector<std::pair<CollectiveKind, std::vector<std::string>>> tunableCollectives(
    Communicator& comm);

/// "fast (mean of the fastest quarter)", "min" or "median", for headers.
const char* statName(SweepOptions::Stat stat);

/// The sweep's sizes: minBytes, × factor, ..., up to maxBytes (as plexus-perf's).
std::vector<size_t> sweepSizes(const SweepOptions& options);

/// What to tune: a collective and the names of its candidate algorithms.
using TuningTarget = std::pair<CollectiveKind, std::vector<std::string>>;

/// The most passes a sweep runs, per pass asked for (`reps`), to fill `minSeconds`.
inline constexpr int kMaxPassesPerRep = 100;

/// Times every target's algorithms at every size of the sweep (f32 sum, root 0, out of place)
/// in passes over all targets and sizes, every candidate once per pass (after one untimed call)
/// in an order shuffled each pass:
/// `reps` passes, then more until `minSeconds` have passed (rank 0 decides, so every rank runs
/// the same passes). The repetitions of one cell are spread over the whole run, so a machine
/// whose speed changes in spells (a shared VM) gives every candidate its fast spells.
/// Progress on stderr from rank 0. One result per target, in order.
StatusOr<std::vector<CollectiveResult>> sweep(Communicator& comm,
                                              const std::vector<TuningTarget>& targets,
                                              const SweepOptions& options);

/// Measures the link classes the job has (rank 0 with a rank of its node, and with the leader
/// of node 1) and the reduction rate; the result is complete on rank 0 only.
StatusOr<internal::TuningLinks> measureLinks(Communicator& comm);

}  // namespace plexus::tune
