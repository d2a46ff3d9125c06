// CollectiveContext: what an algorithm may use to talk to its peers — connections, tags unique
// to the running collective, reusable scratch memory, and a wait that drives the transport
// (spinning briefly, then blocking) under the communicator's deadline and abort flag.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "algorithms/shared_region.h"
#include "plexus/status.h"
#include "transports/transport.h"

namespace plexus {

class ShmMailboxes;

/// Which traffic a tag belongs to. Each space has its own numbering, so the messages of one
/// can never match another's: collectives are numbered by the communicator's collective
/// sequence (every rank takes part in each), point-to-point messages by an ordinal per pair of
/// ranks (only the two take part), and the teardown barrier stands apart from both (a rank
/// that failed a collective must not have its goodbye taken for the collective's data).
enum class TagSpace : uint8_t { kCollective = 0, kPointToPoint = 1, kTeardown = 2 };

class CollectiveContext {
 public:
  /// `transports`: every transport the connections come from (one, or one per link level);
  /// the context drives them all.
  CollectiveContext(int rank, int size, std::vector<Transport*> transports,
                    std::vector<std::unique_ptr<Connection>>* connections,
                    const std::atomic<bool>* abortFlag, size_t chunkBytes)
      : rank_(rank),
        size_(size),
        transports_(std::move(transports)),
        connections_(connections),
        abortFlag_(abortFlag),
        chunkBytes_(chunkBytes) {}

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// Pipeline chunk size (PLEXUS_CHUNK_BYTES).
  size_t chunkBytes() const { return chunkBytes_; }
  /// The connection to `peer` (never this rank).
  Connection& peer(int peer) { return *(*connections_)[peer]; }

  /// Starts one collective: its sequence number (for tags and messages), its timeout, its name
  /// for error messages, and the spin time before blocking. The deadline is `timeout` after the
  /// first clock read of its waits (see pastDeadline), so a collective whose waits all end
  /// within their first polls reads no precise clock.
  void begin(uint64_t sequence, const char* opName, std::chrono::milliseconds timeout,
             std::chrono::microseconds spin, TagSpace space = TagSpace::kCollective);
  uint64_t sequence() const { return sequence_; }
  /// A tag unique to (this collective, step, chunk) among the messages between two ranks.
  uint64_t tag(uint32_t step, uint32_t chunk) const;
  /// The tag of the `ordinal`-th point-to-point message from one rank to another (counted
  /// over the communicator's life by sender and receiver alike).
  static uint64_t pointToPointTag(uint64_t ordinal);
  /// Whether `tag` belongs to a collective that ran before `current`'s (both collective tags,
  /// their 14-bit sequence numbers compared modulo 2^14): a message a peer sent in a collective
  /// that failed on this rank before it took it.
  static bool fromEarlierCollective(uint64_t tag, uint64_t current);

  /// Drives the transport once. Returns an error when the deadline passed or the communicator
  /// was aborted; between calls that make no progress it spins, then yields the core, then
  /// blocks briefly. `awaitedPeer`, the rank whose transfer the caller waits for (-1: none in
  /// particular), skips the spin when that rank last ran on this rank's CPU (see
  /// setRankCpus).
  Status poll(int awaitedPeer = -1);
  /// Waits until every request in `reqs` is done; returns the first failure (with peer context
  /// from `peers`, one per request, also the awaited peer of poll()).
  Status waitAll(TransferRequest* reqs, const int* peers, size_t n);
  /// Turns a finished request into a Status that names the peer, the collective and its
  /// sequence number; checks the received length when `expectedBytes` is given.
  Status check(const TransferRequest& req, int peer, const char* what,
               size_t expectedBytes = SIZE_MAX) const;
  /// Cancels the given requests and waits (bounded) until the transport lets go of them, so
  /// their buffers can be freed after an error.
  void cancelAll(TransferRequest* reqs, size_t n);
  /// The same for requests scattered in memory: all are cancelled first, then awaited under
  /// one bound (so many in-flight chains cannot multiply the wait).
  void cancelAll(TransferRequest* const* reqs, size_t n);

