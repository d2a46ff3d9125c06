// The shared-memory collectives' own contract (all-reduce, reduce-scatter, all-gather; their
// results are checked with every other algorithm in collectives_test.cc and group_split_test.cc):
// when a communicator has the region, what the cost model does with it, disagreeing ranks, the
// sleeping path, and /dev/shm hygiene.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "algorithms/builtin.h"
#include "algorithms/shm_channel.h"
#include "plexus/plexus.h"
#include "src/communicator_impl.h"
#include "src/selector.h"
#include "src/topology.h"
#include "tests/harness/world.h"

namespace plexus {
namespace {

using testing::mentions;
using testing::runRanks;
using testing::runWorld;
using testing::shortTimeout;
using testing::WorldOptions;

StatusOr<Algorithm*> pick(Communicator& comm, size_t count, const std::string& forced = "") {
  CollectiveRequest req;
  req.count = count;
  return comm.impl()->selector().select(req, forced);
}

// The region keeps 256 KiB slots up to 32 ranks (the room beside them goes to more parts, 8 at
// most, 2 at least) and stays near 16 MiB above that, where the slots shrink.
TEST(Shm, RegionLayoutKeepsFullSlotsAndItsBound) {
  const size_t full = 256 * 1024;
  for (int n : {2, 3, 8, 9, 16, 32}) EXPECT_EQ(shmSlotBytes(n), full) << n << " ranks";
  EXPECT_GE(shmRegionBytes(2), 8 * 2 * full);    // 8 parts
  EXPECT_LT(shmRegionBytes(2), 9 * 2 * full);    //   (and their flag lines)
  EXPECT_GE(shmRegionBytes(16), 4 * 16 * full);  // 4 parts
  EXPECT_LT(shmRegionBytes(16), 5 * 16 * full);
  EXPECT_EQ(shmSlotBytes(64), full / 2);  // 2 parts of 64 slots in 16 MiB
  for (int n : {33, 64, 100, 256}) {
    // Beside the slots: the flag lines and three tables of shared store choices.
    EXPECT_LE(shmRegionBytes(n), (size_t{16} << 20) + 64 * (1 + 3 * static_cast<size_t>(n)) +
                                     3 * 2 * kShmChoiceClasses)
        << n << " ranks";
  }
}

TEST(Shm, TheCommunicatorsCostModelPicksItForShortMessagesOnOneNode) {
  ASSERT_TRUE(runWorld(2, [](Communicator& comm) {
    auto chosen = pick(comm, 2);
    ASSERT_TRUE(chosen.ok()) << chosen.status().toString();
    EXPECT_STREQ((*chosen)->name(), "shm");
  }));
}

// Priced per rank count and size (split or not), shm stays the host-memory choice on one node
// here for the all-reduce, the reduce-scatter and the all-gather at every size (the 2-rank
// all-gather once took the ring from 256 KiB, where the slots were 2.4x faster: kShmCopyShare);
// a request in GPU memory never gets it.
TEST(Shm, TheCostModelPicksItForHostMemoryOnly) {
  char bytes[64];
  SharedRegion region{bytes, sizeof(bytes)};
  auto algos = builtinAlgorithms(nullptr, &region);
  CollectiveRequest req;
  auto cheapest = [&](CollectiveKind kind, int n, size_t count, MemoryKind memory) {
    internal::Selector selector(&algos, {}, internal::defaultCostModel(), n);
    req.kind = kind;
    req.count = count;
    req.memory = memory;
    auto chosen = selector.select(req, "");
    return chosen.ok() ? std::string((*chosen)->name()) : chosen.status().toString();
  };
  for (CollectiveKind kind :
       {CollectiveKind::kAllReduce, CollectiveKind::kReduceScatter, CollectiveKind::kAllGather}) {
    for (int n : {2, 4, 8, 64}) {
      for (size_t count : {size_t{2}, size_t{1} << 14, size_t{1} << 20}) {
        const std::string what = std::string(collectiveName(kind)) + " " + std::to_string(n) + " " +
                                 std::to_string(count);
        EXPECT_EQ(cheapest(kind, n, count, MemoryKind::kHost), "shm") << what;
        EXPECT_NE(cheapest(kind, n, count, MemoryKind::kCuda), "shm") << what;
      }
    }
  }
}

TEST(Shm, ACommunicatorSpanningNodesHasNoneAndForcingItSaysWhy) {
  ASSERT_TRUE(runRanks(4, [](int rank, const UniqueId& id) {
    ::setenv("PLEXUS_NODE_ID", rank < 2 ? "node0" : "node1", 1);
    auto comm = Communicator::create(id, rank, 4);
    ASSERT_TRUE(comm.ok()) << comm.status().toString();
    auto chosen = pick(**comm, 2);
    ASSERT_TRUE(chosen.ok()) << chosen.status().toString();
    EXPECT_STRNE((*chosen)->name(), "shm");
    auto forced = pick(**comm, 2, "shm");
    ASSERT_FALSE(forced.ok());
    EXPECT_TRUE(mentions(forced.status(), "span nodes")) << forced.status().toString();
    float x = 1.0f, sum = 0.0f;  // and the node-local phases still run (with shm inside)
    ASSERT_TRUE((*comm)->allReduce(&x, &sum, 1, DataType::kFloat32, ReduceOp::kSum).ok());
    EXPECT_EQ(sum, 4.0f);
  }));
}

TEST(Shm, RanksThatPassDifferentCountsGetInvalidArgument) {
  WorldOptions o = shortTimeout();
  o.env["PLEXUS_ALGO"] = "allreduce:shm";
  ASSERT_TRUE(runWorld(
      2,
      [](Communicator& comm) {
        std::vector<float> in(4096, 1.0f), out(4096);
        // 1000 and 3000 both go through the slots; 12 (48 B) rides in the flag line, 13 does not.
        for (auto [a, b] : {std::pair<size_t, size_t>{1000, 3000}, {2, 3}, {12, 13}}) {
          const size_t count = comm.rank() == 0 ? a : b;
          Status s =
              comm.allReduce(in.data(), out.data(), count, DataType::kFloat32, ReduceOp::kSum);
          EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.toString();
          EXPECT_TRUE(mentions(s, std::to_string(a) + " elements of f32 sum")) << s.toString();
          EXPECT_TRUE(mentions(s, std::to_string(b) + " elements of f32 sum")) << s.toString();
        }
      },
      o));
}

// Pieces of up to 48 B travel in the flag lines, one per part: back-to-back calls, each with
// its own values, must never read a part its writer has already refilled (8 B, 48 B, and 52 B
// through the slots, interleaved).
TEST(Shm, BackToBackShortAllReducesEachSeeTheirOwnValues) {
  WorldOptions o;
  o.env["PLEXUS_ALGO"] = "allreduce:shm";
  ASSERT_TRUE(runWorld(
      3,
      [](Communicator& comm) {
        const int n = comm.size(), me = comm.rank();
        const size_t counts[] = {2, 12, 13};
        for (int it = 0; it < 3000; ++it) {
          const size_t count = counts[it % 3];
          float in[13], out[13] = {};
          for (size_t i = 0; i < count; ++i) in[i] = static_cast<float>((me + 1) * (it + i) % 101);
          ASSERT_TRUE(comm.allReduce(in, out, count, DataType::kFloat32, ReduceOp::kSum).ok());
          for (size_t i = 0; i < count; ++i) {
            float want = 0;
            for (int r = 0; r < n; ++r) want += static_cast<float>((r + 1) * (it + i) % 101);
            ASSERT_EQ(out[i], want) << "call " << it << ", element " << i;
          }
        }
      },
      o));
}

// Values whose sums round (so an operand out of order or a block from the wrong place shows).
float roundingValue(int rank, size_t i) {
  return static_cast<float>((static_cast<size_t>(rank) * 7919 + i * 104729) % 100003) / 977.0f +
         0.1f * static_cast<float>(rank);
}

// However a rank writes its slot (ShmStoreChooser: plain, streaming, or chosen per call by
// measuring), every path of the all-reduce gives the bits of the sum in rank order: unsplit
// (1501 f32, past where the stores are chosen), one split piece (8193 f32, the split's
// threshold), many pieces in the cache, and past the last-level
// cache (streamingSplit, which streams the output out of place; an odd count, so blocks are not
// 16-byte aligned), out of place into a misaligned output and in place (plainly: the lines it
// writes are the ones it has just read); and f64 avg (the division before the slot is written)
// on all but 8193.
class ShmStoreModes : public ::testing::TestWithParam<std::tuple<const char*, int>> {};

TEST_P(ShmStoreModes, EveryModeGivesTheSumInRankOrderBitForBit) {
  WorldOptions o;
  o.env["PLEXUS_ALGO"] = "allreduce:shm";
  o.env["PLEXUS_SHM_STORES"] = std::get<0>(GetParam());
  const int n = std::get<1>(GetParam());
  const size_t past = lastLevelCacheBytes() / (2 * static_cast<size_t>(n) * sizeof(float)) + 1001;
  ASSERT_TRUE(runWorld(
      n,
      [n, past](Communicator& comm) {
        const int me = comm.rank();
        for (size_t count : {size_t{1501}, size_t{8193}, size_t{200003}, past}) {
          std::vector<float> in(count), out(count + 1, -1.0f);
          for (size_t i = 0; i < count; ++i) in[i] = roundingValue(me, i);
          ASSERT_TRUE(
              comm.allReduce(in.data(), out.data() + 1, count, DataType::kFloat32, ReduceOp::kSum)
                  .ok());
          ASSERT_TRUE(
              comm.allReduce(in.data(), in.data(), count, DataType::kFloat32, ReduceOp::kSum).ok());
          EXPECT_EQ(out[0], -1.0f);
          for (size_t i = 0; i < count; ++i) {
            float want = roundingValue(0, i);
            for (int r = 1; r < n; ++r) want += roundingValue(r, i);
            ASSERT_EQ(out[i + 1], want) << count << " f32 out of place, element " << i;
            ASSERT_EQ(in[i], want) << count << " f32 in place, element " << i;
          }
          if (count == 8193) continue;
          std::vector<double> din(count), dout(count);
          for (size_t i = 0; i < count; ++i) din[i] = roundingValue(me, i);
          ASSERT_TRUE(
              comm.allReduce(din.data(), dout.data(), count, DataType::kFloat64, ReduceOp::kAvg)
                  .ok());
          for (size_t i = 0; i < count; ++i) {
            double sum = roundingValue(0, i);
            for (int r = 1; r < n; ++r) sum += roundingValue(r, i);
            ASSERT_EQ(dout[i], sum / n) << count << " f64 avg, element " << i;
          }
        }
      },
      o));
}

// The reduce-scatter and the all-gather fill their slots as the mode says too: blocks of 8193
// f32 (the longer buffer past kShmStoreChoiceFromBytes) and 200003, out of place and in place
// (the reduce-scatter's output is block r of its input, the all-gather's input block r of its
// output), every element against the rank-order sum / the senders' values, twice per size (auto
// runs a call of each mode first).
TEST_P(ShmStoreModes, ReduceScattersAndAllGathersGiveTheSameBitsInEveryMode) {
  WorldOptions o;
  o.env["PLEXUS_ALGO"] = "allgather:shm;reducescatter:shm";
  o.env["PLEXUS_SHM_STORES"] = std::get<0>(GetParam());
  ASSERT_TRUE(runWorld(
      std::get<1>(GetParam()),
      [](Communicator& comm) {
        const int n = comm.size(), me = comm.rank();
        for (size_t count : {size_t{8193}, size_t{200003}}) {
          const size_t all = count * static_cast<size_t>(n);
          for (int round = 0; round < 2; ++round) {
            std::vector<float> in(all), out(count), gathered(all);
            for (size_t i = 0; i < all; ++i) in[i] = roundingValue(me, i);
            ASSERT_TRUE(
                comm.reduceScatter(in.data(), out.data(), count, DataType::kFloat32, ReduceOp::kSum)
                    .ok());
            float* inPlace = in.data() + static_cast<size_t>(me) * count;
            ASSERT_TRUE(
                comm.reduceScatter(in.data(), inPlace, count, DataType::kFloat32, ReduceOp::kSum)
                    .ok());
            for (size_t i = 0; i < count; ++i) {
              const size_t at = static_cast<size_t>(me) * count + i;
              float want = roundingValue(0, at);
              for (int r = 1; r < n; ++r) want += roundingValue(r, at);
              ASSERT_EQ(out[i], want) << count << " reduce-scatter, element " << i;
              ASSERT_EQ(inPlace[i], want) << count << " reduce-scatter in place, element " << i;
            }
            std::vector<float> mine(count);
            for (size_t i = 0; i < count; ++i) mine[i] = roundingValue(me, i);
            ASSERT_TRUE(
                comm.allGather(mine.data(), gathered.data(), count, DataType::kFloat32).ok());
            std::copy(mine.begin(), mine.end(), in.begin() + static_cast<ptrdiff_t>(me * count));
            ASSERT_TRUE(comm.allGather(in.data() + static_cast<size_t>(me) * count, in.data(),
                                       count, DataType::kFloat32)
                            .ok());
            for (size_t i = 0; i < all; ++i) {
              const float want = roundingValue(static_cast<int>(i / count), i % count);
              ASSERT_EQ(gathered[i], want) << count << " all-gather, element " << i;
              ASSERT_EQ(in[i], want) << count << " all-gather in place, element " << i;
            }
          }
        }
      },
      o));
}

INSTANTIATE_TEST_SUITE_P(PlainStreamingAuto, ShmStoreModes,
                         ::testing::Combine(::testing::Values("plain", "streaming", "auto"),
                                            ::testing::Values(2, 3)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param)) + "_n" +
                                  std::to_string(std::get<1>(info.param));
                         });

