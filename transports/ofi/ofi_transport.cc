#include "transports/ofi/ofi_transport.h"

#include <poll.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "src/check.h"
#include "src/log.h"
#include "src/shm_region.h"
#include "transports/ofi/ofi_mr_cache.h"
#include "transports/ofi/ofi_resources.h"

namespace plexus {
namespace {

using ofi::ofiError;

// Tag layout on the wire: [sender rank: 16 bits][caller's tag: 48 bits], as in the UCX
// transport. Receives match the full tag, so the rank bits pick the sender and no
// FI_DIRECTED_RECV is needed; each communicator has its own endpoint.
constexpr int kMaxRanks = 1 << (64 - kTagBits);
constexpr size_t kCqBatch = 16;
constexpr size_t kMrCacheCapacity = 64;
// waitForEvent's nap when the provider offers no wait fd.
constexpr auto kNap = std::chrono::microseconds(50);

std::string envOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : fallback;
}

std::string localHostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

Status truncatedError(int peer) {
  return invalidArgument("message from rank " + std::to_string(peer) +
                         " is longer than the posted buffer (do counts differ between ranks?)");
}

// One operation in flight. The provider's context area comes first: libfabric hands &ctx back
// as op_context, and the provider may use it until the completion (FI_CONTEXT2 mode).
struct OfiOp {
  fi_context2 ctx;
  TransferRequest* req;  // null once abandoned: the completion then touches nothing
  ofi::MrCache::Region* region;
  const void* buf;
  size_t len;
  uint64_t wireTag;
  fi_addr_t addr;
  int peer;
  bool isRecv;
  bool inject;     // sent with fi_tinject: done once posted, no completion entry
  bool queued;     // waiting in the backlog (the provider said FI_EAGAIN)
  bool cancelled;  // cancel() asked while queued
  bool inUse;
};
static_assert(std::is_standard_layout_v<OfiOp> && offsetof(OfiOp, ctx) == 0);

OfiOp* opOf(void* context) { return reinterpret_cast<OfiOp*>(context); }

class OfiTransport final : public Transport {
 public:
  OfiTransport(int rank, ofi::InfoPtr info) : rank_(rank), info_(std::move(info)) {}
  ~OfiTransport() override = default;

  /// Opens fabric, domain, completion queue, address vector and endpoint.
  Status open(int worldSize);

  const char* name() const override { return "ofi"; }
  std::string describe() const override {
    return "ofi " + ofi::describeInfo(*info_) + (res_.waitFd >= 0 ? ", wait fd" : ", polling");
  }
  bool supportsMemory(MemoryKind kind) const override { return kind == MemoryKind::kHost; }
  // Every message past rxm's SAR limit (128 KiB) is a rendezvous (an RMA read the sender must
  // progress), and shm's large messages have a handshake too: fewer, longer chunks. 2-rank ring
  // all-reduce busbw, best/median of 5 interleaved runs, 256 KiB against 1 MiB chunks: tcp 4 MiB
  // 2.25/1.61 vs 2.94/1.95, 16 MiB 1.70/1.65 vs 2.46/1.91, 64 MiB 1.62/1.52 vs 2.44/1.93 (2 MiB:
  // no better). shm moves a large message with one process_vm_readv by the receiver, so there
  // is nothing for a pipeline to overlap on one host and every chunk costs a handshake: no
  // pipeline, a segment travels whole (the largest PLEXUS_CHUNK_BYTES; the algorithms size
  // their staging by the piece, not the chunk). 2-rank ring busbw, best/median; four
  // interleaved runs of 1 / 4 / 16 MiB chunks: 4 MiB 5.98/5.92, 10.54/7.65, 8.45/7.85; 16 MiB
  // 2.90/2.84, 3.92/3.91, 5.00/4.23; 64 MiB 3.14/3.02, 2.85/2.85, 3.08/2.94. Five of 2 / 4 / 8
  // / 16 MiB: 16 MiB 4.22/2.37, 4.45/2.79, 4.86/4.34, 5.48/3.87; 32 MiB 3.08/2.77, 2.90/2.82,
  // 3.64/3.13, 4.56/3.84. Three of 16 MiB / 64 MiB / 1 GiB (out of place): 64 MiB 3.08-3.37 /
  // 3.78-3.99 / 3.55-4.28, 128 MiB 2.74-2.80 / 3.16-4.35 / 4.16-4.49, 256 MiB 2.54-3.09 /
  // 2.94-3.18 / 2.95-3.43; 3 ranks (32-128 MiB) and the tree on 4 ranks (4-64 MiB) level.
  size_t pipelineChunkBytes() const override {
    return ofi::isHostLocal(*info_) ? size_t{1} << 30 : size_t{1} << 20;
  }
  std::vector<uint8_t> localAddress() const override { return address_; }
  bool canConnect(const PeerInfo& peer) const override {
    return !ofi::isHostLocal(*info_) || peer.hostname == hostName_;
  }
  StatusOr<std::unique_ptr<Connection>> connect(int peerRank,
                                                const std::vector<uint8_t>& address) override;
  bool progress() override;
  void waitForEvent(std::chrono::microseconds timeout) override;
  void cancel(TransferRequest* req) override;
  void abandon(TransferRequest* req) override;
  std::vector<int> peersWithPendingTransfers() const override;

