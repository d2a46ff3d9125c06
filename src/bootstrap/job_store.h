// Joining the job's rendezvous store from the launcher's environment: rank 0 hosts the store
// (unless the launcher does) and every rank connects to it. Shared by tools that need the store
// without a communicator (plexus-topo) and by Communicator::createFromEnv.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "plexus/status.h"
#include "src/bootstrap/launch_env.h"
#include "src/bootstrap/store.h"

namespace plexus::bootstrap {

/// The IPv4 address rank 0 binds the store to: `configured` (PLEXUS_BIND_ADDR) when set, else
/// loopback for a local store host, else `storeHost` itself or what it resolves to.
/// InvalidArgument when `storeHost` does not resolve.
StatusOr<std::string> storeBindAddress(const std::string& configured, const std::string& storeHost);

/// Starts the job's store server when this rank must host it (rank 0, and the launcher does not
/// host it); nullptr for every other rank. The error names the address and says what to check.
StatusOr<std::unique_ptr<StoreServer>> hostStoreIfRankZero(const LaunchInfo& launch,
                                                           const std::string& bindAddress);

/// A rank's handle on the job's store. The client is declared last so it is destroyed first,
/// before the server it may be talking to.
struct JobStore {
  std::unique_ptr<StoreServer> server;  ///< non-null on the rank that hosts the store
  std::unique_ptr<StoreClient> client;
};

/// Hosts the store when this rank must (see hostStoreIfRankZero) and connects to it, waiting at
/// most `timeout` for the server. `bindAddress` is PLEXUS_BIND_ADDR (may be empty).
StatusOr<JobStore> joinJobStore(const LaunchInfo& launch, const std::string& bindAddress,
                                std::chrono::milliseconds timeout);

}  // namespace plexus::bootstrap
