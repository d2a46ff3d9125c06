// Grouped send/recv (deadlock freedom, ordering, self-copies), split (ordering, colors,
// concurrency with the parent), and reproducibility of float results per algorithm.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "plexus/plexus.h"
#include "src/communicator_impl.h"
#include "tests/algorithms/reference.h"
#include "tests/harness/world.h"

namespace plexus {
namespace {

using testing::firstDifference;
using testing::input;
using testing::runWorld;
using testing::store;

class GroupSendRecv : public ::testing::TestWithParam<int> {};

// Every rank sends a distinct block to every rank (itself included) and receives one from
// each, in one group: with blocking sends this pattern would deadlock on large messages.
TEST_P(GroupSendRecv, AllPairsInOneGroupEveryTypeAndCount) {
  ASSERT_TRUE(runWorld(GetParam(), [](Communicator& comm) {
    const int n = comm.size(), r = comm.rank();
    for (size_t count : {size_t{0}, size_t{1}, size_t{101}, size_t{100003}}) {
      for (int t = 0; t < kNumDataTypes; ++t) {
        const auto type = static_cast<DataType>(t);
        const size_t elem = dataTypeSize(type);
        std::vector<uint8_t> send(n * count * elem + 1), recv(n * count * elem + 1, 0xAB),
            want(n * count * elem + 1, 0xAB);
        for (size_t i = 0; i < n * count; ++i) {
          store(type, send.data(), i, input(type, ReduceOp::kSum, r * 64 + int(i / count), i));
          const int from = static_cast<int>(i / count);
          store(type, want.data(), i,
                input(type, ReduceOp::kSum, from * 64 + r, i % count + r * count));
        }
        ASSERT_TRUE(comm.groupStart().ok());
        // Sends first on purpose: the group must still post receives before waiting.
        for (int p = 0; p < n; ++p) {
          ASSERT_TRUE(comm.send(send.data() + p * count * elem, count, type, p).ok());
        }
        for (int p = n - 1; p >= 0; --p) {
          ASSERT_TRUE(comm.recv(recv.data() + p * count * elem, count, type, p).ok());
        }
        Status s = comm.groupEnd();
        ASSERT_TRUE(s.ok()) << s.toString();
        ASSERT_EQ(firstDifference(recv.data(), want.data(), n * count + 0, type), -1)
            << "count " << count << " " << dataTypeName(type);
        ASSERT_EQ(recv.back(), 0xAB);
      }
    }
  }));
}

INSTANTIATE_TEST_SUITE_P(WorldSizes, GroupSendRecv, ::testing::Values(1, 2, 3, 5, 8),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

// Several messages to one peer in a group match in order; blocking send/recv pair up outside
// groups; an async group finishes.
TEST(GroupSendRecv, OrderWithinAPairBlockingPairsAndAsync) {
  ASSERT_TRUE(runWorld(2, [](Communicator& comm) {
    const int peer = 1 - comm.rank();
    std::vector<int32_t> a(1000, comm.rank() * 10 + 1), b(7, comm.rank() * 10 + 2);
    std::vector<int32_t> ra(1000), rb(7);
    ASSERT_TRUE(comm.groupStart().ok());
    ASSERT_TRUE(comm.groupStart().ok());  // nested: only the outer end runs
    ASSERT_TRUE(comm.send(a.data(), a.size(), DataType::kInt32, peer).ok());
    ASSERT_TRUE(comm.send(b.data(), b.size(), DataType::kInt32, peer).ok());
    ASSERT_TRUE(comm.groupEnd().ok());
    ASSERT_TRUE(comm.recv(ra.data(), ra.size(), DataType::kInt32, peer).ok());
    ASSERT_TRUE(comm.recv(rb.data(), rb.size(), DataType::kInt32, peer).ok());
    auto work = comm.groupEndAsync();
    ASSERT_TRUE(work.ok());
    ASSERT_TRUE(work->wait().ok());
    EXPECT_EQ(ra[999], peer * 10 + 1);
    EXPECT_EQ(rb[6], peer * 10 + 2);
    // Outside a group: rank 0 sends first, rank 1 receives first.
    int32_t x = comm.rank() + 5, y = 0;
    if (comm.rank() == 0) {
      ASSERT_TRUE(comm.send(&x, 1, DataType::kInt32, peer).ok());
      ASSERT_TRUE(comm.recv(&y, 1, DataType::kInt32, peer).ok());
    } else {
      ASSERT_TRUE(comm.recv(&y, 1, DataType::kInt32, peer).ok());
      ASSERT_TRUE(comm.send(&x, 1, DataType::kInt32, peer).ok());
    }
    EXPECT_EQ(y, peer + 5);
  }));
}

// Point-to-point among some ranks leaves the collectives of all ranks matched: ranks 0 and 1
// exchange (a different number of groups each way), rank 2 sends to rank 1 alone, rank 3 takes
// no part; then every rank all-reduces and barriers. Messages of one pair split over separate
// groups still match in order. (Point-to-point once used up a number of the collective
// sequence, so the next collective's tags disagreed and it hung until the timeout.)
TEST(GroupSendRecv, PointToPointAmongSomeRanksLeavesCollectivesMatched) {
  ASSERT_TRUE(runWorld(4, [](Communicator& comm) {
    const int r = comm.rank();
    std::vector<int32_t> got;
    for (int round = 0; round < 3; ++round) {
      if (r == 0) {
        for (int k = 0; k < 3; ++k) {  // three one-message groups to rank 1
          int32_t v = 100 * round + k;
          ASSERT_TRUE(comm.send(&v, 1, DataType::kInt32, 1).ok());
        }
      } else if (r == 1) {
        int32_t v[4] = {};
        ASSERT_TRUE(comm.groupStart().ok());  // one group receives all three, then rank 2's
        for (int k = 0; k < 3; ++k) ASSERT_TRUE(comm.recv(&v[k], 1, DataType::kInt32, 0).ok());
        ASSERT_TRUE(comm.recv(&v[3], 1, DataType::kInt32, 2).ok());
        Status s = comm.groupEnd();
        ASSERT_TRUE(s.ok()) << s.toString();
        got.insert(got.end(), v, v + 4);
      } else if (r == 2) {
        int32_t v = -round;
        ASSERT_TRUE(comm.send(&v, 1, DataType::kInt32, 1).ok());
      }
      int64_t x = r + round, sum = 0;
      Status s = comm.allReduce(&x, &sum, 1, DataType::kInt64, ReduceOp::kSum);
      ASSERT_TRUE(s.ok()) << s.toString();
      EXPECT_EQ(sum, 6 + 4 * round);
      ASSERT_TRUE(comm.barrier().ok());
    }
    if (r == 1) {
      EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 2, 0, 100, 101, 102, -1, 200, 201, 202, -2}));
    }
  }));
}

