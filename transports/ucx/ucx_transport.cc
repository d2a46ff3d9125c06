#include "transports/ucx/ucx_transport.h"

#include <poll.h>
#include <ucp/api/ucp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <unordered_map>

#include "src/check.h"
#include "src/log.h"

namespace plexus {
namespace {

// Tag layout on the wire: [sender rank: 16 bits][caller's tag: 48 bits]. Each communicator has
// its own worker, so no communicator id is needed, and a receive names its sender exactly.
constexpr int kMaxRanks = 1 << (64 - kTagBits);
constexpr const char* kRndvThreshold = "64K";
// Over TCP alone: rendezvous only from 1 MiB. UCX's tcp transport has no remote memory access,
// so its rendezvous saves only the sender's copy, and its handshake queues behind the bulk data
// on a congested link: in the test bed (2 nodes x 4 ranks, links shaped to 1 Gbit/s by tbf),
// hier all-reduce 4 / 16 / 64 MiB took 45-56 / 167-196 / 601-617 ms with 64K against 35-37 /
// 143-146 / 573-589 ms with 1M (the link bound: 34 / 134 / 537). On loopback TCP, unshaped,
// 2 ranks, 256 KiB-1 MiB ran faster without the handshake and 4-64 MiB level or slower.
constexpr const char* kTcpRndvThreshold = "1M";

// True when `tls` (a UCX_TLS value) lets UCX use only TCP between processes ("tcp,self"): then
// every message to a peer crosses a TCP socket. "all", exclusions (^...) and lists naming any
// other transport are not, though UCX may still end up on TCP among them.
bool onlyTcp(const std::string& tls) {
  bool tcp = false;
  size_t at = 0;
  while (at <= tls.size()) {
    const size_t comma = std::min(tls.find(',', at), tls.size());
    const std::string item = tls.substr(at, comma - at);
    if (item == "tcp") {
      tcp = true;
    } else if (item != "self") {
      return false;
    }
    at = comma + 1;
  }
  return tcp;
}
constexpr ucp_tag_t kFullMask = ~ucp_tag_t{0};
// How long closing an endpoint may flush outstanding data before it is forced.
constexpr auto kCloseFlushTimeout = std::chrono::seconds(2);

std::string ucsError(ucs_status_t s) { return ucs_status_string(s); }

struct ContextDeleter {
  void operator()(ucp_context_h c) const { ucp_cleanup(c); }
};
struct WorkerDeleter {
  void operator()(ucp_worker_h w) const { ucp_worker_destroy(w); }
};
using ContextPtr = std::unique_ptr<std::remove_pointer_t<ucp_context_h>, ContextDeleter>;
using WorkerPtr = std::unique_ptr<std::remove_pointer_t<ucp_worker_h>, WorkerDeleter>;

Status truncatedError(int peer) {
  return invalidArgument("message from rank " + std::to_string(peer) +
                         " is longer than the posted buffer (do counts differ between ranks?)");
}

class UcxConnection;
class UcxTransport;

// What a UCX callback's user_data points to: a transport-owned record of one operation in
// flight. The caller's TransferRequest hangs off it and can be detached (abandon()), so that a
// completion arriving after the caller gave up — even inside ucp_worker_destroy, which purges
// pending operations — never writes into memory the caller has freed.
struct OpSlot {
  UcxTransport* transport = nullptr;
  TransferRequest* req = nullptr;  // null once abandoned
  int peer = -1;
  bool isRecv = false;
  bool live = false;
};

class UcxTransport final : public Transport {
 public:
  UcxTransport(int rank, ContextPtr context, WorkerPtr worker, int eventFd, bool peerErrors,
               std::string tls, std::string rndvThreshold)
      : rank_(rank),
        context_(std::move(context)),
        worker_(std::move(worker)),
        eventFd_(eventFd),
        peerErrors_(peerErrors),
        tls_(std::move(tls)),
        rndvThreshold_(std::move(rndvThreshold)) {}
  ~UcxTransport() override;

