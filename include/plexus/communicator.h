// Communicator: a group of ranks that run collectives together.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "plexus/export.h"
#include "plexus/options.h"
#include "plexus/status.h"
#include "plexus/types.h"
#include "plexus/work.h"

namespace plexus {

namespace internal {
class CommunicatorImpl;
}

/// An opaque 128-byte token that lets ranks find each other without a launcher, as NCCL's
/// ncclUniqueId does: one process generates it, the application distributes it (MPI_Bcast, a
/// file, ...), and every rank passes it to Communicator::create. It holds the rendezvous
/// address and a random per-job secret: treat it as a credential.
struct PLEXUS_API UniqueId {
  static constexpr size_t kBytes = 128;
  std::array<uint8_t, kBytes> bytes{};

  /// Starts a rendezvous store in this process, listening on `bindAddress` (an IPv4 address;
  /// PLEXUS_BIND_ADDR or loopback when empty) and returns the id that reaches it. The store
  /// lives until the process exits or the rank-0 communicator created from this id is
  /// destroyed.
  static StatusOr<UniqueId> generate(const std::string& bindAddress = "");
  /// Hex text form (256 characters), for environment variables and files.
  std::string toHex() const;
  /// Parses toHex()'s output; InvalidArgument for anything else.
  static StatusOr<UniqueId> fromHex(const std::string& hex);
};

/// A group of `size()` ranks. Collectives are issued in the same order on every rank; each
/// runs on the communicator's progress engine. Blocking calls return when this rank's part is
/// done; *Async calls return a Work handle at once. Calls from several threads on one
/// communicator are serialized in the order they are issued. Destroying a communicator with
/// operations in flight waits for them.
class PLEXUS_API Communicator {
 public:
  /// Joins the job described by the launcher's environment: torchrun (RANK, WORLD_SIZE,
  /// MASTER_ADDR, MASTER_PORT), plexusrun (the same), Open MPI (OMPI_COMM_WORLD_*), or Slurm
  /// (SLURM_PROCID, SLURM_NTASKS). Collective across the job.
  static StatusOr<std::unique_ptr<Communicator>> createFromEnv(const CommOptions& options = {});
  /// Joins the job identified by `id` as `rank` of `size`. Collective across the job.
  static StatusOr<std::unique_ptr<Communicator>> create(const UniqueId& id, int rank, int size,
                                                        const CommOptions& options = {});
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  /// This process's rank, in [0, size()).
  int rank() const;
  /// Number of ranks.
  int size() const;
  /// Name of the transport the links use, e.g. "ucx"; "ucx+ofi" when links inside a node and
  /// between nodes use different ones (PLEXUS_TRANSPORT_INTRA / PLEXUS_TRANSPORT_INTER).
  const std::string& transportName() const;
  /// Number of nodes the ranks run on (hosts, or the emulated nodes PLEXUS_NODE_ID names).
  int numNodes() const;
  /// This rank's index among the ranks of its node, in [0, localSize()).
  int localRank() const;
  /// Number of ranks on this rank's node.
  int localSize() const;

  /// Makes pending and future operations of this communicator return Aborted, promptly; safe
  /// from any thread, e.g. a watchdog. The peers are not told: theirs fail by their own timeout
  /// or peer-failure detection. Destroying the communicator afterwards releases everything
  /// without waiting for the peers.
  void abort();
  /// The first error an operation of this communicator hit while running — a failed peer, a
  /// timeout, an abort — or OK while none has (like ncclCommGetAsyncError). Argument errors,
  /// returned before anything ran, do not count.
  Status asyncError() const;

