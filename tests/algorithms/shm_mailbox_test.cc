// The mailboxes of a one-node communicator (algorithms/shm_mailbox.h): their layout, the order
// and bytes of what goes through them (wrapping their rings, the sender running ahead), a
// receiver that expects another message, a missing sender, and that the algorithms use them.
#include "algorithms/shm_mailbox.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "plexus/plexus.h"
#include "src/communicator_impl.h"
#include "tests/harness/world.h"

namespace plexus {
namespace {

using namespace std::chrono_literals;
using testing::mentions;
using testing::runWorld;
using testing::WorldOptions;

// One rank's side of a region of mailboxes, driven without a transport.
struct Side {
  Side(void* base, int n, int rank)
      : ctx(rank, n, {}, nullptr, nullptr, 64 * 1024), boxes(base, n, rank) {
    ctx.begin(1, "mailbox test", std::chrono::milliseconds(timeoutMs), 1us);
  }
  static constexpr int timeoutMs = 20000;
  CollectiveContext ctx;
  ShmMailboxes boxes;
};

// Memory like the region's: zero-filled, 64-byte aligned.
std::vector<uint64_t> regionFor(int n) {
  return std::vector<uint64_t>(ShmMailboxes::regionBytes(n) / sizeof(uint64_t) + 8, 0);
}

// The message `i` of a stream: its length varies (a ring of 512 KiB wraps within a few dozen)
// and its bytes name it.
std::vector<uint8_t> message(int i, size_t most) {
  std::vector<uint8_t> m(1 + (static_cast<size_t>(i) * 7919) % most);
  for (size_t b = 0; b < m.size(); ++b) m[b] = static_cast<uint8_t>(i * 31 + b * 7);
  return m;
}

TEST(ShmMailboxes, LayoutGivesEveryPairItsRingWithinItsBound) {
  EXPECT_EQ(ShmMailboxes::messageBytes(1), 0u);
  EXPECT_EQ(ShmMailboxes::regionBytes(1), 0u);
  for (int n : {2, 3, 4}) EXPECT_EQ(ShmMailboxes::messageBytes(n), 64u * 1024) << n;
  EXPECT_GE(ShmMailboxes::messageBytes(8), 32u * 1024);  // a ring's share of 8 MiB: 146 KiB
  for (int n = 2; n <= 1100; n += n < 64 ? 1 : 97) {
    const size_t most = ShmMailboxes::messageBytes(n);
    EXPECT_LE(ShmMailboxes::regionBytes(n), ShmMailboxes::kMaxBytes) << n;
    if (most == 0) continue;
    EXPECT_EQ(most % 64, 0u) << n;
    EXPECT_GE(most, 4096u) << n;
  }
  EXPECT_LT(ShmMailboxes::messageBytes(16), 64u * 1024);
  EXPECT_GT(ShmMailboxes::messageBytes(23), 0u);
  EXPECT_EQ(ShmMailboxes::messageBytes(24), 0u);  // a ring's share would be too short
  EXPECT_EQ(ShmMailboxes::regionBytes(64), 0u);
  EXPECT_EQ(ShmMailboxes::messageBytes(5000), 0u);
}

// 2000 messages of 1 B to 64 KiB, in order and whole, the receiver starting late (the sender
// fills the ring and waits for room) and taking each a fragment at a time.
TEST(ShmMailboxes, MessagesArriveInOrderWholeAcrossManyRingWraps) {
  auto region = regionFor(3);
  constexpr int kMessages = 2000;
  Side sender(region.data(), 3, 2), receiver(region.data(), 3, 0);
  const size_t most = ShmMailboxes::messageBytes(3);
  std::thread send([&] {
    for (int i = 0; i < kMessages; ++i) {
      const auto m = message(i, most);
      Status s = sender.boxes.send(sender.ctx, 0, m.data(), m.size(), 100 + i);
      ASSERT_TRUE(s.ok()) << i << ": " << s.toString();
    }
  });
  std::this_thread::sleep_for(50ms);
  for (int i = 0; i < kMessages; ++i) {
    const auto expected = message(i, most);
    std::vector<uint8_t> got(expected.size(), 0xEE);
    size_t next = 0;
    Status s = receiver.boxes.receive(receiver.ctx, 2, expected.size(), 100 + i,
                                      [&](size_t at, const uint8_t* data, size_t len) {
                                        EXPECT_EQ(at, next);
                                        EXPECT_LE(len, ShmMailboxes::kFragmentBytes);
                                        std::memcpy(got.data() + at, data, len);
                                        next = at + len;
                                      });
    ASSERT_TRUE(s.ok()) << i << ": " << s.toString();
    ASSERT_EQ(next, expected.size()) << i;
    ASSERT_EQ(got, expected) << "message " << i;
  }
  send.join();
}

// A message of another length or tag than the receiver expects is an InvalidArgument naming
// both; it is taken all the same, so the next message still arrives.
TEST(ShmMailboxes, AMessageOfAnotherLengthOrTagIsAnErrorAndTheStreamGoesOn) {
  auto region = regionFor(2);
  Side a(region.data(), 2, 0), b(region.data(), 2, 1);
  const std::vector<uint8_t> m(1000, 7);
  ASSERT_TRUE(a.boxes.send(a.ctx, 1, m.data(), 1000, 5).ok());
  ASSERT_TRUE(a.boxes.send(a.ctx, 1, m.data(), 1000, 6).ok());
  ASSERT_TRUE(a.boxes.send(a.ctx, 1, m.data(), 1000, 7).ok());
  int used = 0;
  auto use = [&](size_t, const uint8_t*, size_t) { ++used; };
  Status s = b.boxes.receive(b.ctx, 0, 4000, 5, use);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(mentions(s, "rank 0 sent 1000 bytes where rank 1 expected 4000")) << s.toString();
  s = b.boxes.receive(b.ctx, 0, 1000, 99, use);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(mentions(s, "tag 6 where it expected 99")) << s.toString();
  EXPECT_EQ(used, 0);
  s = b.boxes.receive(b.ctx, 0, 1000, 7, use);
  EXPECT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(used, 1);
}

// A message sent in a collective that failed on the receiver before it took it is dropped when
// the receiver looks for a later collective's (as the transport leaves it unmatched); one of a
// collective the receiver has not reached yet is an error, and stays for that collective.
TEST(ShmMailboxes, MessagesOfAnEarlierCollectiveAreDroppedAndALaterOnesKept) {
  auto region = regionFor(2);
  Side a(region.data(), 2, 0), b(region.data(), 2, 1);
  const std::vector<uint8_t> stale(100, 1), fresh(300, 2), later(200, 3);
  a.ctx.begin(41, "mailbox test", 20s, 1us);
  ASSERT_TRUE(a.boxes.send(a.ctx, 1, stale.data(), stale.size(), a.ctx.tag(0, 0)).ok());
  ASSERT_TRUE(a.boxes.send(a.ctx, 1, stale.data(), stale.size(), a.ctx.tag(1, 0)).ok());
  a.ctx.begin(42, "mailbox test", 20s, 1us);
  ASSERT_TRUE(a.boxes.send(a.ctx, 1, fresh.data(), fresh.size(), a.ctx.tag(0, 0)).ok());
  a.ctx.begin(43, "mailbox test", 20s, 1us);
  ASSERT_TRUE(a.boxes.send(a.ctx, 1, later.data(), later.size(), a.ctx.tag(0, 0)).ok());

  std::vector<uint8_t> got;
  auto take = [&](size_t at, const uint8_t* data, size_t len) {
    got.resize(at + len);
    std::memcpy(got.data() + at, data, len);
  };
  b.ctx.begin(42, "mailbox test", 20s, 1us);
  Status s = b.boxes.receive(b.ctx, 0, fresh.size(), b.ctx.tag(0, 0), take);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(got, fresh);
  // Collective 42 expects another message from rank 0, which is already in collective 43.
  s = b.boxes.receive(b.ctx, 0, 8, b.ctx.tag(1, 0), take);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(mentions(s, "belongs to a later collective")) << s.toString();
  b.ctx.begin(43, "mailbox test", 20s, 1us);
  got.clear();
  s = b.boxes.receive(b.ctx, 0, later.size(), b.ctx.tag(0, 0), take);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(got, later);
}

// After a collective whose ranks passed different counts (each rank finds a message of the
// wrong length and fails), the next one is right, with mailboxes or without.
TEST(ShmMailboxes, ACollectiveAfterAMismatchedOneIsRight) {
  for (const char* on : {"1", "0"}) {
    for (const char* algo : {"rhd", "ring"}) {
      WorldOptions o = testing::shortTimeout();
      o.env["PLEXUS_SHM_MAILBOXES"] = on;
      o.env["PLEXUS_ALGO"] = std::string("allreduce:") + algo;
      ASSERT_TRUE(runWorld(
          2,
          [](Communicator& comm) {
            std::vector<float> in(3000, 1.0f + comm.rank()), out(3000);
            Status s = comm.allReduce(in.data(), out.data(), comm.rank() == 0 ? 1000 : 3000,
                                      DataType::kFloat32, ReduceOp::kSum);
            EXPECT_FALSE(s.ok());
            EXPECT_NE(s.code(), StatusCode::kInternal) << s.toString();
            s = comm.allReduce(in.data(), out.data(), 3000, DataType::kFloat32, ReduceOp::kSum);
            ASSERT_TRUE(s.ok()) << s.toString();
            for (float v : out) ASSERT_EQ(v, 3.0f);
          },
          o))
          << on << " " << algo;
    }
  }
}

// A receiver whose sender never sends gets DeadlineExceeded naming it, after the collective's
// timeout; so does a sender whose ring stays full.
TEST(ShmMailboxes, AMissingPeerIsATimeoutNamingItNotAHang) {
  auto region = regionFor(2);
  Side a(region.data(), 2, 0), b(region.data(), 2, 1);
  b.ctx.begin(2, "mailbox test", 200ms, 1us);
  const auto t0 = std::chrono::steady_clock::now();
  Status s = b.boxes.receive(b.ctx, 0, 8, 1, [](size_t, const uint8_t*, size_t) {});
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.toString();
  EXPECT_TRUE(mentions(s, "waiting for rank 0 in shared memory")) << s.toString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);

