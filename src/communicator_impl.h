// CommunicatorImpl: the state behind a public Communicator — configuration, the bootstrap store,
// the transport and its connections, the algorithms, and the progress engine that runs them.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/context.h"
#include "algorithms/hierarchy.h"
#include "algorithms/shared_region.h"
#include "algorithms/shm_mailbox.h"
#include "plexus/communicator.h"
#include "src/bootstrap/store.h"
#include "src/config.h"
#include "src/engine.h"
#include "src/flight_recorder.h"
#include "src/selector.h"
#include "src/shm_region.h"
#include "src/topology.h"
#include "transports/transport.h"

namespace plexus::internal {

/// How a rank reaches the rendezvous store, from a UniqueId or the launcher's environment.
struct Rendezvous {
  std::string host;
  uint16_t port = 0;
  bootstrap::Secret secret{};
  /// The store server when this process hosts it (rank 0 from the environment, or the
  /// process that generated the UniqueId); the communicator keeps it alive.
  std::unique_ptr<bootstrap::StoreServer> server;
  std::string nodeId;
};

/// The store client, shared by a communicator and the communicators split from it (the client
/// is not thread-safe: hold `mu` while using it).
struct SharedStore {
  std::mutex mu;
  std::unique_ptr<bootstrap::StoreClient> client;
};

class CommunicatorImpl {
 public:
  /// Bootstraps rank `rank` of `size`: store, transport, address exchange, connections.
  static StatusOr<std::unique_ptr<CommunicatorImpl>> create(Rendezvous rendezvous, int rank,
                                                            int size, Config config);
  /// Waits for queued work, says goodbye to the peers (bounded), and releases everything.
  ~CommunicatorImpl();

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// The transports' names: "ucx", or "ucx+ofi" when the link levels use different ones.
  const std::string& transportName() const { return transportName_; }
  /// Which node every rank is on (from every rank's identity, exchanged at creation).
  const JobTopology& topology() const { return topology_; }
  /// The transport spec of the link to `peer` (its level's PLEXUS_TRANSPORT_INTRA/INTER).
  const std::string& transportSpecFor(int peer) const;
  /// The spec of each link level: [0] inside a node, [1] between nodes.
  const std::string& levelSpec(int level) const { return levelSpec_[level]; }
  const Config& config() const { return config_; }
  /// The algorithms this communicator can run (for tools and tests).
  const std::vector<std::unique_ptr<Algorithm>>& algorithms() const { return algorithms_; }

  /// Validates `request` on the calling thread; InvalidArgument/Unimplemented say what is wrong.
  Status validate(const CollectiveRequest& request) const;
  /// Runs `request` with the algorithm named `algorithm` (empty: the selector's choice).
  Status run(const CollectiveRequest& request, std::string_view algorithm = {});
  /// Queues `request`; the Work finishes when it has run.
  StatusOr<Work> runAsync(const CollectiveRequest& request, std::string_view algorithm = {});
  /// The selector (for tools and tests).
  const Selector& selector() const { return *selector_; }

  /// Collective: ranks passing the same `color` form a new communicator, ordered by (key, rank
  /// here). A negative color joins no communicator (null result). The child shares this
  /// communicator's store and has its own transport, so the two run collectives independently.
  StatusOr<std::unique_ptr<CommunicatorImpl>> split(int color, int key);

  /// Makes pending and future operations fail with Aborted, promptly (the waits check the flag
  /// on every poll), here and on the hierarchy's sub-communicators. Any thread.
  void abort();
  /// The first error an operation hit while running (a failed peer, a timeout, an abort); OK
  /// while there was none. Errors of validation, returned before anything ran, do not count.
  Status asyncError() const;

  /// Opens a send/recv group; groups nest (only the outermost end runs it).
  Status groupStart();
  /// Adds `transfer` to the open group, or runs it alone (blocking) when none is open.
  Status groupAdd(const PeerTransfer& transfer, const CallOptions& call);
  /// Closes the group; the outermost end runs every transfer of it as one operation.
  Status groupEnd();
  /// As groupEnd, returning at once; the Work finishes when every transfer has.
  StatusOr<Work> groupEndAsync();
  /// Each link level's transport as it describes itself ("intra-node ucx 1.13.1 (UCX_TLS=...,
  /// rendezvous from 64K), inter-node ..."), as PLEXUS_DEBUG=INFO logs it.
  std::string describeTransports() const;
  /// The ring's and tree's pipeline chunk: PLEXUS_CHUNK_BYTES, else the default raised to the
  /// wish of the inter-node transport (of the intra-node one on a single node).
  size_t pipelineChunkBytes() const { return chunkBytes_; }
  /// The region every rank of this node maps (no base when there is none).
  const SharedRegion& sharedRegion() const { return shared_; }
  /// The mailboxes in the region (null: none, or PLEXUS_SHM_MAILBOXES=0).
  const ShmMailboxes* mailboxes() const { return mailboxes_.get(); }

