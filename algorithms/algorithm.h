// The Algorithm seam: a named schedule for one collective, written only against the primitives
// of CollectiveContext (context.h). Algorithms describe themselves (name, one-line description,
// what they support, what they cost) so the selector and users can see and steer the choice.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "plexus/status.h"
#include "plexus/types.h"

namespace plexus {

class CollectiveContext;

/// The collectives Plexus implements.
enum class CollectiveKind : uint8_t {
  kAllReduce,
  kBarrier,
  kBroadcast,
  kReduce,
  kAllGather,
  kReduceScatter,
  kAllToAll,
  kSendRecv,
};
/// Number of CollectiveKind values.
inline constexpr int kNumCollectiveKinds = 8;

/// "allreduce", "barrier", "broadcast", "reduce", "allgather", "reducescatter", "alltoall",
/// "sendrecv".
const char* collectiveName(CollectiveKind kind);
/// Parses collectiveName's output; false when unknown.
bool parseCollectiveKind(const std::string& name, CollectiveKind* out);

/// One send or receive of a send/recv group (CollectiveKind::kSendRecv).
struct PeerTransfer {
  bool isSend = false;
  int peer = -1;
  DataType type = DataType::kUInt8;
  size_t count = 0;
  void* buffer = nullptr;  ///< read for a send, written for a receive

  size_t bytes() const { return count * dataTypeSize(type); }
};

/// One typed collective call, validated at the API boundary before it reaches an algorithm.
///
/// Counts follow NCCL: `count` is the element count of every rank's buffer for all-reduce,
/// broadcast and reduce; the per-rank send count for all-gather (recv holds size × count); the
/// per-rank receive count for reduce-scatter (send holds size × count); the count per peer for
/// all-to-all (both buffers hold size × count). In place means send == recv, except for
/// all-gather (send == recv + rank × count) and reduce-scatter (recv == send + rank × count).
struct CollectiveRequest {
  CollectiveKind kind = CollectiveKind::kAllReduce;
  DataType type = DataType::kFloat32;
  ReduceOp op = ReduceOp::kSum;
  size_t count = 0;
  const void* send = nullptr;
  void* recv = nullptr;
  int root = -1;
  MemoryKind memory = MemoryKind::kHost;
  void* stream = nullptr;
  /// kSendRecv: the group's transfers, all posted before any is waited for.
  std::shared_ptr<const std::vector<PeerTransfer>> transfers;

  /// count × element size: the size the selector and PLEXUS_ALGO ranges look at.
  size_t bytes() const { return count * dataTypeSize(type); }
};

/// Latency and inverse bandwidth of one class of link.
struct LinkCost {
  double alphaUs = 0;     ///< latency of one message, microseconds
  double betaUsPerB = 0;  ///< transfer time per byte (1 / bandwidth), microseconds
};

/// The alpha-beta(-gamma) machine model the cost formulas use (see selector.h for the
/// measured defaults), with the shape of the communicator it describes.
struct CostModel {
  /// The link a flat algorithm is paced by: the slowest it crosses (the inter-node link when
  /// the communicator spans nodes, else the intra-node one).
  double alphaUs = 0;
  double betaUsPerB = 0;
  double gammaUsPerB = 0;  ///< reduction time per byte, microseconds
  LinkCost intra;          ///< between ranks of one node
  LinkCost inter;          ///< between nodes, as one rank sees it when it has the NIC alone
  int nodes = 1;           ///< nodes the communicator spans
  int ranksPerNode = 0;    ///< ranks on every node; 0 when nodes hold different numbers
  /// The pipeline chunk (PLEXUS_CHUNK_BYTES): a pipeline hides the reduction of all but about
  /// one chunk per step behind the transfers, so a message of one chunk hides none.
  double chunkBytes = 256.0 * 1024;
};

/// A schedule for one collective.
class Algorithm {
 public:
  virtual ~Algorithm() = default;
  /// Short name used by PLEXUS_ALGO and `plexus-perf -a`, e.g. "ring".
  virtual const char* name() const = 0;
  /// One line: what it does and when it wins.
  virtual const char* description() const = 0;
  /// The collective it implements.
  virtual CollectiveKind collective() const = 0;
  /// OK when it can run `request` on `worldSize` ranks; otherwise why not (InvalidArgument or
  /// Unimplemented), so that forcing it gives a clear error.
  virtual Status supports(const CollectiveRequest& request, int worldSize) const = 0;
  /// Estimated time of `request` on `worldSize` ranks under `model`, in microseconds; the
  /// selector picks the cheapest supported algorithm. The default (0) suits a collective that
  /// has a single algorithm.
  virtual double estimateUs(const CollectiveRequest& request, int worldSize,
                            const CostModel& model) const {
    (void)request, (void)worldSize, (void)model;
    return 0;
  }
  /// Runs this rank's part of the schedule. Called on the progress engine's driver.
  virtual Status run(const CollectiveRequest& request, CollectiveContext& context) = 0;
};

struct Hierarchy;
struct SharedRegion;

/// How a rank writes the parts of its shared-memory slot that other ranks read (ShmChannel;
/// PLEXUS_SHM_STORES).
enum class ShmStores {
  kAuto,       ///< each shm algorithm times both and keeps the faster, per size (ShmStoreChooser)
  kPlain,      ///< plain stores: the lines stay in the writer's cache
  kStreaming,  ///< streaming (non-temporal) stores: the lines go to memory
};

/// The built-in algorithms, in order of preference, registered explicitly (builtin.cc).
/// `hierarchy` (owned by the communicator, filled once its sub-communicators exist) serves the
/// hierarchical algorithms; null leaves them out. `shared` (owned by the communicator, filled
/// when its ranks share a node) serves the shared-memory ones; null leaves them out.
/// `shmStores` is how those write what the others read.
std::vector<std::unique_ptr<Algorithm>> builtinAlgorithms(const Hierarchy* hierarchy,
                                                          const SharedRegion* shared,
                                                          ShmStores shmStores = ShmStores::kAuto);

}  // namespace plexus
