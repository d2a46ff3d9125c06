// Communicator behaviour around the collectives: bad arguments, ranks that disagree or never
// arrive, asynchronous progress, Work timeouts. Every failure must be a clear Status, never a
// crash or a hang.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "plexus/plexus.h"
#include "src/bootstrap/socket.h"
#include "src/unique_id_registry.h"
#include "tests/harness/world.h"

namespace plexus {
namespace {

using testing::mentions;
using testing::runRanks;
using testing::runWorld;
using testing::shortTimeout;
using testing::WorldOptions;

TEST(Communicator, RankAndSize) {
  ASSERT_TRUE(runWorld(3, [](Communicator& comm) {
    EXPECT_EQ(comm.size(), 3);
    EXPECT_GE(comm.rank(), 0);
    EXPECT_LT(comm.rank(), 3);
    EXPECT_EQ(comm.transportName(), "ucx");
    EXPECT_TRUE(comm.barrier().ok());
  }));
}

TEST(Communicator, BadArgumentsAreReportedWithTheRank) {
  ASSERT_TRUE(runWorld(2, [](Communicator& comm) {
    float buf[8] = {};
    Status s = comm.allReduce(nullptr, buf, 8, DataType::kFloat32, ReduceOp::kSum);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(mentions(s, "sendbuf is null")) << s.toString();
    EXPECT_TRUE(mentions(s, "rank " + std::to_string(comm.rank()))) << s.toString();
    s = comm.allReduce(buf, nullptr, 8, DataType::kFloat32, ReduceOp::kSum);
    EXPECT_TRUE(mentions(s, "recvbuf is null")) << s.toString();
    s = comm.allReduce(buf, buf, 8, static_cast<DataType>(42), ReduceOp::kSum);
    EXPECT_TRUE(mentions(s, "unknown data type 42")) << s.toString();
    s = comm.allReduce(buf, buf, 8, DataType::kFloat32, static_cast<ReduceOp>(9));
    EXPECT_TRUE(mentions(s, "unknown reduce op 9")) << s.toString();
    s = comm.allReduce(buf, buf + 1, 4, DataType::kFloat32, ReduceOp::kSum);
    EXPECT_TRUE(mentions(s, "overlap")) << s.toString();
    CallOptions cuda;
    cuda.memory = MemoryKind::kCuda;
    s = comm.allReduce(buf, buf, 8, DataType::kFloat32, ReduceOp::kSum, cuda);
    EXPECT_EQ(s.code(), StatusCode::kUnimplemented) << s.toString();
    auto w = comm.allReduceAsync(nullptr, buf, 8, DataType::kFloat32, ReduceOp::kSum);
    EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument);
    // Null buffers with count 0 are fine, and the communicator still works after the errors.
    EXPECT_TRUE(comm.allReduce(nullptr, nullptr, 0, DataType::kFloat32, ReduceOp::kSum).ok());
    float one = 1, sum = 0;
    ASSERT_TRUE(comm.allReduce(&one, &sum, 1, DataType::kFloat32, ReduceOp::kSum).ok());
    EXPECT_EQ(sum, 2.0f);
  }));
}

// (Bodies run in a forked rank so that this process never gains store threads; see world.h.)
// Strangers at the bootstrap port while the ranks come up: a port scan (connect, close), an HTTP
// GET, and 1 MiB of random bytes, sent from a thread of rank 0 as it creates its communicator.
// The store drops each (the sends may fail midway: the server hangs up on the first bad bytes);
// the job still initialises and runs a collective.
TEST(Communicator, StrangersAtTheBootstrapPortDuringInitAreDropped) {
  ASSERT_TRUE(runRanks(3, [](int rank, const UniqueId& id) {
    std::thread strangers;
    if (rank == 0) {
      auto rv = internal::decodeUniqueId(id);
      ASSERT_TRUE(rv.ok()) << rv.status().toString();
      auto address = bootstrap::parseIpv4(rv->host, rv->port);
      ASSERT_TRUE(address.ok()) << address.status().toString();
      strangers = std::thread([at = *address] {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        std::vector<uint8_t> http;
        for (char c : std::string("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")) {
          http.push_back(static_cast<uint8_t>(c));
        }
        std::vector<uint8_t> noise(1 << 20);
        std::mt19937 rng(7);
        for (auto& b : noise) b = static_cast<uint8_t>(rng());
        noise[0] = 0x17;  // never the magic's first byte
        const std::vector<uint8_t>* payloads[] = {nullptr, &http, &noise};  // null: a scan
        for (const std::vector<uint8_t>* payload : payloads) {
          auto fd = bootstrap::connectTcp(at, deadline);
          if (!fd.ok()) continue;  // the store not up yet, or gone: nothing to disturb
          if (payload != nullptr) (void)bootstrap::sendAll(fd->get(), *payload, deadline);
        }
      });
    }
    auto comm = Communicator::create(id, rank, 3);
    if (strangers.joinable()) strangers.join();
    ASSERT_TRUE(comm.ok()) << comm.status().toString();
    int64_t one = 1, sum = 0;
    Status s = (*comm)->allReduce(&one, &sum, 1, DataType::kInt64, ReduceOp::kSum);
    ASSERT_TRUE(s.ok()) << s.toString();
    EXPECT_EQ(sum, 3);
  }));
}

TEST(Communicator, RankOutOfRangeIsRejected) {
  ASSERT_TRUE(runRanks(1, [](int, const UniqueId& id) {
    auto c = Communicator::create(id, 3, 3);
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(mentions(c.status(), "rank 3 is outside [0, 3)")) << c.status().toString();
    c = Communicator::create(id, 0, 0);
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  }));
}

TEST(Communicator, UniqueIdHexRoundTripAndGarbage) {
  ASSERT_TRUE(runRanks(1, [](int, const UniqueId& id) {
    auto back = UniqueId::fromHex(id.toHex());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->bytes, id.bytes);
    EXPECT_FALSE(UniqueId::fromHex("abc").ok());
    EXPECT_FALSE(UniqueId::fromHex(std::string(256, 'z')).ok());
    UniqueId junk;  // all zeros: not a Plexus id
    auto c = Communicator::create(junk, 0, 1);
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  }));
}

