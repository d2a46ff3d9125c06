#include "algorithms/shm_channel.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "src/check.h"
#include "src/reduce_cpu.h"

namespace plexus {
namespace {

constexpr size_t kLine = 64;
// A piece is at most this long per rank; the region holds parts·n of them, so a node with many
// ranks gets shorter ones. Longer pieces mean fewer flag rounds, each of which, with more ranks
// than cores, waits for a rank to get a core back. 256 against 64 KiB (split all-reduce, us
// per call, best of 3-5 interleaved runs with the cores sharing a cache, bench/core_link.cc):
// 2 ranks 4 MiB 389 vs 461, 16 MiB 2368 vs 2756; 4 ranks 256 KiB 97 vs 124, 1 MiB 333 vs 456,
// 4 MiB 1283 vs 2014; 4-rank all-gather 4 MiB 575 vs 740, reduce-scatter 738 vs 1102; 8 ranks
// (cores apart) 16 MiB 23.3 vs 28.6 ms. 128 KiB lay between; 512 KiB and 1 MiB were no faster.
constexpr size_t kMaxSlotBytes = 256 * 1024;
constexpr size_t kMinSlotBytes = 4 * 1024;
constexpr size_t kMaxRegionBytes = 16 * 1024 * 1024;
// The region is cut into this many parts at most (two at least), each a slot per rank; piece k
// uses part k mod parts. What room kMaxRegionBytes leaves beside 256 KiB slots goes to more
// parts, so a rank rewrites a slot only after several pieces (calls, for short ones) instead
// of every other: by then the lines the others read from it have gone from their caches, and a
// rank waits for the slowest only parts − 1 pieces back. 2 ranks, interleaved runs (5 of 200
// calls each), us, best / median, out of place, 2 / 4 / 8 parts: 128 KiB 29/31, 21/25, 11/13;
// 256 KiB 27/30, 16/19, 16/19; 512 KiB 47/48, 30/34, 30/32; 1 MiB 90/100, 62/69, 63/67; in
// place 1 MiB 114/147, 52/63, 50/59. Then 2 against 8 (5 runs of 30 calls, best / median): out
// of place 2 MiB 190/205 against 143/164, 8 MiB 1169/1346 against 905/1360, 64 MiB
// 11427/12954 against 8620/11179; in place 2 MiB 246/256 against 110/119, 8 MiB 1110/1272
// against 456/731. 4 ranks on 2 cores: level (best of 4 runs, 64 KiB-16 MiB).
constexpr uint32_t kMaxParts = 8;

uint32_t shmParts(int worldSize) {
  const size_t room = kMaxRegionBytes / (static_cast<size_t>(worldSize) * kMaxSlotBytes);
  return static_cast<uint32_t>(std::clamp<size_t>(room, 2, kMaxParts));
}

uint64_t describeCall(const CollectiveRequest& req) {
  return static_cast<uint64_t>(req.count) << 24 | static_cast<uint64_t>(req.kind) << 16 |
         static_cast<uint64_t>(req.type) << 8 | static_cast<uint64_t>(req.op);
}

std::string describeCall(uint64_t call) {
  const auto kind = static_cast<CollectiveKind>((call >> 16) & 0xFF);
  std::string text = std::string(collectiveName(kind)) + " of " + std::to_string(call >> 24) +
                     " elements of " + dataTypeName(static_cast<DataType>((call >> 8) & 0xFF));
  const bool reduces = kind == CollectiveKind::kAllReduce || kind == CollectiveKind::kReduce ||
                       kind == CollectiveKind::kReduceScatter;
  if (reduces) text += std::string(" ") + reduceOpName(static_cast<ReduceOp>(call & 0xFF));
  return text;
}

// The shared store choices (ShmSharedChoice): a table per collective that chooses, two bytes
// per size class, past the slots.
constexpr size_t kChoiceKinds = 3;
constexpr size_t kChoiceTableBytes = 2 * kShmChoiceClasses;
static_assert(kChoiceTableBytes % kLine == 0);
size_t choicesOffset(int worldSize) {
  const auto n = static_cast<size_t>(worldSize);
  const size_t parts = shmParts(worldSize);
  return kLine * (1 + (parts + 1) * n) + parts * n * shmSlotBytes(worldSize);
}

// The count of sleeping waiters, at the start of the region (for publishShared).
std::atomic<uint32_t>& sleepersOf(uint8_t* base) {
  return *reinterpret_cast<std::atomic<uint32_t>*>(base);
}

}  // namespace

// What each rank publishes about a part of the region, a cache line each: the piece it filled
// its slot with, and a short piece's data itself (inlineSlots()), which so reaches the readers
// with the line that publishes it.
struct alignas(kLine) ShmPieces::Filled {
  std::atomic<uint32_t> piece;  // the last piece written to this rank's slot of this part
  uint32_t unused;
  uint64_t call;  // describeCall() of that piece
  uint8_t inlined[ShmPieces::kInlineBytes];
};

// How far each rank has got through the pieces after filling them, a cache line per rank.
struct alignas(kLine) ShmPieces::Progress {
  std::atomic<uint32_t> reduced[kMaxParts];  // per part, the last piece whose second round
                                             // this rank wrote
  std::atomic<uint32_t> done;                // the last piece this rank has finished reading
};

size_t shmSlotBytes(int worldSize) {
  const size_t fit =
      kMaxRegionBytes / (shmParts(worldSize) * static_cast<size_t>(worldSize)) / kLine * kLine;
  return std::clamp(fit, kMinSlotBytes, kMaxSlotBytes);
}

size_t ShmStoreChooser::classIndex(size_t bytes, bool inPlace) {
  size_t log2 = 0;
  while ((bytes >> 1 >> log2) != 0) ++log2;
  return 2 * log2 + (inPlace ? 1 : 0);
}

bool ShmStoreChooser::takeShared(size_t bytes, bool inPlace, ShmSharedChoice shared) {
  const size_t i = classIndex(bytes, inPlace);
  const uint32_t k = classes_[i].sharedCalls++;
  const bool now = shared.table[2 * i + k % 2].load(std::memory_order_relaxed) != 0;
  if (shared.chooser) {
    // Before this rank fills a slot: its flags publish the store (see ShmSharedChoice).
    shared.table[2 * i + (k + 1) % 2].store(streaming(bytes, inPlace) ? 1 : 0,
                                            std::memory_order_relaxed);
  }
  return now;
}

void ShmStoreChooser::SizeClass::choose(bool streaming, double perByte) {
  streams = streaming;
  recent = {};
  recent[0] = perByte;
  calls = 1;
  interval = untilTry = kRetryFirst;
}

double ShmStoreChooser::SizeClass::best() const {
  double b = recent[0];
  for (uint32_t i = 1; i < std::min(calls, kKeep); ++i) b = std::min(b, recent[i]);
  return b;
}

void copyIntoSlot(bool streaming, uint8_t* dst, const uint8_t* src, size_t bytes) {
  if (streaming) {
    copyStreamingUnfenced(dst, src, bytes);
  } else {
    std::memcpy(dst, src, bytes);
  }
}

bool ShmStoreChooser::streaming(size_t bytes, bool inPlace) {
  if (mode_ != ShmStores::kAuto) return mode_ == ShmStores::kStreaming;
  const SizeClass& c = classOf(bytes, inPlace);
  if (c.seeds < kSeeds) return c.seeds == 1;  // plain, streaming, plain
  return c.untilTry == 0 ? !c.streams : c.streams;
}

void ShmStoreChooser::record(size_t bytes, bool streamed, double elapsed, bool inPlace) {
  if (mode_ != ShmStores::kAuto || bytes == 0) return;
  SizeClass& c = classOf(bytes, inPlace);
  // Never 0 ("none"): a clock too coarse to see the call counts it as one tick.
  const double x = std::max(elapsed, 1.0) / static_cast<double>(bytes);
  double& last = c.last[streamed ? 1 : 0];
  if (c.seeds < kSeeds) {  // the best of the seeding calls of each mode
    last = last == 0 ? x : std::min(last, x);
    if (++c.seeds == kSeeds) {
      const bool streams = leads(c.last[1], c.last[0]);
      c.choose(streams, c.last[streams ? 1 : 0]);
    }
    return;
  }
  last = x;
  if (streamed != c.streams) {  // a try of the other
    if (streamed ? leads(x, c.best()) : !leads(c.best(), x)) {
      c.choose(streamed, x);
    } else {
      c.interval = std::min(2 * c.interval, kRetryMost);
      c.untilTry = c.interval;
    }
  } else {
    c.recent[c.calls++ % kKeep] = x;
    const double other = c.last[c.streams ? 0 : 1];
    // All its last kKeep calls lost their lead (streaming) or are behind by the margin (plain).
    if (c.calls >= kKeep && (c.streams ? !leads(c.best(), other) : leads(other, c.best()))) {
      c.choose(!c.streams, other);
    } else if (c.untilTry > 0) {
      --c.untilTry;
    }
  }
}

// The region: [sleepers | pad][(Filled × parts, Progress) × n][slot × n] × parts, then the
// shared store choices of the all-reduce, the reduce-scatter and the all-gather.
size_t shmRegionBytes(int worldSize) {
  return choicesOffset(worldSize) + kChoiceKinds * kChoiceTableBytes;
}

ShmSharedChoice ShmChannel::sharedChoice(CollectiveKind kind, int rank, int worldSize) const {
  size_t table = 0;
  switch (kind) {
    case CollectiveKind::kAllReduce:
      table = 0;
      break;
    case CollectiveKind::kReduceScatter:
      table = 1;
      break;
    case CollectiveKind::kAllGather:
      table = 2;
      break;
    default:
      return {};
  }
  if (region_->base == nullptr || region_->bytes != shmRegionBytes(worldSize)) return {};
  static_assert(sizeof(std::atomic<uint8_t>) == 1);
  auto* at =
      static_cast<uint8_t*>(region_->base) + choicesOffset(worldSize) + table * kChoiceTableBytes;
  return {reinterpret_cast<std::atomic<uint8_t>*>(at), rank == 0};
}

Status ShmChannel::available(const char* algorithm, int worldSize) const {
  if (worldSize > 1 && region_->base == nullptr) {
    return unimplemented(std::string(algorithm) + ": " + region_->missing);
  }
  return okStatus();
}

ShmPieces::ShmPieces(ShmChannel& channel, CollectiveContext& ctx, const CollectiveRequest& request,
                     const char* what)
    : ctx_(ctx),
      counter_(channel.pieces_),
      seenDone_(channel.seenDone_),
      base_(static_cast<uint8_t*>(channel.region_->base)),
      n_(ctx.size()),
      me_(ctx.rank()),
      parts_(shmParts(ctx.size())),
      slot_(shmSlotBytes(ctx.size())),
      call_(describeCall(request)),
      what_(what) {
  PLEXUS_CHECK(channel.region_->bytes == shmRegionBytes(n_));
  if (seenDone_.size() != static_cast<size_t>(n_)) seenDone_.assign(n_, 0);
}

ShmPieces::Filled& ShmPieces::filled(int rank, uint32_t piece) const {
  static_assert(sizeof(Filled) == kLine);
  return *reinterpret_cast<Filled*>(
      base_ + kLine * (1 + (parts_ + 1) * static_cast<size_t>(rank) + piece % parts_));
}

ShmPieces::Progress& ShmPieces::progress(int rank) const {
  static_assert(sizeof(Progress) == kLine);
  return *reinterpret_cast<Progress*>(
      base_ + kLine * (1 + (parts_ + 1) * static_cast<size_t>(rank) + parts_));
}

uint8_t* ShmPieces::slot(int rank, uint32_t piece) const {
  PLEXUS_CHECK(piece == k_ || piece + 1 == k_);
  if (inline_) return filled(rank, piece).inlined;
  return base_ + kLine * (1 + (parts_ + 1) * static_cast<size_t>(n_)) +
         ((piece % parts_) * static_cast<size_t>(n_) + static_cast<size_t>(rank)) * slot_;
}

uint8_t* ShmPieces::note(int rank) const {
  PLEXUS_CHECK(!inline_);
  return filled(rank, k_).inlined;
}

Status ShmPieces::next() {
  k_ = ++counter_;
  const uint32_t target = k_ - parts_;
  for (int j = 0; j < n_; ++j) {
    // A rank is usually done with the last piece when this one starts, so one read of its flag
    // lets the next P − 1 pieces go without touching that line, which its owner then rewrites
    // in its own cache: every read of it is a cache line from another core. 2 ranks, us per
    // call, six interleaved runs against the build that read it every piece, with the cores
    // apart: 8 B 0.48-0.58 against 0.64-0.71, 64 B 0.47-0.60 against 0.63-0.84, 512 B
    // 0.77-0.87 against 0.84-1.15.
    if (j == me_ || static_cast<int32_t>(seenDone_[j] - target) >= 0) continue;
    PLEXUS_TRY(ctx_.waitShared(progress(j).done, target, sleepersOf(base_), j));
    seenDone_[j] = progress(j).done.load(std::memory_order_acquire);
  }
  return okStatus();
}

Status ShmPieces::share() {
  publishFilled();
  return waitFilled();
}

void ShmPieces::publishFilled() {
  Filled& mine = filled(me_, k_);
  mine.call = call_;
  CollectiveContext::publishShared(mine.piece, k_, sleepersOf(base_));
}

Status ShmPieces::waitFilled() {
  // First the ranks that last ran on this CPU: waiting for one yields the CPU to it at once,
  // and the ranks on other CPUs have mostly filled their parts by the time we get it back.
  // Then every rank, in order (a rank already seen filled costs one read).
  for (int j = 0; j < n_; ++j) {
    if (j == me_ || !ctx_.peerSharesMyCpu(j)) continue;
    PLEXUS_TRY(ctx_.waitShared(filled(j, k_).piece, k_, sleepersOf(base_), j));
  }
  for (int j = 0; j < n_; ++j) {
    if (j == me_) continue;
    PLEXUS_TRY(ctx_.waitShared(filled(j, k_).piece, k_, sleepersOf(base_), j));
    const uint64_t theirs = filled(j, k_).call;
    if (theirs != call_) {
      finish();
      return invalidArgument(std::string(what_) + " #" + std::to_string(ctx_.sequence()) +
                             ": rank " + ctx_.who(j) + " passes " + describeCall(theirs) +
                             " where rank " + ctx_.who(me_) + " passes " + describeCall(call_) +
                             " (do the collectives, counts, types or ops differ between ranks?)");
    }
  }
  return okStatus();
}

void ShmPieces::reduceSlots(DataType type, ReduceOp op, uint8_t* dst, size_t offset, size_t count,
                            const uint8_t* mine, uint8_t* alsoTo) const {
  auto operand = [&](int j) -> const uint8_t* {
    return j == me_ && mine != nullptr ? mine : slot(j) + offset;
  };
  // The last step writes alsoTo too; the ones before it write dst alone.
  auto step = [&](const uint8_t* a, const uint8_t* b, bool last) {
    if (last && alsoTo != nullptr) {
      reduceCpuTwice(type, op, dst, alsoTo, a, b, count);
    } else {
      reduceCpu(type, op, dst, a, b, count);
    }
  };
  step(operand(0), operand(1), n_ == 2);
  for (int j = 2; j < n_; ++j) step(dst, operand(j), j == n_ - 1);
}

void ShmPieces::publishReduced() {
  CollectiveContext::publishShared(progress(me_).reduced[k_ % parts_], k_, sleepersOf(base_));
}

Status ShmPieces::waitReduced(int rank, uint32_t piece) {
  PLEXUS_CHECK(piece == k_ || piece + 1 == k_);
  return ctx_.waitShared(progress(rank).reduced[piece % parts_], piece, sleepersOf(base_), rank);
}

void ShmPieces::finish(uint32_t piece) {
  PLEXUS_CHECK(piece == k_ || piece + 1 == k_);
  CollectiveContext::publishShared(progress(me_).done, piece, sleepersOf(base_));
}

}  // namespace plexus