  const char* name() const override { return "ucx"; }
  std::string describe() const override;
  bool supportsMemory(MemoryKind kind) const override { return kind == MemoryKind::kHost; }
  std::vector<uint8_t> localAddress() const override;
  bool canConnect(const PeerInfo&) const override { return true; }
  StatusOr<std::unique_ptr<Connection>> connect(int peerRank,
                                                const std::vector<uint8_t>& address) override;
  bool progress() override { return ucp_worker_progress(worker_.get()) != 0; }
  void waitForEvent(std::chrono::microseconds timeout) override;
  void cancel(TransferRequest* req) override;
  std::vector<int> peersWithPendingTransfers() const override;

  ucp_worker_h worker() const { return worker_.get(); }
  int rank() const { return rank_; }
  Status peerStatus(int peer) const;
  void abandon(TransferRequest* req) override;
  /// A slot for an operation of `req` with `peer`; reused, so no allocation once warm.
  OpSlot* acquireSlot(TransferRequest* req, int peer, bool isRecv);
  void releaseSlot(OpSlot* slot);
  void onEndpointError(ucp_ep_h ep, ucs_status_t status);
  void closeEndpoint(ucp_ep_h ep, int peer);

 private:
  int rank_;
  ContextPtr context_;
  WorkerPtr worker_;
  int eventFd_;
  bool peerErrors_;
  std::vector<std::unique_ptr<OpSlot>> slots_;  // stable addresses: UCX holds pointers
  std::vector<OpSlot*> freeSlots_;
  std::unordered_map<ucp_ep_h, int> peerOfEndpoint_;
  std::unordered_map<int, std::string> failedPeers_;  // peer -> why
  bool closeTimedOut_ = false;  // a flush-close timed out: force the remaining ones
  std::string tls_;             // the transports this instance may use, for describe()
  std::string rndvThreshold_;   // UCX_RNDV_THRESH of this instance, for describe()
};

class UcxConnection final : public Connection {
 public:
  UcxConnection(UcxTransport* transport, ucp_ep_h ep, int peer)
      : transport_(transport),
        ep_(ep),
        peer_(peer),
        sendBase_(static_cast<ucp_tag_t>(transport->rank()) << kTagBits),
        recvBase_(static_cast<ucp_tag_t>(peer) << kTagBits) {}
  ~UcxConnection() override { transport_->closeEndpoint(ep_, peer_); }

  int peerRank() const override { return peer_; }
  Status isend(const void* buf, size_t len, uint64_t tag, TransferRequest* req) override;
  Status irecv(void* buf, size_t len, uint64_t tag, TransferRequest* req) override;