// Drives a kAuto chooser through calls of one size whose modes take plainTicks and streamTicks
// (the unit of ShmStoreChooser::record, ticks(); only their ratios matter here).
struct ChooserCalls {
  ShmStoreChooser c{ShmStores::kAuto};
  size_t bytes;
  double plainTicks, streamTicks;
  // One call: whether it streamed.
  bool call() {
    const bool s = c.streaming(bytes);
    c.record(bytes, s, s ? streamTicks : plainTicks);
    return s;
  }
  // Calls until the next try of the other mode, counting the choice's calls.
  uint32_t callsUntilATry(bool choice) {
    uint32_t calls = 0;
    while (call() == choice) ++calls;
    return calls;
  }
};

// kAuto seeds a size class with plain, streaming, plain (the best of each counts: a first call
// may pay for fresh buffers) and uses the faster; tries the other after kRetryFirst calls, twice
// as many after a try that confirms the choice (up to kRetryMost); a try wins, and kKeep calls
// of the choice in a row lose, only by kMargin; one slow call of the choice moves nothing.
// Forced modes never change. Separate classes per power of two, in place or not.
TEST(ShmStoreChooser, KeepsTheFasterModeTriesTheOtherLessOftenAndFollowsAChange) {
  ShmStoreChooser plain(ShmStores::kPlain), streaming(ShmStores::kStreaming);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(plain.streaming(1 << 20));
    plain.record(1 << 20, true, 1);
    EXPECT_TRUE(streaming.streaming(1 << 20));
    streaming.record(1 << 20, false, 1);
  }
  ChooserCalls k{ShmStoreChooser(ShmStores::kAuto), 1 << 20, 9000, 3000};  // cold at first
  EXPECT_FALSE(k.call());  // the seeds: plain, streaming, plain
  k.plainTicks = 1000;     // plain is faster
  EXPECT_TRUE(k.call());
  EXPECT_FALSE(k.call());
  EXPECT_EQ(k.callsUntilATry(false), ShmStoreChooser::kRetryFirst);
  k.streamTicks = 900;  // faster, but not by kMargin: the try confirms plain
  EXPECT_EQ(k.callsUntilATry(false), 2 * ShmStoreChooser::kRetryFirst);
  k.streamTicks = 3000;
  EXPECT_EQ(k.callsUntilATry(false), 4 * ShmStoreChooser::kRetryFirst);
  for (int i = 0; i < 8; ++i) k.callsUntilATry(false);
  EXPECT_EQ(k.callsUntilATry(false), ShmStoreChooser::kRetryMost);
  // One plain call slowed by something else (above streaming's 3000) moves nothing.
  k.plainTicks = 9000;
  EXPECT_FALSE(k.call());
  k.plainTicks = 1000;
  for (uint32_t i = 0; i < 2 * ShmStoreChooser::kKeep; ++i) EXPECT_FALSE(k.call());
  // Another size class keeps its own counts, and so does the same size in place: seeds first.
  EXPECT_FALSE(k.c.streaming(k.bytes * 4));
  k.c.record(k.bytes * 4, false, 4000);
  EXPECT_TRUE(k.c.streaming(k.bytes * 4));
  EXPECT_FALSE(k.c.streaming(k.bytes, true));
  k.c.record(k.bytes, false, 4000, true);
  EXPECT_TRUE(k.c.streaming(k.bytes, true));
  // The state changes: plain gets slower than streaming's last; after kKeep such calls the calls
  // stream, with plain tried after kRetryFirst of them again; when plain is fast again, its next
  // try switches back.
  k.plainTicks = 5000;
  for (uint32_t i = 0; i < ShmStoreChooser::kKeep; ++i) EXPECT_FALSE(k.call()) << i;
  EXPECT_EQ(k.callsUntilATry(true), ShmStoreChooser::kRetryFirst);
  EXPECT_EQ(k.callsUntilATry(true), 2 * ShmStoreChooser::kRetryFirst);
  k.plainTicks = 1000;
  EXPECT_EQ(k.callsUntilATry(true), 4 * ShmStoreChooser::kRetryFirst);  // that try: plain, fast
  EXPECT_EQ(k.callsUntilATry(false), ShmStoreChooser::kRetryFirst);
}

