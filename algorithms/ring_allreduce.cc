// Ring all-reduce: reduce-scatter, then all-gather, around the ring 0 → 1 → … → n−1 → 0.
//
// The buffer of `count` elements is cut into n segments, one per rank (sizes differ by at most
// one element, so any count works). In reduce-scatter step s (0 ≤ s < n−1) rank r sends segment
// (r−s) mod n to its right neighbour and receives segment (r−s−1) mod n from its left one,
// combining it with its own contribution; after n−1 steps rank r holds the full reduction of
// segment (r+1) mod n. All-gather steps n−1 … 2n−3 pass the finished segments on around the
// ring, received straight into the output buffer. Each rank sends and receives 2(n−1)/n · S
// bytes, the bandwidth optimum; the latency term is 2(n−1)·α, which is why small messages
// prefer other algorithms.
//
// Pipelining. Each segment is further cut into m pieces of about PLEXUS_CHUNK_BYTES. Piece c of
// every segment forms a "chain" that walks the 2(n−1) steps on its own: as soon as piece c of
// step s has arrived and been reduced it is sent on as step s+1, while other chains are still
// in flight. So reduction of one piece overlaps the transfer of the next, and a step never
// waits for a whole segment. At most kMaxChains chains run at once.
//
// Where reduce-scatter pieces land. Out of place, straight in the output at the piece's own
// place, then out = own ⊕ out there (nothing else reads or writes that range of the output
// until the piece's next step): the reduction reads lines the transfer has just written, and
// no staging buffer competes for the cache (2 ranks, 4 MiB: ~11% faster than staging). In
// place the output still holds this rank's input, so pieces arrive in a staging slot per chain
// and out = own ⊕ staging. All-gather pieces always go straight to the output.
//
// One piece per segment (segments up to the chunk): no chains, the steps run one after another as
// exchanges (primitives.h), so that on a one-node communicator a segment of up to 64 KiB goes
// through the shared region's mailboxes (shm_mailbox.h) and is reduced straight from the
// sender's ring as it fills (4 ranks on 2 cores, 256 KiB: 175-177 -> 79 us).
//
// Memory: in place, staging of kMaxChains pieces, reused across calls; no per-call allocation.
#include <algorithm>
#include <array>
#include <cstring>

#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"
#include "algorithms/context.h"
#include "algorithms/primitives.h"
#include "src/check.h"
#include "src/reduce_cpu.h"

namespace plexus {
namespace {

constexpr int kMaxChains = 8;

class RingAllReduce final : public Algorithm {
 public:
  const char* name() const override { return "ring"; }
  const char* description() const override {
    return "pipelined ring (reduce-scatter + all-gather): bandwidth-optimal for large messages";
  }
  CollectiveKind collective() const override { return CollectiveKind::kAllReduce; }
  Status supports(const CollectiveRequest& request, int worldSize) const override;
  Status run(const CollectiveRequest& request, CollectiveContext& ctx) override;
};

// The ring's geometry for one call: where each segment and piece lies.
class RingLayout {
 public:
  RingLayout(size_t count, int n, size_t chunkElems) : count_(count), n_(n) {
    size_t maxSeg = (count + n - 1) / n;
    pieces_ = std::max<size_t>(1, (maxSeg + chunkElems - 1) / chunkElems);
    maxPiece_ = (maxSeg + pieces_ - 1) / pieces_;
  }
  size_t pieces() const { return pieces_; }
  // The longest piece of any segment: at most the chunk, and no longer than the segment.
  size_t maxPieceCount() const { return maxPiece_; }
  size_t segStart(int seg) const {
    size_t base = count_ / n_, extra = count_ % n_;
    return seg * base + std::min<size_t>(seg, extra);
  }
  size_t segCount(int seg) const {
    return count_ / n_ + (static_cast<size_t>(seg) < count_ % n_ ? 1 : 0);
  }
  // Piece c of segment `seg`: [begin, end) in elements of the whole buffer.
  size_t pieceBegin(int seg, size_t c) const { return segStart(seg) + segCount(seg) * c / pieces_; }
  size_t pieceCount(int seg, size_t c) const {
    return segCount(seg) * (c + 1) / pieces_ - segCount(seg) * c / pieces_;
  }

