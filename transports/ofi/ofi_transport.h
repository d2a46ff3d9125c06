// The libfabric (OFI) transport: one reliable-datagram endpoint (FI_EP_RDM) per communicator,
// tagged messages (FI_TAGGED) between ranks, completions read from one completion queue inside
// progress(). The provider is PLEXUS_OFI_PROVIDER ("tcp", "shm", "verbs", "efa", ... as fi_info
// names them) or the best one found: NIC providers (efa, cxi, opx, psm3, verbs;ofi_rxm), then
// tcp;ofi_rxm, then shm, which reaches only this host.
//
// Environment: PLEXUS_OFI_PROVIDER (above); PLEXUS_OFI_MR=always registers every buffer even
// when the provider does not demand it (tests the registration path); PLEXUS_OFI_MR_CACHE=0
// deregisters after each message instead of caching.
#pragma once

#include <memory>

#include "plexus/status.h"
#include "transports/transport.h"

namespace plexus {

/// Creates a libfabric transport for one communicator.
StatusOr<std::unique_ptr<Transport>> createOfiTransport(const TransportContext& context);

}  // namespace plexus
