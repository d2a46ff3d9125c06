#include "algorithms/shm_mailbox.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "src/check.h"

namespace plexus {
namespace {

constexpr size_t kLine = 64;
// Per ordered pair, a ring of at most this many bytes, and messages of at most a quarter of it
// and of kMaxMessageBytes. A sender rewrites a byte of its ring only after a ring's worth of
// messages: with 8 boxes of 16 KiB, which a 4-rank ring all-reduce of 64 KiB reused every call
// and a half, each rewrite took the lines back from the reader's cache one at a time (4 ranks
// on 2 cores, `plexus-perf allreduce -a ring -b 64K`: 41-74 us against UCX's 34-40); with 32
// such boxes, 29-32 against 31-33.
constexpr size_t kMaxRingBytes = 512 * 1024;
constexpr size_t kMaxMessageBytes = 64 * 1024;
constexpr size_t kMinMessageBytes = 4 * 1024;

// The count of sleeping waiters of all rings, in the region's first line (for publishShared).
std::atomic<uint32_t>& sleepersOf(uint8_t* base) {
  return *reinterpret_cast<std::atomic<uint32_t>*>(base);
}

size_t pairs(int worldSize) {
  const auto n = static_cast<size_t>(worldSize);
  return n * (n - 1);
}

size_t ringBytes(int worldSize) {
  if (worldSize < 2) return 0;
  const size_t fit = (ShmMailboxes::kMaxBytes - kLine) / pairs(worldSize) / kLine * kLine;
  return fit <= 2 * kLine ? 0 : std::min(fit - 2 * kLine, kMaxRingBytes);
}

// A pair's block: the sender's line, the receiver's line, the ring.
size_t pairBytes(size_t ring) { return 2 * kLine + ring; }

// What a message of `bytes` takes of the ring: its header line and its lines.
uint64_t footprint(size_t bytes) { return kLine + (bytes + kLine - 1) / kLine * kLine; }

}  // namespace

struct alignas(kLine) ShmMailboxes::Posted {
  std::atomic<uint32_t> count;  // messages published
};

struct alignas(kLine) ShmMailboxes::Consumed {
  std::atomic<uint32_t> offset;  // the ring's stream offset up to which the receiver is done
};

// The line before each message in the ring.
struct alignas(kLine) ShmMailboxes::Header {
  uint64_t tag;                  // of the message
  uint64_t bytes;                // its length
  std::atomic<uint32_t> filled;  // how much of it is there (0 when it is published)
};

size_t ShmMailboxes::messageBytes(int worldSize) {
  const size_t most = std::min(ringBytes(worldSize) / 4 / kLine * kLine, kMaxMessageBytes);
  return most < kMinMessageBytes ? 0 : most;
}

size_t ShmMailboxes::regionBytes(int worldSize) {
  return messageBytes(worldSize) == 0 ? 0
                                      : kLine + pairs(worldSize) * pairBytes(ringBytes(worldSize));
}

ShmMailboxes::ShmMailboxes(void* base, int worldSize, int rank)
    : base_(static_cast<uint8_t*>(base)),
      n_(worldSize),
      me_(rank),
      ring_(ringBytes(worldSize)),
      most_(messageBytes(worldSize)),
      peers_(static_cast<size_t>(worldSize)) {
  PLEXUS_CHECK(most_ != 0 && base_ != nullptr);
}

ShmMailboxes::Pair ShmMailboxes::pair(int from, int to) const {
  PLEXUS_CHECK(from != to && from >= 0 && to >= 0 && from < n_ && to < n_);
  const auto index = static_cast<size_t>(from) * static_cast<size_t>(n_ - 1) +
                     static_cast<size_t>(to < from ? to : to - 1);
  uint8_t* block = base_ + kLine + index * pairBytes(ring_);
  return {reinterpret_cast<Posted*>(block), reinterpret_cast<Consumed*>(block + kLine),
          block + 2 * kLine};
}

uint64_t ShmMailboxes::place(uint64_t offset) const {
  const size_t left = ring_ - offset % ring_;
  return left < footprint(most_) ? offset + left : offset;
}

Status ShmMailboxes::send(CollectiveContext& ctx, int peer, const void* data, size_t bytes,
                          uint64_t tag) {
  PLEXUS_CHECK(carries(bytes));
  const Pair p = pair(me_, peer);
  Stream& out = peers_[peer].out;
  const uint64_t at = place(out.offset), end = at + footprint(bytes);
  // The bytes up to `end` are free once the receiver is done with those a ring before them.
  PLEXUS_TRY(ctx.waitShared(p.consumed->offset, static_cast<uint32_t>(end - ring_),
                            sleepersOf(base_), peer));
  uint8_t* message = p.ring + at % ring_;
  auto* header = reinterpret_cast<Header*>(message);
  header->tag = tag;
  header->bytes = bytes;
  header->filled.store(0, std::memory_order_relaxed);
  out.offset = end;
  CollectiveContext::publishShared(p.posted->count, ++out.count, sleepersOf(base_));
  const auto* from = static_cast<const uint8_t*>(data);
  for (size_t done = 0; done < bytes; done += kFragmentBytes) {
    const size_t upTo = std::min(bytes, done + kFragmentBytes);
    std::memcpy(message + kLine + done, from + done, upTo - done);
    CollectiveContext::publishShared(header->filled, static_cast<uint32_t>(upTo),
                                     sleepersOf(base_));
  }
  return okStatus();
}

Status ShmMailboxes::awaitNext(CollectiveContext& ctx, int peer, size_t bytes, uint64_t tag,
                               Message* message) {
  const Pair p = pair(peer, me_);
  for (;;) {
    const Stream& in = peers_[peer].in;
    PLEXUS_TRY(ctx.waitShared(p.posted->count, in.count + 1, sleepersOf(base_), peer));
    const uint64_t at = place(in.offset);
    uint8_t* start = p.ring + at % ring_;
    const auto* header = reinterpret_cast<const Header*>(start);
    const uint64_t gotTag = header->tag, gotBytes = header->bytes;
    Message m{start + kLine, &header->filled, at + footprint(gotBytes)};  // the sender's length
    if (gotTag != tag && CollectiveContext::fromEarlierCollective(gotTag, tag)) {
      // Sent in a collective that failed on this rank before it took the message (as the
      // transport would leave it unmatched): dropped.
      release(peer, m);
      continue;
    }
    if (gotTag != tag && CollectiveContext::fromEarlierCollective(tag, gotTag)) {
      // The peer is a collective ahead (this rank's last one failed before the peer sent to
      // it): its message stays for that collective.
      return invalidArgument("rank " + ctx.who(peer) + "'s next message to rank " + ctx.who(me_) +
                             " in shared memory belongs to a later collective (tag " +
                             std::to_string(gotTag) + ", expected " + std::to_string(tag) +
                             "): did an earlier collective fail on some ranks only?");
    }
    *message = m;
    if (gotTag == tag && gotBytes == bytes) return okStatus();
    if (gotTag != tag) {
      return invalidArgument("rank " + ctx.who(peer) + "'s next message to rank " + ctx.who(me_) +
                             " in shared memory has tag " + std::to_string(gotTag) +
                             " where it expected " + std::to_string(tag) +
                             " (do the ranks call different collectives?)");
    }
    return invalidArgument("rank " + ctx.who(peer) + " sent " + std::to_string(gotBytes) +
                           " bytes where rank " + ctx.who(me_) + " expected " +
                           std::to_string(bytes) + " (do counts or types differ between ranks?)");
  }
}

Status ShmMailboxes::awaitFilled(CollectiveContext& ctx, int peer, const Message& message,
                                 size_t end) {
  return ctx.waitShared(*message.filled, static_cast<uint32_t>(end), sleepersOf(base_), peer);
}

void ShmMailboxes::release(int peer, const Message& message) {
  Stream& in = peers_[peer].in;
  ++in.count;
  in.offset = message.end;
  CollectiveContext::publishShared(pair(peer, me_).consumed->offset,
                                   static_cast<uint32_t>(message.end), sleepersOf(base_));
}

}  // namespace plexus