// Streaming is chosen, and kept, only while it beats plain by kMargin; plain takes what is
// close (seeding, a try, a lead lost): with the cores near, short calls streamed 1.1-1.2x
// slower, and a margin that protected either choice kept a streaming choice made by noise.
TEST(ShmStoreChooser, StreamsOnlyWhileItLeadsPlainByTheMargin) {
  ChooserCalls k{ShmStoreChooser(ShmStores::kAuto), 1 << 16, 1000, 900};  // streaming ahead a bit
  EXPECT_FALSE(k.call());  // the seeds: plain, streaming, plain; plain chosen
  EXPECT_TRUE(k.call());
  EXPECT_FALSE(k.call());
  EXPECT_EQ(k.callsUntilATry(false), ShmStoreChooser::kRetryFirst);      // the try: still close
  k.streamTicks = 500;                                                   // now it leads
  EXPECT_EQ(k.callsUntilATry(false), 2 * ShmStoreChooser::kRetryFirst);  // that try chose it
  // It loses its lead against plain's last (1000): after kKeep such calls, plain again.
  k.streamTicks = 900;
  for (uint32_t i = 0; i < ShmStoreChooser::kKeep; ++i) EXPECT_TRUE(k.call()) << i;
  EXPECT_FALSE(k.call());
  k.streamTicks = 500;
  EXPECT_EQ(k.callsUntilATry(false), ShmStoreChooser::kRetryFirst - 1);  // the try chose it
  // Plain's try comes within the margin of streaming's best (600 against 500): plain again.
  k.plainTicks = 600;
  EXPECT_EQ(k.callsUntilATry(true), ShmStoreChooser::kRetryFirst);
  EXPECT_EQ(k.callsUntilATry(false), ShmStoreChooser::kRetryFirst);  // a try: not by the margin
  EXPECT_EQ(k.callsUntilATry(false), 2 * ShmStoreChooser::kRetryFirst);
}

