// The sub-communicators a hierarchical algorithm composes its phases from: the ranks of this
// node, and the ranks that hold this rank's position (local rank) on every node. The
// communicator (src/) builds them when it spans several nodes and fills a Hierarchy; the
// algorithms see only this interface, so they stay free of communicator internals.
#pragma once

#include "algorithms/algorithm.h"
#include "plexus/status.h"
#include "plexus/work.h"

namespace plexus {

/// A communicator an algorithm can call into. Calls are collective over its ranks, as on the
/// public API; each sub-communicator has its own transport and progress thread, so a phase
/// running async on one overlaps a phase running on another.
class SubCommunicator {
 public:
  virtual ~SubCommunicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Runs `request` to completion with the sub-communicator's own algorithm choice.
  virtual Status run(const CollectiveRequest& request) = 0;
  /// Queues `request` on the sub-communicator's progress thread; the Work finishes when it has
  /// run. Requests queued on one sub-communicator run in order.
  virtual StatusOr<Work> runAsync(const CollectiveRequest& request) = 0;
  /// Fails pending and future operations with Aborted (Communicator::abort). For a phase that
  /// lost a peer: the ranks no longer agree on where they are, so nothing queued behind it can
  /// succeed, and waiting out each one's timeout would multiply the caller's.
  virtual void abort() = 0;
};

/// This rank's place in a communicator that spans nodes. Empty (local == nullptr) when the
/// communicator lies on one node, or has one rank per node (nothing to compose).
struct Hierarchy {
  SubCommunicator* local = nullptr;  ///< this node's ranks, in communicator rank order
  /// The ranks with this rank's local rank, one per node, in node order. With equal nodes
  /// every one has numNodes ranks; otherwise the local rank 0s form the node leaders.
  SubCommunicator* cross = nullptr;
  int numNodes = 1;
  int worldSize = 1;
  bool uniform = false;  ///< every node holds the same number of ranks
  /// The communicator's cost model, with which an algorithm picks its schedule per request.
  CostModel model;
};

}  // namespace plexus
