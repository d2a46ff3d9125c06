#include "algorithms/context.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <vector>

#include "src/check.h"

namespace plexus {
namespace {

// Tag layout: [space: 2 bits][sequence: 14 bits][step: 16 bits][chunk: 16 bits] = kTagBits.
// Collectives run one at a time per communicator, so 14 bits of sequence separate a
// collective's messages from its neighbours'; chunks wrap, which is safe because equal tags
// match in send order (tests/algorithms/allreduce_test.cc, AllReduceTags). Point-to-point tags are
// [space][46-bit ordinal of the pair's message].
constexpr int kSpaceBits = 2;
constexpr int kSeqBits = 14;
constexpr int kStepBits = 16;
constexpr int kChunkBits = kTagBits - kSpaceBits - kSeqBits - kStepBits;
static_assert(kChunkBits == 16);
constexpr int kSpaceShift = kTagBits - kSpaceBits;

uint64_t spaceBits(TagSpace space) { return uint64_t{static_cast<uint8_t>(space)} << kSpaceShift; }

// Longest a driver blocks at once: short enough to re-check the deadline and abort flag.
constexpr auto kMaxBlock = std::chrono::milliseconds(2);
// How long an idle driver yields its core before it blocks: oversubscribed ranks hand the
// core to each other this way (Open MPI yields throughout) instead of paying sleep/wake-up
// round trips through the kernel on every ring step.
constexpr auto kYieldWindow = std::chrono::microseconds(2000);

// Polls between two clock reads while the driver is busy or spinning (see poll()).
constexpr int kPollsPerClockRead = 8;

// Tells the core we are spinning on memory another core writes (frees the sibling hyperthread).
inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Checks of a shared-memory word between two clock reads while spinning (see waitShared).
constexpr int kSharedChecksPerClockRead = 16;

// Longest the error path waits for cancelled transfers to be released.
constexpr auto kCancelWait = std::chrono::milliseconds(500);

}  // namespace

void CollectiveContext::begin(uint64_t sequence, const char* opName,
                              std::chrono::milliseconds timeout, std::chrono::microseconds spin,
                              TagSpace space) {
  sequence_ = sequence;
  space_ = space;
  opName_ = opName;
  timeout_ = timeout;
  deadline_ = kNoDeadlineYet;
  spin_ = spin;
  idle_ = false;
  yielding_ = false;
  pollsSinceClock_ = 0;
}

uint64_t CollectiveContext::tag(uint32_t step, uint32_t chunk) const {
  PLEXUS_CHECK(step < (1u << kStepBits));
  uint64_t seq = sequence_ & ((uint64_t{1} << kSeqBits) - 1);
  uint64_t c = chunk & ((uint64_t{1} << kChunkBits) - 1);
  return spaceBits(space_) | (seq << (kStepBits + kChunkBits)) | (uint64_t{step} << kChunkBits) | c;
}

uint64_t CollectiveContext::pointToPointTag(uint64_t ordinal) {
  return spaceBits(TagSpace::kPointToPoint) | (ordinal & ((uint64_t{1} << kSpaceShift) - 1));
}

bool CollectiveContext::fromEarlierCollective(uint64_t tag, uint64_t current) {
  const uint64_t collective = spaceBits(TagSpace::kCollective),
                 spaceMask = uint64_t{3} << kSpaceShift;
  if ((tag & spaceMask) != collective || (current & spaceMask) != collective) return false;
  constexpr uint64_t kSeqMask = (uint64_t{1} << kSeqBits) - 1;
  const uint64_t behind = (((current >> (kStepBits + kChunkBits)) & kSeqMask) -
                           ((tag >> (kStepBits + kChunkBits)) & kSeqMask)) &
                          kSeqMask;
  return behind != 0 && behind < (uint64_t{1} << (kSeqBits - 1));
}

bool CollectiveContext::progressAll() {
  bool moved = false;
  for (Transport* t : transports_) moved = t->progress() || moved;
  return moved;
}

void CollectiveContext::cancelEverywhere(TransferRequest* req) {
  if (req->transport != nullptr) req->transport->cancel(req);
}

void CollectiveContext::setRankCpus(RankCpuLine* rankCpus) {
  rankCpus_ = rankCpus;
  peerSharesMyCpu(-1);
}

bool CollectiveContext::peerSharesMyCpu(int peer) {
  if (rankCpus_ == nullptr) return false;
  const int mine = sched_getcpu() + 1;  // 3 ns (vDSO); -1 + 1 = 0 ("not known") on an error
  if (mine <= 0) return false;
  std::atomic<int32_t>& own = rankCpus_[rank_].cpuPlusOne;
  if (own.load(std::memory_order_relaxed) != mine) own.store(mine, std::memory_order_relaxed);
  return peer >= 0 && peer != rank_ &&
         rankCpus_[peer].cpuPlusOne.load(std::memory_order_relaxed) == mine;
}

Status CollectiveContext::poll(int awaitedPeer) {
  const bool moved = progressAll();
  // Abort and deadline are checked even when something moved, not only when idle: a transport
  // can report activity forever (UCX retrying a dead peer's connection) while the collective
  // waits. Reading the clock costs about as much as polling shared memory (~25 ns under KVM;
  // it was 11% of a 2-rank 8 B all-reduce's cycles), so a driver that is busy or spinning reads
  // it on every kPollsPerClockRead-th poll; one that yields or blocks reads it every time.
  if (abortFlag_ != nullptr && abortFlag_->load(std::memory_order_relaxed)) {
    return interrupted({}, "");
  }
  if (moved) {
    idle_ = false;
    yielding_ = false;
  }
  if (!yielding_ && ++pollsSinceClock_ < kPollsPerClockRead) return okStatus();
  pollsSinceClock_ = 0;
  auto now = std::chrono::steady_clock::now();
  if (pastDeadline(now)) {
    // Name who never answered, so that the missing rank can be found from any survivor's log.
    std::string missing;
    for (Transport* t : transports_) {
      for (int p : t->peersWithPendingTransfers()) {
        missing += (missing.empty() ? " (waiting for rank " : ", rank ") + who(p);
      }
    }
    return interrupted(now, missing.empty() ? "" : missing + ")");
  }
  if (moved) return okStatus();
  // Idle: spin for spin_, then yield the core for kYieldWindow (a rank that has work gets it,
  // and we still see our message without paying a wake-up), then block on the transport. No
  // spin when the awaited rank last ran on this CPU: it cannot send before we yield.
  if (!idle_) {
    idle_ = true;
    idleSince_ = now;
    if (peerSharesMyCpu(awaitedPeer)) {
      idleSince_ -= spin_;
      yielding_ = true;
      sched_yield();
    }
  } else if (now - idleSince_ >= spin_ + kYieldWindow) {
    // With one transport per link level, each gets a share of the block (a wake-up on one
    // cannot end a sleep on the other).
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline_ - now);
    auto each = std::min<std::chrono::microseconds>(left, kMaxBlock) /
                static_cast<int64_t>(transports_.size());
    for (Transport* t : transports_) t->waitForEvent(each);
  } else if (now - idleSince_ >= spin_) {
    yielding_ = true;
    sched_yield();
  }
  return okStatus();
}

