// Shared-memory all-reduce for the ranks of one node: no transport, no messages. Every rank
// copies its input into its own slot of a region all of them have mapped, raises a flag, waits
// for every rank's flag, and reduces all the slots, in rank order, into its output.
//
// Messages longer than a slot go through in pieces. The slots come in two halves used by
// alternate pieces, so a rank can fill piece k+1 while slow ranks still read piece k; before it
// refills a half (piece k+2) it waits until every rank has said it is done reading that half.
// Per piece, rank r: (1) wait for every rank's "done" to reach k−2; (2) copy the piece into
// slot[k mod 2][r] and publish k in its "filled" flag; (3) wait for every rank's "filled" to
// reach k; (4) out = slot_0 op slot_1 op … op slot_{n−1}; (5) publish k in its "done" flag.
// Flags sit one rank to a cache line (one writer each); a waiter spins, yields, then sleeps on
// the flag (futex) and the writer wakes it only when someone sleeps.
//
// With kSplitFromRanks or more ranks and messages of kSplitFromBytes or more, step (4) is split in
// two, as a reduce-scatter then an all-gather: rank r reduces only block r of the piece (in rank
// order) into its output, copies it back over block r of its own slot (a block only r reads), and
// publishes a "reduced" flag; then it copies every other rank's block j from slot j once j's
// flag says it is there.
//
// Bytes per rank: S written, then n·S read and reduced (or, split, S read and reduced and S
// copied), where the ring moves 2(n−1)/n·S through the transport. Latency: one flag round per
// piece (two when split) against log2(n) (rhd) or 2(n−1) (ring) messages through the
// transport's tag matching. Every block is added in the same order by whichever rank adds it,
// so the results are bitwise identical on every rank and every run.
//
// Each rank also publishes what it passes (count, type, op) beside each piece, so ranks that
// disagree get InvalidArgument naming the difference instead of waiting for pieces that never
// come.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"
#include "algorithms/context.h"
#include "algorithms/primitives.h"
#include "algorithms/shared_region.h"
#include "src/check.h"
#include "src/reduce_cpu.h"

namespace plexus {
namespace {

constexpr size_t kLine = 64;
// A piece is at most this long per rank. Longer pieces mean fewer flag rounds for a long
// message; the region holds 2·n of them, so a node with many ranks gets shorter ones.
constexpr size_t kMaxSlotBytes = 64 * 1024;
constexpr size_t kMinSlotBytes = 4 * 1024;
constexpr size_t kMaxRegionBytes = 16 * 1024 * 1024;
// From this many bytes on, with kSplitFromRanks or more ranks, each rank reduces only its
// block of a piece and then copies the others' (see the opening comment). Measured with -a shm,
// best of 2 interleaved rounds (busbw GB/s, 2 cores): 8 ranks, split against not, 64 KiB 1.45
// vs 0.88, 256 KiB 1.39 vs 1.13, 1 MiB 1.58 vs 1.19, 4 MiB 1.42 vs 1.10, 16 KiB level; 4 ranks
// no gain (the second flag round costs every rank a turn on the cores: 16 KiB 0.77 vs 1.38,
// 4 MiB 2.05 vs 3.01). 5-7 ranks are not measured here; they split.
constexpr size_t kSplitFromBytes = 32 * 1024;
constexpr int kSplitFromRanks = 5;

bool splitsTheReduction(int n, size_t bytes) {
  return n >= kSplitFromRanks && bytes >= kSplitFromBytes;
}

// Cost of reading and reducing a byte of the (cache-resident) slots, as a share of γ.
constexpr double kCachedReduceShare = 0.7;

// Bytes of each rank's slot for `n` ranks: a multiple of the line (so of every element size).
size_t slotBytesFor(int n) {
  const size_t fit = kMaxRegionBytes / (2 * static_cast<size_t>(n)) / kLine * kLine;
  return std::clamp(fit, kMinSlotBytes, kMaxSlotBytes);
}

// What each rank publishes, one cache line per rank.
struct alignas(kLine) RankFlags {
  std::atomic<uint32_t> filled[2];   // the last piece written to this rank's slot of each half
  std::atomic<uint32_t> reduced[2];  // the last piece whose block this rank reduced (split)
  std::atomic<uint32_t> done;        // the last piece this rank has finished reading
  uint32_t unused;
  uint64_t call[2];  // count << 16 | type << 8 | op of the piece in each half
};
static_assert(sizeof(RankFlags) == kLine);

// The region: [sleepers | pad][RankFlags × n][slot × n][slot × n].
class Layout {
 public:
  Layout(const SharedRegion& region, int n)
      : base_(static_cast<uint8_t*>(region.base)), n_(n), slot_(slotBytesFor(n)) {
    PLEXUS_CHECK(region.bytes == shmAllReduceRegionBytes(n));
  }
  std::atomic<uint32_t>& sleepers() const {
    return *reinterpret_cast<std::atomic<uint32_t>*>(base_);
  }
  RankFlags& flags(int rank) const {
    return *reinterpret_cast<RankFlags*>(base_ + kLine * (1 + static_cast<size_t>(rank)));
  }
  uint8_t* slot(uint32_t half, int rank) const {
    return base_ + kLine * (1 + static_cast<size_t>(n_)) +
           (half * static_cast<size_t>(n_) + static_cast<size_t>(rank)) * slot_;
  }
  size_t slotBytes() const { return slot_; }

