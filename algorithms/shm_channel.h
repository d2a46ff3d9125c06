// The piece protocol the shared-memory collectives (shm_allreduce.cc, shm_gather_scatter.cc)
// share: a region every rank of one node has mapped (shared_region.h), cut into P parts of one
// slot per rank (P from 2 to 8: as many as fit beside 256 KiB slots, shm_channel.cc) and P + 1
// flag lines per rank (one per part, one for its progress).
//
// A collective goes through the region in pieces of at most a slot per rank. Piece k uses part
// k mod P, so a rank can fill piece k+1 while slow ranks still read piece k; before it refills a
// part (piece k+P) it waits until every rank has said it is done reading that part (step 1).
// Per piece, rank r: (1) next(): wait for every rank's "done" to reach k−P; (2) write its part
// into slot(r); (3) share(): publish k in its "filled" flag with a description of its call, wait
// for every rank's "filled" to reach k, and compare the calls; (4) read the slots; (5) finish():
// publish k in its "done" flag. Collectives that write a second round of results into their own
// slot (the split all-reduce) signal it with publishReduced()/waitReduced().
//
// Flags sit in lines of one writer each: a rank's "filled" flag of each part with the call it
// describes (and, for a piece of at most kInlineBytes a rank, the piece itself), and its
// "reduced" and "done" flags. A waiter spins, yields, then sleeps on the flag (futex) and the
// writer wakes it only when someone sleeps (CollectiveContext).
//
// Every collective of the communicator walks the same sequence of pieces (one ShmChannel is
// shared by the shm algorithms, and collectives run in order on a communicator), so one
// collective's flags can never be taken for another's; a rank that calls a different
// collective, count, type or op than the others gets InvalidArgument at the first piece.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "algorithms/algorithm.h"
#include "algorithms/context.h"
#include "algorithms/shared_region.h"
#include "src/host_memory.h"

