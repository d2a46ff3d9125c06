// The UCX transport: one UCP context and worker per communicator, tagged send/receive between
// endpoints. UCX chooses the wire itself: shared memory (posix/sysv) and CMA zero-copy
// rendezvous for peers on this host, TCP or RDMA otherwise.
#pragma once

#include <memory>

#include "plexus/status.h"
#include "transports/transport.h"

namespace plexus {

/// Creates a UCX transport for one communicator.
StatusOr<std::unique_ptr<Transport>> createUcxTransport(const TransportContext& context);

}  // namespace plexus