 private:
  uint8_t* base_;
  int n_;
  size_t slot_;
};

uint64_t describeCall(const CollectiveRequest& req) {
  return static_cast<uint64_t>(req.count) << 16 | static_cast<uint64_t>(req.type) << 8 |
         static_cast<uint64_t>(req.op);
}

std::string describeCall(uint64_t call) {
  return std::to_string(call >> 16) + " elements of " +
         dataTypeName(static_cast<DataType>((call >> 8) & 0xFF)) + " " +
         reduceOpName(static_cast<ReduceOp>(call & 0xFF));
}

class ShmAllReduce final : public Algorithm {
 public:
  explicit ShmAllReduce(const SharedRegion* region) : region_(region) {}
  const char* name() const override { return "shm"; }
  const char* description() const override {
    return "shared memory among one node's ranks, no transport: one flag round per 64 KiB piece "
           "(two when 5+ ranks split the reduction); fastest on one node at every size here";
  }
  CollectiveKind collective() const override { return CollectiveKind::kAllReduce; }
  Status supports(const CollectiveRequest& request, int worldSize) const override {
    PLEXUS_TRY(requireHostMemory(request, "shm all-reduce"));
    if (worldSize > 1 && region_->base == nullptr) {
      return unimplemented(std::string("shm all-reduce: ") + region_->missing);
    }
    return okStatus();
  }
  // One flag round per piece, priced as a quarter of a message's latency (a cache line from
  // every rank instead of a trip through the transport), then n·S bytes read and reduced at
  // kCachedReduceShare of γ per byte: the slots are reused and stay in cache, where γ prices a
  // reduction streaming through memory. Fitted to plexus_tune_check.py on a 2-core host: with
  // 2 and 4 ranks shm measured fastest at every size from 8 B to 64 MiB (e.g. 4.97 against the
  // ring's 3.65 GB/s busbw at 16 MiB on 2 ranks: no page pinning for single-copy transfers);
  // with 8 ranks, unsplit, it won to 32 KiB and lost from 256 KiB (n·S grows with n), which the
  // split (2·S) turned into 1.3-1.6 GB/s against the ring's and rhd's 1.1-1.3 to 4 MiB.
  double estimateUs(const CollectiveRequest& request, int n, const CostModel& m) const override {
    if (n == 1) return 0;
    const double s = static_cast<double>(request.bytes());
    const double pieces = std::max(1.0, std::ceil(s / static_cast<double>(slotBytesFor(n))));
    const bool split = splitsTheReduction(n, request.bytes());
    // Split: S read and reduced plus S copied out, against n·S read and reduced.
    return pieces * (split ? 2 : 1) * m.alphaUs / 4 +
           kCachedReduceShare * (split ? 2 : n) * s * m.gammaUsPerB;
  }
  Status run(const CollectiveRequest& req, CollectiveContext& ctx) override;

