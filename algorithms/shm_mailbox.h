// Mailboxes in a one-node communicator's shared region: per ordered pair of ranks (sender →
// receiver) a ring of bytes through which the algorithms' short messages go instead of the
// transport (exchange() in primitives.h routes them).
//
// Why: a message through UCX's shared-memory transport is copied twice, into its FIFO by the
// sender and out of it by the receiver, and a reducing step then reads the copy once more. From
// a mailbox the receiver reduces straight into its output: the copy out is gone for every
// reducing step (all-reduce by rhd, 4 ranks, 64 KiB: two of its three 32 KiB receives), and so
// is the transport's per-message work (tag matching, fragments, its queues).
//
// Protocol, per pair. The sender places each message in its ring after the one before it (at
// the ring's start when what is left to the end could not hold the longest message): a header
// line (tag, length, and how much of it is there) and the message. It waits until the receiver
// is done with the bytes a ring before the message's end ("consumed", a stream offset), writes
// the header, publishes the count of messages it has sent ("posted"), then copies the message
// in kFragmentBytes at a time, publishing after each how much is there. The receiver waits for
// "posted" to count its next message, reads the header where it placed that message (it
// follows the sender's placement from the lengths in the headers), checks tag and length, uses
// each fragment as it arrives, and publishes its new "consumed" offset. So a pair's messages
// are taken in the order they were sent: a rank must receive a peer's messages in the order
// the peer sends them (every algorithm's steps do), and the sender runs up to a ring ahead.
// The waits are CollectiveContext's (spin, yield, futex) under the collective's deadline; the
// shared counts wrap modulo 2^32 (a ring is far shorter).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "algorithms/context.h"
#include "plexus/status.h"

namespace plexus {

class ShmMailboxes {
 public:
  /// Longest message of the mailboxes of `worldSize` ranks: each ordered pair's ring gets its
  /// share of kMaxBytes, up to 512 KiB, and a message at most a quarter of it and 64 KiB (so 64
  /// KiB up to 6 ranks, 37 KiB at 8, 8.5 KiB at 16); 0 (no mailboxes) for one rank, or where
  /// that would be under 4 KiB (from 24 ranks).
  static size_t messageBytes(int worldSize);
  /// Bytes of the region the mailboxes of `worldSize` ranks take (0: none).
  static size_t regionBytes(int worldSize);
  /// The mailboxes at `base` (regionBytes(worldSize) bytes, zero-filled at creation, mapped by
  /// every rank) as rank `rank` sees them.
  ShmMailboxes(void* base, int worldSize, int rank);

  /// Whether a message of `bytes` goes through the mailboxes: both ends of a message compute
  /// the same from its length.
  bool carries(size_t bytes) const { return bytes != 0 && bytes <= most_; }
  /// Copies `bytes` (carries(bytes)) at `data` into the ring to `peer` once there is room, and
  /// publishes it with `tag`. On an error (deadline, abort) nothing was sent.
  Status send(CollectiveContext& ctx, int peer, const void* data, size_t bytes, uint64_t tag);
  /// Waits for the next message from `peer`; when it has `tag` and `bytes`, hands it to
  /// `use(offset, data, length)` a fragment at a time as the sender's copy fills it (so the
  /// receiver's work on one overlaps the sender's copy of the next), then frees its room. A
  /// message sent in an earlier collective (one that failed here before taking it) is dropped;
  /// one of a later collective is an InvalidArgument and stays; one of another tag or length
  /// is an InvalidArgument naming both (the ranks disagree on the call), and is taken all the
  /// same.
  template <typename Use>
  Status receive(CollectiveContext& ctx, int peer, size_t bytes, uint64_t tag, Use&& use) {
    Message m;
    Status s = awaitNext(ctx, peer, bytes, tag, &m);
    for (size_t at = 0; s.ok() && at < bytes; at += kFragmentBytes) {
      const size_t end = std::min(bytes, at + kFragmentBytes);
      s = awaitFilled(ctx, peer, m, end);
      if (s.ok()) use(at, m.data + at, end - at);
    }
    if (m.data != nullptr) release(peer, m);
    return s;
  }

  /// The sender publishes how much of a message is there every this many bytes (a multiple of
  /// every element size).
  static constexpr size_t kFragmentBytes = 4096;
  /// The largest region the mailboxes take.
  static constexpr size_t kMaxBytes = 8 * 1024 * 1024;

 private:
  struct Posted;
  struct Consumed;
  struct Header;
  struct Pair {
    Posted* posted;
    Consumed* consumed;
    uint8_t* ring;
  };
  // One direction of a pair as this rank has walked it: messages and the stream offset past
  // the last one.
  struct Stream {
    uint32_t count = 0;
    uint64_t offset = 0;
  };
  struct Peer {
    Stream out;  // to the peer
    Stream in;   // from it
  };
  // A message being received: its bytes, how many of them are there, where the next begins.
  struct Message {
    const uint8_t* data = nullptr;
    const std::atomic<uint32_t>* filled = nullptr;
    uint64_t end = 0;
  };
  Pair pair(int from, int to) const;
  // The stream offset where a message that would start at `offset` goes (see the file comment).
  uint64_t place(uint64_t offset) const;
  // Waits for the next message from `peer` to be published, dropping those of earlier
  // collectives; fills *message once it is there, also when its tag or length is not what this
  // rank expects, unless it belongs to a later collective.
  Status awaitNext(CollectiveContext& ctx, int peer, size_t bytes, uint64_t tag, Message* message);
  // Waits until the first `end` bytes of the message are there.
  Status awaitFilled(CollectiveContext& ctx, int peer, const Message& message, size_t end);
  void release(int peer, const Message& message);

  uint8_t* base_;
  int n_;
  int me_;
  size_t ring_;  // bytes of each pair's ring
  size_t most_;  // longest message
  std::vector<Peer> peers_;
};

}  // namespace plexus