namespace plexus {

/// Bytes of the region the shm collectives need for `worldSize` ranks.
size_t shmRegionBytes(int worldSize);
/// Bytes of each rank's slot for `worldSize` ranks: a multiple of 64 (so of every element
/// size), between 4 KiB and 256 KiB (a node with many ranks gets shorter ones).
size_t shmSlotBytes(int worldSize);

/// Cost of reading (and reducing) a byte of the slots, as a share of the cost model's γ: the
/// slots are reused and stay in cache, where γ prices a reduction streaming through memory.
inline constexpr double kShmCachedReduceShare = 0.7;
/// Cost of copying a byte through the slots, as a share of γ: a copy reads one operand where a
/// reduction reads two, so two thirds of kShmCachedReduceShare. With 0.7 (priced as a
/// reduction) the 2-rank all-gather took the ring from 256 KiB total, where the slots were 2.4x
/// faster (plexus-tune --check, 256 KiB ring 51.3 / shm 21.5 us, 1 MiB 138.5 / 84.0, 4 MiB 556 /
/// 538, 64 MiB 18306 / 18845); with this share the slots are chosen at every size there.
inline constexpr double kShmCopyShare = kShmCachedReduceShare * 2 / 3;

/// Size classes of a ShmStoreChooser: a power of two of bytes, in place or not.
inline constexpr size_t kShmChoiceClasses = 128;

/// Whether a rank writes the parts of its slot the others read with plain or streaming stores
/// (ShmStores), chosen per call. Plain stores leave the lines in the writer's cache, where a core
/// that shares that cache reads them at once; a core that does not (another CCD or socket)
/// takes each dirty line from the writer's cache, and the writer takes it back to refill the
/// slot, one line at a time: on this project's VM, whose two vCPUs sometimes share a cache
/// (hand-off ~40 ns, bench/core_link.cc) and sometimes do not (~165 ns), a 2-rank 8 MiB
/// all-reduce took 650-780 us with plain stores and 1050-1470 with streaming ones in the first
/// state, and 3920-4400 against 890-1000 in the second. Streaming stores send the lines to
/// memory, from where the readers fetch them at memory speed in either state: slower than from a
/// shared cache, far faster than line by line from another core's. Neither mode is right in
/// both, the host gives no sign which it is in (both vCPUs report one L3) and the state changes
/// within seconds, so kAuto measures. Each shm algorithm keeps a chooser of its own (their
/// times per byte differ); per size class (a power of two, in place or not) it seeds each
/// mode (kSeeds), then uses the one whose calls took fewer ticks per byte, timing every call, and
/// tries the other again after kRetryFirst calls of the class, then after twice as many each
/// time the try confirms the choice (up to kRetryMost: a try of the slower mode costs a slow
/// call), back to kRetryFirst when the choice changes. The choice is weighed by the best of its
/// last kKeep calls, so that one call slowed by something else (a rank descheduled on an
/// oversubscribed host) does not move it, and streaming is chosen, and stays chosen, only while
/// it beats plain by kMargin: a try of streaming wins when it beats plain's best by kMargin,
/// plain loses when all of its last kKeep calls are slower than streaming's last try by as much,
/// and plain comes back when its try, or its last try against all of streaming's last kKeep
/// calls, is within the margin. Plain takes what is close: where the modes differ, they differ
/// by 1.5-5x; where they overlap (the cores near, calls of a few us, streaming 1.1-1.2x slower), a
/// margin that protected either choice kept streaming once a noisy try had chosen it (2 ranks,
/// 8 KiB all-reduce out of place: 2928 of 3200 calls streamed, 1.87 us a call against 1.51 in
/// place, which stayed plain). A 2-rank 1 MiB all-gather with the cores near took 39-52 us
/// plain and 57-102 streaming; the automatic choice, with one seeding call of each and no
/// margin, 57-89, and as it is, 40-48. So a state change shows within kKeep calls in the mode
/// in use and at its next try in the other. The mode changes only what reaches memory when,
/// never a value.
///
/// One rank chooses for all (ShmSharedChoice): a rank's call takes as long as the slowest
/// rank's, so each rank timing its own mode measured the others' as well, and two choosers
/// pulled each other: 2 ranks, 32 KiB all-reduce, 5000 calls, rank 0 streamed 11933 of 15602
/// calls where rank 1 streamed 2510, 7.2 us a call, where a run whose ranks both stayed plain
/// took 3.1. Rank 0 decides at the start of call k (of the class) the mode of call k + 1 and
/// stores it in the region before it fills any slot of call k; the others read it at the start
/// of call k + 1, after they waited for rank 0's slots of call k. So every rank uses the mode
/// rank 0 timed, one call after rank 0 chose it (a try may run twice).
struct ShmSharedChoice {
  /// kShmChoiceClasses × 2 bytes in the region (0: plain, 1: streaming); null: each rank
  /// chooses for itself.
  std::atomic<uint8_t>* table = nullptr;
  bool chooser = false;  ///< this rank decides (rank 0); the others follow
};

class ShmStoreChooser {
 public:
  explicit ShmStoreChooser(ShmStores mode) : mode_(mode) {}
  static constexpr uint32_t kRetryFirst = 16;
  static constexpr uint32_t kRetryMost = 512;
  static constexpr uint32_t kKeep = 4;
  static constexpr double kMargin = 1.25;
  /// Seeding calls of a class: plain, streaming, plain (the first call of a size may pay for
  /// the buffers' first touch; the best of each mode counts).
  static constexpr uint8_t kSeeds = 3;
  /// Whether the next call of `bytes` (in place or not: a class of its own) should stream.
  bool streaming(size_t bytes, bool inPlace = false);
  /// What a call of `bytes` that streamed or not took through the slots, in ticks() (a call
  /// that left them for zero copy reports nothing).
  void record(size_t bytes, bool streamed, double elapsed, bool inPlace = false);
  /// Runs one call, `run()` (a Status), in which streamingNow() says how to write the slots:
  /// plainly unless `chooses`; else as chosen for `bytes`, the call timed and recorded when it
  /// succeeds without leftTheSlots().
  ///
  /// With `shared.table` (and kAuto), the mode comes from the region (ShmSharedChoice) and only
  /// the choosing rank times its calls.
  template <typename Run>
  Status call(bool chooses, size_t bytes, bool inPlace, Run&& run, ShmSharedChoice shared = {}) {
    left_ = false;
    const bool follows = chooses && shared.table != nullptr && mode_ == ShmStores::kAuto;
    streamingNow_ =
        follows ? takeShared(bytes, inPlace, shared) : chooses && streaming(bytes, inPlace);
    if (!chooses || (follows && !shared.chooser)) return run();
    const uint64_t start = ticks();
    Status status = run();
    const uint64_t end = ticks();
    // end < start only if the rank moved to a core whose counter lags: no sample.
    if (status.ok() && !left_ && end >= start) {
      record(bytes, streamingNow_, static_cast<double>(end - start), inPlace);
    }
    return status;
  }
  /// A counter that only ever compares calls of one class with each other: the time-stamp
  /// counter on x86-64 (constant rate on current CPUs; about 10 ns to read under KVM, against
  /// 25 for steady_clock, which matters from 4 KiB calls of about 1 us), else nanoseconds.
  static uint64_t ticks() {
#if defined(__x86_64__)
    return __rdtsc();
#else
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
#endif
  }
  /// Whether the call in progress writes its slot with streaming stores.
  bool streamingNow() const { return streamingNow_; }
  /// The call in progress leaves the slots (zero copy): nothing to measure (and if it goes back
  /// to them: a mix).
  void leftTheSlots() { left_ = true; }