  /// Starts a send or a receive for a connection (see Connection).
  Status start(bool isRecv, int peer, fi_addr_t addr, const void* buf, size_t len, uint64_t tag,
               TransferRequest* req);

 private:
  OfiOp* takeOp();
  ssize_t post(OfiOp* op);
  void onPosted(OfiOp* op);
  void complete(OfiOp* op, Status status, size_t bytes);
  void readError();
  bool flushBacklog();
  void failPeer(int peer, const std::string& why);
  Status peerStatus(int peer) const;
  std::string what(const OfiOp* op) const {
    return std::string(op->isRecv ? "ofi receive from rank " : "ofi send to rank ") +
           std::to_string(op->peer);
  }

  int rank_;
  ofi::InfoPtr info_;
  std::string hostName_ = localHostName();
  std::vector<uint8_t> address_;  // [name length][provider name][endpoint name]
  bool registerBuffers_ = false;
  // Declaration order is teardown order reversed: registrations, then the endpoint's objects.
  ofi::Endpoint res_;
  std::unique_ptr<ofi::MrCache> mrCache_;
  std::vector<std::unique_ptr<OfiOp>> ops_;  // pool: stable addresses, reused
  std::vector<OfiOp*> freeOps_;
  std::deque<OfiOp*> backlog_;  // posted in order once the provider has room again
  std::unordered_map<int, std::string> failedPeers_;  // peer -> why
};

class OfiConnection final : public Connection {
 public:
  OfiConnection(OfiTransport* transport, int peer, fi_addr_t addr)
      : transport_(transport), peer_(peer), addr_(addr) {}
  // The AV entry stays until the transport closes: operations cancelled but not yet reaped may
  // still name it.
  ~OfiConnection() override = default;

  int peerRank() const override { return peer_; }
  Status isend(const void* buf, size_t len, uint64_t tag, TransferRequest* req) override {
    return transport_->start(false, peer_, addr_, buf, len, tag, req);
  }
  Status irecv(void* buf, size_t len, uint64_t tag, TransferRequest* req) override {
    return transport_->start(true, peer_, addr_, buf, len, tag, req);
  }

