#include "tests/harness/world.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "src/unique_id_registry.h"

namespace plexus::testing {
namespace {

// Sanitizers slow every rank several times over (ASan about 3x, TSan 5-15x, more with ranks
// sharing 2 cores): the whole-world deadline, which only turns a hang into a failure, stretches
// by this much so that slow is not mistaken for hung.
constexpr int kDeadlineScale = kUnderSanitizer ? 4 : 1;

[[noreturn]] void childMain(int rank, const UniqueId& id,
                            const std::function<void(int, const UniqueId&)>& body,
                            const WorldOptions& options) {
  // Ranks here are forked, not exec'd. UCX's memory hooks (installed by ucp_init for its
  // registration cache) can deadlock in such a child (seen: ucm_event_enter_exclusive stuck in
  // ucp_init, about 1 run in 30). Plexus does not need that cache on shm/CMA/TCP; real launchers
  // exec their ranks and keep UCX's default.
  ::setenv("UCX_RCACHE_ENABLE", "n", 0);
  for (const auto& [k, v] : options.env) ::setenv(k.c_str(), v.c_str(), 1);
  {
    SCOPED_TRACE("rank " + std::to_string(rank));
    body(rank, id);
  }
  std::fflush(stdout);
  std::fflush(stderr);
  // _exit: the child must not run the parent's atexit handlers or gtest's teardown.
  ::_exit(::testing::Test::HasFailure() ? 1 : 0);
}

}  // namespace

::testing::AssertionResult runRanks(int n, const std::function<void(int, const UniqueId&)>& body,
                                    const WorldOptions& options) {
  // Fork first, then start the store (UniqueId::generate runs its server on a thread here) and
  // hand its id to the ranks through a pipe: a fork while another thread may hold a lock copies
  // the lock held. glibc's malloc guards against that; ASan's allocator (GCC 12) does not, and
  // ranks forked beside the store thread deadlocked in it about 1 run in 3.
  std::fflush(stdout);
  std::fflush(stderr);
  int idPipe[2];
  if (::pipe(idPipe) != 0) return ::testing::AssertionFailure() << "pipe failed";
  std::vector<pid_t> pids;
  for (int r = 0; r < n; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) return ::testing::AssertionFailure() << "fork failed";
    if (pid == 0) {
      ::close(idPipe[1]);
      UniqueId id;
      size_t got = 0;
      while (got < id.bytes.size()) {
        ssize_t k = ::read(idPipe[0], id.bytes.data() + got, id.bytes.size() - got);
        if (k > 0) got += static_cast<size_t>(k);
        if (k == 0 || (k < 0 && errno != EINTR)) ::_exit(3);  // the test gave up before the id
      }
      ::close(idPipe[0]);
      childMain(r, id, body, options);
    }
    pids.push_back(pid);
  }
  ::close(idPipe[0]);
  auto id = UniqueId::generate();
  if (id.ok()) {
    // n copies of 128 bytes fit the pipe's buffer (64 KiB) for any world a test runs.
    for (int r = 0; r < n && id.ok(); ++r) {
      if (::write(idPipe[1], id->bytes.data(), id->bytes.size()) !=
          static_cast<ssize_t>(id->bytes.size())) {
        id = internalError("could not hand the store's id to the ranks");
      }
    }
  }
  ::close(idPipe[1]);
  if (!id.ok()) {
    for (pid_t pid : pids) ::waitpid(pid, nullptr, 0);  // they exit on the closed pipe
    return ::testing::AssertionFailure() << id.status().toString();
  }
  const auto allowed = options.deadline * kDeadlineScale;
  auto deadline = std::chrono::steady_clock::now() + allowed;
  std::vector<int> status(n, -1);
  int left = n;
  bool timedOut = false;
  while (left > 0) {
    for (int r = 0; r < n; ++r) {
      if (status[r] != -1) continue;
      int st = 0;
      if (::waitpid(pids[r], &st, WNOHANG) == pids[r]) {
        status[r] = st;
        --left;
      }
    }
    if (left == 0) break;
    // Only ranks that may die are left (e.g. a stopped one): end them.
    bool onlyVictims = true;
    for (int r = 0; r < n; ++r) {
      onlyVictims = onlyVictims && (status[r] != -1 || options.mayDie.count(r) != 0);
    }
    if (onlyVictims) {
      for (int r = 0; r < n; ++r) {
        if (status[r] == -1) {
          ::kill(pids[r], SIGKILL);
          ::waitpid(pids[r], &status[r], 0);
        }
      }
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      timedOut = true;
      for (int r = 0; r < n; ++r) {
        if (status[r] == -1) ::kill(pids[r], SIGKILL);
      }
      for (int r = 0; r < n; ++r) {
        if (status[r] == -1) ::waitpid(pids[r], &status[r], 0);
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // Stop the store (its server thread): a test binary that runs several worlds in one process
  // would otherwise fork the next world's ranks beside it (see above; TSan refuses outright).
  internal::adoptStoreServer(*id).reset();
  std::string failures;
  for (int r = 0; r < n; ++r) {
    int st = status[r];
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) continue;
    if (WIFSIGNALED(st) && options.mayDie.count(r) != 0) continue;
    failures += " rank " + std::to_string(r) +
                (WIFSIGNALED(st) ? " killed by signal " + std::to_string(WTERMSIG(st))
                                 : " exited " + std::to_string(WEXITSTATUS(st))) +
                ";";
  }
  if (timedOut) {
    return ::testing::AssertionFailure() << "world of " << n << " ranks did not finish within "
                                         << allowed.count() << " s:" << failures;
  }
  if (!failures.empty()) return ::testing::AssertionFailure() << failures;
  return ::testing::AssertionSuccess();
}

WorldOptions shortTimeout() {
  WorldOptions o;
  o.env["PLEXUS_TIMEOUT_MS"] = "3000";
  o.deadline = std::chrono::seconds(40);
  return o;
}

::testing::AssertionResult runWorld(int n, const std::function<void(Communicator&)>& body,
                                    const WorldOptions& options) {
  return runRanks(
      n,
      [&](int rank, const UniqueId& id) {
        auto comm = Communicator::create(id, rank, n);
        ASSERT_TRUE(comm.ok()) << comm.status().toString();
        body(**comm);
      },
      options);
}

}  // namespace plexus::testing
