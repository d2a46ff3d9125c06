// Shared-memory all-reduce for the ranks of one node: no transport, no messages. Every rank
// copies its input into its own slot of a region all of them have mapped, raises a flag, waits
// for every rank's flag, and reduces all the slots, in rank order, into its output.
//
// Messages longer than a slot go through in pieces, with the protocol of shm_channel.h: per
// piece, rank r (1) waits until every rank has finished reading the part it will fill, (2)
// copies the piece into its slot and shares it (publishes its flag, waits for every rank's),
// (3) out = slot_0 op slot_1 op … op slot_{n−1}, (4) says it has finished reading.
//
// From kSplitFromBytes on, step (3) is split in two, as a reduce-scatter then an all-gather,
// and step (2) leaves a block out: rank r copies every block of the piece but its own block r
// into its slot, reduces block r from its input and the other slots (in rank order) into the
// place in its slot it left empty (a place no other rank reads) and, in the same pass, into its
// output, then publishes a "reduced" flag; then it copies every other rank's block j from slot j
// once j's flag says it is there. (For kAvg the block is reduced into the slot alone and
// copied to the output after the flag.)
//
// Bytes per rank: S written, then n·S read and reduced; split, (n−1)/n·S written, S read and
// reduced (its result written twice) and (n−1)/n·S copied, where the ring moves 2(n−1)/n·S
// through the transport. Latency: one
// flag round per piece (two when split) against log2(n) (rhd) or 2(n−1) (ring) messages through
// the transport's tag matching. Every block is added in the same order by whichever rank adds
// it, so the results are bitwise identical on every rank and every run. Out of place, when all
// ranks' inputs and outputs come near the size of the last-level cache, the output is written
// with streaming stores and a rank keeps two pieces open, so that every pass both reads and
// writes memory (streamingSplit).
//
// Zero copy (shm_zero_copy.h): when every rank's input and output lie in memAlloc memory
// (include/plexus/memory.h), the ranks map each other's buffers and each sums its block straight
// from every input into every output (push), with no slot in between: per rank S read and S
// written, against about 2 S each through the slots. Where the buffers lie travels as a note
// with the first piece of the slot path (and of streamingSplit).
//
// From kShmAllReduceStoreChoiceFromBytes a rank writes what the others read from its slot (its
// input unsplit; split, the other blocks and the reduced own block) with plain or streaming
// stores, as its ShmStoreChooser says per call (shm_channel.h): plain when the ranks' cores
// share a cache, streaming when they do not; with streaming stores the own block is reduced
// into an L1 buffer, then streamed into the slot.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"
#include "algorithms/context.h"
#include "algorithms/primitives.h"
#include "algorithms/shm_channel.h"
#include "algorithms/shm_zero_copy.h"
#include "src/reduce_cpu.h"
#include "src/topology.h"