Status CollectiveContext::interrupted(std::chrono::steady_clock::time_point now,
                                      const std::string& missing) const {
  const std::string what =
      std::string(opName_) + " #" + std::to_string(sequence_) + " on rank " + who(rank_);
  if (abortFlag_ != nullptr && abortFlag_->load(std::memory_order_relaxed)) {
    return aborted(what + ": communicator aborted");
  }
  if (now >= deadline_)
    return deadlineExceeded(what + " timed out waiting for its peers" + missing);
  return okStatus();
}

Status CollectiveContext::waitShared(const std::atomic<uint32_t>& word, uint32_t target,
                                     std::atomic<uint32_t>& sleepers, int peer) {
  auto reached = [&] {
    return static_cast<int32_t>(word.load(std::memory_order_acquire) - target) >= 0;
  };
  if (reached()) return okStatus();
  // No spin when `peer` last ran on this CPU (see poll()).
  const bool yieldAtOnce = peerSharesMyCpu(peer);
  std::chrono::steady_clock::time_point since{};
  // While spinning, kSharedChecksPerClockRead checks between clock reads (~0.5 us: a pause is
  // 26 ns on this host's EPYC, 140 cycles on recent Intel); past the spin, one check and the
  // core goes to a rank that may be the one we wait for (with 64 checks there an 8 B
  // all-reduce of 4 ranks on 2 cores took 8.8-13.1 us; with one, 5.1-6.1).
  int checks = yieldAtOnce ? 1 : kSharedChecksPerClockRead;
  unsigned rounds = 0;
  for (;;) {
    for (int i = 0; i < checks; ++i) {
      if (reached()) return okStatus();
      cpuRelax();
    }
    // The transports still get driven, every 8th round: a peer may wait on this rank for
    // something of theirs (UCX finishing an endpoint's wire-up after a barrier, a rendezvous it
    // must acknowledge).
    if ((++rounds & 7) == 0) progressAll();
    const auto now = std::chrono::steady_clock::now();
    if (pastDeadline(now) ||
        (abortFlag_ != nullptr && abortFlag_->load(std::memory_order_relaxed))) {
      return interrupted(now, " (waiting for rank " + who(peer) + " in shared memory)");
    }
    if (since == std::chrono::steady_clock::time_point{}) since = yieldAtOnce ? now - spin_ : now;
    if (now - since < spin_) continue;
    checks = 1;
    if (now - since < spin_ + kYieldWindow) {
      sched_yield();
      continue;
    }
    // Sleep until publishShared wakes us. The writer stores the word, then reads `sleepers`;
    // we count ourselves in, then the kernel compares the word: one of the two sees the other.
    const uint32_t seen = word.load(std::memory_order_seq_cst);
    if (static_cast<int32_t>(seen - target) >= 0) return okStatus();
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    const auto left = std::min<std::chrono::nanoseconds>(deadline_ - now, kMaxBlock);
    timespec ts{static_cast<time_t>(left.count() / 1000000000),
                static_cast<long>(left.count() % 1000000000)};
    ::syscall(SYS_futex, &word, FUTEX_WAIT, seen, &ts, nullptr, 0);
    sleepers.fetch_sub(1, std::memory_order_seq_cst);
  }
}