// With a shared table, rank 0's chooser decides for everyone and the others take each call's
// mode from the table: the same mode as rank 0 in every call, whatever the timings (rank 0's
// seeding goes plain, plain, streaming, one call behind its own choices), each size class and
// in-place class apart. A forced mode ignores the table.
TEST(ShmStoreChooser, RankZeroChoosesForAllThroughTheSharedTable) {
  std::array<std::atomic<uint8_t>, 2 * kShmChoiceClasses> table{};
  ShmStoreChooser chooser(ShmStores::kAuto), follower(ShmStores::kAuto);
  const ShmSharedChoice mine{table.data(), true}, theirs{table.data(), false};
  auto modeOf = [](ShmStoreChooser& c, size_t bytes, bool inPlace, ShmSharedChoice shared) {
    EXPECT_TRUE(c.call(
                     true, bytes, inPlace, [] { return okStatus(); }, shared)
                    .ok());
    return c.streamingNow();
  };
  std::vector<bool> modes;
  for (int call = 0; call < 40; ++call) {
    const bool chosen = modeOf(chooser, 1 << 15, false, mine);
    EXPECT_EQ(modeOf(follower, 1 << 15, false, theirs), chosen) << "call " << call;
    modes.push_back(chosen);
  }
  EXPECT_FALSE(modes[0]);
  EXPECT_FALSE(modes[1]);
  EXPECT_TRUE(modes[2]);
  // Another class starts its own seeding, in place or not.
  EXPECT_FALSE(modeOf(chooser, 1 << 15, true, mine));
  EXPECT_FALSE(modeOf(follower, 1 << 15, true, theirs));
  EXPECT_FALSE(modeOf(chooser, 1 << 20, false, mine));
  EXPECT_FALSE(modeOf(follower, 1 << 20, false, theirs));
  // A forced mode is its own.
  ShmStoreChooser streaming(ShmStores::kStreaming);
  for (int call = 0; call < 3; ++call) EXPECT_TRUE(modeOf(streaming, 1 << 15, false, theirs));
}