  a.ctx.begin(2, "mailbox test", 200ms, 1us);
  const std::vector<uint8_t> m(ShmMailboxes::messageBytes(2), 1);
  for (int i = 0;; ++i) {
    s = a.boxes.send(a.ctx, 1, m.data(), m.size(), 1);
    if (!s.ok()) break;
    ASSERT_LT(i, 100) << "a ring never filled";
  }
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.toString();
  EXPECT_TRUE(mentions(s, "waiting for rank 1 in shared memory")) << s.toString();
}

// A one-node communicator has them unless PLEXUS_SHM_MAILBOXES=0, and its all-reduces through
// them (rhd and ring, sizes they carry and past them) give every rank the same bits as the
// transport does. Each world's rank 0 writes its results' hashes to a file per setting; the
// test compares the files.
TEST(ShmMailboxes, AOneNodeCommunicatorUsesThemAndGetsTheSameBitsAsWithout) {
  const std::string prefix = ::testing::TempDir() + "mailbox_bits_" + std::to_string(getpid());
  for (const char* on : {"1", "0"}) {
    for (const char* algo : {"rhd", "ring"}) {
      WorldOptions o;
      o.env["PLEXUS_SHM_MAILBOXES"] = on;
      o.env["PLEXUS_ALGO"] = std::string("allreduce:") + algo;
      const std::string file = prefix + "_" + on;
      ASSERT_TRUE(runWorld(
          4,
          [&](Communicator& comm) {
            EXPECT_EQ(comm.impl()->mailboxes() != nullptr, std::string(on) == "1");
            std::string lines;
            for (size_t count : {size_t{1}, size_t{1000}, size_t{16384}, size_t{70001}}) {
              std::vector<float> in(count), out(count);
              for (size_t i = 0; i < count; ++i) {
                in[i] = 1.0f / static_cast<float>(1 + (i * 13 + comm.rank() * 7) % 97);
              }
              for (bool inPlace : {false, true}) {
                if (inPlace) out = in;
                ASSERT_TRUE(comm.allReduce(inPlace ? out.data() : in.data(), out.data(), count,
                                           DataType::kFloat32, ReduceOp::kSum)
                                .ok());
                int64_t hash = 1469598103934665603ll;
                for (float v : out) {
                  uint32_t bits;
                  std::memcpy(&bits, &v, 4);
                  hash =
                      static_cast<int64_t>((static_cast<uint64_t>(hash) ^ bits) * 1099511628211ull);
                }
                std::vector<int64_t> all(4);
                ASSERT_TRUE(comm.allGather(&hash, all.data(), 1, DataType::kInt64).ok());
                for (int64_t h : all) EXPECT_EQ(h, hash) << count;
                lines += std::string(algo) + " " + std::to_string(count) + " " +
                         std::to_string(inPlace) + " " + std::to_string(hash) + "\n";
              }
            }
            if (comm.rank() == 0) {
              std::ofstream(file, std::ios::app) << lines;
            }
          },
          o))
          << on << " " << algo;
    }
  }
  auto read = [](const std::string& path) {
    std::ifstream f(path);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::remove(path.c_str());
    return text;
  };
  const std::string with = read(prefix + "_1"), without = read(prefix + "_0");
  EXPECT_FALSE(with.empty());
  EXPECT_EQ(with, without);
}

}  // namespace
}  // namespace plexus
