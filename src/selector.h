// The selector: which algorithm runs a request. In order of precedence: the caller's explicit
// choice (plexus-perf -a, CommunicatorImpl::run's `algorithm`), a PLEXUS_ALGO rule, and the
// cheapest supported algorithm under an alpha-beta-gamma cost model. An algorithm that cannot
// run a request is never chosen automatically; forcing it is an error that says why.
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
#include <vector>

#include "algorithms/algorithm.h"
#include "plexus/status.h"
#include "src/topology.h"

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
  /// `algorithms` must outlive the selector.
  Selector(const std::vector<std::unique_ptr<Algorithm>>* algorithms, std::vector<AlgoRule> rules,
           CostModel model, int worldSize);

  /// The algorithm for `request`: the one named `forced` when not empty, else the first
  /// matching rule's, else the cheapest supported one. Logs the choice and the reason at INFO
  /// (once per collective, power-of-two size class and reason). Thread-safe.
  StatusOr<Algorithm*> select(const CollectiveRequest& request, const std::string& forced) const;

  const CostModel& model() const { return model_; }

 private:
  StatusOr<Algorithm*> byName(const CollectiveRequest& request, const std::string& name,
                              const char* why) const;
  /// Logs the choice at INFO once per collective and size class; `reason` null: the cost
  /// model's explanation.
  void logChoice(const CollectiveRequest& request, const Algorithm& chosen,
                 const char* reason = nullptr) const;
  /// Why the cost model chose: every algorithm's estimate or why it cannot run the request.
  std::string explain(const CollectiveRequest& request) const;

  const std::vector<std::unique_ptr<Algorithm>>* algorithms_;
  std::vector<AlgoRule> rules_;
  CostModel model_;
  int worldSize_;
  // Bit b of logged_[kind] set: size class 2^b already logged (INFO noise stays bounded).
  mutable std::array<std::atomic<uint64_t>, kNumCollectiveKinds> logged_{};
};

}  // namespace plexus::internal