 private:
  OfiTransport* transport_;
  int peer_;
  fi_addr_t addr_;
};

Status OfiTransport::open(int worldSize) {
  PLEXUS_TRY(ofi::openEndpoint(*info_, static_cast<size_t>(worldSize),
                               envOr("PLEXUS_OFI_WAIT", "fd") == "fd", &res_));
  const std::vector<uint8_t>& name = res_.name;
  std::string prov = info_->fabric_attr->prov_name;
  address_.push_back(static_cast<uint8_t>(prov.size()));
  address_.insert(address_.end(), prov.begin(), prov.end());
  address_.insert(address_.end(), name.begin(), name.end());

  uint64_t mrMode = static_cast<uint64_t>(info_->domain_attr->mr_mode);
  registerBuffers_ = (mrMode & FI_MR_LOCAL) != 0 || envOr("PLEXUS_OFI_MR", "") == "always";
  size_t capacity = envOr("PLEXUS_OFI_MR_CACHE", "1") == "0" ? 0 : kMrCacheCapacity;
  mrCache_ = std::make_unique<ofi::MrCache>(
      res_.domain.get(), (mrMode & FI_MR_ENDPOINT) != 0 ? res_.ep.get() : nullptr,
      (mrMode & FI_MR_PROV_KEY) != 0, capacity);
  return okStatus();
}

StatusOr<std::unique_ptr<Connection>> OfiTransport::connect(int peerRank,
                                                            const std::vector<uint8_t>& address) {
  if (peerRank < 0 || peerRank >= kMaxRanks) {
    return invalidArgument("ofi: peer rank " + std::to_string(peerRank) + " out of range");
  }
  size_t provLen = address.empty() ? 0 : address[0];
  if (address.size() <= 1 + provLen) {
    return invalidArgument("ofi: malformed address for rank " + std::to_string(peerRank));
  }
  std::string peerProv(address.begin() + 1, address.begin() + 1 + static_cast<ptrdiff_t>(provLen));
  if (peerProv != info_->fabric_attr->prov_name) {
    return invalidArgument("ofi: rank " + std::to_string(peerRank) + " uses provider '" + peerProv +
                           "' but rank " + std::to_string(rank_) + " uses '" +
                           info_->fabric_attr->prov_name + "' (PLEXUS_OFI_PROVIDER)");
  }
  fi_addr_t addr = FI_ADDR_UNSPEC;
  int n = fi_av_insert(res_.av.get(), address.data() + 1 + provLen, 1, &addr, 0, nullptr);
  if (n != 1) {
    return unavailable("ofi: cannot insert the address of rank " + std::to_string(peerRank) + ": " +
                       ofiError(n < 0 ? n : -FI_EINVAL));
  }
  return std::unique_ptr<Connection>(std::make_unique<OfiConnection>(this, peerRank, addr));
}

OfiOp* OfiTransport::takeOp() {
  if (freeOps_.empty()) {
    ops_.push_back(std::make_unique<OfiOp>());
    freeOps_.push_back(ops_.back().get());
  }
  OfiOp* op = freeOps_.back();
  freeOps_.pop_back();
  *op = OfiOp{};
  op->inUse = true;
  return op;
}

Status OfiTransport::start(bool isRecv, int peer, fi_addr_t addr, const void* buf, size_t len,
                           uint64_t tag, TransferRequest* req) {
  PLEXUS_CHECK((tag & ~kTagMask) == 0);
  PLEXUS_TRY(peerStatus(peer));
  if (len > info_->ep_attr->max_msg_size) {
    return invalidArgument("ofi: " + std::to_string(len) + " bytes exceed the provider's " +
                           std::to_string(info_->ep_attr->max_msg_size) + "-byte message limit");
  }
  ofi::MrCache::Region* region = nullptr;
  if (registerBuffers_) {
    auto r = mrCache_->acquire(buf, len);
    PLEXUS_TRY(r.status());
    region = *r;
  }
  req->reset();
  req->owner = this;
  req->transport = this;
  OfiOp* op = takeOp();
  op->req = req;
  op->region = region;
  op->buf = buf;
  op->len = len;
  op->wireTag = (static_cast<uint64_t>(isRecv ? peer : rank_) << kTagBits) | tag;
  op->addr = addr;
  op->peer = peer;
  op->isRecv = isRecv;
  op->inject = !isRecv && region == nullptr && len <= info_->tx_attr->inject_size;
  req->handle = op;
  if (backlog_.empty()) {  // else queue behind the others: equal tags match in posting order
    ssize_t rc = post(op);
    if (rc == 0) {
      onPosted(op);
      return okStatus();
    }
    if (rc != -FI_EAGAIN) {
      std::string why = what(op) + " failed: " + ofiError(static_cast<int>(rc));
      mrCache_->release(region);
      req->reset();
      op->inUse = false;
      freeOps_.push_back(op);
      return unavailable(why);
    }
  }
  op->queued = true;
  backlog_.push_back(op);
  return okStatus();
}

ssize_t OfiTransport::post(OfiOp* op) {
  void* desc = ofi::MrCache::desc(op->region);
  if (op->isRecv) {
    return fi_trecv(res_.ep.get(), const_cast<void*>(op->buf), op->len, desc, FI_ADDR_UNSPEC,
                    op->wireTag, 0, &op->ctx);
  }
  if (op->inject) return fi_tinject(res_.ep.get(), op->buf, op->len, op->addr, op->wireTag);
  return fi_tsend(res_.ep.get(), op->buf, op->len, desc, op->addr, op->wireTag, &op->ctx);
}

void OfiTransport::onPosted(OfiOp* op) {
  // fi_tinject copied the bytes out: the send is done as far as the caller is concerned.
  if (op->inject) complete(op, okStatus(), 0);
}

void OfiTransport::complete(OfiOp* op, Status status, size_t bytes) {
  if (TransferRequest* req = op->req) {
    if (req->status.ok()) req->status = std::move(status);  // keep an earlier, precise reason
    if (op->isRecv && req->status.ok()) req->bytes = bytes;
    req->handle = nullptr;
    req->done = true;
  }
  mrCache_->release(op->region);
  op->inUse = false;
  freeOps_.push_back(op);
}

bool OfiTransport::progress() {
  bool any = false;
  fi_cq_tagged_entry entries[kCqBatch];
  for (;;) {
    // With FI_PROGRESS_MANUAL providers (tcp, shm) this call is also what moves the data.
    ssize_t n = fi_cq_read(res_.cq.get(), entries, kCqBatch);
    if (n == -FI_EAVAIL) {
      readError();
      any = true;
      continue;
    }
    if (n <= 0) {
      if (n != -FI_EAGAIN) {
        PLEXUS_LOG(kWarn, "ofi: fi_cq_read: %s", ofiError(static_cast<int>(n)).c_str());
      }
      break;
    }
    for (ssize_t i = 0; i < n; ++i)
      complete(opOf(entries[i].op_context), okStatus(), entries[i].len);
    any = true;
    if (static_cast<size_t>(n) < kCqBatch) break;
  }
  if (!backlog_.empty()) any = flushBacklog() || any;
  return any;
}

void OfiTransport::readError() {
  fi_cq_err_entry err{};
  if (fi_cq_readerr(res_.cq.get(), &err, 0) < 0) return;
  if (err.op_context == nullptr) {
    PLEXUS_LOG(kWarn, "ofi: error without an operation: %s", ofiError(err.err).c_str());
    return;
  }
  OfiOp* op = opOf(err.op_context);
  // fi_errno values are positive here, but some 1.17 providers report them negated.
  err.err = err.err < 0 ? -err.err : err.err;
  if (err.err == FI_ECANCELED) {
    complete(op, aborted(what(op) + " cancelled"), 0);
  } else if (err.err == FI_ETRUNC) {
    complete(op, truncatedError(op->peer), 0);
  } else {
    char buf[256] = {};
    const char* detail =
        fi_cq_strerror(res_.cq.get(), err.prov_errno, err.err_data, buf, sizeof(buf));
    std::string why =
        ofiError(err.err) + (detail != nullptr ? std::string(" (") + detail + ")" : "");
    int peer = op->peer;
    complete(op, unavailable(what(op) + " failed: " + why), 0);
    failPeer(peer, why);
  }
}

bool OfiTransport::flushBacklog() {
  bool any = false;
  while (!backlog_.empty()) {
    OfiOp* op = backlog_.front();
    ssize_t rc = op->cancelled ? 0 : post(op);
    if (rc == -FI_EAGAIN) break;
    backlog_.pop_front();
    op->queued = false;
    any = true;
    if (op->cancelled) {
      complete(op, aborted(what(op) + " cancelled"), 0);
    } else if (rc != 0) {
      complete(op, unavailable(what(op) + " failed: " + ofiError(static_cast<int>(rc))), 0);
    } else {
      onPosted(op);
    }
  }
  return any;
}

void OfiTransport::failPeer(int peer, const std::string& why) {
  if (!failedPeers_.emplace(peer, "ofi: " + why).second) return;
  PLEXUS_LOG(kWarn, "ofi: connection to rank %d failed: %s", peer, why.c_str());
  // Receives are posted on the endpoint, not per peer, so the provider does not fail them with
  // the peer: fail those waiting for it here. Their completions keep this reason.
  for (auto& op : ops_) {
    if (!op->inUse || !op->isRecv || op->peer != peer || op->req == nullptr) continue;
    op->req->status = peerStatus(peer);
    cancel(op->req);
  }
}

Status OfiTransport::peerStatus(int peer) const {
  auto it = failedPeers_.find(peer);
  if (it == failedPeers_.end()) return okStatus();
  return unavailable("rank " + std::to_string(peer) + " failed (" + it->second + ")");
}

void OfiTransport::cancel(TransferRequest* req) {
  if (req->done || req->handle == nullptr || req->owner != this) return;
  auto* op = static_cast<OfiOp*>(req->handle);
  if (op->queued) {
    op->cancelled = true;  // completed by the next flushBacklog()
    return;
  }
  // The provider then reports FI_ECANCELED through the CQ, unless the operation already
  // completed (a send in flight usually cannot be cancelled; it completes normally).
  fi_cancel(&res_.ep->fid, &op->ctx);
}

void OfiTransport::abandon(TransferRequest* req) {
  if (req->done || req->handle == nullptr || req->owner != this) return;
  auto* op = static_cast<OfiOp*>(req->handle);
  op->req = nullptr;
  // A queued operation must never reach the provider now: its buffer may be gone.
  if (op->queued) {
    op->cancelled = true;
  } else {
    fi_cancel(&res_.ep->fid, &op->ctx);  // best effort: a late message should not land in it
  }
  req->handle = nullptr;
  req->owner = nullptr;
  req->transport = nullptr;
}

std::vector<int> OfiTransport::peersWithPendingTransfers() const {
  std::vector<int> peers;
  for (const auto& op : ops_) {
    if (op->inUse && op->req != nullptr) peers.push_back(op->peer);
  }
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
  return peers;
}

void OfiTransport::waitForEvent(std::chrono::microseconds timeout) {
  if (!backlog_.empty()) return;  // room comes back through progress(), not an event
  if (res_.waitFd < 0) {
    std::this_thread::sleep_for(std::min<std::chrono::microseconds>(timeout, kNap));
    return;
  }
  // fi_trywait fails when completions are pending (or the provider must be polled first).
  fid* fids[] = {&res_.cq->fid};
  if (fi_trywait(res_.fabric.get(), fids, 1) != FI_SUCCESS) return;
  pollfd pfd{res_.waitFd, POLLIN, 0};
  timespec ts{static_cast<time_t>(timeout.count() / 1000000),
              static_cast<long>(timeout.count() % 1000000) * 1000};
  ::ppoll(&pfd, 1, &ts, nullptr);
}

}  // namespace

