#include "transports/ofi/ofi_resources.h"

#include <rdma/fi_cm.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>

#include <bit>
#include <string_view>

#include "src/log.h"
#include "src/shm_region.h"

namespace plexus::ofi {
namespace {

// Providers in order of preference when PLEXUS_OFI_PROVIDER is unset: the NIC-specific ones
// first (EFA, Slingshot, Omni-Path, InfiniBand), then TCP, then host-local shm last. shm is the
// fastest on one host, but it cannot reach another one, and a transport does not learn at
// creation whether its job spans hosts. udp;ofi_rxd (slow) and net (experimental in 1.17) are
// only used when asked for by name.
constexpr const char* kPreference[] = {"efa",           "cxi",         "opx",     "psm3", "psm2",
                                       "verbs;ofi_rxm", "tcp;ofi_rxm", "sockets", "shm"};

InfoPtr makeHints(const std::string& requested) {
  InfoPtr hints(fi_allocinfo());
  if (hints == nullptr) return hints;
  hints->caps = FI_TAGGED | FI_SEND | FI_RECV;
  // Every operation carries an fi_context2 the provider may use (see OfiOp).
  hints->mode = FI_CONTEXT | FI_CONTEXT2;
  hints->ep_attr->type = FI_EP_RDM;
  // Messages with equal tags between one pair must match in send order (transport.h).
  hints->tx_attr->msg_order = FI_ORDER_SAS;
  hints->rx_attr->msg_order = FI_ORDER_SAS;
  // The progress engine serializes every call into a transport.
  hints->domain_attr->threading = FI_THREAD_DOMAIN;
  // Registration modes we can honour: local registration (with a cache) and endpoint-bound
  // regions. The others only concern remote access, which plain tagged messages never grant.
  hints->domain_attr->mr_mode =
      FI_MR_LOCAL | FI_MR_ENDPOINT | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
  if (!requested.empty()) {
    // fi_freeinfo releases prov_name with free(), so it must come from strdup.
    hints->fabric_attr->prov_name = ::strdup(requested.c_str());
  }
  return hints;
}

int tagBitsOf(const fi_info& info) {
  uint64_t format = info.ep_attr->mem_tag_format;
  return format == 0 ? 64 : 64 - std::countl_zero(format);
}

// Why `info` cannot serve the transport, or "" when it can.
std::string unfit(const fi_info& info, int tagBits) {
  if (tagBitsOf(info) < tagBits) {
    return "tag space of " + std::to_string(tagBitsOf(info)) + " bits";
  }
  if ((info.tx_attr->msg_order & FI_ORDER_SAS) == 0 ||
      (info.rx_attr->msg_order & FI_ORDER_SAS) == 0) {
    return "no send-after-send ordering";
  }
  return "";
}

}  // namespace

std::string ofiError(int code) { return fi_strerror(code < 0 ? -code : code); }

StatusOr<InfoPtr> chooseProvider(const std::string& requested, int tagBits) {
  InfoPtr hints = makeHints(requested);
  if (hints == nullptr) return internalError("ofi: fi_allocinfo failed");
  fi_info* raw = nullptr;
  int rc = fi_getinfo(FI_VERSION(FI_MAJOR_VERSION, FI_MINOR_VERSION), nullptr, nullptr, 0,
                      hints.get(), &raw);
  InfoPtr list(raw);
  std::string wanted = requested.empty() ? "any provider" : "provider '" + requested + "'";
  if (rc != 0 || list == nullptr) {
    return unavailable("ofi: no " + wanted +
                       " offers reliable tagged messages (FI_EP_RDM + FI_TAGGED): " + ofiError(rc) +
                       "; see `fi_info -t FI_EP_RDM -c FI_TAGGED`");
  }
  const fi_info* best = nullptr;
  size_t bestRank = std::size(kPreference);
  std::string rejected;
  for (const fi_info* i = list.get(); i != nullptr; i = i->next) {
    std::string why = unfit(*i, tagBits);
    if (!why.empty()) {
      rejected += std::string(" ") + i->fabric_attr->prov_name + " (" + why + ");";
      continue;
    }
    if (!requested.empty()) {  // libfabric already filtered by name: take its first choice
      best = i;
      break;
    }
    for (size_t r = 0; r < bestRank; ++r) {
      if (std::string_view(i->fabric_attr->prov_name) == kPreference[r]) {
        best = i;
        bestRank = r;
        break;
      }
    }
  }
  if (best == nullptr) {
    return unavailable("ofi: no usable " + wanted + " (rejected:" + rejected +
                       "); set PLEXUS_OFI_PROVIDER to one that `fi_info -t FI_EP_RDM` lists");
  }
  InfoPtr chosen(fi_dupinfo(best));
  if (chosen == nullptr) return internalError("ofi: fi_dupinfo failed");
  return chosen;
}

Status openEndpoint(const fi_info& constInfo, size_t avCount, bool waitFd, Endpoint* out) {
  // libfabric takes fi_info by pointer to non-const but only reads it.
  fi_info* info = const_cast<fi_info*>(&constInfo);
  auto fail = [&](const char* call, int rc) {
    return unavailable(std::string("ofi: ") + call + " failed for " + info->fabric_attr->prov_name +
                       ": " + ofiError(rc));
  };
  Endpoint e;
  fid_fabric* fabric = nullptr;
  int rc = fi_fabric(info->fabric_attr, &fabric, nullptr);
  if (rc != 0) return fail("fi_fabric", rc);
  e.fabric.reset(fabric);
  fid_domain* domain = nullptr;
  rc = fi_domain(e.fabric.get(), info, &domain, nullptr);
  if (rc != 0) return fail("fi_domain", rc);
  e.domain.reset(domain);

  // A wait fd lets an idle driver sleep in poll(); providers without one get polled with naps.
  fi_cq_attr cqAttr{};
  cqAttr.format = FI_CQ_FORMAT_TAGGED;
  cqAttr.wait_obj = waitFd ? FI_WAIT_FD : FI_WAIT_NONE;
  fid_cq* cq = nullptr;
  rc = fi_cq_open(e.domain.get(), &cqAttr, &cq, nullptr);
  if (rc != 0 && cqAttr.wait_obj != FI_WAIT_NONE) {
    cqAttr.wait_obj = FI_WAIT_NONE;
    rc = fi_cq_open(e.domain.get(), &cqAttr, &cq, nullptr);
  }
  if (rc != 0) return fail("fi_cq_open", rc);
  e.cq.reset(cq);
  if (cqAttr.wait_obj == FI_WAIT_FD && fi_control(&e.cq->fid, FI_GETWAIT, &e.waitFd) != 0) {
    e.waitFd = -1;
  }

  fi_av_attr avAttr{};
  avAttr.type =
      info->domain_attr->av_type != FI_AV_UNSPEC ? info->domain_attr->av_type : FI_AV_TABLE;
  avAttr.count = avCount;
  fid_av* av = nullptr;
  rc = fi_av_open(e.domain.get(), &avAttr, &av, nullptr);
  if (rc != 0) return fail("fi_av_open", rc);
  e.av.reset(av);

  fid_ep* ep = nullptr;
  rc = fi_endpoint(e.domain.get(), info, &ep, nullptr);
  if (rc != 0) return fail("fi_endpoint", rc);
  e.ep.reset(ep);
  rc = fi_ep_bind(e.ep.get(), &e.cq->fid, FI_TRANSMIT | FI_RECV);
  if (rc == 0) rc = fi_ep_bind(e.ep.get(), &e.av->fid, 0);
  if (rc != 0) return fail("fi_ep_bind", rc);
  if (isHostLocal(*info)) {
    const int stale = removeStaleShmRegions();
    if (stale > 0) {
      PLEXUS_LOG(kInfo, "ofi: removed %d shm region(s) that exited processes left in /dev/shm",
                 stale);
    }
    // shm names its /dev/shm region after the endpoint; the default name is the pid alone, so a
    // region a killed process left behind made fi_enable fail with EBUSY for a later process
    // with the same pid.
    const std::string name = shmRegionName();
    rc = fi_setname(&e.ep->fid, const_cast<char*>(name.c_str()), name.size() + 1);
    if (rc != 0) return fail("fi_setname", rc);
  }
  rc = fi_enable(e.ep.get());
  if (rc != 0) return fail("fi_enable", rc);

  e.name.resize(256);
  size_t len = e.name.size();
  rc = fi_getname(&e.ep->fid, e.name.data(), &len);
  if (rc == -FI_ETOOSMALL) {
    e.name.resize(len);
    rc = fi_getname(&e.ep->fid, e.name.data(), &len);
  }
  if (rc != 0) return fail("fi_getname", rc);
  e.name.resize(len);
  *out = std::move(e);
  return okStatus();
}

std::string describeInfo(const fi_info& info) {
  uint32_t version = fi_version();
  // fi_tostr returns a per-thread static buffer: copy it out at once.
  std::string mrMode = fi_tostr(&info.domain_attr->mr_mode, FI_TYPE_MR_MODE);
  if (mrMode.find("FI_") == std::string::npos) mrMode = "none";
  return std::string(info.fabric_attr->prov_name) + " on fabric " + info.fabric_attr->name +
         ", domain " + info.domain_attr->name + " (libfabric " + std::to_string(FI_MAJOR(version)) +
         "." + std::to_string(FI_MINOR(version)) + ", mr_mode " + mrMode + ", inject " +
         std::to_string(info.tx_attr->inject_size) + " B)";
}

bool isHostLocal(const fi_info& info) {
  return std::string_view(info.fabric_attr->prov_name) == "shm";
}

}  // namespace plexus::ofi