TEST(Split, ColorsKeysAndConcurrencyWithTheParent) {
  ASSERT_TRUE(runWorld(5, [](Communicator& comm) {
    const int r = comm.rank();
    // Rank 4 opts out; the others split by parity, ordered by descending rank.
    auto child = comm.split(r == 4 ? -1 : r % 2, -r);
    ASSERT_TRUE(child.ok()) << child.status().toString();
    if (r == 4) {
      EXPECT_EQ(*child, nullptr);
    } else {
      ASSERT_NE(*child, nullptr);
      EXPECT_EQ((*child)->size(), 2);
      EXPECT_EQ((*child)->rank(), r < 2 ? 1 : 0);  // {2, 0} and {3, 1}
    }
    // The parent and the child run collectives at the same time, from two threads.
    const size_t count = 50000;
    std::vector<int64_t> parentBuf(count), childBuf(count);
    bool childOk = true;
    std::thread childThread([&] {
      if (*child == nullptr) return;
      for (int it = 0; it < 20 && childOk; ++it) {
        std::fill(childBuf.begin(), childBuf.end(), r + it);
        childOk = (*child)
                      ->allReduce(childBuf.data(), childBuf.data(), count, DataType::kInt64,
                                  ReduceOp::kSum)
                      .ok() &&
                  childBuf[count - 1] == (r % 2 == 0 ? 2 : 4) + 2 * it;
      }
    });
    for (int it = 0; it < 20; ++it) {
      std::fill(parentBuf.begin(), parentBuf.end(), r * it);
      ASSERT_TRUE(comm.allReduce(parentBuf.data(), parentBuf.data(), count, DataType::kInt64,
                                 ReduceOp::kSum)
                      .ok());
      ASSERT_EQ(parentBuf[0], 10 * it);
    }
    childThread.join();
    EXPECT_TRUE(childOk);
    // A split of a split, and a second split of the parent, do not collide in the store.
    if (*child != nullptr) {
      auto grandchild = (*child)->split(0, 0);
      ASSERT_TRUE(grandchild.ok()) << grandchild.status().toString();
      int32_t one = 1, sum = 0;
      ASSERT_TRUE((*grandchild)->allReduce(&one, &sum, 1, DataType::kInt32, ReduceOp::kSum).ok());
      EXPECT_EQ(sum, 2);
    }
    auto all = comm.split(0, r);
    ASSERT_TRUE(all.ok());
    EXPECT_EQ((*all)->rank(), r);
    ASSERT_TRUE((*all)->barrier().ok());
  }));
}

class Reproducible : public ::testing::TestWithParam<int> {};

// For a fixed algorithm and world size, the same float inputs give bitwise-identical results
// on every run, and the all-reduce gives the same bits on every rank.
TEST_P(Reproducible, FloatResultsPerAlgorithm) {
  ASSERT_TRUE(runWorld(GetParam(), [](Communicator& comm) {
    const size_t count = 200003;
    std::mt19937 gen(99 + comm.rank());
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> in(count * comm.size()), a(count * comm.size()), b(count * comm.size());
    for (float& x : in) x = dist(gen);
    for (const auto& algo : comm.impl()->algorithms()) {
      const CollectiveKind kind = algo->collective();
      if (kind != CollectiveKind::kAllReduce && kind != CollectiveKind::kReduce &&
          kind != CollectiveKind::kReduceScatter) {
        continue;
      }
      CollectiveRequest req;
      req.kind = kind;
      req.count = count;
      req.root = 0;
      req.send = in.data();
      for (float* out : {a.data(), b.data()}) {
        req.recv = out;
        Status s = comm.impl()->run(req, algo->name());
        ASSERT_TRUE(s.ok()) << s.toString();
      }
      EXPECT_EQ(std::memcmp(a.data(), b.data(), count * sizeof(float)), 0)
          << collectiveName(kind) << "/" << algo->name();
      if (kind != CollectiveKind::kAllReduce) continue;
      std::vector<int32_t> bits(count), hi(count), lo(count);
      std::memcpy(bits.data(), a.data(), count * sizeof(float));
      ASSERT_TRUE(
          comm.allReduce(bits.data(), hi.data(), count, DataType::kInt32, ReduceOp::kMax).ok());
      ASSERT_TRUE(
          comm.allReduce(bits.data(), lo.data(), count, DataType::kInt32, ReduceOp::kMin).ok());
      EXPECT_EQ(hi, lo) << algo->name() << ": ranks hold different bits";
    }
  }));
}

INSTANTIATE_TEST_SUITE_P(WorldSizes, Reproducible, ::testing::Values(3, 4, 6),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

}  // namespace
}  // namespace plexus
