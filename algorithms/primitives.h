// Primitives shared by the algorithms, built on CollectiveContext's public methods: the
// near-equal block split of a buffer, and a batch of transfers that are all posted before any
// is waited for (receives first), which is what makes exchanges between peers deadlock-free.
#pragma once

#include <cstddef>
#include <cstdint>

#include "algorithms/algorithm.h"
#include "algorithms/context.h"
#include "algorithms/shm_mailbox.h"

namespace plexus {

/// `count` elements cut into `parts` blocks whose sizes differ by at most one (any count works,
/// including count < parts, which leaves some blocks empty).
class BlockSplit {
 public:
  BlockSplit(size_t count, int parts) : count_(count), parts_(static_cast<size_t>(parts)) {}
  /// First element of block `i`.
  size_t start(size_t i) const {
    return i * (count_ / parts_) + (i < count_ % parts_ ? i : count_ % parts_);
  }
  /// Elements of block `i`.
  size_t size(size_t i) const { return count_ / parts_ + (i < count_ % parts_ ? 1 : 0); }
  /// Elements of blocks [first, first + n).
  size_t span(size_t first, size_t n) const { return start(first + n) - start(first); }

 private:
  size_t count_;
  size_t parts_;
};

/// One send or receive of a batch. Zero bytes or a negative peer: nothing is transferred
/// (both ends of a link compute the same lengths, so both skip it).
struct Transfer {
  int peer = -1;
  bool isSend = false;
  void* buffer = nullptr;
  size_t bytes = 0;
  uint64_t tag = 0;
};

/// Posts every receive of `ops`, then every send, then waits for all. A receive must deliver
/// exactly its `bytes` (a mismatch means the ranks disagree on counts). `reqs` holds one
/// request per op. On failure, cancels what is still in flight before returning.
Status transferAll(CollectiveContext& ctx, const Transfer* ops, TransferRequest* reqs, size_t n);

/// A batch like transferAll's whose receives are handed to `use(i, offset, data, length)` (i: the
/// op's index; `length` of its bytes from `offset`, valid during the call), in the order of
/// `ops`. A message the communicator's mailboxes carry (shm_mailbox.h: a one-node communicator,
/// and short enough) goes through them, both ends deciding by its length alone: its receive is
/// used straight from the sender's ring, a fragment at a time as it fills, and the op's buffer
/// is not written. The others go through the transport into their buffers (posted first,
/// receives before sends) and are used whole. Every send is done (its buffer free to write)
/// before the first `use`. Receives from one peer must come in the order the peer sends them.
/// `reqs` holds one request per op; on failure what is still in flight is cancelled. Zero-byte
/// receives are not used.
template <typename Use>
Status exchange(CollectiveContext& ctx, const Transfer* ops, TransferRequest* reqs, size_t n,
                Use&& use);

/// Sends `sendBytes` to `to` while receiving `recvBytes` from `from`, both with `tag`.
Status sendRecv(CollectiveContext& ctx, int to, const void* sendBuf, size_t sendBytes, int from,
                void* recvBuf, size_t recvBytes, uint64_t tag);

/// OK for host memory; otherwise Unimplemented naming `algorithm` (no CUDA path yet).
Status requireHostMemory(const CollectiveRequest& request, const char* algorithm);

/// Copies `bytes` from `src` to `dst` unless they are the same buffer.
void copyUnlessSame(void* dst, const void* src, size_t bytes);

namespace detail {
// exchange()'s parts that do not depend on `use`.
bool boxed(const CollectiveContext& ctx, const Transfer& op);
Status postUnboxed(CollectiveContext& ctx, const Transfer* ops, TransferRequest* reqs, size_t n,
                   size_t* posted);
Status sendBoxed(CollectiveContext& ctx, const Transfer* ops, size_t n);
Status receiveUnboxed(CollectiveContext& ctx, const Transfer& op, TransferRequest& req);
Status finishSends(CollectiveContext& ctx, const Transfer* ops, TransferRequest* reqs, size_t n);
}  // namespace detail

template <typename Use>
Status exchange(CollectiveContext& ctx, const Transfer* ops, TransferRequest* reqs, size_t n,
                Use&& use) {
  size_t posted = 0;
  Status s = detail::postUnboxed(ctx, ops, reqs, n, &posted);
  if (s.ok()) s = detail::sendBoxed(ctx, ops, n);
  if (s.ok()) s = detail::finishSends(ctx, ops, reqs, n);
  for (size_t i = 0; i < n && s.ok(); ++i) {
    const Transfer& op = ops[i];
    if (op.isSend || op.peer < 0 || op.bytes == 0) continue;
    if (detail::boxed(ctx, op)) {
      s = ctx.mailboxes()->receive(
          ctx, op.peer, op.bytes, op.tag,
          [&](size_t offset, const uint8_t* data, size_t bytes) { use(i, offset, data, bytes); });
    } else {
      s = detail::receiveUnboxed(ctx, op, reqs[i]);
      if (s.ok()) use(i, size_t{0}, static_cast<const uint8_t*>(op.buffer), op.bytes);
    }
  }
  if (!s.ok() && posted > 0) ctx.cancelAll(reqs, n);
  return s;
}

}  // namespace plexus
