// Shared-memory reduce-scatter and all-gather for the ranks of one node: the two halves of the
// split shm all-reduce as collectives of their own, over the same region and piece protocol
// (shm_channel.h). The hierarchical all-reduce runs its node phases with them.
//
// Reduce-scatter (each rank holds n blocks of `count` elements and ends with the reduction of
// everyone's block r). A piece takes the same q elements of every block, q = slot/(n·elem): rank
// r copies its q elements of each of the n blocks but its own into its slot (the place of block
// r, which no other rank reads, stays empty), shares it, then reduces block r of every slot, its
// own operand straight from its input, in rank order, into its output (in place, where the
// output is that operand, the sum builds up in the empty place and reaches the output last).
// Bytes per rank: (n−1)·q written and n·q read per piece, so about n·S each for S = count·elem
// (the ring sends and receives (n−1)·S through the transport and reduces as much). Latency: one
// flag round per piece against n−1 messages.
//
// All-gather (each rank holds `count` elements; every rank ends with all n blocks). A piece is
// q = slot/elem elements: rank r copies its q into its slot, shares it, then copies slot j into
// block j of its output for every other rank j (its own block from its input, piece by piece
// after the piece's copy into the slot, while it is in the cache).
// Bytes per rank: S written, (n−1)·S read. Latency: one flag round per piece.
//
// Zero copy (shm_zero_copy.h): when every rank's input lies in memAlloc memory, the ranks map
// each other's inputs and each pulls what it needs straight into its own output (its output may
// lie anywhere): the reduce-scatter reduces block r of every input, in rank order, kPullBytes at
// a time, and the all-gather copies every other rank's input into its block of the output. Per
// rank, the reduce-scatter reads n·S and writes S (the n·S written into the slots saved), the
// all-gather reads and writes (n−1)·S (the S written into the slot saved), each with two flag
// rounds in all instead of one per piece.
//
// Each rank fills its slot with plain or streaming stores, as its ShmStoreChooser says per call
// (shm_channel.h), from a longer buffer of kShmStoreChoiceFromBytes.
//
// Reductions run in rank order whichever rank runs them, so results are the same on every run.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "algorithms/builtin.h"
#include "algorithms/primitives.h"
#include "algorithms/shm_channel.h"
#include "algorithms/shm_zero_copy.h"
#include "src/reduce_cpu.h"

namespace plexus {
namespace {

// Bytes of a block the zero-copy reduce-scatter reduces at a time (in L1) before storing them.
constexpr size_t kPullBytes = 16 * 1024;

double flagRoundsUs(double bytes, size_t bytesPerPiece, const CostModel& m) {
  // A flag round costs a quarter of a message's latency, as in the shm all-reduce.
  return std::max(1.0, std::ceil(bytes / static_cast<double>(bytesPerPiece))) * m.alphaUs / 4;
}

// What the reduce-scatter and the all-gather share: a call on one rank copies; otherwise the
// slot path of each (slots()), whose first piece asks for zero copy when the buffers are long
// enough, and the zero copy itself, where each rank pulls from the others' inputs (pull()).
class ShmGatherOrScatter : public Algorithm {
 public:
  explicit ShmGatherOrScatter(std::shared_ptr<ShmChannel> channel)
      : channel_(std::move(channel)), stores_(channel_->stores()) {}
  const char* name() const override { return "shm"; }

  Status run(const CollectiveRequest& req, CollectiveContext& ctx) final {
    if (ctx.size() == 1) {
      copyUnlessSame(static_cast<uint8_t*>(req.recv), static_cast<const uint8_t*>(req.send),
                     req.bytes());
      return okStatus();
    }
    // The longer buffer (the reduce-scatter's input, the all-gather's output) holds n blocks.
    const size_t longer = static_cast<size_t>(ctx.size()) * req.bytes();
    const bool ask = longer >= kShmZeroCopyFromBytes;
    // In place (one buffer starts inside the other) is a class of its own.
    const auto* send = static_cast<const uint8_t*>(req.send);
    const auto* recv = static_cast<const uint8_t*>(req.recv);
    const int n = ctx.size();
    const bool inPlace = (send <= recv && recv < send + sendBytes(req, n)) ||
                         (recv <= send && send < recv + recvBytes(req, n));
    const bool chooses = longer >= kShmStoreChoiceFromBytes;
    return stores_.call(
        chooses, longer, inPlace, [&] { return slots(req, ctx, ask); },
        chooses ? channel_->sharedChoice(req.kind, ctx.rank(), ctx.size()) : ShmSharedChoice{});
  }

 protected:
  // The slot path; with `ask`, the first piece carries this rank's buffer places
  // (shm_zero_copy.h), and after its round the call goes on, or leaves the slots.
  virtual Status slots(const CollectiveRequest& req, CollectiveContext& ctx, bool ask) = 0;
  // Zero copy: this rank's output `out` from every rank's input (ins, by rank).
  virtual void pull(const CollectiveRequest& req, int n, int me, const uint8_t* const* ins,
                    uint8_t* out) = 0;
  // Bytes of a rank's input and of its output.
  virtual size_t sendBytes(const CollectiveRequest& req, int n) const = 0;
  virtual size_t recvBytes(const CollectiveRequest& req, int n) const = 0;
  // The algorithm in errors ("shm reduce-scatter").
  virtual const char* what() const = 0;

