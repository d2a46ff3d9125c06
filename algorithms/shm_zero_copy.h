// Zero copy for the shared-memory collectives (shm_allreduce.cc, shm_gather_scatter.cc): when
// every rank's buffers lie in memAlloc memory (include/plexus/memory.h), the ranks map each
// other's buffers and move the data straight from the inputs to the outputs, with no slot in
// between. Which buffers must be shared is the collective's: the all-reduce stores into every
// rank's output (its inputs and outputs), the all-gather and reduce-scatter read the others'
// inputs and write only their own output (their inputs).
//
// Where a rank's buffers lie travels as a note with the first piece of the slot path (its pid
// and two SharedBufferRefs in the piece's spare kInlineBytes: ShmPieces::note), so a call on
// other memory pays nothing for asking. A rank whose buffers are shared leaves its part of that
// piece out (copying it would only pull lines the others wrote in the last call). After the
// piece's round every rank reads the same notes and so reaches the same verdict (read()):
// - no rank's buffers are shared: go on with the slots;
// - every rank's are: drop the piece; map the others' buffers; a round in which the ranks agree
//   that every one mapped every other's (a rank outside the others' pid namespace, or another
//   user, cannot); the collective's own moves; a last round (every output is whole and no rank
//   touches another's buffers any more), or, when some rank could not map, the slots again,
//   not asking;
// - only some are: their parts of the piece are missing, so start again on the slots, not asking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "algorithms/shm_channel.h"
#include "src/host_memory.h"

namespace plexus {

/// A collective whose longer buffer (the input or the output) has at least this many bytes asks
/// whether every rank's buffers are shared; below it the two extra flag rounds cost what the
/// slots save. 2 ranks, all-reduce, us, zero copy against the slots on the same memory: 4 KiB
/// 0.92-0.99 against 0.83-1.07, 16 KiB 1.27-1.34 against 2.95-3.91, 64 KiB 1.9-2.5 against 14.6.
inline constexpr size_t kShmZeroCopyFromBytes = 16 * 1024;

/// Where every rank's buffers of one collective lie, and this rank's view of them.
class ShmBufferPlaces {
 public:
  enum class Verdict { kGoOn, kZeroCopy, kStartAgain };
  /// Which of every rank's buffers the collective's zero copy touches, so must be shared.
  enum class Shared { kInputsAndOutputs, kInputs };

  explicit ShmBufferPlaces(Shared needs) : needs_(needs) {}

  /// Writes this rank's pid and where `send` (`sendBytes` long) and `recv` (`recvBytes`) lie
  /// into the current piece's note; true when the buffers the collective needs shared lie in
  /// memAlloc memory (the rank then leaves its part of the piece out).
  bool note(ShmPieces& pieces, const void* send, size_t sendBytes, const void* recv,
            size_t recvBytes) const;
  /// After the first piece's round (waitFilled), from every rank's note: every rank reads the
  /// same notes, so all reach the same verdict.
  Verdict read(const ShmPieces& pieces, int n);

  /// After Verdict::kZeroCopy, with the first piece finished: maps every other rank's buffers
  /// (each rank's input `sendBytes` long, its output `recvBytes`), agrees in a round that every
  /// rank mapped all of them, runs `move(ins, outs)` (every rank's input and output, indexed by
  /// rank, this rank's own the caller's; with Shared::kInputs the others' outputs are nullptr),
  /// and ends with a last round. *done is false, and nothing moved on any rank, when some rank
  /// could not map another's buffers. `what` names the algorithm in errors ("shm all-reduce").
  template <class Move>
  Status run(ShmChannel& channel, CollectiveContext& ctx, const CollectiveRequest& req,
             const char* what, size_t sendBytes, size_t recvBytes, Move&& move, bool* done) {
    *done = false;
    ShmPieces rounds(channel, ctx, req, what);
    bool mapped = false;
    PLEXUS_TRY(mapAll(channel, ctx, req, sendBytes, recvBytes, rounds, &mapped));
    if (!mapped) return okStatus();
    move(static_cast<const uint8_t* const*>(ins_.data()), outs_.data());
    PLEXUS_TRY(rounds.next());
    PLEXUS_TRY(rounds.share());
    rounds.finish();
    *done = true;
    return okStatus();
  }

 private:
  struct Place {
    int32_t pid = 0;
    SharedBufferRef send, recv;
  };
  // Maps the buffers and runs the round that says whether every rank mapped all of them.
  Status mapAll(ShmChannel& channel, CollectiveContext& ctx, const CollectiveRequest& req,
                size_t sendBytes, size_t recvBytes, ShmPieces& rounds, bool* mapped);

  // Whether `p` has what the collective needs shared.
  bool hasShared(const Place& p) const {
    return p.send.fd >= 0 && (needs_ == Shared::kInputs || p.recv.fd >= 0);
  }

  Shared needs_;
  std::vector<Place> places_;
  std::vector<const uint8_t*> ins_;
  std::vector<uint8_t*> outs_;
};

}  // namespace plexus