 private:
  UcxTransport* transport_;
  ucp_ep_h ep_;
  int peer_;
  ucp_tag_t sendBase_;
  ucp_tag_t recvBase_;
};

// Completion callbacks run inside ucp_worker_progress (or ucp_worker_destroy), on the driver.
void sendDone(void* request, ucs_status_t status, void* userData) {
  auto* slot = static_cast<OpSlot*>(userData);
  if (TransferRequest* req = slot->req) {
    if (status != UCS_OK && req->status.ok()) {
      req->status = status == UCS_ERR_CANCELED
                        ? aborted("ucx send cancelled")
                        : unavailable("ucx send failed: " + ucsError(status));
    }
    req->handle = nullptr;
    req->done = true;
  }
  slot->transport->releaseSlot(slot);
  ucp_request_free(request);
}

void recvDone(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info, void* userData) {
  auto* slot = static_cast<OpSlot*>(userData);
  if (TransferRequest* req = slot->req) {
    if (status == UCS_OK) {
      req->bytes = info->length;
    } else if (req->status.ok()) {  // keep an earlier, more precise reason (peer failure)
      req->status = status == UCS_ERR_MESSAGE_TRUNCATED ? truncatedError(slot->peer)
                    : status == UCS_ERR_CANCELED
                        ? aborted("ucx receive cancelled")
                        : unavailable("ucx receive failed: " + ucsError(status));
    }
    req->handle = nullptr;
    req->done = true;
  }
  slot->transport->releaseSlot(slot);
  ucp_request_free(request);
}

void endpointError(void* arg, ucp_ep_h ep, ucs_status_t status) {
  static_cast<UcxTransport*>(arg)->onEndpointError(ep, status);
}

Status UcxConnection::isend(const void* buf, size_t len, uint64_t tag, TransferRequest* req) {
  PLEXUS_CHECK((tag & ~kTagMask) == 0);
  PLEXUS_TRY(transport_->peerStatus(peer_));
  req->reset();
  OpSlot* slot = transport_->acquireSlot(req, peer_, /*isRecv=*/false);
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  param.cb.send = sendDone;
  param.user_data = slot;
  ucs_status_ptr_t sp = ucp_tag_send_nbx(ep_, buf, len, sendBase_ | tag, &param);
  if (sp == nullptr || UCS_PTR_IS_ERR(sp)) {
    transport_->releaseSlot(slot);
    if (sp != nullptr) {
      return unavailable("ucx send to rank " + std::to_string(peer_) +
                         " failed: " + ucsError(UCS_PTR_STATUS(sp)));
    }
    req->done = true;  // completed in place (small eager message)
    return okStatus();
  }
  req->handle = sp;
  req->owner = slot;
  req->transport = transport_;
  return okStatus();
}

Status UcxConnection::irecv(void* buf, size_t len, uint64_t tag, TransferRequest* req) {
  PLEXUS_CHECK((tag & ~kTagMask) == 0);
  PLEXUS_TRY(transport_->peerStatus(peer_));
  req->reset();
  OpSlot* slot = transport_->acquireSlot(req, peer_, /*isRecv=*/true);
  ucp_request_param_t param{};
  // UCX 1.13 does not report the length of a receive that completes inside the call, so ask
  // for the callback even then (it may run before ucp_tag_recv_nbx returns).
  param.op_attr_mask =
      UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
  param.cb.recv = recvDone;
  param.user_data = slot;
  ucs_status_ptr_t sp =
      ucp_tag_recv_nbx(transport_->worker(), buf, len, recvBase_ | tag, kFullMask, &param);
  if (UCS_PTR_IS_ERR(sp)) {
    transport_->releaseSlot(slot);
    return unavailable("ucx receive from rank " + std::to_string(peer_) +
                       " failed: " + ucsError(UCS_PTR_STATUS(sp)));
  }
  if (req->done || sp == nullptr) return okStatus();  // the callback already ran
  req->handle = sp;
  req->owner = slot;
  req->transport = transport_;
  return okStatus();
}

UcxTransport::~UcxTransport() {
  PLEXUS_CHECK(peerOfEndpoint_.empty());  // connections go before their transport
  worker_.reset();
  context_.reset();
}

std::string UcxTransport::describe() const {
  unsigned major = 0, minor = 0, release = 0;
  ucp_get_version(&major, &minor, &release);
  return "ucx " + std::to_string(major) + "." + std::to_string(minor) + "." +
         std::to_string(release) + " (UCX_TLS=" + tls_ + ", rendezvous from " + rndvThreshold_ +
         ")";
}

std::vector<uint8_t> UcxTransport::localAddress() const {
  ucp_address_t* addr = nullptr;
  size_t len = 0;
  ucs_status_t s = ucp_worker_get_address(worker_.get(), &addr, &len);
  PLEXUS_CHECK(s == UCS_OK);
  const auto* bytes = reinterpret_cast<const uint8_t*>(addr);
  std::vector<uint8_t> out(bytes, bytes + len);
  ucp_worker_release_address(worker_.get(), addr);
  return out;
}

StatusOr<std::unique_ptr<Connection>> UcxTransport::connect(int peerRank,
                                                            const std::vector<uint8_t>& address) {
  if (peerRank < 0 || peerRank >= kMaxRanks) {
    return invalidArgument("ucx: peer rank " + std::to_string(peerRank) + " out of range");
  }
  if (address.empty()) {
    return invalidArgument("ucx: empty address for rank " + std::to_string(peerRank));
  }
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER;
  params.address = reinterpret_cast<const ucp_address_t*>(address.data());
  // Peer-failure mode makes a dead peer fail its operations at once, but UCX 1.13 refuses
  // shared memory in that mode (no peer failure handler for posix/sysv) and falls back to TCP
  // loopback, ten times slower. So it is opt-in (PLEXUS_UCX_PEER_ERRORS=1); by default a dead
  // peer surfaces through the collective's deadline.
  params.err_mode = peerErrors_ ? UCP_ERR_HANDLING_MODE_PEER : UCP_ERR_HANDLING_MODE_NONE;
  params.err_handler.cb = endpointError;
  params.err_handler.arg = this;
  ucp_ep_h ep = nullptr;
  ucs_status_t s = ucp_ep_create(worker_.get(), &params, &ep);
  if (s != UCS_OK) {
    return unavailable("ucx: cannot create endpoint to rank " + std::to_string(peerRank) + ": " +
                       ucsError(s));
  }
  peerOfEndpoint_[ep] = peerRank;
  return std::unique_ptr<Connection>(std::make_unique<UcxConnection>(this, ep, peerRank));
}

Status UcxTransport::peerStatus(int peer) const {
  auto it = failedPeers_.find(peer);
  if (it == failedPeers_.end()) return okStatus();
  return unavailable("rank " + std::to_string(peer) + " failed (" + it->second + ")");
}

void UcxTransport::onEndpointError(ucp_ep_h ep, ucs_status_t status) {
  auto it = peerOfEndpoint_.find(ep);
  if (it == peerOfEndpoint_.end()) return;
  int peer = it->second;
  failedPeers_.emplace(peer, "ucx: " + ucsError(status));
  PLEXUS_LOG(kWarn, "ucx: connection to rank %d failed: %s", peer, ucsError(status).c_str());
  // Receives are posted on the worker, so UCX does not fail them with the endpoint: fail the
  // ones waiting for this peer here. The callbacks run later and keep this reason.
  std::vector<TransferRequest*> victims;
  for (const auto& slot : slots_) {
    if (slot->live && slot->isRecv && slot->peer == peer && slot->req != nullptr) {
      victims.push_back(slot->req);
    }
  }
  for (TransferRequest* req : victims) {
    req->status = peerStatus(peer);
    ucp_request_cancel(worker_.get(), req->handle);
  }
}

void UcxTransport::closeEndpoint(ucp_ep_h ep, int peer) {
  peerOfEndpoint_.erase(ep);
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  // A failed peer cannot acknowledge a flush, and after one flush timed out the others are
  // unlikely to fare better: force-close those.
  param.flags = (failedPeers_.count(peer) != 0 || closeTimedOut_) ? UCP_EP_CLOSE_FLAG_FORCE : 0;
  ucs_status_ptr_t sp = ucp_ep_close_nbx(ep, &param);
  if (sp == nullptr || UCS_PTR_IS_ERR(sp)) return;
  auto deadline = std::chrono::steady_clock::now() + kCloseFlushTimeout;
  while (ucp_request_check_status(sp) == UCS_INPROGRESS) {
    ucp_worker_progress(worker_.get());
    if (std::chrono::steady_clock::now() > deadline) {
      // A close request cannot be cancelled: release it to UCX, which frees it when it ends
      // (at the latest in ucp_worker_destroy), rather than let a silent peer hang teardown.
      PLEXUS_LOG(kInfo, "ucx: closing the endpoint to rank %d timed out; abandoning it", peer);
      closeTimedOut_ = true;
      break;
    }
  }
  ucp_request_free(sp);
}

void UcxTransport::waitForEvent(std::chrono::microseconds timeout) {
  // Arm first: UCS_ERR_BUSY means events are already pending and there is work to do.
  if (ucp_worker_arm(worker_.get()) != UCS_OK) return;
  pollfd pfd{eventFd_, POLLIN, 0};
  int ms = static_cast<int>(std::max<int64_t>(1, timeout.count() / 1000));
  ::poll(&pfd, 1, ms);
}

std::vector<int> UcxTransport::peersWithPendingTransfers() const {
  std::vector<int> peers;
  for (const auto& slot : slots_) {
    if (slot->live && slot->req != nullptr) peers.push_back(slot->peer);
  }
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
  return peers;
}

void UcxTransport::cancel(TransferRequest* req) {
  if (!req->done && req->handle != nullptr) ucp_request_cancel(worker_.get(), req->handle);
}

void UcxTransport::abandon(TransferRequest* req) {
  if (req->done || req->owner == nullptr) return;
  static_cast<OpSlot*>(req->owner)->req = nullptr;  // its completion will touch nothing
  req->handle = nullptr;
  req->owner = nullptr;
  req->transport = nullptr;
}

OpSlot* UcxTransport::acquireSlot(TransferRequest* req, int peer, bool isRecv) {
  if (freeSlots_.empty()) {
    slots_.push_back(std::make_unique<OpSlot>());
    freeSlots_.push_back(slots_.back().get());
  }
  OpSlot* slot = freeSlots_.back();
  freeSlots_.pop_back();
  *slot = OpSlot{this, req, peer, isRecv, true};
  return slot;
}

void UcxTransport::releaseSlot(OpSlot* slot) {
  slot->live = false;
  slot->req = nullptr;
  freeSlots_.push_back(slot);
}

}  // namespace

StatusOr<std::unique_ptr<Transport>> createUcxTransport(const TransportContext& context) {
  if (context.size > kMaxRanks) {
    return invalidArgument("ucx: at most " + std::to_string(kMaxRanks) + " ranks per communicator");
  }
  ucp_config_t* config = nullptr;
  ucs_status_t s = ucp_config_read(nullptr, nullptr, &config);
  if (s != UCS_OK) return internalError("ucx: reading the configuration failed: " + ucsError(s));
  // A per-level spec ("ucx:sm,self") restricts this instance only: UCX_TLS is process-wide, but
  // one process may need shared memory inside its node and the network across nodes.
  const char* envTls = std::getenv("UCX_TLS");
  std::string tls = !context.option.empty() ? context.option : envTls != nullptr ? envTls : "all";
  if (!context.option.empty()) {
    s = ucp_config_modify(config, "TLS", context.option.c_str());
    if (s != UCS_OK) {
      ucp_config_release(config);
      return invalidArgument("ucx: transport list '" + context.option + "' (from the spec ucx:" +
                             context.option + ") is invalid: " + ucsError(s));
    }
  }
  // Rendezvous from 64 KiB, not UCX's automatic threshold (about 8 KiB on shared memory): its
  // handshake costs a round trip, and with ranks sharing cores every round trip waits for the
  // peer to be scheduled. 4 ranks on 2 cores, rhd all-reduce: 16 KiB 33 -> 14 us, 64 KiB
  // 75 -> 30-40 us; 2 ranks: 32 KiB 11-14 -> 8 us. Over TCP alone, from 1 MiB (see
  // kTcpRndvThreshold). UCX_RNDV_THRESH in the environment wins.
  const char* envRndv = std::getenv("UCX_RNDV_THRESH");
  const std::string rndv = envRndv != nullptr ? envRndv
                           : onlyTcp(tls)     ? kTcpRndvThreshold
                                              : kRndvThreshold;
  if (envRndv == nullptr) {
    s = ucp_config_modify(config, "RNDV_THRESH", rndv.c_str());
    if (s != UCS_OK) {
      ucp_config_release(config);
      return internalError("ucx: setting RNDV_THRESH failed: " + ucsError(s));
    }
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_ESTIMATED_NUM_EPS;
  params.features = UCP_FEATURE_TAG | UCP_FEATURE_WAKEUP;
  params.estimated_num_eps = static_cast<size_t>(context.size);
  ucp_context_h rawContext = nullptr;
  s = ucp_init(&params, config, &rawContext);
  ucp_config_release(config);
  if (s != UCS_OK) return unavailable("ucx: ucp_init failed: " + ucsError(s));
  ContextPtr ctx(rawContext);

  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  // The progress engine lets one thread at a time drive the transport (see transport.h).
  wp.thread_mode = UCS_THREAD_MODE_SERIALIZED;
  ucp_worker_h rawWorker = nullptr;
  s = ucp_worker_create(ctx.get(), &wp, &rawWorker);
  if (s != UCS_OK) return unavailable("ucx: ucp_worker_create failed: " + ucsError(s));
  WorkerPtr worker(rawWorker);
  int fd = -1;
  s = ucp_worker_get_efd(worker.get(), &fd);
  if (s != UCS_OK) return unavailable("ucx: no wake-up event fd: " + ucsError(s));
  const char* peerErrors = std::getenv("PLEXUS_UCX_PEER_ERRORS");
  bool wantPeerErrors = peerErrors != nullptr && std::string(peerErrors) == "1";
  return std::unique_ptr<Transport>(std::make_unique<UcxTransport>(
      context.rank, std::move(ctx), std::move(worker), fd, wantPeerErrors, std::move(tls), rndv));
}

}  // namespace plexus