TEST(Communicator, WorldSizeDisagreementIsAnErrorNotAHang) {
  ASSERT_TRUE(runRanks(
      3,
      [](int rank, const UniqueId& id) {
        // Rank 2 was told the world has 4 ranks.
        auto comm = Communicator::create(id, rank, rank == 2 ? 4 : 3);
        ASSERT_FALSE(comm.ok());
        if (rank == 2) {
          EXPECT_EQ(comm.status().code(), StatusCode::kInvalidArgument) << comm.status().toString();
          EXPECT_TRUE(mentions(comm.status(), "world has 4 ranks but")) << comm.status().toString();
        }
      },
      shortTimeout()));
}

TEST(Communicator, MissingRankTimesOut) {
  ASSERT_TRUE(runRanks(
      2,
      [](int rank, const UniqueId& id) {
        if (rank == 1) return;  // never arrives
        auto t0 = std::chrono::steady_clock::now();
        auto comm = Communicator::create(id, rank, 2);
        ASSERT_FALSE(comm.ok());
        EXPECT_EQ(comm.status().code(), StatusCode::kDeadlineExceeded) << comm.status().toString();
        EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
      },
      shortTimeout()));
}

TEST(Communicator, CountsThatDisagreeAreDetected) {
  ASSERT_TRUE(runWorld(
      2,
      [](Communicator& comm) {
        std::vector<float> in(4096, 1.0f), out(4096);
        size_t count = comm.rank() == 0 ? 1000 : 3000;
        Status s = comm.allReduce(in.data(), out.data(), count, DataType::kFloat32, ReduceOp::kSum);
        // Each rank fails with a clear error (a size mismatch, or the peer's failure/timeout).
        EXPECT_FALSE(s.ok());
        EXPECT_NE(s.code(), StatusCode::kInternal) << s.toString();
      },
      shortTimeout()));
}

