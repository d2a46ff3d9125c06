// UniqueId encoding, and the store servers that UniqueId::generate started in this process,
// kept until the rank-0 communicator created from the same id adopts one.
#pragma once

#include <memory>

#include "plexus/communicator.h"
#include "src/communicator_impl.h"

namespace plexus::internal {

/// The rendezvous (host, port, secret) an id names; InvalidArgument for a malformed id.
StatusOr<Rendezvous> decodeUniqueId(const UniqueId& id);
/// The server generate() started for `id` in this process, handed over once; null otherwise.
std::unique_ptr<bootstrap::StoreServer> adoptStoreServer(const UniqueId& id);

}  // namespace plexus::internal