  // After the round of a call's first piece that asked: false to go on with the slots; true when
  // the call leaves them (the piece finished), with the call's status in *status: after zero
  // copy, or after the slots again, not asking.
  bool leavesTheSlots(const CollectiveRequest& req, CollectiveContext& ctx, ShmPieces& first,
                      Status* status) {
    const int n = ctx.size(), me = ctx.rank();
    const ShmBufferPlaces::Verdict verdict = places_.read(first, n);
    if (verdict == ShmBufferPlaces::Verdict::kGoOn) return false;
    first.finish();
    if (verdict == ShmBufferPlaces::Verdict::kZeroCopy) {
      bool done = false;
      stores_.leftTheSlots();
      *status = places_.run(
          *channel_, ctx, req, what(), sendBytes(req, n), recvBytes(req, n),
          [&](const uint8_t* const* ins, uint8_t* const* outs) { pull(req, n, me, ins, outs[me]); },
          &done);
      if (!status->ok() || done) return true;
    }
    *status = slots(req, ctx, false);
    return true;
  }

  // The first piece's part of slots(): with `ask`, notes where this rank's buffers lie and
  // returns true when they are shared (its part of the piece is then left out).
  bool noteFirst(ShmPieces& pieces, const CollectiveRequest& req, int n) const {
    return places_.note(pieces, req.send, sendBytes(req, n), req.recv, recvBytes(req, n));
  }

  std::shared_ptr<ShmChannel> channel_;
  ShmBufferPlaces places_{ShmBufferPlaces::Shared::kInputs};  // pull reads the others' inputs
  ShmStoreChooser stores_;
};

class ShmReduceScatter final : public ShmGatherOrScatter {
 public:
  using ShmGatherOrScatter::ShmGatherOrScatter;
  const char* description() const override {
    return "shared memory among one node's ranks: every rank reduces its block from all slots, "
           "one flag round per piece";
  }
  CollectiveKind collective() const override { return CollectiveKind::kReduceScatter; }
  Status supports(const CollectiveRequest& request, int worldSize) const override {
    PLEXUS_TRY(requireHostMemory(request, "shm reduce-scatter"));
    PLEXUS_TRY(channel_->available("shm reduce-scatter", worldSize));
    if (perBlock(request, worldSize) == 0) {
      return unimplemented("shm reduce-scatter: " + std::to_string(worldSize) +
                           " ranks leave no room for one element of each block in a slot");
    }
    return okStatus();
  }
  // (n−1)·S copied into the slots and n·S read and reduced.
  double estimateUs(const CollectiveRequest& request, int n, const CostModel& m) const override {
    if (n == 1) return 0;
    const double s = static_cast<double>(request.bytes());
    return flagRoundsUs(s, std::max<size_t>(1, perBlock(request, n)) * dataTypeSize(request.type),
                        m) +
           (kShmCopyShare * (n - 1) + kShmCachedReduceShare * n) * s * m.gammaUsPerB;
  }

 private:
  size_t sendBytes(const CollectiveRequest& req, int n) const override {
    return static_cast<size_t>(n) * req.bytes();
  }
  size_t recvBytes(const CollectiveRequest& req, int) const override { return req.bytes(); }
  const char* what() const override { return "shm reduce-scatter"; }

  Status slots(const CollectiveRequest& req, CollectiveContext& ctx, bool ask) override {
    const int n = ctx.size(), me = ctx.rank();
    const size_t elem = dataTypeSize(req.type), count = req.count;
    const auto* in = static_cast<const uint8_t*>(req.send);
    auto* out = static_cast<uint8_t*>(req.recv);
    ShmPieces pieces(*channel_, ctx, req, what());
    const size_t q = perBlock(req, n);
    for (size_t at = 0; at < count; at += q) {
      const size_t cnt = std::min(q, count - at), len = cnt * elem;
      PLEXUS_TRY(pieces.next());
      const bool first = ask && at == 0;
      if (!(first && noteFirst(pieces, req, n))) {
        for (int j = 0; j < n; ++j) {  // block j's piece at j·len of the slot, but its own
          if (j != me) {
            copyIntoSlot(stores_.streamingNow(), pieces.slot(me) + j * len,
                         in + (j * count + at) * elem, len);
          }
        }
        if (stores_.streamingNow()) streamingFence();
      }
      PLEXUS_TRY(pieces.share());
      Status left;
      if (first && leavesTheSlots(req, ctx, pieces, &left)) return left;
      uint8_t* dst = out + at * elem;
      const uint8_t* own = in + (me * count + at) * elem;
      if (own != dst) {
        pieces.reduceSlots(req.type, req.op, dst, me * len, cnt, own);
      } else {  // in place: the sum builds up in the slot's own place and reaches dst last
        pieces.reduceSlots(req.type, req.op, pieces.slot(me) + me * len, me * len, cnt, own, dst);
      }
      if (req.op == ReduceOp::kAvg) divideInPlace(req.type, dst, cnt, n);
      pieces.finish();
    }
    return okStatus();
  }