TEST(Communicator, AsyncAllReduceProgressesWhileTheCallerComputes) {
  ASSERT_TRUE(runWorld(2, [](Communicator& comm) {
    const size_t count = 4 << 20;
    std::vector<float> data(count, static_cast<float>(comm.rank() + 1));
    auto work =
        comm.allReduceAsync(data.data(), data.data(), count, DataType::kFloat32, ReduceOp::kSum);
    ASSERT_TRUE(work.ok()) << work.status().toString();
    // Compute without calling into Plexus: the background engine must finish the collective.
    // At least one round of compute first: with two ranks and their engines on two cores, the
    // caller can lose its core until the engine has finished (test() true at once, acc 0).
    double acc = 0;
    auto t0 = std::chrono::steady_clock::now();
    do {
      for (int i = 0; i < 100000; ++i) acc += std::sqrt(static_cast<double>(i));
    } while (!work->test() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60));
    EXPECT_TRUE(work->test()) << "async all-reduce made no progress while the caller computed";
    EXPECT_GT(acc, 0);
    ASSERT_TRUE(work->wait().ok());
    EXPECT_TRUE(work->error().ok());
    EXPECT_EQ(data[0], 3.0f);
    EXPECT_EQ(data[count - 1], 3.0f);
  }));
}

TEST(Communicator, AsyncCallsKeepIssueOrderWithBlockingOnes) {
  ASSERT_TRUE(runWorld(3, [](Communicator& comm) {
    std::vector<std::vector<int32_t>> bufs(5, std::vector<int32_t>(1000, comm.rank()));
    std::vector<Work> works;
    for (int i = 0; i < 4; ++i) {
      auto w = comm.allReduceAsync(bufs[i].data(), bufs[i].data(), 1000, DataType::kInt32,
                                   ReduceOp::kSum);
      ASSERT_TRUE(w.ok());
      works.push_back(*w);
    }
    ASSERT_TRUE(
        comm.allReduce(bufs[4].data(), bufs[4].data(), 1000, DataType::kInt32, ReduceOp::kMax)
            .ok());
    for (auto& w : works) ASSERT_TRUE(w.wait().ok());
    for (int i = 0; i < 4; ++i) EXPECT_EQ(bufs[i][999], 0 + 1 + 2);
    EXPECT_EQ(bufs[4][0], 2);
  }));
}

// The engine hands the driver between inline (blocking) calls and its thread (async ones)
// without a lock on the inline path: many short alternations must neither lose a wake-up (a
// hang) nor run a call before one issued earlier (wrong sums below).
TEST(Communicator, AlternatingAsyncAndBlockingCallsNeitherHangNorReorder) {
  ASSERT_TRUE(runWorld(2, [](Communicator& comm) {
    constexpr int kRounds = 400;
    std::vector<int64_t> async(kRounds), blocking(kRounds);
    std::vector<Work> works;
    for (int round = 0; round < kRounds; ++round) {
      async[round] = comm.rank() + round;
      auto w =
          comm.allReduceAsync(&async[round], &async[round], 1, DataType::kInt64, ReduceOp::kSum);
      ASSERT_TRUE(w.ok()) << w.status().toString();
      works.push_back(*w);
      blocking[round] = comm.rank() * round;
      ASSERT_TRUE(
          comm.allReduce(&blocking[round], &blocking[round], 1, DataType::kInt64, ReduceOp::kMax)
              .ok());
      // The blocking call ran after the async one issued before it.
      ASSERT_TRUE(works.back().test()) << "round " << round;
      if (round % 3 == 0) {
        ASSERT_TRUE(works.back().wait().ok());
      }
    }
    for (auto& w : works) ASSERT_TRUE(w.wait().ok());
    for (int round = 0; round < kRounds; ++round) {
      EXPECT_EQ(async[round], 2 * round + 1) << "round " << round;
      EXPECT_EQ(blocking[round], round) << "round " << round;
    }
  }));
}

TEST(Communicator, WorkWaitTimesOutThenCompletes) {
  ASSERT_TRUE(runWorld(2, [](Communicator& comm) {
    if (comm.rank() == 1) {
      // Rank 0's first wait (50 ms) cannot see this barrier complete before we arrive.
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      EXPECT_TRUE(comm.barrier().ok());
      return;
    }
    auto work = comm.barrierAsync();
    ASSERT_TRUE(work.ok());
    Status early = work->wait(std::chrono::milliseconds(50));
    EXPECT_EQ(early.code(), StatusCode::kDeadlineExceeded) << early.toString();
    EXPECT_TRUE(work->wait().ok());
  }));
}

}  // namespace
}  // namespace plexus