// Past the last-level cache, out of place, the split path keeps two pieces open
// (streamingSplit): with 3 and 4 ranks (blocks of unequal length), f64 avg (the division before
// the stream-out) and i8 max (an odd count of one-byte elements, into a misaligned output), and
// a short all-reduce after them (the piece sequence goes on where the long one left it).
class ShmStreaming : public ::testing::TestWithParam<int> {};

TEST_P(ShmStreaming, AllReducesAreRightAndTheNextCallToo) {
  WorldOptions o;
  o.env["PLEXUS_ALGO"] = "allreduce:shm";
  const int n = GetParam();
  const size_t bytes = lastLevelCacheBytes() / (2 * static_cast<size_t>(n)) + 12345;
  ASSERT_TRUE(runWorld(
      n,
      [n, bytes](Communicator& comm) {
        const int me = comm.rank();
        const size_t count = bytes / sizeof(double);
        std::vector<double> in(count), out(count);
        for (size_t i = 0; i < count; ++i) in[i] = static_cast<double>(n * ((me + i) % 7));
        ASSERT_TRUE(
            comm.allReduce(in.data(), out.data(), count, DataType::kFloat64, ReduceOp::kAvg).ok());
        for (size_t i = 0; i < count; ++i) {
          double sum = 0;
          for (int r = 0; r < n; ++r) sum += static_cast<double>(n * ((r + i) % 7));
          ASSERT_EQ(out[i], sum / n) << "f64 avg, element " << i;
        }
        std::vector<int8_t> small(bytes | 1), max(small.size() + 1);
        for (size_t i = 0; i < small.size(); ++i)
          small[i] = static_cast<int8_t>((i * 7 + me) % 251);
        ASSERT_TRUE(comm.allReduce(small.data(), max.data() + 1, small.size(), DataType::kInt8,
                                   ReduceOp::kMax)
                        .ok());
        for (size_t i = 0; i < small.size(); ++i) {
          int8_t want = static_cast<int8_t>((i * 7) % 251);
          for (int r = 1; r < n; ++r) want = std::max(want, static_cast<int8_t>((i * 7 + r) % 251));
          ASSERT_EQ(max[i + 1], want) << "i8 max, element " << i;
        }
        float x = static_cast<float>(me + 1), y = 0;
        ASSERT_TRUE(comm.allReduce(&x, &y, 1, DataType::kFloat32, ReduceOp::kSum).ok());
        EXPECT_EQ(y, static_cast<float>(n * (n + 1) / 2));
      },
      o));
}