  /// Element-wise reduction of `count` elements of `type` from every rank's `sendbuf` into every
  /// rank's `recvbuf`. In-place when sendbuf == recvbuf. Buffers must not otherwise overlap.
  Status allReduce(const void* sendbuf, void* recvbuf, size_t count, DataType type, ReduceOp op,
                   const CallOptions& call = {});
  /// Asynchronous allReduce; the buffers must stay valid until the Work has finished.
  StatusOr<Work> allReduceAsync(const void* sendbuf, void* recvbuf, size_t count, DataType type,
                                ReduceOp op, const CallOptions& call = {});
  /// Copies `count` elements of `sendbuf` on rank `root` into `recvbuf` on every rank
  /// (sendbuf is read on the root only; in place when it equals recvbuf there).
  Status broadcast(const void* sendbuf, void* recvbuf, size_t count, DataType type, int root,
                   const CallOptions& call = {});
  /// Asynchronous broadcast.
  StatusOr<Work> broadcastAsync(const void* sendbuf, void* recvbuf, size_t count, DataType type,
                                int root, const CallOptions& call = {});
  /// Element-wise reduction of every rank's `sendbuf` into `recvbuf` on rank `root` only
  /// (recvbuf is ignored elsewhere and may be null there).
  Status reduce(const void* sendbuf, void* recvbuf, size_t count, DataType type, ReduceOp op,
                int root, const CallOptions& call = {});
  /// Asynchronous reduce.
  StatusOr<Work> reduceAsync(const void* sendbuf, void* recvbuf, size_t count, DataType type,
                             ReduceOp op, int root, const CallOptions& call = {});
  /// Gathers `sendcount` elements from every rank into every rank's `recvbuf`, which holds
  /// size() × sendcount elements, rank r's at offset r × sendcount. In place when sendbuf is
  /// recvbuf + rank() × sendcount.
  Status allGather(const void* sendbuf, void* recvbuf, size_t sendcount, DataType type,
                   const CallOptions& call = {});
  /// Asynchronous allGather.
  StatusOr<Work> allGatherAsync(const void* sendbuf, void* recvbuf, size_t sendcount, DataType type,
                                const CallOptions& call = {});
  /// Reduces every rank's `sendbuf` (size() × recvcount elements) and leaves block r of the
  /// result (recvcount elements) in rank r's `recvbuf`. In place when recvbuf is
  /// sendbuf + rank() × recvcount.
  Status reduceScatter(const void* sendbuf, void* recvbuf, size_t recvcount, DataType type,
                       ReduceOp op, const CallOptions& call = {});
  /// Asynchronous reduceScatter.
  StatusOr<Work> reduceScatterAsync(const void* sendbuf, void* recvbuf, size_t recvcount,
                                    DataType type, ReduceOp op, const CallOptions& call = {});
  /// Sends block p of `sendbuf` (`count` elements at offset p × count) to rank p, which stores
  /// it as block rank() of its `recvbuf`. Both buffers hold size() × count elements; in place
  /// when they are equal.
  Status allToAll(const void* sendbuf, void* recvbuf, size_t count, DataType type,
                  const CallOptions& call = {});
  /// Asynchronous allToAll.
  StatusOr<Work> allToAllAsync(const void* sendbuf, void* recvbuf, size_t count, DataType type,
                               const CallOptions& call = {});

  /// Sends `count` elements to rank `peer`. Inside a group (groupStart/groupEnd) it is queued
  /// and returns at once; outside, it runs alone and blocks until sent. A send to self must be
  /// matched by a recv from self in the same group.
  Status send(const void* buf, size_t count, DataType type, int peer, const CallOptions& call = {});
  /// Receives `count` elements from rank `peer`; queued inside a group as for send. The
  /// message must have exactly this size.
  Status recv(void* buf, size_t count, DataType type, int peer, const CallOptions& call = {});
  /// Opens a group of sends and receives (NCCL's ncclGroupStart). Groups nest; the calling
  /// thread must close them.
  Status groupStart();
  /// Closes the group; the outermost groupEnd posts every queued receive and send before it
  /// waits for any, so no pattern of sends and receives between ranks can deadlock.
  Status groupEnd();
  /// As groupEnd, returning at once; the buffers must stay valid until the Work finishes.
  StatusOr<Work> groupEndAsync();

  /// Returns once every rank has entered the barrier.
  Status barrier();
  /// Asynchronous barrier.
  StatusOr<Work> barrierAsync();

  /// Collective: the ranks passing the same `color` form a new communicator, ranked by (key,
  /// rank()). A negative color (MPI_UNDEFINED) joins none: the result is null. The new
  /// communicator runs collectives independently of (and concurrently with) this one. Every
  /// rank must call split the same number of times; a rank that does not makes the others
  /// fail with DeadlineExceeded after the timeout.
  StatusOr<std::unique_ptr<Communicator>> split(int color, int key);

  explicit Communicator(std::unique_ptr<internal::CommunicatorImpl> impl);
  /// The implementation, for Plexus's own tools and extensions; not a stable interface.
  internal::CommunicatorImpl* impl() { return impl_.get(); }

 private:
  std::unique_ptr<internal::CommunicatorImpl> impl_;
};

}  // namespace plexus
