// Shared-memory all-reduce for the ranks of one node: no transport, no messages. Every rank
// copies its input into its own slot of a region all of them have mapped, raises a flag, waits
// for every rank's flag, and reduces all the slots, in rank order, into its output.
//
// Messages longer than a slot go through in pieces, with the protocol of shm_channel.h: per
// piece, rank r (1) waits until every rank has finished reading the half it will fill, (2)
// copies the piece into its slot and shares it (publishes its flag, waits for every rank's),
// (3) out = slot_0 op slot_1 op … op slot_{n−1}, (4) says it has finished reading.
//
// With kSplitFromRanks or more ranks and messages of kSplitFromBytes or more, step (3) is split in
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
#include <algorithm>
#include <cmath>
#include <cstring>

#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"
#include "algorithms/context.h"
#include "algorithms/primitives.h"
#include "algorithms/shm_channel.h"
#include "src/reduce_cpu.h"

namespace plexus {
namespace {

// From this many bytes on, with kSplitFromRanks or more ranks, each rank reduces only its
// block of a piece and then copies the others' (see the opening comment). Measured with -a shm,
// best of 2 interleaved rounds (busbw GB/s, 2 cores): 8 ranks, split against not, 64 KiB 1.45
// vs 0.88, 256 KiB 1.39 vs 1.13, 1 MiB 1.58 vs 1.19, 4 MiB 1.42 vs 1.10, 16 KiB level. 4 ranks,
// us per call, best (median) of 6 interleaved runs with the cores sharing a cache
// (bench/core_link.cc), split against not: 32 KiB 18 (23) vs 21 (26), 128 KiB 62 (78) vs 76
// (94), 512 KiB 237 (296) vs 290 (331), 2 MiB 834 (932) vs 1013 (1148), 8 MiB 4167 (4965) vs
// 4533 (5116); with the cores apart (2x slower cache-line hand-offs), medians of 6: 512 KiB
// 482 vs 604, 2 MiB 1909 vs 2306, 8 MiB 8000 vs 9300. 3 ranks lose by splitting (512 KiB 200
// vs 164, 2 MiB 780 vs 711), 2 ranks are level.
constexpr size_t kSplitFromBytes = 32 * 1024;
constexpr int kSplitFromRanks = 4;

bool splitsTheReduction(int n, size_t bytes) {
  return n >= kSplitFromRanks && bytes >= kSplitFromBytes;
}

class ShmAllReduce final : public Algorithm {
 public:
  explicit ShmAllReduce(std::shared_ptr<ShmChannel> channel) : channel_(std::move(channel)) {}
  const char* name() const override { return "shm"; }
  const char* description() const override {
    return "shared memory among one node's ranks, no transport: one flag round per 64 KiB piece "
           "(two when 4+ ranks split the reduction); fastest on one node at every size here";
  }
  CollectiveKind collective() const override { return CollectiveKind::kAllReduce; }
  Status supports(const CollectiveRequest& request, int worldSize) const override {
    PLEXUS_TRY(requireHostMemory(request, "shm all-reduce"));
    return channel_->available("shm all-reduce", worldSize);
  }
  // One flag round per piece, priced as a quarter of a message's latency (a cache line from
  // every rank instead of a trip through the transport), then n·S bytes read and reduced at
  // kShmCachedReduceShare of γ per byte: the slots are reused and stay in cache, where γ prices a
  // reduction streaming through memory. Fitted to plexus_tune_check.py on a 2-core host: with
  // 2 and 4 ranks shm measured fastest at every size from 8 B to 64 MiB (e.g. 4.97 against the
  // ring's 3.65 GB/s busbw at 16 MiB on 2 ranks: no page pinning for single-copy transfers);
  // with 8 ranks, unsplit, it won to 32 KiB and lost from 256 KiB (n·S grows with n), which the
  // split (2·S) turned into 1.3-1.6 GB/s against the ring's and rhd's 1.1-1.3 to 4 MiB.
  double estimateUs(const CollectiveRequest& request, int n, const CostModel& m) const override {
    if (n == 1) return 0;
    const double s = static_cast<double>(request.bytes());
    const double pieces = std::max(1.0, std::ceil(s / static_cast<double>(shmSlotBytes(n))));
    const bool split = splitsTheReduction(n, request.bytes());
    // Split: S read and reduced plus S copied out, against n·S read and reduced.
    return pieces * (split ? 2 : 1) * m.alphaUs / 4 +
           kShmCachedReduceShare * (split ? 2 : n) * s * m.gammaUsPerB;
  }
  Status run(const CollectiveRequest& req, CollectiveContext& ctx) override;

 private:
  std::shared_ptr<ShmChannel> channel_;
};

Status ShmAllReduce::run(const CollectiveRequest& req, CollectiveContext& ctx) {
  const int n = ctx.size(), me = ctx.rank();
  const auto* in = static_cast<const uint8_t*>(req.send);
  auto* out = static_cast<uint8_t*>(req.recv);
  if (n == 1) {
    copyUnlessSame(out, in, req.bytes());
    return okStatus();
  }
  ShmPieces pieces(*channel_, ctx, req, "shm all-reduce");
  const size_t elem = dataTypeSize(req.type), perPiece = pieces.slotBytes() / elem;
  const bool split = splitsTheReduction(n, req.bytes());
  for (size_t at = 0; at < req.count; at += perPiece) {
    const size_t cnt = std::min(perPiece, req.count - at);
    PLEXUS_TRY(pieces.next());
    std::memcpy(pieces.slot(me), in + at * elem, cnt * elem);
    PLEXUS_TRY(pieces.share());
    uint8_t* dst = out + at * elem;
    auto reduceAll = [&](size_t from, size_t len) {  // dst[from, +len) = slot_0 op … op slot_{n-1}
      const size_t b = from * elem;
      pieces.reduceSlots(req.type, req.op, dst + b, b, len);
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
      std::memcpy(pieces.slot(me) + own, dst + own, blocks.size(me) * elem);
      pieces.publishReduced();
      for (int j = 0; j < n; ++j) {
        if (j == me) continue;
        PLEXUS_TRY(pieces.waitReduced(j));
        const size_t theirs = blocks.start(j) * elem;
        std::memcpy(dst + theirs, pieces.slot(j) + theirs, blocks.size(j) * elem);
      }
    }
    pieces.finish();
  }
  return okStatus();
}

}  // namespace

std::unique_ptr<Algorithm> makeShmAllReduce(std::shared_ptr<ShmChannel> channel) {
  return std::make_unique<ShmAllReduce>(std::move(channel));
}

}  // namespace plexus
