// Memory registrations for providers that demand them (FI_MR_LOCAL: verbs, EFA, ...): a small
// cache of page-aligned regions, so that a buffer used collective after collective is
// registered once, not per message.
//
// Hazard: the cache cannot see free(). A region freed and a new one mapped at the same virtual
// address would reuse a stale registration, which a NIC that pinned the old pages reads wrongly.
// Plexus's own buffers (scratch, user buffers of a running collective) live long, so the cache
// is on by default; PLEXUS_OFI_MR_CACHE=0 registers per message instead.
#pragma once

#include <rdma/fi_domain.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "plexus/status.h"
#include "transports/ofi/ofi_resources.h"

namespace plexus::ofi {

class MrCache {
 public:
  /// One registered region. Opaque to users beyond desc().
  struct Region {
    uintptr_t begin = 0;
    uintptr_t end = 0;
    FidPtr<fid_mr> mr;
    int users = 0;         // operations in flight that use it
    uint64_t lastUse = 0;  // for least-recently-used eviction
  };

  /// `bindEndpoint`: the endpoint regions must be bound to (FI_MR_ENDPOINT), else null.
  /// `capacity`: idle regions kept; 0 disables caching (each region lives for one operation).
  MrCache(fid_domain* domain, fid_ep* bindEndpoint, bool providerKeys, size_t capacity)
      : domain_(domain),
        bindEndpoint_(bindEndpoint),
        providerKeys_(providerKeys),
        capacity_(capacity) {}
  ~MrCache();
  MrCache(const MrCache&) = delete;
  MrCache& operator=(const MrCache&) = delete;

  /// A region covering [buf, buf + len), registered now unless one is cached; it stays valid
  /// until the matching release(). Null (no descriptor needed) for len == 0.
  StatusOr<Region*> acquire(const void* buf, size_t len);
  /// Ends one use of `region` (null is ignored); idle regions beyond capacity are deregistered.
  void release(Region* region);
  /// The descriptor to pass to fi_tsend/fi_trecv for a region from acquire().
  static void* desc(Region* region) {
    return region == nullptr ? nullptr : fi_mr_desc(region->mr.get());
  }

  size_t size() const { return regions_.size(); }

 private:
  void evictIdle();

  fid_domain* domain_;
  fid_ep* bindEndpoint_;
  bool providerKeys_;
  size_t capacity_;
  uint64_t clock_ = 0;
  uint64_t nextKey_ = 1;
  std::vector<std::unique_ptr<Region>> regions_;
};

}  // namespace plexus::ofi
