#include "algorithms/tree_pipeline.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "src/check.h"
#include "src/reduce_cpu.h"

namespace plexus {
namespace {

// Pieces in flight at once per rank; each owns a staging slot of (children + 1) pieces.
constexpr int kMaxChains = 8;

// A piece's walk through its tree.
enum Stage : int { kRecvUp, kSendUp, kRecvDown, kSendDown, kDone };

struct Chain {
  int tree = 0;
  size_t piece = 0;
  size_t begin = 0, count = 0;  // elements
  int stage = kRecvUp;
  int numReqs = 0;
  // Room for the most transfers a stage posts (one per child, or one to the parent), in the
  // context's reused requests. An array of kMaxTreeChildren here put 8 x 32 requests (a Status
  // with a string each) on the stack of every call, built and destroyed even for one chain of
  // one transfer: ~0.8 us a call. 2 ranks, 8 B, `plexus-tune --check -a ring,tree`, three
  // interleaved runs, us before -> after: broadcast 1.03-1.04 -> 0.24-0.26, reduce 1.03-1.06 ->
  // 0.24-0.40, tree all-reduce 1.51-1.55 -> 0.74-0.77 (the ring 0.65-0.67); 4 ranks on 2 cores,
  // broadcast 2.36-2.55 -> 0.65-0.98, reduce 2.30-2.57 -> 0.71-0.97.
  TransferRequest* reqs = nullptr;
};

// NCCL's in-order binary tree over ranks 0..n−1 (see doubleBinaryTree): a rank's lowest set bit
// gives its level; the root 0 has the single child 2^⌊log2(n−1)⌋.
TreeLinks binaryTree(int rank, int n) {
  TreeLinks t;
  int bit = 1;
  while (bit < n && (bit & rank) == 0) bit <<= 1;
  if (rank == 0) {
    if (n > 1) t.addChild(bit >> 1);
    return t;
  }
  int up = (rank ^ bit) | (bit << 1);
  if (up >= n) up = rank ^ bit;
  t.parent = up;
  const int low = bit >> 1;
  if (low > 0) t.addChild(rank - low);
  int lb = low;
  while (lb > 0 && rank + lb >= n) lb >>= 1;
  if (lb > 0) t.addChild(rank + lb);
  return t;
}

}  // namespace

TreeLinks binomialTree(int rank, int size, int root) {
  TreeLinks t;
  const int vr = (rank - root + size) % size;
  int mask = 1;
  while (mask < size && (vr & mask) == 0) mask <<= 1;
  if (vr != 0) t.parent = (vr - mask + root) % size;
  // Children vr + m for every m below vr's lowest set bit, largest subtree first.
  for (int m = mask >> 1; m > 0; m >>= 1) {
    if (vr + m < size) t.addChild((vr + m + root) % size);
  }
  return t;
}

TreeLinks chainTree(int rank, int size, int root) {
  TreeLinks t;
  const int vr = (rank - root + size) % size;
  if (vr != 0) t.parent = (rank - 1 + size) % size;
  if (vr + 1 < size) t.addChild((rank + 1) % size);
  return t;
}

TreeLinks doubleBinaryTree(int rank, int size, int which) {
  if (which == 0) return binaryTree(rank, size);
  // Odd n: shift by one; even n: mirror. Either way leaves of tree 0 are interior in tree 1.
  auto to = [&](int r) { return size % 2 == 1 ? (r - 1 + size) % size : size - 1 - r; };
  auto from = [&](int r) { return r < 0 ? -1 : (size % 2 == 1 ? (r + 1) % size : size - 1 - r); };
  TreeLinks base = binaryTree(to(rank), size), t;
  t.parent = from(base.parent);
  for (int i = 0; i < base.numChildren; ++i) t.addChild(from(base.children[i]));
  return t;
}

size_t treeChunkElems(const CollectiveContext& ctx, DataType type) {
  constexpr size_t kMinChunkBytes = 8 * 1024;
  return std::max(kMinChunkBytes, ctx.chunkBytes() / 4) / dataTypeSize(type);
}

TreeCall treeCallFor(const CollectiveRequest& request, const CollectiveContext& ctx, TreeFlow flow,
                     uint8_t* out) {
  TreeCall call;
  call.flow = flow;
  call.type = request.type;
  call.op = request.op;
  call.divisor = ctx.size();
  call.own = static_cast<const uint8_t*>(request.send);
  call.out = out;
  call.chunkElems = treeChunkElems(ctx, request.type);
  return call;
}

Status runTreePipeline(CollectiveContext& ctx, const TreeCall& call, const TreeShare* trees,
                       int numTrees) {
  PLEXUS_CHECK(numTrees >= 1 && numTrees <= 2);
  const size_t elem = dataTypeSize(call.type);
  const bool up = call.flow != TreeFlow::kDown, down = call.flow != TreeFlow::kUp;
  size_t longest = 0;
  int maxChildren = 0;
  for (int t = 0; t < numTrees; ++t) {
    longest = std::max(longest, trees[t].count);
    maxChildren = std::max(maxChildren, trees[t].links.numChildren);
  }
  const size_t pieces = std::max<size_t>(1, (longest + call.chunkElems - 1) / call.chunkElems);
  const size_t total = pieces * static_cast<size_t>(numTrees);
  const int chains = static_cast<int>(std::min<size_t>(kMaxChains, total));
  // Slot layout: maxChildren receive buffers, then one accumulator (reduce off-root), each as
  // long as the longest piece (not the chunk, which may be far above the message).
  const size_t pieceBytes = (longest + pieces - 1) / pieces * elem;
  const size_t slotBytes = (static_cast<size_t>(maxChildren) + 1) * pieceBytes;
  auto* staging = static_cast<uint8_t*>(ctx.scratch(static_cast<size_t>(chains) * slotBytes));

  std::array<Chain, kMaxChains> slots;
  std::array<bool, kMaxChains> busy{};
  const int reqsPerChain = std::max(1, maxChildren);
  TransferRequest* requests = ctx.requests(static_cast<size_t>(chains * reqsPerChain));
  for (int i = 0; i < chains; ++i) slots[i].reqs = requests + i * reqsPerChain;

  auto stagingOf = [&](int slot, int k) { return staging + slot * slotBytes + k * pieceBytes; };
  // Where this rank's partial sum of a piece lives on the way up.
  auto accOf = [&](const Chain& ch, int slot) -> uint8_t* {
    const TreeLinks& l = trees[ch.tree].links;
    if (l.numChildren == 0) return const_cast<uint8_t*>(call.own) + ch.begin * elem;
    if (call.out != nullptr) return call.out + ch.begin * elem;
    return stagingOf(slot, maxChildren);
  };

  // Posts the transfers of the chain's current stage; false when the stage has none.
  auto post = [&](Chain& ch, int slot) -> StatusOr<bool> {
    const TreeLinks& l = trees[ch.tree].links;
    const size_t bytes = ch.count * elem;
    const auto tag = ctx.tag(static_cast<uint32_t>(2 * ch.tree + (ch.stage >= kRecvDown ? 1 : 0)),
                             static_cast<uint32_t>(ch.piece));
    uint8_t* outPiece = call.out == nullptr ? nullptr : call.out + ch.begin * elem;
    ch.numReqs = 0;
    auto start = [&](bool isSend, int peer, void* buf) -> Status {
      TransferRequest& rq = ch.reqs[ch.numReqs];
      rq.reset();
      Status s = isSend ? ctx.peer(peer).isend(buf, bytes, tag, &rq)
                        : ctx.peer(peer).irecv(buf, bytes, tag, &rq);
      if (s.ok()) ++ch.numReqs;
      return s;
    };
    switch (ch.stage) {
      case kRecvUp:
        if (!up) return false;
        for (int k = 0; k < l.numChildren; ++k) {
          PLEXUS_TRY(start(false, l.children[k], stagingOf(slot, k)));
        }
        break;
      case kSendUp:
        if (!up || l.parent < 0) return false;
        PLEXUS_TRY(start(true, l.parent, accOf(ch, slot)));
        break;
      case kRecvDown:
        if (!down || l.parent < 0) return false;
        PLEXUS_TRY(start(false, l.parent, outPiece));
        break;
      case kSendDown: {
        if (!down) return false;
        // A broadcast root sends its input; everyone else forwards what it holds.
        const uint8_t* src = !up && l.parent < 0 ? call.own + ch.begin * elem : outPiece;
        if (!up && l.parent < 0) std::memmove(outPiece, src, outPiece == src ? 0 : bytes);
        for (int k = 0; k < l.numChildren; ++k) {
          PLEXUS_TRY(start(true, l.children[k], const_cast<uint8_t*>(src)));
        }
        break;
      }
      default:
        return false;
    }
    return ch.numReqs > 0;
  };

  // The rank at the other end of the chain's k-th transfer of its current stage.
  auto peerOf = [&](const Chain& ch, int k) {
    const TreeLinks& l = trees[ch.tree].links;
    return ch.stage == kRecvUp || ch.stage == kSendDown ? l.children[k] : l.parent;
  };

  // Finishes the chain's current stage once its transfers are done.
  auto complete = [&](Chain& ch, int slot) -> Status {
    const TreeLinks& l = trees[ch.tree].links;
    for (int k = 0; k < ch.numReqs; ++k) {
      const bool recv = ch.stage == kRecvUp || ch.stage == kRecvDown;
      const int peer = peerOf(ch, k);
      PLEXUS_TRY(ctx.check(ch.reqs[k], peer, recv ? "receiving from" : "sending to",
                           recv ? ch.count * elem : SIZE_MAX));
    }
    if (ch.stage == kRecvUp && up) {
      uint8_t* acc = accOf(ch, slot);
      const uint8_t* own = call.own + ch.begin * elem;
      for (int k = 0; k < l.numChildren; ++k) {
        reduceCpu(call.type, call.op, acc, k == 0 ? own : acc, stagingOf(slot, k), ch.count);
      }
      if (l.parent < 0) {  // the root holds the whole reduction of this piece
        uint8_t* outPiece = call.out + ch.begin * elem;
        if (acc != outPiece) std::memcpy(outPiece, acc, ch.count * elem);
        if (call.op == ReduceOp::kAvg) divideInPlace(call.type, outPiece, ch.count, call.divisor);
      }
    }
    return okStatus();
  };

  // Moves the chain to its next stage that has transfers (or to kDone).
  auto advance = [&](Chain& ch, int slot) -> Status {
    for (;;) {
      if (ch.stage == kDone) return okStatus();
      auto posted = ch.count == 0 ? StatusOr<bool>(false) : post(ch, slot);
      PLEXUS_TRY(posted.status());
      if (*posted) return okStatus();
      if (ch.count != 0) PLEXUS_TRY(complete(ch, slot));
      ++ch.stage;
    }
  };

  size_t next = 0;
  int live = 0;
  auto fail = [&](Status s) {
    // One cancellation for every chain's transfers, under one bound: a bound per chain made a
    // dead peer cost up to chains × the bound on top of the timeout.
    std::vector<TransferRequest*> inFlight;
    for (int i = 0; i < chains; ++i) {
      if (!busy[i]) continue;
      for (int k = 0; k < slots[i].numReqs; ++k) inFlight.push_back(&slots[i].reqs[k]);
    }
    ctx.cancelAll(inFlight.data(), inFlight.size());
    return s;
  };
  while (live > 0 || next < total) {
    bool moved = false;
    // Whom a chain still in flight waits for: with two trees, one on this rank's CPU if any
    // (poll() yields to it at once: the chain of the other tree may wait on a rank elsewhere
    // while this one's peer cannot run until this rank yields), else the first chain's. 4 ranks
    // on 2 cores (0, 2 | 1, 3), tree all-reduce, three interleaved runs, us: 8 B 12.8-13.6 ->
    // 12.1-13.1, 32 KiB 26.0-27.8 -> 23.0-25.2.
    int awaited = -1;
    bool awaitedHere = false;
    for (int i = 0; i < chains; ++i) {
      Chain& ch = slots[i];
      if (!busy[i]) {
        if (next == total) continue;
        ch.tree = static_cast<int>(next % numTrees);
        ch.piece = next / numTrees;
        const TreeShare& share = trees[ch.tree];
        ch.begin = share.begin + share.count * ch.piece / pieces;
        ch.count = share.begin + share.count * (ch.piece + 1) / pieces - ch.begin;
        ch.stage = kRecvUp;
        ch.numReqs = 0;
        ++next;
        busy[i] = true;
        ++live;
      } else {
        int pending = 0;
        while (pending < ch.numReqs && ch.reqs[pending].done) ++pending;
        if (pending < ch.numReqs) {
          const int peer = peerOf(ch, pending);
          if (!awaitedHere && (awaited < 0 || numTrees > 1)) {
            awaitedHere = ctx.peerSharesMyCpu(peer);
            if (awaited < 0 || awaitedHere) awaited = peer;
          }
          continue;
        }
        Status s = complete(ch, i);
        if (!s.ok()) return fail(s);
        ch.numReqs = 0;
        ++ch.stage;
      }
      moved = true;
      Status s = advance(ch, i);
      if (!s.ok()) return fail(s);
      if (ch.stage == kDone) {
        busy[i] = false;
        --live;
      }
    }
    if (!moved) {
      Status s = ctx.poll(awaited);
      if (!s.ok()) return fail(s);
    }
  }
  return okStatus();
}

}  // namespace plexus
