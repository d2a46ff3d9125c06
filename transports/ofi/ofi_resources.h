// Owning wrappers around libfabric handles, and the provider choice: which fi_info the OFI
// transport opens (PLEXUS_OFI_PROVIDER, else the best provider that offers reliable tagged
// messages here).
#pragma once

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>

#include <memory>
#include <string>
#include <vector>

#include "plexus/status.h"

namespace plexus::ofi {

/// Closes any libfabric object (they all start with a `struct fid`).
template <typename T>
struct FidDeleter {
  void operator()(T* object) const { fi_close(&object->fid); }
};
template <typename T>
using FidPtr = std::unique_ptr<T, FidDeleter<T>>;

struct InfoDeleter {
  void operator()(fi_info* info) const { fi_freeinfo(info); }
};
/// An fi_info list (or one duplicated entry).
using InfoPtr = std::unique_ptr<fi_info, InfoDeleter>;

/// One endpoint's libfabric objects, opened, bound and enabled: what the transport and the raw
/// exchange benchmark (bench/compare/fi_exchange.cc) start from. Members close in reverse order
/// of declaration (endpoint, AV, CQ, domain, fabric).
struct Endpoint {
  FidPtr<fid_fabric> fabric;
  FidPtr<fid_domain> domain;
  FidPtr<fid_cq> cq;  // FI_CQ_FORMAT_TAGGED
  FidPtr<fid_av> av;
  FidPtr<fid_ep> ep;
  int waitFd = -1;            // the CQ's wait fd; -1 when the CQ must be polled
  std::vector<uint8_t> name;  // fi_getname: what a peer inserts into its AV
};

/// Opens `info`'s fabric and domain, a tagged completion queue (with a wait fd when `waitFd`
/// is asked for and the provider has one), an address vector for `avCount` peers and an
/// endpoint bound to both, and enables it, into `*out`. shm endpoints get a name of their own
/// (shmRegionName()) after stale regions of exited processes are removed. Unavailable naming
/// the call that failed.
Status openEndpoint(const fi_info& info, size_t avCount, bool waitFd, Endpoint* out);

/// libfabric's text for a (positive or negative) fi_errno value.
std::string ofiError(int code);

/// Picks the provider: `requested` (a provider name as fi_info spells it, e.g. "tcp", "shm",
/// "tcp;ofi_rxm"; empty = best available). The result is one fi_info offering FI_EP_RDM with
/// FI_TAGGED, send-after-send ordering and a tag space of at least `tagBits` bits. Unavailable,
/// naming the providers that were considered, when none fits.
StatusOr<InfoPtr> chooseProvider(const std::string& requested, int tagBits);

/// "tcp;ofi_rxm on fabric 192.0.2.0/24, domain eth0 (libfabric 1.17, mr_mode [none])".
std::string describeInfo(const fi_info& info);

/// True when the provider moves bytes only between processes of one host (shm).
bool isHostLocal(const fi_info& info);

}  // namespace plexus::ofi
