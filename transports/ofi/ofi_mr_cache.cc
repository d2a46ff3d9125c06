#include "transports/ofi/ofi_mr_cache.h"

#include <rdma/fi_endpoint.h>
#include <unistd.h>

#include <algorithm>

namespace plexus::ofi {
namespace {

uintptr_t pageSize() {
  static const uintptr_t kPage = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  return kPage;
}

}  // namespace

MrCache::~MrCache() {
  // Connections (and their operations) are gone by now; registrations close with the regions.
  regions_.clear();
}

StatusOr<MrCache::Region*> MrCache::acquire(const void* buf, size_t len) {
  if (len == 0) return static_cast<Region*>(nullptr);
  auto begin = reinterpret_cast<uintptr_t>(buf);
  uintptr_t end = begin + len;
  ++clock_;
  // Linear search: the cache holds tens of regions, and a hit saves a syscall-priced
  // registration.
  for (auto& r : regions_) {
    if (r->begin <= begin && end <= r->end) {
      ++r->users;
      r->lastUse = clock_;
      return r.get();
    }
  }
  auto region = std::make_unique<Region>();
  region->begin = begin & ~(pageSize() - 1);
  region->end = (end + pageSize() - 1) & ~(pageSize() - 1);
  fid_mr* mr = nullptr;
  // With FI_MR_PROV_KEY the provider picks the key; otherwise keys must differ per domain.
  uint64_t key = providerKeys_ ? 0 : nextKey_++;
  int rc = fi_mr_reg(domain_, reinterpret_cast<void*>(region->begin), region->end - region->begin,
                     FI_SEND | FI_RECV, 0, key, 0, &mr, nullptr);
  if (rc != 0) {
    return unavailable("ofi: registering " + std::to_string(len) +
                       " bytes failed: " + ofiError(rc));
  }
  region->mr.reset(mr);
  if (bindEndpoint_ != nullptr) {
    rc = fi_mr_bind(mr, &bindEndpoint_->fid, 0);
    if (rc == 0) rc = fi_mr_enable(mr);
    if (rc != 0) return unavailable("ofi: binding a registration failed: " + ofiError(rc));
  }
  region->users = 1;
  region->lastUse = clock_;
  Region* out = region.get();
  regions_.push_back(std::move(region));
  evictIdle();
  return out;
}

void MrCache::release(Region* region) {
  if (region == nullptr) return;
  --region->users;
  evictIdle();
}

void MrCache::evictIdle() {
  size_t idle = static_cast<size_t>(
      std::count_if(regions_.begin(), regions_.end(), [](auto& r) { return r->users == 0; }));
  while (idle > capacity_) {
    auto victim = regions_.end();
    for (auto it = regions_.begin(); it != regions_.end(); ++it) {
      if ((*it)->users == 0 && (victim == regions_.end() || (*it)->lastUse < (*victim)->lastUse)) {
        victim = it;
      }
    }
    regions_.erase(victim);
    --idle;
  }
}

}  // namespace plexus::ofi