namespace plexus {
namespace {

// From this many bytes on each rank reduces only its block of a piece and then copies the
// others' (see the opening comment). Split against not, us per call, best of 4 interleaved runs
// with the cores sharing a cache (bench/core_link.cc), 256 KiB slots: 2 ranks 16 KiB level, 32
// KiB 3.5 vs 3.9, 64 KiB 5.9 vs 7.7, 256 KiB 22.5 vs 33.6; 3 ranks 64 KiB level, 1 MiB 279 vs
// 386, 4 MiB 1087 vs 1417 (and with the cores apart 1 MiB 401 vs 529). Before the own block was
// left out of the slot, 2 ranks were level and 3 lost by splitting; 4 ranks (32 KiB-8 MiB:
// 10-20%) and 8 (64 KiB-4 MiB: 1.2-1.6x) won already.
constexpr size_t kSplitFromBytes = 32 * 1024;

bool splitsTheReduction(int n, size_t bytes) { return n >= 2 && bytes >= kSplitFromBytes; }

// From this many bytes the slot stores are chosen per call (ShmStoreChooser), unsplit too.
// 2 ranks bound, us per call, plain against streaming fill of the unsplit slot, four interleaved
// rounds with the cores apart (hand-off 153-172 ns): 1 KiB 1.14-1.31 against 0.89-0.94, 4 KiB
// 2.98-3.32 / 1.38-1.40, 8 KiB 5.38-5.60 / 2.17-2.35, 16 KiB 10.2-11.2 / 3.94-4.01; three with
// them near (37-44 ns): 1 KiB 0.37-0.46 against 0.63-0.66, 4 KiB 0.85-1.05 / 1.10-1.13, 16 KiB
// 3.24-4.19 / 3.45-3.46. Below 4 KiB the gain apart is small beside what choosing costs near
// (two clock reads and the other mode's tries).
constexpr size_t kShmAllReduceStoreChoiceFromBytes = 4 * 1024;

// Whether the split path streams the output past the cache (streamingSplit): out of place, when
// every rank's input and output and the region together fill 3/4 of the last-level cache or
// more, so that the output's lines would be read from memory only to be overwritten, and would
// push out the slots the others read. In place never: the lines it writes are the ones it has
// just read, in the cache already. Best of 4-6 interleaved runs, us, streamingSplit / the plain
// split path. In place, 2 ranks: 16 MiB 2090 / 1259, 32 MiB 4095 / 2743, 64 MiB 8799 / 6508;
// 4 ranks: 8 MiB 2715 / 2431, 32 MiB 10725 / 9963. Out of place, 2 ranks: 8 MiB (inputs and
// outputs 32 MiB, the region 4 MiB) 692-743 / 866-1001, 16 MiB 1896 / 2278, 64 MiB 8653 /
// 10612; 4 ranks: 2 MiB (24 MiB with the region: 3/4) 528 / 679, 4 MiB 1141 / 1446-1490, 16 MiB
// 4916 / 7371; but 2 ranks 4 MiB (20 MiB: 5/8) 381 / 297 and 1 MiB 120 / 85.
bool streamsTheOutput(const CollectiveRequest& req, int n) {
  if (req.send == req.recv || !splitsTheReduction(n, req.bytes())) return false;
  const double footprint = 2 * static_cast<double>(n) * static_cast<double>(req.bytes()) +
                           static_cast<double>(shmRegionBytes(n));
  return footprint >= 0.75 * static_cast<double>(lastLevelCacheBytes());
}

// Whether the split path (in the cache) reduces its own block into its slot and its output in
// one pass (reduceCpuTwice) instead of reducing into the slot and copying that to the output:
// always, but for kAvg (the division comes after the sum). Medians of interleaved runs (us,
// copy / one pass): 2 ranks (6 each) 1 MiB 84 / 73, 2 MiB 163 / 146, 4 MiB 345 / 314, 8 MiB
// 1152 / 944; 4 ranks (4 each) 256 KiB 125 / 105, 1 MiB 522 / 376, 4 MiB 2499 / 2379.
bool reducesIntoTheOutputToo(const CollectiveRequest& req) { return req.op != ReduceOp::kAvg; }

// A span of bytes to copy.
struct CopySpan {
  uint8_t* dst;
  const uint8_t* src;
  size_t bytes;
};

// Bytes of each turn when streamingSplit interleaves two lists of copies, and of each step of
// its reduce-then-stream loop. 2 ranks, medians of six interleaved runs (us, out of place):
// 4 KiB 16 MiB 2191, 32 MiB 4708, 64 MiB 9898; 16 KiB 2176, 4869, 10984; 64 KiB 2376, 4930,
// 9808.
constexpr size_t kInterleaveBytes = 4096;

// Copies `fill` into the slot (copyIntoSlot) and `drain` with streaming stores (unfenced), taking
// kInterleaveBytes of each in turn, so that the reads of the one and the writes of the other
// reach memory together.
void interleaveCopies(bool streamFill, const CopySpan* fill, size_t nFill, const CopySpan* drain,
                      size_t nDrain) {
  size_t i = 0, j = 0, at = 0, bt = 0;
  while (i < nFill || j < nDrain) {
    if (i < nFill) {
      const size_t len = std::min(kInterleaveBytes, fill[i].bytes - at);
      copyIntoSlot(streamFill, fill[i].dst + at, fill[i].src + at, len);
      if ((at += len) == fill[i].bytes) ++i, at = 0;
    }
    if (j < nDrain) {
      const size_t len = std::min(kInterleaveBytes, drain[j].bytes - bt);
      copyStreamingUnfenced(drain[j].dst + bt, drain[j].src + bt, len);
      if ((bt += len) == drain[j].bytes) ++j, bt = 0;
    }
  }
}

// Bytes each rank sums at a time in push before storing them into every output (in L1).
constexpr size_t kPushBytes = 16 * 1024;

class ShmAllReduce final : public Algorithm {
 public:
  explicit ShmAllReduce(std::shared_ptr<ShmChannel> channel)
      : channel_(std::move(channel)), stores_(channel_->stores()) {}
  const char* name() const override { return "shm"; }
  const char* description() const override {
    return "shared memory among one node's ranks, no transport: one flag round per piece of up "
           "to 256 KiB a rank (two when the reduction is split, from 32 KiB); fastest on one node "
           "at every size here";
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
  Status streamingSplit(const CollectiveRequest& req, CollectiveContext& ctx, ShmPieces& pieces,
                        bool ask);
  // The slot path; with `ask`, the first piece carries this rank's buffer places
  // (ShmBufferPlaces), and after its round the call goes on, or leaves the slots (leaveTheSlots).
  Status slots(const CollectiveRequest& req, CollectiveContext& ctx, bool ask);
  // Drops the first piece and does what `verdict` (not kGoOn) says: zero copy, or the slots
  // again, not asking.
  Status leaveTheSlots(const CollectiveRequest& req, CollectiveContext& ctx, ShmPieces& first,
                       ShmBufferPlaces::Verdict verdict);
  void reduceOwnBlockStreaming(const CollectiveRequest& req, int n, ShmPieces& pieces,
                               uint8_t* mine, size_t own, size_t count, const uint8_t* src,
                               uint8_t* dst, bool streamOut);
  // Sums this rank's block of every input (ins) and stores it into every output (outs).
  void push(const CollectiveRequest& req, int n, int me, const uint8_t* const* ins,
            uint8_t* const* outs);

  std::shared_ptr<ShmChannel> channel_;
  ShmStoreChooser stores_;
  std::vector<CopySpan> drain_;  // streamingSplit's, kept to spare an allocation per call
  ShmBufferPlaces places_{ShmBufferPlaces::Shared::kInputsAndOutputs};  // push stores into all
  std::vector<uint8_t> sum_ = std::vector<uint8_t>(kPushBytes);  // push's; the streaming step's
};

Status ShmAllReduce::run(const CollectiveRequest& req, CollectiveContext& ctx) {
  if (ctx.size() == 1) {
    copyUnlessSame(static_cast<uint8_t*>(req.recv), static_cast<const uint8_t*>(req.send),
                   req.bytes());
    return okStatus();
  }
  const bool ask = req.bytes() >= kShmZeroCopyFromBytes;
  const bool chooses = req.bytes() >= kShmAllReduceStoreChoiceFromBytes;
  return stores_.call(
      chooses, req.bytes(), req.send == req.recv, [&] { return slots(req, ctx, ask); },
      chooses ? channel_->sharedChoice(req.kind, ctx.rank(), ctx.size()) : ShmSharedChoice{});
}

// The split paths' own block when this rank streams into its slot: reduced kInterleaveBytes at
// a time into sum_ (in L1), each step streamed into the slot and copied into the output
// (streamed too with `streamOut`), then fenced, for publishReduced() to follow. `mine` is this
// rank's slot, `own` the block's byte offset in the piece and `count` its elements, `src` and
// `dst` the piece's input and output.
void ShmAllReduce::reduceOwnBlockStreaming(const CollectiveRequest& req, int n, ShmPieces& pieces,
                                           uint8_t* mine, size_t own, size_t count,
                                           const uint8_t* src, uint8_t* dst, bool streamOut) {
  const size_t elem = dataTypeSize(req.type), step = kInterleaveBytes / elem;
  uint8_t* sum = sum_.data();
  for (size_t c = 0; c < count; c += step) {
    const size_t len = std::min(step, count - c), off = own + c * elem;
    pieces.reduceSlots(req.type, req.op, sum, off, len, src + off);
    if (req.op == ReduceOp::kAvg) divideInPlace(req.type, sum, len, n);
    copyStreamingUnfenced(mine + off, sum, len * elem);
    if (streamOut) {
      copyStreamingUnfenced(dst + off, sum, len * elem);
    } else {
      std::memcpy(dst + off, sum, len * elem);
    }
  }
  streamingFence();
}

Status ShmAllReduce::slots(const CollectiveRequest& req, CollectiveContext& ctx, bool ask) {
  const int n = ctx.size(), me = ctx.rank();
  const auto* in = static_cast<const uint8_t*>(req.send);
  auto* out = static_cast<uint8_t*>(req.recv);
  ShmPieces pieces(*channel_, ctx, req, "shm all-reduce");
  const size_t elem = dataTypeSize(req.type), perPiece = pieces.slotBytes() / elem;
  const bool split = splitsTheReduction(n, req.bytes());
  // 2 ranks, interleaved runs with the cores sharing a cache: 8 B median 0.26 against 0.30 us
  // through the slots (best 0.24 against 0.27); in 48-byte lines of their own, with the call
  // overhead cut too, 16 and 32 B 200-203 against 253-256 ns (cores apart: 530-547 against
  // 677-707); 4 ranks level (the scheduler rules there).
  if (req.bytes() <= ShmPieces::kInlineBytes) pieces.inlineSlots();
  if (streamsTheOutput(req, n)) return streamingSplit(req, ctx, pieces, ask);
  const bool onePass = split && reducesIntoTheOutputToo(req);
  for (size_t at = 0; at < req.count; at += perPiece) {
    const size_t cnt = std::min(perPiece, req.count - at);
    const uint8_t* src = in + at * elem;
    uint8_t* dst = out + at * elem;
    PLEXUS_TRY(pieces.next());
    const bool first = ask && at == 0,
               leftOut =
                   first && places_.note(pieces, req.send, req.bytes(), req.recv, req.bytes());
    if (!split) {
      if (!leftOut) {
        copyIntoSlot(stores_.streamingNow(), pieces.slot(me), src, cnt * elem);
        if (stores_.streamingNow()) streamingFence();
      }
      PLEXUS_TRY(pieces.share());
      if (first) {
        const ShmBufferPlaces::Verdict verdict = places_.read(pieces, n);
        if (verdict != ShmBufferPlaces::Verdict::kGoOn) {
          return leaveTheSlots(req, ctx, pieces, verdict);
        }
      }
      pieces.reduceSlots(req.type, req.op, dst, 0, cnt);
      if (req.op == ReduceOp::kAvg) divideInPlace(req.type, dst, cnt, n);
    } else {
      // Every block but this rank's own goes into its slot; its own block (the slot's copy of
      // which no other rank reads) is reduced from its input into that place, for the others
      // to copy from there.
      const BlockSplit blocks(cnt, n);
      const size_t own = blocks.start(me) * elem, ownBytes = blocks.size(me) * elem;
      const size_t after = own + ownBytes;
      uint8_t* mine = pieces.slot(me);
      if (!leftOut) {
        copyIntoSlot(stores_.streamingNow(), mine, src, own);
        copyIntoSlot(stores_.streamingNow(), mine + after, src + after, cnt * elem - after);
        if (stores_.streamingNow()) streamingFence();
      }
      PLEXUS_TRY(pieces.share());
      if (first) {
        const ShmBufferPlaces::Verdict verdict = places_.read(pieces, n);
        if (verdict != ShmBufferPlaces::Verdict::kGoOn) {
          return leaveTheSlots(req, ctx, pieces, verdict);
        }
      }
      if (stores_.streamingNow()) {
        reduceOwnBlockStreaming(req, n, pieces, mine, own, blocks.size(me), src, dst, false);
        pieces.publishReduced();
      } else if (onePass) {
        pieces.reduceSlots(req.type, req.op, mine + own, own, blocks.size(me), src + own,
                           dst + own);
        pieces.publishReduced();
      } else {
        pieces.reduceSlots(req.type, req.op, mine + own, own, blocks.size(me), src + own);
        if (req.op == ReduceOp::kAvg) divideInPlace(req.type, mine + own, blocks.size(me), n);
        pieces.publishReduced();
        std::memcpy(dst + own, mine + own, ownBytes);  // in place: src's block is read by now
      }
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

// The split path when the output streams past the cache (streamsTheOutput), with two pieces
// open at a time. Done one after the other, copying a piece's blocks into the slot only reads
// memory and streaming the others' results into the output only writes it; here each pass does
// both. Per piece k: the blocks of k go into the slot interleaved with the others' results of
// k−1 going out (interleaveCopies), k is published and k−1 finished, then, once every rank has
// published k, this rank's block is reduced into its slot and streamed into the output
// kInterleaveBytes at a time (the chunk still in L1 when it is copied), and published as
// reduced. A rank thus waits for the others' k−1 only after filling k, when in steady state it
// is long done. Against one pass after another (the path before this one: reduce the block into
// the slot, then stream each block out), medians of interleaved runs, us, out of place / in
// place (in place no longer streams): 2 ranks (6 runs) 16 MiB 2191 / 2764 against 2857 / 3037, 32
// MiB 4708 / 5697 against 5940 / 6428, 64 MiB 9898 / 11074 against 10818 / 11951; 4 ranks (6 runs)
// 8 MiB 2242 / 2511 against 2538 / 2577, 16 MiB 4684 / 5105 against 5188 / 5184, 32 MiB 9815 /
// 10455 against 10529 / 10614.
Status ShmAllReduce::streamingSplit(const CollectiveRequest& req, CollectiveContext& ctx,
                                    ShmPieces& pieces, bool ask) {
  const int n = ctx.size(), me = ctx.rank();
  const auto* in = static_cast<const uint8_t*>(req.send);
  auto* out = static_cast<uint8_t*>(req.recv);
  const size_t elem = dataTypeSize(req.type), perPiece = pieces.slotBytes() / elem;
  const size_t step = kInterleaveBytes / elem;
  std::array<CopySpan, 2> fill{};
  std::vector<CopySpan>& drain = drain_;
  drain.reserve(static_cast<size_t>(n));
  size_t prevAt = 0, prevCnt = 0;
  for (size_t at = 0;; at += perPiece) {
    const bool last = at >= req.count;  // only the previous piece's results are left
    if (!last) PLEXUS_TRY(pieces.next());
    const bool first = ask && at == 0,
               leftOut =
                   first && places_.note(pieces, req.send, req.bytes(), req.recv, req.bytes());
    const uint32_t prev = pieces.current() - (last ? 0 : 1);
    const size_t cnt = last ? 0 : std::min(perPiece, req.count - at);
    const BlockSplit blocks(cnt, n), before(prevCnt, n);
    const size_t own = blocks.start(me) * elem, after = own + blocks.size(me) * elem;
    uint8_t* mine = pieces.slot(me);
    fill[0] = {mine, in + at * elem, own};
    fill[1] = {mine + after, in + at * elem + after, cnt * elem - after};
    drain.clear();
    if (at != 0) {
      for (int j = 0; j < n; ++j) {
        if (j == me) continue;
        PLEXUS_TRY(pieces.waitReduced(j, prev));
        const size_t theirs = before.start(j) * elem;
        drain.push_back(
            {out + prevAt * elem + theirs, pieces.slot(j, prev) + theirs, before.size(j) * elem});
      }
    }
    interleaveCopies(stores_.streamingNow(), fill.data(), last || leftOut ? 0 : fill.size(),
                     drain.data(), drain.size());
    if (last) {
      streamingFence();
      pieces.finish(prev);
      return okStatus();
    }
    if (stores_.streamingNow()) streamingFence();  // the slot's part, before it is published
    pieces.publishFilled();
    if (at != 0) pieces.finish(prev);
    PLEXUS_TRY(pieces.waitFilled());
    if (first) {
      const ShmBufferPlaces::Verdict verdict = places_.read(pieces, n);
      if (verdict != ShmBufferPlaces::Verdict::kGoOn) {
        return leaveTheSlots(req, ctx, pieces, verdict);
      }
    }
    if (stores_.streamingNow()) {
      reduceOwnBlockStreaming(req, n, pieces, mine, own, blocks.size(me), in + at * elem,
                              out + at * elem, true);
    } else {
      for (size_t c = 0; c < blocks.size(me); c += step) {
        const size_t len = std::min(step, blocks.size(me) - c), off = own + c * elem;
        pieces.reduceSlots(req.type, req.op, mine + off, off, len, in + at * elem + off);
        if (req.op == ReduceOp::kAvg) divideInPlace(req.type, mine + off, len, n);
        copyStreamingUnfenced(out + at * elem + off, mine + off, len * elem);
      }
    }
    pieces.publishReduced();
    prevAt = at;
    prevCnt = cnt;
  }
}

Status ShmAllReduce::leaveTheSlots(const CollectiveRequest& req, CollectiveContext& ctx,
                                   ShmPieces& first, ShmBufferPlaces::Verdict verdict) {
  first.finish();
  if (verdict == ShmBufferPlaces::Verdict::kZeroCopy) {
    bool done = false;
    stores_.leftTheSlots();
    PLEXUS_TRY(places_.run(
        *channel_, ctx, req, "shm all-reduce", req.bytes(), req.bytes(),
        [&](const uint8_t* const* ins, uint8_t* const* outs) {
          push(req, ctx.size(), ctx.rank(), ins, outs);
        },
        &done));
    if (done) return okStatus();
  }
  return slots(req, ctx, false);
}

// Plain stores at every size: streaming ones (as the slot path takes past the cache) lost here
// up to 8 MiB and drew level beyond. 2 ranks, out of place, us, plain against streaming, three
// interleaved runs: 4 MiB 110-152 against 348-374, 8 MiB 411-707 against 779-816, 16 MiB
// 1616-1970 against 1871-1924, 32 MiB 3502-3970 against 3518-3659, 64 MiB 8023-8321 against
// 7371-8449.
void ShmAllReduce::push(const CollectiveRequest& req, int n, int me, const uint8_t* const* ins,
                        uint8_t* const* outs) {
  const size_t elem = dataTypeSize(req.type), step = kPushBytes / elem;
  const BlockSplit blocks(req.count, n);
  const size_t first = blocks.start(me), count = blocks.size(me);
  const bool twice = n == 2 && req.op != ReduceOp::kAvg;
  uint8_t* sum = sum_.data();
  for (size_t c = 0; c < count; c += step) {
    const size_t len = std::min(step, count - c), off = (first + c) * elem;
    if (twice) {  // both outputs in the summing pass (in place too: each may be an input)
      reduceCpuTwice(req.type, req.op, outs[0] + off, outs[1] + off, ins[0] + off, ins[1] + off,
                     len);
      continue;
    }
    // Every input's chunk is read before any output's is written: in place, they are the same.
    reduceCpu(req.type, req.op, sum, ins[0] + off, ins[1] + off, len);
    for (int j = 2; j < n; ++j) reduceCpu(req.type, req.op, sum, sum, ins[j] + off, len);
    if (req.op == ReduceOp::kAvg) divideInPlace(req.type, sum, len, n);
    for (int k = 1; k <= n; ++k) {  // the others' outputs first, this rank's own last
      std::memcpy(outs[(me + k) % n] + off, sum, len * elem);
    }
  }
}

}  // namespace

std::unique_ptr<Algorithm> makeShmAllReduce(std::shared_ptr<ShmChannel> channel) {
  return std::make_unique<ShmAllReduce>(std::move(channel));
}

}  // namespace plexus