 private:
  struct SizeClass {
    uint8_t seeds = 0;                   // seeding calls so far
    std::array<double, 2> last{};        // ticks per byte of the last call [plain, streaming]
    bool streams = false;                // the choice
    std::array<double, kKeep> recent{};  // the choice's last calls (ring; 0: none)
    uint32_t calls = 0;                  // of the choice since it was made
    uint32_t untilTry = 0;               // calls of the choice before the other's next try
    uint32_t interval = kRetryFirst;     // untilTry after that try
    uint32_t sharedCalls = 0;            // calls of the class that took a shared mode
    void choose(bool streaming, double perByte);  // with its first call
    double best() const;                          // of `recent`
  };
  static size_t classIndex(size_t bytes, bool inPlace);
  SizeClass& classOf(size_t bytes, bool inPlace) { return classes_[classIndex(bytes, inPlace)]; }
  // This call's mode from the shared table; the choosing rank also stores the next call's.
  bool takeShared(size_t bytes, bool inPlace, ShmSharedChoice shared);
  // Whether streaming's ticks per byte beat plain's by kMargin.
  static bool leads(double streaming, double plain) { return streaming * kMargin < plain; }

  ShmStores mode_;
  std::array<SizeClass, kShmChoiceClasses> classes_{};
  bool streamingNow_ = false;
  bool left_ = false;  // by log2 of the bytes, in place or not
};

/// Copies into this rank's slot with plain or streaming stores (ShmStoreChooser; streaming ones
/// unfenced: streamingFence() before the part is published).
void copyIntoSlot(bool streaming, uint8_t* dst, const uint8_t* src, size_t bytes);

/// Where the shm reduce-scatter and all-gather start choosing how to write their slots
/// (ShmStoreChooser), by their longer buffer (the all-reduce has its own threshold).
inline constexpr size_t kShmStoreChoiceFromBytes = 32 * 1024;

/// The region and the count of pieces this rank has run through it, shared by the shm
/// algorithms of one communicator.
class ShmChannel {
 public:
  ShmChannel(const SharedRegion* region, ShmStores stores) : region_(region), stores_(stores) {}
  /// OK when the communicator has the region (or `worldSize` is 1); else Unimplemented saying
  /// why, prefixed by `algorithm`.
  Status available(const char* algorithm, int worldSize) const;
  /// The other ranks' memAlloc buffers this rank has mapped (the zero-copy all-reduce).
  PeerMappings& peers() { return peers_; }
  /// How this rank writes what the others read from its slot (each algorithm keeps its own
  /// ShmStoreChooser of this mode: their times per byte differ).
  ShmStores stores() const { return stores_; }
  /// Where rank 0 publishes the store mode of `kind`'s calls (all-reduce, reduce-scatter or
  /// all-gather) for all ranks; none without a region.
  ShmSharedChoice sharedChoice(CollectiveKind kind, int rank, int worldSize) const;

