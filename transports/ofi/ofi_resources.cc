#include "transports/ofi/ofi_resources.h"

#include <rdma/fi_errno.h>

#include <bit>
#include <string_view>

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