INSTANTIATE_TEST_SUITE_P(Ranks, ShmStreaming, ::testing::Values(3, 4),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

// The shm collectives share the region's piece sequence, so a rank that calls another
// collective than its peers is told so, not left waiting for pieces that never come.
TEST(Shm, RanksThatCallDifferentCollectivesGetInvalidArgument) {
  WorldOptions o = shortTimeout();
  o.env["PLEXUS_ALGO"] = "allgather:shm;reducescatter:shm";
  ASSERT_TRUE(runWorld(
      2,
      [](Communicator& comm) {
        std::vector<float> in(2000, 1.0f), out(2000);
        Status s = comm.rank() == 0
                       ? comm.allGather(in.data(), out.data(), 1000, DataType::kFloat32)
                       : comm.reduceScatter(in.data(), out.data(), 1000, DataType::kFloat32,
                                            ReduceOp::kMax);
        EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.toString();
        EXPECT_TRUE(mentions(s, "allgather of 1000 elements of f32 ")) << s.toString();
        EXPECT_TRUE(mentions(s, "reducescatter of 1000 elements of f32 max")) << s.toString();
      },
      o));
}

// A rank that arrives long after the others finds them asleep on its flag (past the spin and
// the yield window), and its store wakes them: every round's result is still right, whoever
// was late, across pieces of a message longer than a slot, in the flag lines (48 B), unsplit (16
// KB, one piece) and split (800 KB of f32: several 256 KiB pieces, so over the rounds every part
// of the region is refilled), and with the reduce-scatter and all-gather taking their pieces from
// the same sequence in between.
class ShmLate : public ::testing::TestWithParam<std::pair<int, size_t>> {};

TEST_P(ShmLate, RanksWakeSleepingOnes) {
  WorldOptions o;
  o.env["PLEXUS_ALGO"] = "shm";
  const size_t count = GetParam().second;
  ASSERT_TRUE(runWorld(
      GetParam().first,
      [count](Communicator& comm) {
        const int n = comm.size(), me = comm.rank();
        std::vector<float> in(count * n), out(count * n);
        auto nap = [&](int round, int step) {
          if (me == (round + step) % n) std::this_thread::sleep_for(std::chrono::milliseconds(30));
        };
        for (int round = 0; round < 4; ++round) {
          for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(me + i % 7);
          nap(round, 0);
          ASSERT_TRUE(
              comm.allReduce(in.data(), out.data(), count, DataType::kFloat32, ReduceOp::kSum)
                  .ok());
          for (size_t i = 0; i < count; ++i) {
            const auto want = static_cast<float>(n * (n - 1) / 2 + n * static_cast<int>(i % 7));
            ASSERT_EQ(out[i], want) << "all-reduce, round " << round << " " << i;
          }
          nap(round, 1);
          ASSERT_TRUE(
              comm.reduceScatter(in.data(), out.data(), count, DataType::kFloat32, ReduceOp::kSum)
                  .ok());
          for (size_t i = 0; i < count; ++i) {
            const size_t at = me * count + i;
            const auto want = static_cast<float>(n * (n - 1) / 2 + n * static_cast<int>(at % 7));
            ASSERT_EQ(out[i], want) << "reduce-scatter, round " << round << " " << i;
          }
          nap(round, 2);
          ASSERT_TRUE(comm.allGather(in.data(), out.data(), count, DataType::kFloat32).ok());
          for (size_t i = 0; i < count * n; ++i) {
            const auto want = static_cast<float>(i / count + i % count % 7);
            ASSERT_EQ(out[i], want) << "all-gather, round " << round << " " << i;
          }
        }
      },
      o));
}

INSTANTIATE_TEST_SUITE_P(
    UnsplitAndSplit, ShmLate,
    ::testing::Values(std::pair<int, size_t>{3, 12}, std::pair<int, size_t>{3, 4000},
                      std::pair<int, size_t>{3, 200000}, std::pair<int, size_t>{5, 200000}),
    [](const auto& info) {
      return "n" + std::to_string(info.param.first) + "_count" + std::to_string(info.param.second);
    });

// A waiter skips its spin when the rank it waits for last ran on its own CPU: the context
// stores this rank's CPU (plus one) into its line and compares the awaited rank's line with it.
TEST(Shm, AWaiterKnowsWhenTheAwaitedRankLastRanOnItsOwnCpu) {
  std::thread([] {
    const int cpu = sched_getcpu();
    ASSERT_GE(cpu, 0);
    cpu_set_t one;  // stay on this CPU for the test
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    std::vector<RankCpuLine> lines(3);
    CollectiveContext ctx(0, 3, {}, nullptr, nullptr, 0);
    EXPECT_FALSE(ctx.peerSharesMyCpu(1));  // no lines: never
    ctx.setRankCpus(lines.data());
    EXPECT_EQ(lines[0].cpuPlusOne.load(), cpu + 1);  // stored on the way in
    EXPECT_FALSE(ctx.peerSharesMyCpu(1));            // rank 1 not seen yet (0)
    lines[1].cpuPlusOne = cpu + 1;
    lines[2].cpuPlusOne = cpu + 2;
    EXPECT_TRUE(ctx.peerSharesMyCpu(1));
    EXPECT_FALSE(ctx.peerSharesMyCpu(2));
    EXPECT_FALSE(ctx.peerSharesMyCpu(0));   // itself
    EXPECT_FALSE(ctx.peerSharesMyCpu(-1));  // nobody in particular
    lines[0].cpuPlusOne = 0;                // a stale line is rewritten
    EXPECT_FALSE(ctx.peerSharesMyCpu(-1));
    EXPECT_EQ(lines[0].cpuPlusOne.load(), cpu + 1);
  }).join();
}

// Every rank of a one-node communicator has stored its CPU into its line of the region by the
// time a collective has run (the lines sit past the shm algorithms' part).
TEST(Shm, EveryRankStoresItsCpuInTheRegion) {
  ASSERT_TRUE(runWorld(3, [](Communicator& comm) {
    const SharedRegion& region = comm.impl()->sharedRegion();
    ASSERT_NE(region.base, nullptr);
    ASSERT_NE(region.rankCpus, nullptr);
    EXPECT_GE(reinterpret_cast<uint8_t*>(region.rankCpus),
              static_cast<uint8_t*>(region.base) + region.bytes);
    float x = 1.0f, sum = 0.0f;
    ASSERT_TRUE(comm.allReduce(&x, &sum, 1, DataType::kFloat32, ReduceOp::kSum).ok());
    ASSERT_TRUE(comm.barrier().ok());
    for (int p = 0; p < comm.size(); ++p) {
      EXPECT_GT(region.rankCpus[p].cpuPlusOne.load(), 0) << "rank " << p;
    }
  }));
}

// The region's name is gone from /dev/shm once the communicator is up (every rank has mapped
// it), so not even a rank killed later leaves it behind.
TEST(Shm, TheRegionLeavesNoNameInDevShm) {
  ASSERT_TRUE(runWorld(3, [](Communicator& comm) {
    float x = 1.0f, sum = 0.0f;
    ASSERT_TRUE(comm.allReduce(&x, &sum, 1, DataType::kFloat32, ReduceOp::kSum).ok());
    auto shm = pick(comm, 1, "shm");
    ASSERT_TRUE(shm.ok()) << shm.status().toString();  // the communicator has the region
    const std::string mine = "_" + std::to_string(::getpid()) + "_";
    DIR* d = ::opendir("/dev/shm");
    ASSERT_NE(d, nullptr);
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      EXPECT_FALSE(name.rfind("plexus_", 0) == 0 && name.find(mine) != std::string::npos) << name;
    }
    ::closedir(d);
  }));
}

}  // namespace
}  // namespace plexus