  // out = block `me` of ins[0] op … op ins[n−1], kPullBytes at a time through sum_ (in place,
  // out is block `me` of this rank's own input).
  void pull(const CollectiveRequest& req, int n, int me, const uint8_t* const* ins,
            uint8_t* out) override {
    const size_t elem = dataTypeSize(req.type), step = kPullBytes / elem;
    const size_t base = static_cast<size_t>(me) * req.count * elem;
    uint8_t* sum = sum_.data();
    for (size_t c = 0; c < req.count; c += step) {
      const size_t len = std::min(step, req.count - c), off = base + c * elem;
      reduceCpu(req.type, req.op, sum, ins[0] + off, ins[1] + off, len);
      for (int j = 2; j < n; ++j) reduceCpu(req.type, req.op, sum, sum, ins[j] + off, len);
      if (req.op == ReduceOp::kAvg) divideInPlace(req.type, sum, len, n);
      std::memcpy(out + c * elem, sum, len * elem);
    }
  }

  // Elements of each block per piece: n of them fill a slot.
  static size_t perBlock(const CollectiveRequest& req, int n) {
    return shmSlotBytes(n) / (static_cast<size_t>(n) * dataTypeSize(req.type));
  }

  std::vector<uint8_t> sum_ = std::vector<uint8_t>(kPullBytes);
};

class ShmAllGather final : public ShmGatherOrScatter {
 public:
  using ShmGatherOrScatter::ShmGatherOrScatter;
  const char* description() const override {
    return "shared memory among one node's ranks: every rank copies all slots, one flag round "
           "per piece";
  }
  CollectiveKind collective() const override { return CollectiveKind::kAllGather; }
  Status supports(const CollectiveRequest& request, int worldSize) const override {
    PLEXUS_TRY(requireHostMemory(request, "shm all-gather"));
    return channel_->available("shm all-gather", worldSize);
  }
  // S copied into the slot, then (n−1)·S copied out, and this rank's own block S.
  double estimateUs(const CollectiveRequest& request, int n, const CostModel& m) const override {
    if (n == 1) return 0;
    const double s = static_cast<double>(request.bytes());
    return flagRoundsUs(s, shmSlotBytes(n), m) + kShmCopyShare * (n + 1) * s * m.gammaUsPerB;
  }

 private:
  size_t sendBytes(const CollectiveRequest& req, int) const override { return req.bytes(); }
  const char* what() const override { return "shm all-gather"; }
  size_t recvBytes(const CollectiveRequest& req, int n) const override {
    return static_cast<size_t>(n) * req.bytes();
  }

  Status slots(const CollectiveRequest& req, CollectiveContext& ctx, bool ask) override {
    const int n = ctx.size(), me = ctx.rank();
    const size_t elem = dataTypeSize(req.type), count = req.count;
    const auto* in = static_cast<const uint8_t*>(req.send);
    auto* out = static_cast<uint8_t*>(req.recv);
    ShmPieces pieces(*channel_, ctx, req, what());
    const size_t q = pieces.slotBytes() / elem;
    for (size_t at = 0; at < count; at += q) {
      const size_t len = std::min(q, count - at) * elem;
      PLEXUS_TRY(pieces.next());
      const bool first = ask && at == 0;
      if (!(first && noteFirst(pieces, req, n))) {
        copyIntoSlot(stores_.streamingNow(), pieces.slot(me), in + at * elem, len);
        if (stores_.streamingNow()) streamingFence();
        // This rank's own block, from the piece just read (in the cache).
        copyUnlessSame(out + (me * count + at) * elem, in + at * elem, len);
      }
      PLEXUS_TRY(pieces.share());
      Status left;
      if (first && leavesTheSlots(req, ctx, pieces, &left)) return left;
      for (int j = 0; j < n; ++j) {
        if (j != me) std::memcpy(out + (j * count + at) * elem, pieces.slot(j), len);
      }
      pieces.finish();
    }
    return okStatus();
  }

  // Every rank's input into its block of the output (this rank's own unless in place).
  void pull(const CollectiveRequest& req, int n, int, const uint8_t* const* ins,
            uint8_t* out) override {
    for (int j = 0; j < n; ++j) {
      copyUnlessSame(out + static_cast<size_t>(j) * req.bytes(), ins[j], req.bytes());
    }
  }
};

}  // namespace

std::unique_ptr<Algorithm> makeShmReduceScatter(std::shared_ptr<ShmChannel> channel) {
  return std::make_unique<ShmReduceScatter>(std::move(channel));
}

std::unique_ptr<Algorithm> makeShmAllGather(std::shared_ptr<ShmChannel> channel) {
  return std::make_unique<ShmAllGather>(std::move(channel));
}

}  // namespace plexus