 private:
  const SharedRegion* region_;
  uint32_t pieces_ = 0;  // pieces run through the region so far: the same count on every rank
};

Status ShmAllReduce::run(const CollectiveRequest& req, CollectiveContext& ctx) {
  const int n = ctx.size(), me = ctx.rank();
  const auto* in = static_cast<const uint8_t*>(req.send);
  auto* out = static_cast<uint8_t*>(req.recv);
  if (n == 1) {
    copyUnlessSame(out, in, req.bytes());
    return okStatus();
  }
  const Layout region(*region_, n);
  std::atomic<uint32_t>& sleepers = region.sleepers();
  RankFlags& mine = region.flags(me);
  const size_t elem = dataTypeSize(req.type), perPiece = region.slotBytes() / elem;
  const uint64_t call = describeCall(req);
  const bool split = splitsTheReduction(n, req.bytes());
  for (size_t at = 0; at < req.count; at += perPiece) {
    const size_t cnt = std::min(perPiece, req.count - at);
    const uint32_t k = ++pieces_, half = k & 1;
    for (int j = 0; j < n; ++j) {
      if (j != me) PLEXUS_TRY(ctx.waitShared(region.flags(j).done, k - 2, sleepers, j));
    }
    std::memcpy(region.slot(half, me), in + at * elem, cnt * elem);
    mine.call[half] = call;
    CollectiveContext::publishShared(mine.filled[half], k, sleepers);
    Status agreed = okStatus();
    for (int j = 0; j < n && agreed.ok(); ++j) {
      if (j == me) continue;
      PLEXUS_TRY(ctx.waitShared(region.flags(j).filled[half], k, sleepers, j));
      const uint64_t theirs = region.flags(j).call[half];
      if (theirs != call) {
        agreed = invalidArgument("shm all-reduce #" + std::to_string(ctx.sequence()) + ": rank " +
                                 ctx.who(j) + " passes " + describeCall(theirs) + " where rank " +
                                 ctx.who(me) + " passes " + describeCall(call) +
                                 " (do counts, types or ops differ between ranks?)");
      }
    }
    // Every rank that disagrees with one sees it on this piece, so none waits for the others'
    // reductions below.
    if (!agreed.ok()) {
      CollectiveContext::publishShared(mine.done, k, sleepers);
      return agreed;
    }
    uint8_t* dst = out + at * elem;
    auto reduceAll = [&](size_t from, size_t len) {  // dst[from, +len) = slot_0 op … op slot_{n-1}
      const size_t b = from * elem;
      reduceCpu(req.type, req.op, dst + b, region.slot(half, 0) + b, region.slot(half, 1) + b, len);
      for (int j = 2; j < n; ++j) {
        reduceCpu(req.type, req.op, dst + b, dst + b, region.slot(half, j) + b, len);
      }
      if (req.op == ReduceOp::kAvg) divideInPlace(req.type, dst + b, len, n);
    };
    if (!split) {
      reduceAll(0, cnt);
    } else {
      // This rank's block of the piece, reduced into the output and put back where only this
      // rank reads (its own slot's copy of the block), for the others to copy.
      const BlockSplit blocks(cnt, n);
      const size_t own = blocks.start(me) * elem;
      reduceAll(blocks.start(me), blocks.size(me));
      std::memcpy(region.slot(half, me) + own, dst + own, blocks.size(me) * elem);
      CollectiveContext::publishShared(mine.reduced[half], k, sleepers);
      for (int j = 0; j < n; ++j) {
        if (j == me) continue;
        PLEXUS_TRY(ctx.waitShared(region.flags(j).reduced[half], k, sleepers, j));
        const size_t theirs = blocks.start(j) * elem;
        std::memcpy(dst + theirs, region.slot(half, j) + theirs, blocks.size(j) * elem);
      }
    }
    CollectiveContext::publishShared(mine.done, k, sleepers);
  }
  return okStatus();
}

}  // namespace

size_t shmAllReduceRegionBytes(int worldSize) {
  const auto n = static_cast<size_t>(worldSize);
  return kLine * (1 + n) + 2 * n * slotBytesFor(worldSize);
}

std::unique_ptr<Algorithm> makeShmAllReduce(const SharedRegion* region) {
  return std::make_unique<ShmAllReduce>(region);
}

}  // namespace plexus
