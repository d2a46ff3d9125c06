// Faults: a rank killed or stopped in the middle of all-reduces. Every survivor must return an
// error that names the missing rank within the timeout plus a margin — never hang. Bounds are
// deliberately generous (the machine may be loaded); the harness kills anything still running
// at its deadline, which fails the test.
#include <gtest/gtest.h>
#include <signal.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "plexus/plexus.h"
#include "tests/harness/world.h"

namespace plexus {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kTimeout = std::chrono::milliseconds(2000);
// Allowed beyond the timeout before a survivor must have given up.
constexpr auto kMargin = std::chrono::seconds(8);

testing::WorldOptions faultOptions(int victim) {
  testing::WorldOptions o;
  o.env["PLEXUS_TIMEOUT_MS"] = std::to_string(kTimeout.count());
  o.deadline = std::chrono::seconds(60);
  o.mayDie = {victim};
  return o;
}

// A dead peer is reported as Unavailable when the transport notices (UCX does when the dead
// rank's shared memory disappears), else as DeadlineExceeded once the timeout passes.
bool peerFailureCode(StatusCode c) {
  return c == StatusCode::kUnavailable || c == StatusCode::kDeadlineExceeded;
}

// "rank V" as a whole number, as in "rank 1 (pid 123) has exited" or "rank 1 failed".
bool namesRank(const std::string& message, int rank) {
  const std::string word = "rank " + std::to_string(rank);
  for (size_t at = message.find(word); at != std::string::npos; at = message.find(word, at + 1)) {
    const size_t end = at + word.size();
    if (end == message.size() || !std::isdigit(static_cast<unsigned char>(message[end]))) {
      return true;
    }
  }
  return false;
}

// Runs all-reduces until one fails; the victim signals itself after `victimAfter` of them.
// Survivors check the error: its code, that it names a rank, and how long it took.
void allReduceUntilFailure(Communicator& comm, int victim, int victimAfter, int signal,
                           bool stopped) {
  std::vector<float> buf(1 << 18, 1.0f);
  for (int i = 0;; ++i) {
    if (comm.rank() == victim && i == victimAfter) ::raise(signal);
    auto start = Clock::now();
    Status s =
        comm.allReduce(buf.data(), buf.data(), buf.size(), DataType::kFloat32, ReduceOp::kMax);
    if (s.ok()) {
      ASSERT_LT(i, 100000) << "the victim never failed anyone";
      continue;
    }
    auto took = Clock::now() - start;
    // The figure issue #8 asks for (stopped: within [timeout, timeout + 2 s]), in the test log.
    std::fprintf(stderr, "rank %d: %s after %.3f s (timeout %.3f s)\n", comm.rank(),
                 statusCodeName(s.code()), std::chrono::duration<double>(took).count(),
                 std::chrono::duration<double>(kTimeout).count());
    EXPECT_TRUE(peerFailureCode(s.code())) << s.toString();
    EXPECT_LE(took, kTimeout + kMargin) << s.toString();
    // A stopped rank is alive: nothing can be reported before the deadline.
    if (stopped) {
      EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.toString();
      EXPECT_GE(took, kTimeout) << s.toString();
    }
    // A neighbour of the victim names it; a rank further away names the neighbour that is now
    // stuck waiting for it — either way, a rank is named.
    EXPECT_TRUE(s.message().find("waiting for rank") != std::string::npos ||
                s.message().find("failed") != std::string::npos)
        << s.toString();
    // A killed rank is named on every survivor of its host, two hops away too (the process
    // table tells, even while the victim is a zombie its parent has not reaped yet).
    if (!stopped) {
      EXPECT_TRUE(namesRank(s.message(), victim)) << s.toString();
    }
    return;
  }
}

TEST(Fault, KilledRankFailsEverySurvivorPromptly) {
  const int victim = 1;
  EXPECT_TRUE(testing::runWorld(
      4,
      [&](Communicator& comm) {
        allReduceUntilFailure(comm, victim, 5, SIGKILL, /*stopped=*/false);
      },
      faultOptions(victim)));
}

TEST(Fault, StoppedRankGivesDeadlineExceededAfterTheTimeout) {
  const int victim = 2;
  EXPECT_TRUE(testing::runWorld(
      4,
      [&](Communicator& comm) {
        allReduceUntilFailure(comm, victim, 3, SIGSTOP, /*stopped=*/true);
      },
      faultOptions(victim)));
}

TEST(Fault, KilledRankDuringAsyncWorkSurfacesInWait) {
  const int victim = 0;
  EXPECT_TRUE(testing::runWorld(
      2,
      [&](Communicator& comm) {
        std::vector<float> buf(1 << 20, 1.0f);
        ASSERT_TRUE(comm.barrier().ok());  // both fully connected before the victim dies
        if (comm.rank() == victim) ::raise(SIGKILL);
        auto work = comm.allReduceAsync(buf.data(), buf.data(), buf.size(), DataType::kFloat32,
                                        ReduceOp::kSum);
        ASSERT_TRUE(work.ok());
        Status s = work->wait(kTimeout + kMargin);
        EXPECT_TRUE(peerFailureCode(s.code())) << s.toString();
        EXPECT_NE(s.message().find("rank 0"), std::string::npos) << s.toString();
      },
      faultOptions(victim)));
}

}  // namespace
}  // namespace plexus
