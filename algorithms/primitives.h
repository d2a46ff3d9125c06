// Primitives shared by the algorithms, built on CollectiveContext's public methods: the
// near-equal block split of a buffer, and a batch of transfers that are all posted before any
// is waited for (receives first), which is what makes exchanges between peers deadlock-free.
#pragma once

#include <cstddef>
#include <cstdint>

#include "algorithms/algorithm.h"
#include "algorithms/context.h"

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

/// Sends `sendBytes` to `to` while receiving `recvBytes` from `from`, both with `tag`.
Status sendRecv(CollectiveContext& ctx, int to, const void* sendBuf, size_t sendBytes, int from,
                void* recvBuf, size_t recvBytes, uint64_t tag);

/// OK for host memory; otherwise Unimplemented naming `algorithm` (no CUDA path yet).
Status requireHostMemory(const CollectiveRequest& request, const char* algorithm);

/// Copies `bytes` from `src` to `dst` unless they are the same buffer.
void copyUnlessSame(void* dst, const void* src, size_t bytes);

}  // namespace plexus