  /// Waits until `word`, which another rank of this host stores into through shared memory,
  /// reaches `target` (counted modulo 2^32): it checks while spinning, then yields the core,
  /// then sleeps on the word (futex, at most kMaxBlock at a time), under the collective's
  /// deadline and the abort flag. `sleepers` counts the sleeping waiters of the region, so that
  /// publishShared wakes only when someone sleeps; `peer`, the rank that stores `word`, is named
  /// in a timeout's message.
  Status waitShared(const std::atomic<uint32_t>& word, uint32_t target,
                    std::atomic<uint32_t>& sleepers, int peer);
  /// Stores `value` into `word` for waitShared's callers and wakes those that sleep on it.
  static void publishShared(std::atomic<uint32_t>& word, uint32_t value,
                            const std::atomic<uint32_t>& sleepers);

  /// Scratch memory reused across collectives (grown on demand, never shrunk).
  void* scratch(size_t bytes);
  /// `n` transfer requests reused across collectives (grown on demand, never shrunk), for an
  /// algorithm whose number in flight depends on the call; reset() each before starting it.
  /// Valid until the next call.
  TransferRequest* requests(size_t n);

  /// Where this communicator's ranks sit in the world communicator (indexed by rank here; must
  /// outlive the context), so that the messages of a split or sub-communicator name the world
  /// rank too: "rank 0 (world rank 2)". Null: the ranks are world ranks.
  void setWorldRanks(const std::vector<int>* worldRanks) { worldRanks_ = worldRanks; }
  /// "3", or "0 (world rank 2)" on a communicator whose ranks differ from the world's.
  std::string who(int rank) const;

  /// Where the ranks last ran: a RankCpuLine per rank in memory they all map (null: not known,
  /// and every wait spins first). A rank stores its CPU into its own line whenever it starts
  /// to wait; a waiter whose awaited rank last ran on its own CPU yields at once instead of
  /// spinning, since that rank cannot run until it does: with 4 ranks on 2 cores, the spin
  /// before every such wait was a tenth or more of a small all-reduce (rhd, 8 B 4.0 -> 3.0 us).
  void setRankCpus(RankCpuLine* rankCpus);
  /// The mailboxes of a one-node communicator's shared region (shm_mailbox.h), through which
  /// exchange() sends the messages they carry; null: none (every message goes through the
  /// transport). Must outlive the context.
  void setMailboxes(ShmMailboxes* mailboxes) { mailboxes_ = mailboxes; }
  ShmMailboxes* mailboxes() const { return mailboxes_; }
  /// Stores the CPU this thread runs on into this rank's line (when it changed), and says
  /// whether `peer` (-1: none) last stored the same one.
  bool peerSharesMyCpu(int peer);

 private:
  int rank_;
  int size_;
  bool progressAll();
  // Aborted when the communicator was aborted, else DeadlineExceeded (+ `missing`) once `now`
  // is past the deadline, else OK. Builds its message: call it once one of the two holds.
  Status interrupted(std::chrono::steady_clock::time_point now, const std::string& missing) const;
  void cancelEverywhere(TransferRequest* req);

  std::vector<Transport*> transports_;
  std::vector<std::unique_ptr<Connection>>* connections_;
  const std::atomic<bool>* abortFlag_;
  const std::vector<int>* worldRanks_ = nullptr;
  RankCpuLine* rankCpus_ = nullptr;
  ShmMailboxes* mailboxes_ = nullptr;
  size_t chunkBytes_;
  uint64_t sequence_ = 0;
  TagSpace space_ = TagSpace::kCollective;
  const char* opName_ = "";
  // True once `now` is past the deadline, which the collective's first call here sets to `now`
  // + timeout_ (its first clock read in a wait): a precise clock read costs ~25 ns under KVM
  // (8% of a 2-rank 8 B all-reduce, where no wait lasts long enough to read the clock), and no
  // wait ends sooner than the timeout after the collective began to wait.
  bool pastDeadline(std::chrono::steady_clock::time_point now) {
    if (deadline_ == kNoDeadlineYet) deadline_ = now + timeout_;
    return now >= deadline_;
  }
  static constexpr std::chrono::steady_clock::time_point kNoDeadlineYet =
      std::chrono::steady_clock::time_point::max();
  std::chrono::milliseconds timeout_{0};
  std::chrono::steady_clock::time_point deadline_ = kNoDeadlineYet;
  std::chrono::microseconds spin_{0};
  std::chrono::steady_clock::time_point idleSince_{};
  bool yielding_ = false;    // idle past the spin: every poll reads the clock
  int pollsSinceClock_ = 0;  // polls since the clock was last read
  bool idle_ = false;
  std::vector<uint64_t> scratch_;  // uint64_t for alignment
  std::vector<TransferRequest> requests_;
};

}  // namespace plexus