void CollectiveContext::publishShared(std::atomic<uint32_t>& word, uint32_t value,
                                      const std::atomic<uint32_t>& sleepers) {
  word.store(value, std::memory_order_seq_cst);
  if (sleepers.load(std::memory_order_seq_cst) != 0) {
    ::syscall(SYS_futex, &word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
  }
}

Status CollectiveContext::check(const TransferRequest& req, int peer, const char* what,
                                size_t expectedBytes) const {
  if (!req.status.ok()) {
    return Status(req.status.code(), std::string(opName_) + " #" + std::to_string(sequence_) +
                                         ": " + what + " rank " + who(peer) + " on rank " +
                                         who(rank_) + ": " + req.status.message());
  }
  if (expectedBytes != SIZE_MAX && req.bytes != expectedBytes) {
    return invalidArgument(std::string(opName_) + " #" + std::to_string(sequence_) + ": rank " +
                           who(peer) + " sent " + std::to_string(req.bytes) + " bytes where rank " +
                           who(rank_) + " expected " + std::to_string(expectedBytes) +
                           " (do counts or types differ between ranks?)");
  }
  return okStatus();
}

Status CollectiveContext::waitAll(TransferRequest* reqs, const int* peers, size_t n) {
  for (;;) {
    size_t pending = 0;
    while (pending < n && reqs[pending].done) ++pending;
    if (pending == n) break;
    Status s = poll(peers[pending]);
    if (!s.ok()) {
      cancelAll(reqs, n);
      return s;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    PLEXUS_TRY(check(reqs[i], peers[i], "exchange with"));
  }
  return okStatus();
}

void CollectiveContext::cancelAll(TransferRequest* reqs, size_t n) {
  std::vector<TransferRequest*> ptrs(n);
  for (size_t i = 0; i < n; ++i) ptrs[i] = &reqs[i];
  cancelAll(ptrs.data(), n);
}

void CollectiveContext::cancelAll(TransferRequest* const* reqs, size_t n) {
  for (size_t i = 0; i < n; ++i) cancelEverywhere(reqs[i]);
  // Cancellation completes inside progress(); bound the wait so a wedged transport cannot hang
  // the error path. A transfer already matched to a dead peer's rendezvous may never complete:
  // it is abandoned, and the transport then never touches the request again.
  auto until = std::chrono::steady_clock::now() + kCancelWait;
  for (;;) {
    bool all = true;
    for (size_t i = 0; i < n; ++i) all = all && (reqs[i]->done || reqs[i]->handle == nullptr);
    if (all) return;
    if (std::chrono::steady_clock::now() > until) {
      for (size_t i = 0; i < n; ++i) {
        if (reqs[i]->transport != nullptr) reqs[i]->transport->abandon(reqs[i]);
      }
      return;
    }
    progressAll();
  }
}

std::string CollectiveContext::who(int rank) const {
  std::string name = std::to_string(rank);
  if (worldRanks_ != nullptr && rank >= 0 && rank < static_cast<int>(worldRanks_->size()) &&
      (*worldRanks_)[rank] != rank) {
    name += " (world rank " + std::to_string((*worldRanks_)[rank]) + ")";
  }
  return name;
}

void* CollectiveContext::scratch(size_t bytes) {
  size_t words = (bytes + sizeof(uint64_t) - 1) / sizeof(uint64_t);
  if (scratch_.size() < words) scratch_.resize(words);
  return scratch_.data();
}

TransferRequest* CollectiveContext::requests(size_t n) {
  if (requests_.size() < n) requests_.resize(n);
  return requests_.data();
}

}  // namespace plexus