 private:
  CommunicatorImpl(int rank, int size, Config config, std::string prefix);
  Status bootstrap(Rendezvous& rendezvous);
  /// Learns the topology, creates the transports, publishes this rank's record under prefix_,
  /// connects every peer, and starts the engine. Called with the store's lock held.
  Status connectPeers();
  Status learnTopology();
  Status createTransports();
  /// Maps the shared-memory region when all ranks share this node: rank 0 creates it and
  /// publishes its name, the others open it. A rank that cannot goes on without it (WARN); the
  /// region is used only once every rank's record says it mapped it. Store lock held.
  Status mapSharedRegion();
  /// After every peer's record is read: keeps the region only if every rank mapped it, and
  /// uses its mailboxes only if every rank would (PLEXUS_SHM_MAILBOXES).
  void settleSharedRegion(bool everyRankMapped, bool everyRankBoxes);
  /// The region's layout: the shm algorithms' part, then a RankCpuLine per rank at this
  /// offset (for CollectiveContext's waits), then the mailboxes (shm_mailbox.h); regionBytes()
  /// in all.
  size_t rankCpusOffset() const;
  size_t mailboxesOffset() const;
  size_t regionBytes() const;
  /// When the communicator spans nodes with several ranks on some node: splits the node-local
  /// and cross-node sub-communicators and fills hierarchy_. Collective; store lock not held.
  Status buildHierarchy();
  void chooseSpin(int ranksOnThisHost);
  // PLEXUS_CHUNK_BYTES when set, else the default raised to what the transports ask for.
  size_t choosePipelineChunk() const;
  Status validateTransfers(const CollectiveRequest& request) const;
  Status execute(const CollectiveRequest& request, Algorithm* algorithm);
  /// "; on this host, the process of rank 2 (pid 123) has exited" for peers on this host whose
  /// process is gone; empty when none is.
  std::string deadPeersOnThisHost() const;
  /// Sets key in the store and remembers it for removal at teardown. Store lock held.
  Status publish(const std::string& key, const std::vector<uint8_t>& value);
  /// Removes the records listed above, best effort: every rank has read them once the
  /// goodbye barrier passed; a store that is gone already has nothing left to remove.
  void removeRecords();
  /// Takes the open group's transfers when the outermost group ends; null request otherwise.
  StatusOr<CollectiveRequest> closeGroup();

  const int rank_;
  const int size_;
  Config config_;
  std::string transportName_;
  std::chrono::microseconds spin_{0};  // config_.spin, or chosen by chooseSpin
  size_t chunkBytes_ = 0;              // choosePipelineChunk()
  std::string nodeId_;                 // published in the host records
  int ranksOnHost_ = 0;                // of this communicator or the one it was split from
  std::vector<int> worldRanks_;        // world rank of each rank here (identity for the world)
  const std::string prefix_;           // store keys of this communicator: "world/", then per split
  std::unique_ptr<bootstrap::StoreServer> storeServer_;
  std::shared_ptr<SharedStore> store_;
  std::unique_ptr<Selector> selector_;
  std::atomic<uint64_t> splitSequence_{0};
  // Store records to remove once every rank has read them (under store_->mu): what a split
  // child published to come up (removed when it is destroyed, after the goodbye barrier), and
  // this rank's record of its latest split (removed at the next split, once every rank's record
  // of that one is in: each rank writes it only after reading all of the one before).
  bool splitChild_ = false;
  std::vector<std::string> publishedKeys_;
  std::string lastSplitRecord_;
  std::mutex groupMu_;  // guards the open group
  int groupDepth_ = 0;
  std::vector<PeerTransfer> group_;
  CallOptions groupCall_;
  JobTopology topology_;
  std::string levelSpec_[2];                              // transport spec per link level
  std::vector<std::unique_ptr<Transport>> transports_;    // one, or one per link level
  Transport* levelTransport_[2] = {nullptr, nullptr};     // null: no peer at that level
  std::vector<std::unique_ptr<Connection>> connections_;  // by peer rank; null for self
  // The hierarchical algorithms' view of the sub-communicators below (before algorithms_,
  // which point at it).
  Hierarchy hierarchy_;
  std::unique_ptr<CommunicatorImpl> localComm_, crossComm_;
  std::unique_ptr<SubCommunicator> localSub_, crossSub_;
  // The shared-memory algorithms' region, when every rank here shares this node and mapped it
  // (before algorithms_, which point at shared_).
  std::unique_ptr<ShmRegion> shmRegion_;
  SharedRegion shared_;
  std::unique_ptr<ShmMailboxes> mailboxes_;  // in the region, when it has them
  std::vector<std::unique_ptr<Algorithm>> algorithms_;
  std::atomic<bool> aborted_{false};
  mutable std::mutex errorMu_;  // guards firstError_
  Status firstError_;
  FlightRecorder flight_;
  std::unique_ptr<CollectiveContext> context_;  // used by the driver only
  uint64_t sequence_ = 0;                       // driver only: collectives
  uint64_t p2pSequence_ = 0;                    // driver only: send/recv groups
  std::unique_ptr<ProgressEngine> engine_;      // last: stops first
};

}  // namespace plexus::internal