StatusOr<std::unique_ptr<Transport>> createOfiTransport(const TransportContext& context) {
  if (context.size > kMaxRanks) {
    return invalidArgument("ofi: at most " + std::to_string(kMaxRanks) + " ranks per communicator");
  }
  // tcp;ofi_rxm 1.17 lets tcp place small messages straight into posted buffers ("dynamic
  // receive buffers"), but a message longer than its buffer then kills the whole connection
  // and every later message on it is lost. Bounce buffers (one copy of messages up to the
  // 16 KiB eager limit; large ones stay zero-copy) turn that into a clean FI_ETRUNC. Set before
  // the first fi_getinfo, which reads it; a user's own setting wins.
  static std::once_flag rxmDefaults;
  std::call_once(rxmDefaults, [] { ::setenv("FI_OFI_RXM_ENABLE_DYN_RBUF", "0", 0); });
  int rankBits = 1;
  while ((1 << rankBits) < context.size) ++rankBits;
  // A spec's option ("ofi:shm") names the provider of this instance, over PLEXUS_OFI_PROVIDER.
  auto info = ofi::chooseProvider(
      context.option.empty() ? envOr("PLEXUS_OFI_PROVIDER", "") : context.option,
      kTagBits + rankBits);
  PLEXUS_TRY(info.status());
  auto transport = std::make_unique<OfiTransport>(context.rank, std::move(info).value());
  PLEXUS_TRY(transport->open(context.size));
  PLEXUS_LOG(kInfo, "ofi: rank %d uses %s", context.rank, transport->describe().c_str());
  return std::unique_ptr<Transport>(std::move(transport));
}

}  // namespace plexus
