#include "algorithms/primitives.h"

#include <cstring>

namespace plexus {

Status transferAll(CollectiveContext& ctx, const Transfer* ops, TransferRequest* reqs, size_t n) {
  // Receives are posted before sends so that a peer's eager message finds its buffer waiting.
  size_t posted = 0;
  auto post = [&](bool sends) -> Status {
    for (size_t i = 0; i < n; ++i) {
      const Transfer& op = ops[i];
      if (op.isSend != sends) continue;
      reqs[i].reset();
      if (op.peer < 0 || op.bytes == 0) {
        reqs[i].done = true;
        continue;
      }
      Status s = op.isSend ? ctx.peer(op.peer).isend(op.buffer, op.bytes, op.tag, &reqs[i])
                           : ctx.peer(op.peer).irecv(op.buffer, op.bytes, op.tag, &reqs[i]);
      if (!s.ok()) return s;
      ++posted;
    }
    return okStatus();
  };
  Status s = post(false);
  if (s.ok()) s = post(true);
  for (size_t pending = 0; s.ok();) {
    while (pending < n && reqs[pending].done) ++pending;
    if (pending == n) break;
    s = ctx.poll(ops[pending].peer);
  }
  if (!s.ok()) {
    if (posted > 0) ctx.cancelAll(reqs, n);
    return s;
  }
  for (size_t i = 0; i < n; ++i) {
    const Transfer& op = ops[i];
    if (op.isSend) {
      PLEXUS_TRY(ctx.check(reqs[i], op.peer, "sending to"));
    } else {
      PLEXUS_TRY(
          ctx.check(reqs[i], op.peer, "receiving from", op.bytes == 0 ? SIZE_MAX : op.bytes));
    }
  }
  return okStatus();
}

namespace detail {

bool boxed(const CollectiveContext& ctx, const Transfer& op) {
  return ctx.mailboxes() != nullptr && op.peer >= 0 && ctx.mailboxes()->carries(op.bytes);
}

Status postUnboxed(CollectiveContext& ctx, const Transfer* ops, TransferRequest* reqs, size_t n,
                   size_t* posted) {
  for (size_t i = 0; i < n; ++i) reqs[i].reset();
  for (int sends = 0; sends < 2; ++sends) {
    for (size_t i = 0; i < n; ++i) {
      const Transfer& op = ops[i];
      if (op.isSend != (sends == 1)) continue;
      if (op.peer < 0 || op.bytes == 0 || boxed(ctx, op)) {
        reqs[i].done = true;
        continue;
      }
      PLEXUS_TRY(op.isSend ? ctx.peer(op.peer).isend(op.buffer, op.bytes, op.tag, &reqs[i])
                           : ctx.peer(op.peer).irecv(op.buffer, op.bytes, op.tag, &reqs[i]));
      ++*posted;
    }
  }
  return okStatus();
}

Status sendBoxed(CollectiveContext& ctx, const Transfer* ops, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const Transfer& op = ops[i];
    if (!op.isSend || op.bytes == 0 || !boxed(ctx, op)) continue;
    PLEXUS_TRY(ctx.mailboxes()->send(ctx, op.peer, op.buffer, op.bytes, op.tag));
  }
  return okStatus();
}

Status receiveUnboxed(CollectiveContext& ctx, const Transfer& op, TransferRequest& req) {
  while (!req.done) PLEXUS_TRY(ctx.poll(op.peer));
  return ctx.check(req, op.peer, "receiving from", op.bytes);
}

Status finishSends(CollectiveContext& ctx, const Transfer* ops, TransferRequest* reqs, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!ops[i].isSend) continue;
    while (!reqs[i].done) PLEXUS_TRY(ctx.poll(ops[i].peer));
    PLEXUS_TRY(ctx.check(reqs[i], ops[i].peer, "sending to"));
  }
  return okStatus();
}

}  // namespace detail

Status sendRecv(CollectiveContext& ctx, int to, const void* sendBuf, size_t sendBytes, int from,
                void* recvBuf, size_t recvBytes, uint64_t tag) {
  const Transfer ops[2] = {{from, false, recvBuf, recvBytes, tag},
                           {to, true, const_cast<void*>(sendBuf), sendBytes, tag}};
  TransferRequest reqs[2];
  return transferAll(ctx, ops, reqs, 2);
}

Status requireHostMemory(const CollectiveRequest& request, const char* algorithm) {
  if (request.memory == MemoryKind::kHost) return okStatus();
  return unimplemented(std::string(algorithm) + ": only host memory in this build");
}

void copyUnlessSame(void* dst, const void* src, size_t bytes) {
  if (dst != src && bytes != 0) std::memcpy(dst, src, bytes);
}

}  // namespace plexus
