// The selector: which algorithm runs a request. In order of precedence: the caller's explicit
// choice (plexus-perf -a, CommunicatorImpl::run's `algorithm`), a PLEXUS_ALGO rule, the range of
// a tuning table measured on this shape of job (plexus-tune, src/tuning.h), and the cheapest
// supported algorithm under an alpha-beta-gamma cost model. An algorithm that cannot run a
// request is never chosen automatically; forcing it (or naming it in PLEXUS_ALGO) is an error
// that says why, while a tuning table naming it falls through to the model.
//
// PLEXUS_ALGO syntax: rules separated by ';'. A rule is COLLECTIVE:LO-HI:ALGO (requests of that
// collective whose count × element size lies in [LO, HI)), LO-HI:ALGO (same collective as the
// previous rule), COLLECTIVE:ALGO (every size), or ALGO (every collective that has an algorithm
// of that name). Sizes take k/M/G suffixes (powers of 1024); HI may be "inf". The first
// matching rule wins. Example: "allreduce:0-64k:rhd;64k-inf:ring".
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "algorithms/algorithm.h"
#include "plexus/status.h"
#include "src/topology.h"
#include "src/tuning.h"

namespace plexus::internal {

/// One parsed PLEXUS_ALGO rule.
struct AlgoRule {
  bool anyCollective = false;  ///< a bare ALGO rule
  CollectiveKind kind = CollectiveKind::kAllReduce;
  size_t lo = 0;
  size_t hi = SIZE_MAX;  ///< exclusive; SIZE_MAX for "inf"
  std::string algorithm;
};

/// Parses PLEXUS_ALGO. Every collective and algorithm named must exist in `algorithms`;
/// InvalidArgument quotes the offending part and the expected syntax.
StatusOr<std::vector<AlgoRule>> parseAlgoRules(
    const std::string& spec, const std::vector<std::unique_ptr<Algorithm>>& algorithms);

/// The cost model's defaults: intra-node links measured on the development machine, inter-node
/// links assumed 10 Gbit/s Ethernet (see selector.cc). Shape: one node.
CostModel defaultCostModel();
/// `links` (its intra, inter and gamma) shaped for `topology`: node count, ranks per node, and
/// the link that paces flat algorithms (the slower of the two when the ranks span nodes).
CostModel costModelFor(const JobTopology& topology, CostModel links = defaultCostModel());

class Selector {
 public:
  /// `algorithms` must outlive the selector. `tuning` (may be null) is the job's tuning table;
  /// `model` should carry its measured link costs (TuningLinks::applyTo).
  Selector(const std::vector<std::unique_ptr<Algorithm>>* algorithms, std::vector<AlgoRule> rules,
           CostModel model, int worldSize, std::shared_ptr<const LoadedTuning> tuning = nullptr);

  /// The algorithm for `request`: the one named `forced` when not empty, else the first
  /// matching rule's, else the tuning table's when it covers the size and its algorithm can
  /// run the request, else the cheapest supported one. Logs the choice and the reason at INFO
  /// (once per collective and power-of-two size class). Thread-safe.
  StatusOr<Algorithm*> select(const CollectiveRequest& request, std::string_view forced) const;

  const CostModel& model() const { return model_; }
  /// Drops the remembered cost-model choices: an algorithm's support or estimate changed (the
  /// hierarchy's sub-communicators came or went).
  void forgetChoices();
  /// The tuning table in use, or null.
  const LoadedTuning* tuning() const { return tuning_.get(); }

 private:
  StatusOr<Algorithm*> byName(const CollectiveRequest& request, std::string_view name,
                              const char* why) const;
  /// Logs the choice at INFO once per collective and size class; `reason` null: the cost
  /// model's explanation.
  void logChoice(const CollectiveRequest& request, const Algorithm& chosen,
                 const char* reason = nullptr) const;
  /// Why the cost model chose: every algorithm's estimate or why it cannot run the request.
  std::string explain(const CollectiveRequest& request) const;

  /// A tuning table's range, its algorithm resolved once at construction.
  struct TunedRange {
    size_t lo = 0, hi = SIZE_MAX;
    Algorithm* algorithm = nullptr;
  };
  const TunedRange* tunedRange(CollectiveKind kind, size_t bytes) const;
  /// The cost model's cheapest supported algorithm for `request`, or null when none can run it.
  Algorithm* cheapest(const CollectiveRequest& request) const;

  // The cost model's choices, remembered per (collective, memory kind, bytes): supports() and
  // estimateUs() see nothing else of a request, and the model never changes, so a choice holds
  // for the communicator's life. Comparing every algorithm's estimate (log2, Status objects)
  // was ~1,000 of the ~5,500 instructions of a 2-rank 8 B all-reduce. Direct-mapped; each
  // entry is one word (see selector.cc), so concurrent callers never see half an entry.
  static constexpr size_t kChoiceSlots = 64;
  mutable std::array<std::atomic<uint64_t>, kChoiceSlots> choices_{};

  const std::vector<std::unique_ptr<Algorithm>>* algorithms_;
  std::vector<AlgoRule> rules_;
  CostModel model_;
  int worldSize_;
  std::shared_ptr<const LoadedTuning> tuning_;
  std::array<std::vector<TunedRange>, kNumCollectiveKinds> tuned_;  // by CollectiveKind
  // Bit b of logged_[kind] set: size class 2^b already logged (INFO noise stays bounded).
  mutable std::array<std::atomic<uint64_t>, kNumCollectiveKinds> logged_{};
};

}  // namespace plexus::internal
