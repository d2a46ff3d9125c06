#include "tests/transports/transport_world.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace plexus::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Tag of the zero-byte barrier messages: the top of the tag space, unused by the tests.
constexpr uint64_t kBarrierTag = kTagMask;
// How long wait() spins before it lets the transport block.
constexpr auto kSpin = std::chrono::microseconds(50);

std::string hostName() {
  char buf[256] = {};
  return ::gethostname(buf, sizeof(buf) - 1) == 0 ? buf : "";
}

// Publishes this rank's address atomically (write, then rename) and reads every peer's,
// polling until it appears.
bool exchangeAddresses(const fs::path& dir, int rank, int size, const std::vector<uint8_t>& mine,
                       std::vector<std::vector<uint8_t>>& all) {
  fs::path tmp = dir / (std::to_string(rank) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(reinterpret_cast<const char*>(mine.data()),
              static_cast<std::streamsize>(mine.size()));
    if (!out) return false;
  }
  fs::rename(tmp, dir / std::to_string(rank));
  all.assign(size, {});
  auto until = Clock::now() + std::chrono::seconds(60);
  for (int p = 0; p < size; ++p) {
    fs::path file = dir / std::to_string(p);
    while (!fs::exists(file)) {
      if (Clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::ifstream in(file, std::ios::binary);
    all[p].assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return true;
}

void rankMain(const std::string& name, int rank, int size, const fs::path& dir,
              const std::function<void(TransportRank&)>& body,
              const TransportWorldOptions& options) {
  SCOPED_TRACE(name + " rank " + std::to_string(rank));
  // As in tests/harness/world.cc: UCX's memory hooks can deadlock in a forked (not exec'd) child.
  ::setenv("UCX_RCACHE_ENABLE", "n", 0);
  for (const auto& [k, v] : options.env) ::setenv(k.c_str(), v.c_str(), 1);
  auto transport = createTransport(name, TransportContext{rank, size, nullptr, {}});
  ASSERT_TRUE(transport.ok()) << transport.status().toString();
  TransportRank self(rank, size, std::move(transport).value());
  std::vector<std::vector<uint8_t>> addresses;
  ASSERT_TRUE(exchangeAddresses(dir, rank, size, self.transport().localAddress(), addresses))
      << "address exchange timed out";
  std::string host = hostName();
  for (int p = 0; p < size; ++p) {
    if (p == rank) continue;
    ASSERT_TRUE(self.transport().canConnect(PeerInfo{p, host, host}));
    auto conn = self.transport().connect(p, addresses[p]);
    ASSERT_TRUE(conn.ok()) << conn.status().toString();
    self.connections()[p] = std::move(conn).value();
  }
  body(self);
  if (options.finalBarrier && !::testing::Test::HasFatalFailure()) {
    Status s = self.barrier();
    EXPECT_TRUE(s.ok()) << "final barrier: " << s.toString();
  }
}

}  // namespace

TransportRank::~TransportRank() {
  connections_.clear();  // connections go before their transport
  transport_.reset();
}

Status TransportRank::wait(TransferRequest* reqs, size_t n, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto idleSince = Clock::now();
  for (;;) {
    size_t pending = 0;
    for (size_t i = 0; i < n; ++i) pending += reqs[i].done ? 0 : 1;
    if (pending == 0) return okStatus();
    auto now = Clock::now();
    if (now > deadline) {
      return deadlineExceeded("rank " + std::to_string(rank_) + ": " + std::to_string(pending) +
                              " of " + std::to_string(n) + " requests still pending after " +
                              std::to_string(timeout.count()) + " ms");
    }
    if (transport_->progress()) {
      idleSince = now;
    } else if (now - idleSince > kSpin) {
      transport_->waitForEvent(std::chrono::milliseconds(1));
    }
  }
}

Status TransportRank::barrier(std::chrono::milliseconds timeout) {
  std::vector<TransferRequest> reqs(2 * static_cast<size_t>(size_));
  for (int p = 0; p < size_; ++p) {
    if (p == rank_) {
      reqs[2 * p].done = reqs[2 * p + 1].done = true;
      continue;
    }
    PLEXUS_TRY(peer(p).irecv(nullptr, 0, kBarrierTag, &reqs[2 * p]));
    PLEXUS_TRY(peer(p).isend(nullptr, 0, kBarrierTag, &reqs[2 * p + 1]));
  }
  PLEXUS_TRY(wait(reqs.data(), reqs.size(), timeout));
  for (auto& r : reqs) PLEXUS_TRY(r.status);
  return okStatus();
}

::testing::AssertionResult runTransportRanks(const std::string& name, int n,
                                             const std::function<void(TransportRank&)>& body,
                                             const TransportWorldOptions& options) {
  std::string pattern = (fs::temp_directory_path() / "plexus-transport-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return ::testing::AssertionFailure() << "mkdtemp";
  fs::path dir = pattern;
  std::fflush(stdout);
  std::fflush(stderr);
  std::vector<pid_t> pids;
  for (int r = 0; r < n; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) return ::testing::AssertionFailure() << "fork failed";
    if (pid == 0) {
      rankMain(name, r, n, dir, body, options);
      bool leaked = false;
#if defined(__SANITIZE_ADDRESS__)
      // _exit skips LeakSanitizer's exit-time check: run it here, after the transport is gone.
      leaked = __lsan_do_recoverable_leak_check() != 0;
#endif
      std::fflush(stdout);
      std::fflush(stderr);
      // _exit: the child must not run the parent's atexit handlers or gtest's teardown.
      ::_exit(::testing::Test::HasFailure() || leaked ? 1 : 0);
    }
    pids.push_back(pid);
  }
  auto deadline = Clock::now() + options.deadline;
  std::string failures;
  bool timedOut = false;
  for (int r = 0; r < n; ++r) {
    int st = 0;
    while (::waitpid(pids[r], &st, WNOHANG) != pids[r]) {
      if (!timedOut && Clock::now() > deadline) {
        timedOut = true;
        for (pid_t pid : pids) ::kill(pid, SIGKILL);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    bool killedAsPlanned = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && options.mayDie.count(r);
    if ((WIFEXITED(st) && WEXITSTATUS(st) == 0) || (killedAsPlanned && !timedOut)) continue;
    failures += " rank " + std::to_string(r) +
                (WIFSIGNALED(st) ? " killed by signal " + std::to_string(WTERMSIG(st))
                                 : " exited " + std::to_string(WEXITSTATUS(st))) +
                ";";
  }
  std::error_code ignored;
  fs::remove_all(dir, ignored);
  if (timedOut) {
    return ::testing::AssertionFailure()
           << name << " world of " << n << " ranks did not finish within "
           << options.deadline.count() << " s:" << failures;
  }
  if (!failures.empty()) return ::testing::AssertionFailure() << name << ":" << failures;
  return ::testing::AssertionSuccess();
}

}  // namespace plexus::testing
