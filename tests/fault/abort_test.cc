// Abort, the async-error query and the flight recorder: abort() from another thread ends a
// large all-reduce promptly, later calls fail with Aborted, destroy after abort is quick, and
// the first runtime error stays queryable.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "plexus/plexus.h"
#include "src/flight_recorder.h"
#include "tests/harness/world.h"

namespace plexus {
namespace {

using std::chrono::steady_clock;
using testing::mentions;
using testing::runWorld;

double secondsSince(steady_clock::time_point t) {
  return std::chrono::duration<double>(steady_clock::now() - t).count();
}

// Rank 1 never joins rank 0's 64 MiB all-reduce, so it waits until a watchdog thread aborts it.
TEST(Abort, FromAnotherThreadEndsALargeAllReduceWithinASecond) {
  // The 3 s timeout is ten times the abort's delay: only abort can end the all-reduce in time.
  ASSERT_TRUE(runWorld(
      2,
      [](Communicator& comm) {
        if (comm.rank() != 0) {
          // Stays away until rank 0 has aborted: its goodbye barrier must not meet rank 0's
          // all-reduce (tags are per sequence number, and both would be #0).
          std::this_thread::sleep_for(std::chrono::milliseconds(1500));
          return;
        }
        std::vector<float> buf(size_t{16} << 20, 1.0f);
        steady_clock::time_point abortedAt;
        std::thread watchdog([&] {
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
          abortedAt = steady_clock::now();
          comm.abort();
        });
        Status s =
            comm.allReduce(buf.data(), buf.data(), buf.size(), DataType::kFloat32, ReduceOp::kSum);
        const auto returnedAt = steady_clock::now();
        watchdog.join();
        const double late = std::chrono::duration<double>(returnedAt - abortedAt).count();
        EXPECT_EQ(s.code(), StatusCode::kAborted) << s.toString();
        EXPECT_LT(late, 1.0) << "the all-reduce returned " << late << " s after abort()";
        EXPECT_EQ(comm.asyncError().code(), StatusCode::kAborted);
        // Later calls fail at once, blocking and async alike.
        Status again =
            comm.allReduce(buf.data(), buf.data(), 4, DataType::kFloat32, ReduceOp::kSum);
        EXPECT_EQ(again.code(), StatusCode::kAborted);
        auto work =
            comm.allReduceAsync(buf.data(), buf.data(), 4, DataType::kFloat32, ReduceOp::kSum);
        EXPECT_FALSE(work.ok() && work->wait().ok());
      },
      testing::shortTimeout()));
}

// Async work queued before the abort fails with Aborted too, and destroying the communicator
// afterwards does not wait for the peer (no goodbye barrier with an aborted rank).
TEST(Abort, FailsQueuedWorkAndDestroysQuickly) {
  ASSERT_TRUE(testing::runRanks(
      2,
      [](int rank, const UniqueId& id) {
        auto comm = Communicator::create(id, rank, 2);
        ASSERT_TRUE(comm.ok()) << comm.status().toString();
        if (rank != 0) {  // away until rank 0 has aborted (see above)
          std::this_thread::sleep_for(std::chrono::milliseconds(1500));
          return;
        }
        std::vector<float> a(1024, 1.0f), b(1024, 1.0f);
        auto first = (*comm)->allReduceAsync(a.data(), a.data(), a.size(), DataType::kFloat32,
                                             ReduceOp::kSum);
        auto second = (*comm)->allReduceAsync(b.data(), b.data(), b.size(), DataType::kFloat32,
                                              ReduceOp::kSum);
        ASSERT_TRUE(first.ok() && second.ok());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        (*comm)->abort();
        EXPECT_EQ(first->wait(std::chrono::milliseconds(2000)).code(), StatusCode::kAborted);
        EXPECT_EQ(second->wait(std::chrono::milliseconds(2000)).code(), StatusCode::kAborted);
        auto start = steady_clock::now();
        comm->reset();
        EXPECT_LT(secondsSince(start), 2.0) << "destroy after abort waited for the peer";
      },
      testing::shortTimeout()));
}

// A timeout is the communicator's async error; before it, the query says OK.
TEST(AsyncError, HoldsTheFirstRuntimeError) {
  ASSERT_TRUE(runWorld(
      2,
      [](Communicator& comm) {
        std::vector<int32_t> buf(64, 1);
        EXPECT_TRUE(comm.asyncError().ok());
        // A bad argument is the caller's error, returned at once: not an async error.
        EXPECT_FALSE(comm.allReduce(nullptr, buf.data(), 8, DataType::kInt32, ReduceOp::kSum).ok());
        EXPECT_TRUE(comm.asyncError().ok());
        if (comm.rank() == 1) {  // away until rank 0's next all-reduce has timed out
          std::this_thread::sleep_for(std::chrono::milliseconds(4500));
          return;
        }
        Status s =
            comm.allReduce(buf.data(), buf.data(), buf.size(), DataType::kInt32, ReduceOp::kSum);
        EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.toString();
        EXPECT_EQ(comm.asyncError().code(), StatusCode::kDeadlineExceeded);
        EXPECT_TRUE(mentions(comm.asyncError(), "rank 1")) << comm.asyncError().toString();
      },
      testing::shortTimeout()));
}

TEST(FlightRecorder, KeepsTheLastOperationsOldestFirst) {
  internal::FlightRecorder recorder(3);
  EXPECT_TRUE(recorder.snapshot().empty());
  for (uint64_t seq = 0; seq < 5; ++seq) {
    recorder.begin(seq, CollectiveKind::kAllReduce, 1024 * seq, "ring",
                   std::chrono::steady_clock::now());
    if (seq < 4) recorder.end(seq, seq == 3 ? deadlineExceeded("late") : okStatus());
  }
  auto records = recorder.snapshot();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].sequence, 2u);
  EXPECT_EQ(records[1].state, internal::FlightRecord::State::kFailed);
  EXPECT_EQ(records[1].code, StatusCode::kDeadlineExceeded);
  EXPECT_EQ(records[2].state, internal::FlightRecord::State::kRunning);
  const std::string text = recorder.dump();
  EXPECT_NE(text.find("#2 allreduce 2048 B ring: done in"), std::string::npos) << text;
  EXPECT_NE(text.find("#3 allreduce 3072 B ring: DeadlineExceeded after"), std::string::npos)
      << text;
  EXPECT_NE(text.find("#4 allreduce 4096 B ring: running for"), std::string::npos) << text;
  // An end() for an operation that is not the running one changes nothing.
  recorder.end(2, okStatus());
  EXPECT_EQ(recorder.snapshot()[2].state, internal::FlightRecord::State::kRunning);
}

}  // namespace
}  // namespace plexus