 private:
  friend class ShmPieces;
  const SharedRegion* region_;
  uint32_t pieces_ = 0;  // the same on every rank: each rank runs the same pieces
  // Per rank, the last value of its "done" flag this rank has read: the flag only grows, so a
  // piece whose wait that value already satisfies reads nothing (ShmPieces::next).
  std::vector<uint32_t> seenDone_;
  PeerMappings peers_;
  ShmStores stores_;
};

/// One collective's walk through the channel's region, piece by piece (see the file comment).
class ShmPieces {
 public:
  /// `request`'s collective, count, type and op are what share() compares between ranks;
  /// `what` names the algorithm in errors ("shm all-reduce").
  ShmPieces(ShmChannel& channel, CollectiveContext& ctx, const CollectiveRequest& request,
            const char* what);

  /// The longest piece a rank's "filled" line carries itself (inlineSlots()).
  static constexpr size_t kInlineBytes = 48;

  size_t slotBytes() const { return slot_; }
  /// From now on, slot(r) is kInlineBytes inside the line where rank r publishes the current
  /// piece's part, instead of in the slots: a piece that short reaches the readers with the
  /// flag that publishes it, one cache line from each rank where a slot would be a second. Every
  /// rank of the collective must choose the same; share() catches a rank whose call differs before
  /// anything is read.
  void inlineSlots() { inline_ = true; }
  /// The spare bytes (kInlineBytes) of the line in which this rank publishes the current
  /// piece, which share()/publishFilled() publish with it: a note the others read with
  /// noteOf(j) after waitFilled(), in the piece's own round. Not with inlineSlots() (the piece is
  /// there).
  uint8_t* note() const { return note(me_); }
  const uint8_t* noteOf(int rank) const { return note(rank); }
  /// Starts the next piece: waits until every rank has finished reading the part it uses.
  Status next();
  /// The current piece's number (what the piece-taking calls below take).
  uint32_t current() const { return k_; }
  /// Rank `rank`'s slot in the current piece's part.
  uint8_t* slot(int rank) const { return slot(rank, k_); }
  /// Rank `rank`'s slot in piece `piece`'s part: the current piece or the one before it.
  uint8_t* slot(int rank, uint32_t piece) const;
  /// publishFilled(), then waitFilled().
  Status share();
  /// Publishes that this rank's slot holds its part of the current piece.
  void publishFilled();
  /// Waits for every rank's part of the current piece. InvalidArgument naming both calls when a
  /// rank passes a different one; the piece is then finished (so no rank waits on this one), and
  /// every disagreeing rank sees it here.
  Status waitFilled();
  /// dst[0, count) = slot_0 op slot_1 op … op slot_{n−1}, each slot read from byte `offset`:
  /// in rank order whichever rank runs it, so every rank gets bitwise the same result. With
  /// `mine`, this rank's operand is read from there instead of from its slot; with `alsoTo`,
  /// the result is written there as well, in the same pass (it may be `mine`, not dst).
  void reduceSlots(DataType type, ReduceOp op, uint8_t* dst, size_t offset, size_t count,
                   const uint8_t* mine = nullptr, uint8_t* alsoTo = nullptr) const;
  /// Publishes that this rank wrote its second-round result into its slot.
  void publishReduced();
  /// Waits until rank `rank` has published its second-round result of the current piece (or of
  /// `piece`, the one before it).
  Status waitReduced(int rank) { return waitReduced(rank, k_); }
  Status waitReduced(int rank, uint32_t piece);
  /// Publishes that this rank has finished reading the current piece's part (or `piece`'s: a
  /// rank that runs two pieces at once finishes the earlier one while the later one is current,
  /// and must finish them in order).
  void finish() { finish(k_); }
  void finish(uint32_t piece);

 private:
  struct Filled;
  struct Progress;
  Filled& filled(int rank, uint32_t piece) const;  // in `piece`'s part
  uint8_t* note(int rank) const;
  Progress& progress(int rank) const;

  CollectiveContext& ctx_;
  uint32_t& counter_;
  std::vector<uint32_t>& seenDone_;
  uint8_t* base_;
  int n_;
  int me_;
  uint32_t parts_;
  size_t slot_;
  uint64_t call_;
  const char* what_;
  uint32_t k_ = 0;
  bool inline_ = false;
};

}  // namespace plexus
