// The transport contract: how Plexus moves bytes between two ranks. A Transport is a factory for
// Connections (one per peer) plus the progress call that drives them; algorithms see only
// Connections and never a UCX, libfabric or CUDA type.
//
// Threading. A transport and its connections are used by one thread at a time: the
// communicator's progress engine serializes every call (it is the "driver"), so no method here
// needs to be thread-safe, and completion callbacks run inside progress() on the driver.
//
// Progress. Nothing completes unless progress() is called: isend/irecv only start an operation.
// A driver waits for TransferRequest::done by calling progress() in a loop, and when nothing
// moves for a while it may block in waitForEvent() instead of spinning (more ranks than cores
// must not collapse).
//
// Tags. Messages are matched by (peer, tag). Tags are 48-bit (kTagBits): the transport itself
// adds the sender's identity, so a tag only needs to be unique among the messages in flight
// between one pair of ranks. Messages with equal tags between one pair match in send order.
//
// Lifetime. Connections must be destroyed before their Transport. A buffer handed to
// isend/irecv must stay valid until its request is done or cancelled and done.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "plexus/status.h"
#include "plexus/types.h"

namespace plexus {

struct Config;

/// Number of tag bits available to callers of isend/irecv.
inline constexpr int kTagBits = 48;
inline constexpr uint64_t kTagMask = (uint64_t{1} << kTagBits) - 1;

/// Completion record of one isend or irecv. Owned by the caller; must stay at the same address
/// until `done` (the transport keeps a pointer to it). Reusable after done: call reset().
struct TransferRequest {
  /// Set by the transport, inside progress() or the starting call, when the operation ends.
  bool done = false;
  /// The outcome: OK, or why the transfer failed (peer died, truncated, cancelled).
  Status status;
  /// For a receive: the bytes that arrived.
  size_t bytes = 0;
  /// Transport-private: the operation in flight (for cancel()) and who started it.
  void* handle = nullptr;
  void* owner = nullptr;
  /// The transport that holds it in flight (set with `owner`): cancel() and abandon() go there,
  /// since a communicator may drive one transport per link level.
  class Transport* transport = nullptr;

  void reset() {
    done = false;
    status = okStatus();
    bytes = 0;
    handle = nullptr;
    owner = nullptr;
    transport = nullptr;
  }
};

/// What a rank publishes about itself through bootstrap, and what a transport may use to decide
/// whether it can reach a peer.
struct PeerInfo {
  int rank = -1;
  std::string hostname;
  std::string nodeId;  ///< emulated node (PLEXUS_NODE_ID) or the hostname
};

/// A link to one peer. Obtained from Transport::connect.
class Connection {
 public:
  virtual ~Connection() = default;
  /// The peer's rank in the communicator.
  virtual int peerRank() const = 0;
  /// Starts sending `len` bytes at `buf` with `tag` (< 2^kTagBits). Never blocks. Completion is
  /// reported through `req` (possibly before returning, for small messages). A non-OK return
  /// means nothing was started and `req` is untouched.
  virtual Status isend(const void* buf, size_t len, uint64_t tag, TransferRequest* req) = 0;
  /// Starts receiving a message of at most `len` bytes with `tag` from this peer into `buf`.
  /// Never blocks. A longer message completes `req` with an error (truncation); req->bytes
  /// tells the length of a shorter one.
  virtual Status irecv(void* buf, size_t len, uint64_t tag, TransferRequest* req) = 0;
};

/// A way of moving bytes (UCX, libfabric, CUDA IPC). One instance per communicator.
class Transport {
 public:
  virtual ~Transport() = default;
  /// Short name, e.g. "ucx" (PLEXUS_TRANSPORT).
  virtual const char* name() const = 0;
  /// One-line description of the devices in use, for logs and plexus-topo.
  virtual std::string describe() const = 0;
  /// True when isend/irecv accept buffers of this memory kind.
  virtual bool supportsMemory(MemoryKind kind) const = 0;
  /// The opaque address other ranks pass to connect(); published through bootstrap.
  virtual std::vector<uint8_t> localAddress() const = 0;
  /// True when this transport can reach `peer` (e.g. CUDA IPC only within a node).
  virtual bool canConnect(const PeerInfo& peer) const = 0;
  /// Creates the connection to `peerRank` from its published address. May do local work only
  /// (no round trip to the peer is required); never blocks on the peer.
  virtual StatusOr<std::unique_ptr<Connection>> connect(int peerRank,
                                                        const std::vector<uint8_t>& address) = 0;
  /// Advances outstanding operations and runs their completions. Never blocks. Returns true
  /// when something happened (a completion, a message arrived).
  virtual bool progress() = 0;
  /// Blocks until the transport may have progress to make or `timeout` passes; may return
  /// early. Used after spinning found nothing to do.
  virtual void waitForEvent(std::chrono::microseconds timeout) = 0;
  /// Detaches `req` from its operation: the caller is about to free it although the operation
  /// may still be in flight (a cancellation that did not complete in time). The transport must
  /// never touch `req` again; the operation's eventual completion is discarded. A transport
  /// that cannot guarantee this must keep cancel() complete before returning.
  virtual void abandon(TransferRequest* req) = 0;
  /// The shortest pipeline chunk worth its message on this transport, or 0 for no preference:
  /// the ring all-reduce cuts its segments into chunks of PLEXUS_CHUNK_BYTES when that is set,
  /// else of the default raised to this.
  virtual size_t pipelineChunkBytes() const { return 0; }
  /// Ranks that transfers now in flight (sends and receives) are waiting for, ascending, for
  /// error messages: a timeout names who never answered. Empty when the transport does not
  /// track them.
  virtual std::vector<int> peersWithPendingTransfers() const { return {}; }
  /// Asks an incomplete request to end; it then completes with a cancelled status during a
  /// later progress(). A done request is left alone.
  virtual void cancel(TransferRequest* req) = 0;
};

/// What a transport factory gets to build a transport for one communicator.
struct TransportContext {
  int rank = 0;
  int size = 1;
  const Config* config = nullptr;
  /// The transport's own option, from a spec "NAME:OPTION" (empty: its defaults). ucx: the
  /// UCX_TLS list for this instance only (e.g. "sm,self", "tcp"); ofi: the provider name (e.g.
  /// "shm", "tcp"), in place of PLEXUS_OFI_PROVIDER.
  std::string option;
};

/// Creates the transport a spec names: "NAME" or "NAME:OPTION" ("ucx", "ucx:tcp", "ofi:shm"),
/// the option overriding `context.option`. InvalidArgument for an unknown name, Unimplemented
/// for a known one this build lacks (with the option that enables it).
StatusOr<std::unique_ptr<Transport>> createTransport(const std::string& spec,
                                                     TransportContext context);
/// The NAME part of a transport spec.
std::string transportSpecName(const std::string& spec);
/// Names of the transports compiled into this build, in order of preference.
std::vector<std::string> availableTransports();

}  // namespace plexus