 private:
  size_t count_;
  int n_;
  size_t pieces_;
  size_t maxPiece_;
};

// One chain in flight: its piece index, the step it is on, and that step's two transfers.
struct Chain {
  size_t piece = 0;
  int step = 0;
  int slot = 0;
  std::array<TransferRequest, 2> reqs;  // [0] receive from the left, [1] send to the right
};

Status RingAllReduce::supports(const CollectiveRequest& request, int worldSize) const {
  if (request.memory != MemoryKind::kHost) {
    return unimplemented("ring all-reduce: only host memory in this build");
  }
  if (worldSize > 32768) return unimplemented("ring all-reduce: more than 32768 ranks");
  return okStatus();
}

// A ring whose segments are one piece each: the steps one after another, each an exchange()
// (so a piece the node's mailboxes carry is reduced straight from its box). Reduce-scatter
// pieces arrive in `staging` in place (null out of place: in the output).
Status oneChain(const CollectiveRequest& req, CollectiveContext& ctx, const RingLayout& layout,
                uint8_t* staging) {
  const int n = ctx.size(), r = ctx.rank();
  const size_t elem = dataTypeSize(req.type);
  auto* out = static_cast<uint8_t*>(req.recv);
  const auto* own = static_cast<const uint8_t*>(req.send);
  const int right = (r + 1) % n, left = (r + n - 1) % n;
  auto mod = [n](int x) { return ((x % n) + n) % n; };
  for (int s = 0; s < 2 * (n - 1); ++s) {
    const int sendSeg = mod(r - s), recvSeg = mod(r - s - 1);
    const size_t cnt = layout.segCount(recvSeg), at = layout.segStart(recvSeg) * elem;
    const uint64_t tag = ctx.tag(static_cast<uint32_t>(s), 0);
    const bool reduces = s < n - 1;
    // Step 0 sends this rank's own contribution; later steps forward what arrived in `out`.
    const Transfer ops[2] = {
        {left, false, reduces && staging != nullptr ? staging : out + at, cnt * elem, tag},
        {right, true, const_cast<uint8_t*>(s == 0 ? own : out) + layout.segStart(sendSeg) * elem,
         layout.segCount(sendSeg) * elem, tag}};
    TransferRequest reqs[2];
    PLEXUS_TRY(
        exchange(ctx, ops, reqs, 2, [&](size_t, size_t off, const uint8_t* theirs, size_t len) {
          if (!reduces) {
            copyUnlessSame(out + at + off, theirs, len);
            return;
          }
          reduceCpu(req.type, req.op, out + at + off, own + at + off, theirs, len / elem);
          // The last reduce-scatter step leaves this segment fully reduced: average it before it
          // is passed on, so that every rank ends with identical values.
          if (s == n - 2 && req.op == ReduceOp::kAvg) {
            divideInPlace(req.type, out + at + off, len / elem, n);
          }
        }));
  }
  return okStatus();
}

Status RingAllReduce::run(const CollectiveRequest& req, CollectiveContext& ctx) {
  const int n = ctx.size(), r = ctx.rank();
  const size_t elem = dataTypeSize(req.type);
  auto* out = static_cast<uint8_t*>(req.recv);
  const auto* own = static_cast<const uint8_t*>(req.send);
  if (n == 1 || req.count == 0) {
    if (req.count != 0 && own != out) std::memcpy(out, own, req.bytes());
    return okStatus();
  }
  const size_t chunkElems = std::max<size_t>(1, ctx.chunkBytes() / elem);
  const RingLayout layout(req.count, n, chunkElems);
  const int right = (r + 1) % n, left = (r + n - 1) % n;
  const int steps = 2 * (n - 1);
  const int chains = static_cast<int>(std::min<size_t>(kMaxChains, layout.pieces()));
  const bool direct = own != out;  // out of place: pieces land in the output (see above)
  // A staging slot holds the longest piece, not a whole chunk: with a chunk far above the
  // message (PLEXUS_CHUNK_BYTES=1G, or a transport's large default) the slot stays small.
  const size_t slotBytes = layout.maxPieceCount() * elem;
  auto* staging = direct
                      ? nullptr
                      : static_cast<uint8_t*>(ctx.scratch(static_cast<size_t>(chains) * slotBytes));
  auto mod = [n](int x) { return ((x % n) + n) % n; };
  if (layout.pieces() == 1) {
    return oneChain(req, ctx, layout, direct ? nullptr : staging);
  }

  // Posts chain `ch`'s transfers for its current step. Zero-length pieces (count < n) are
  // skipped by both ends, which compute the same lengths.
  auto post = [&](Chain& ch) -> Status {
    const int s = ch.step;
    const int sendSeg = mod(r - s), recvSeg = mod(r - s - 1);
    const size_t recvCount = layout.pieceCount(recvSeg, ch.piece);
    const size_t sendCount = layout.pieceCount(sendSeg, ch.piece);
    uint64_t tag = ctx.tag(static_cast<uint32_t>(s), static_cast<uint32_t>(ch.piece));
    ch.reqs[0].reset();
    ch.reqs[1].reset();
    if (recvCount == 0) {
      ch.reqs[0].done = true;
    } else {
      uint8_t* dst = s < n - 1 && !direct ? staging + ch.slot * slotBytes
                                          : out + layout.pieceBegin(recvSeg, ch.piece) * elem;
      PLEXUS_TRY(ctx.peer(left).irecv(dst, recvCount * elem, tag, &ch.reqs[0]));
    }
    if (sendCount == 0) {
      ch.reqs[1].done = true;
    } else {
      // Step 0 sends this rank's own contribution; later steps forward what arrived in `out`.
      const uint8_t* src = (s == 0 ? own : out) + layout.pieceBegin(sendSeg, ch.piece) * elem;
      PLEXUS_TRY(ctx.peer(right).isend(src, sendCount * elem, tag, &ch.reqs[1]));
    }
    return okStatus();
  };

  // Finishes chain `ch`'s current step once both transfers are done: reduce what arrived.
  auto complete = [&](Chain& ch) -> Status {
    const int s = ch.step;
    const int recvSeg = mod(r - s - 1);
    const size_t cnt = layout.pieceCount(recvSeg, ch.piece);
    PLEXUS_TRY(ctx.check(ch.reqs[0], left, "receiving from", cnt == 0 ? SIZE_MAX : cnt * elem));
    PLEXUS_TRY(ctx.check(ch.reqs[1], right, "sending to"));
    if (s < n - 1 && cnt != 0) {
      const size_t at = layout.pieceBegin(recvSeg, ch.piece) * elem;
      const uint8_t* incoming = direct ? out + at : staging + ch.slot * slotBytes;
      reduceCpu(req.type, req.op, out + at, own + at, incoming, cnt);
      // The last reduce-scatter step leaves this piece fully reduced: average it before it is
      // passed on, so that every rank ends with identical values.
      if (s == n - 2 && req.op == ReduceOp::kAvg) divideInPlace(req.type, out + at, cnt, n);
    }
    return okStatus();
  };

  // Chains live in fixed slots (the transport holds pointers to their requests); slot i owns
  // staging slot i.
  std::array<Chain, kMaxChains> slots;
  std::array<bool, kMaxChains> busy{};
  int live = 0;
  size_t nextPiece = 0;
  auto fail = [&](Status s) {
    std::array<TransferRequest*, 2 * kMaxChains> inFlight;
    size_t k = 0;
    for (int i = 0; i < chains; ++i) {
      if (!busy[i]) continue;
      inFlight[k++] = &slots[i].reqs[0];
      inFlight[k++] = &slots[i].reqs[1];
    }
    ctx.cancelAll(inFlight.data(), k);
    return s;
  };
  while (live > 0 || nextPiece < layout.pieces()) {
    bool advanced = false;
    int awaited = -1;  // whom the first chain still in flight waits for
    for (int i = 0; i < chains; ++i) {
      Chain& ch = slots[i];
      if (!busy[i]) {
        if (nextPiece == layout.pieces()) continue;
        ch.piece = nextPiece++;
        ch.step = 0;
        ch.slot = i;
        busy[i] = true;
        ++live;
        Status s = post(ch);
        if (!s.ok()) return fail(s);
        continue;
      }
      if (!ch.reqs[0].done || !ch.reqs[1].done) {
        if (awaited < 0) awaited = ch.reqs[0].done ? right : left;
        continue;
      }
      advanced = true;
      Status s = complete(ch);
      if (!s.ok()) return fail(s);
      if (++ch.step < steps) {
        s = post(ch);
        if (!s.ok()) return fail(s);
      } else {
        busy[i] = false;
        --live;
      }
    }
    if (!advanced) {
      Status s = ctx.poll(awaited);
      if (!s.ok()) return fail(s);
    }
  }
  return okStatus();
}

}  // namespace

std::unique_ptr<Algorithm> makeRingAllReduce() { return std::make_unique<RingAllReduce>(); }

}  // namespace plexus
