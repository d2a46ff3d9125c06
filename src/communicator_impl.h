// CommunicatorImpl: the state behind a public Communicator — configuration, the bootstrap store,
// the transport and its connections, the algorithms, and the progress engine that runs them.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/context.h"
#include "plexus/communicator.h"
#include "src/bootstrap/store.h"
#include "src/config.h"
#include "src/engine.h"
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

class CommunicatorImpl {
 public:
  /// Bootstraps rank `rank` of `size`: store, transport, address exchange, connections.
  static StatusOr<std::unique_ptr<CommunicatorImpl>> create(Rendezvous rendezvous, int rank,
                                                            int size, Config config);
  /// Waits for queued work, says goodbye to the peers (bounded), and releases everything.
  ~CommunicatorImpl();

  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& transportName() const { return transportName_; }
  const Config& config() const { return config_; }
  /// The algorithms this communicator can run (for tools and tests).
  const std::vector<std::unique_ptr<Algorithm>>& algorithms() const { return algorithms_; }

  /// Validates `request` on the calling thread; InvalidArgument/Unimplemented say what is wrong.
  Status validate(const CollectiveRequest& request) const;
  /// Runs `request` with the algorithm named `algorithm` (empty: the selector's choice).
  Status run(const CollectiveRequest& request, const std::string& algorithm = "");
  /// Queues `request`; the Work finishes when it has run.
  StatusOr<Work> runAsync(const CollectiveRequest& request, const std::string& algorithm = "");

 private:
  CommunicatorImpl(int rank, int size, Config config);
  Status bootstrap(Rendezvous& rendezvous);
  void chooseSpin(int ranksOnThisHost);
  StatusOr<Algorithm*> select(const CollectiveRequest& request, const std::string& forced) const;
  Status execute(const CollectiveRequest& request, Algorithm* algorithm);

  const int rank_;
  const int size_;
  Config config_;
  std::string transportName_;
  std::chrono::microseconds spin_{0};  // config_.spin, or chosen by chooseSpin
  std::unique_ptr<bootstrap::StoreServer> storeServer_;
  std::unique_ptr<bootstrap::StoreClient> store_;
  std::unique_ptr<Transport> transport_;
  std::vector<std::unique_ptr<Connection>> connections_;  // by peer rank; null for self
  std::vector<std::unique_ptr<Algorithm>> algorithms_;
  std::atomic<bool> aborted_{false};
  std::unique_ptr<CollectiveContext> context_;  // used by the driver only
  uint64_t sequence_ = 0;                       // driver only
  std::unique_ptr<ProgressEngine> engine_;      // last: stops first
};

}  // namespace plexus::internal
