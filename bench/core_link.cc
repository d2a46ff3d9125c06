// plexus-core-link: how fast two cores of this host hand data to each other, the cost that
// decides the shared-memory collectives (algorithms/shm_channel.h).
//
//   plexus-core-link [--cores A,B] [--json]
//
// Two threads, pinned to cores A and B (default: the first two of this process's affinity
// mask), measure (1) the one-way latency of a cache line handed back and forth (a counter each
// increments in turn: the median of 15 batches of 20000 hand-offs) and (2) the rate at which
// core A reads 256 KiB that core B has just written (the best of 50 rounds): a piece of the shm
// all-reduce, as its readers see it.
//
// Why it exists: this project's 2-core VM switches, for seconds to minutes at a time, between
// two states. In one the two vCPUs share a last-level cache (a hand-off of ~45 ns, ~54 GB/s
// across); in the other they do not (~220 ns, ~15 GB/s), and the shm all-reduce of 8 MiB then
// takes twice as long (2 ranks: 1.26 against 2.6 ms) while a transport's single-copy path barely
// moves. bench/compare/compare.py and tools/plexus_tune_check.py run it before every round
// and print the state beside the figures. Exits 1 on a failure, 2 on bad arguments.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace plexus::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kHandOffs = 20000;
constexpr int kBatches = 15;
constexpr size_t kReadBytes = 256 * 1024;
constexpr int kReadRounds = 50;

struct Args {
  int a = -1, b = -1;
  bool json = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "plexus-core-link: %s\nusage: plexus-core-link [--cores A,B] [--json]\n",
               why.c_str());
  std::exit(2);
}

Args parseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--json") {
      args.json = true;
    } else if (f == "--cores" && i + 1 < argc) {
      const char* v = argv[++i];
      char* end = nullptr;
      args.a = static_cast<int>(std::strtol(v, &end, 10));
      if (end == v || *end != ',') usage("--cores wants two core numbers, like 0,1");
      const char* second = end + 1;
      args.b = static_cast<int>(std::strtol(second, &end, 10));
      if (end == second || *end != '\0' || args.a < 0 || args.b < 0 || args.a == args.b) {
        usage("--cores wants two different core numbers, like 0,1");
      }
    } else if (f == "-h" || f == "--help") {
      usage("measures the cache-line hand-off and read rate between two cores");
    } else {
      usage("unknown option " + f);
    }
  }
  return args;
}

// Pins the calling thread to `core`; false when the kernel refuses (not in the mask).
bool pin(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

double nsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
}

struct Result {
  double handOffNs = 0;
  double readGBs = 0;
};

// Runs on core a; the helper thread on core b. Both use `turn`: the hand-offs bump it
// alternately, then each read round is started by a (odd value) and answered by b (even).
bool measure(int a, int b, Result* out) {
  alignas(64) std::atomic<uint64_t> turn{0};
  std::vector<char> buffer(kReadBytes);
  std::atomic<bool> pinned{true};
  const uint64_t handOffTurns = uint64_t{2} * kHandOffs * kBatches;
  std::thread helper([&] {
    if (!pin(b)) pinned = false;
    for (uint64_t t = 1; t < handOffTurns; t += 2) {  // answers every odd value with the next
      while (turn.load(std::memory_order_acquire) != t) {
      }
      turn.store(t + 1, std::memory_order_release);
    }
    for (int r = 0; r < kReadRounds; ++r) {
      const uint64_t ask = handOffTurns + 2 * static_cast<uint64_t>(r) + 1;
      while (turn.load(std::memory_order_acquire) != ask) {
      }
      std::memset(buffer.data(), r, buffer.size());
      turn.store(ask + 1, std::memory_order_release);
    }
  });
  const bool pinnedHere = pin(a);
  std::vector<double> batches;
  for (int batch = 0; batch < kBatches; ++batch) {
    const auto t0 = Clock::now();
    for (int i = 0; i < kHandOffs; ++i) {
      const uint64_t t = (static_cast<uint64_t>(batch) * kHandOffs + i) * 2;
      turn.store(t + 1, std::memory_order_release);
      while (turn.load(std::memory_order_acquire) != t + 2) {
      }
    }
    batches.push_back(nsSince(t0) / (2.0 * kHandOffs));  // two one-way trips per hand-off
  }
  double bestNs = 1e300;
  volatile uint64_t sink = 0;
  for (int r = 0; r < kReadRounds; ++r) {
    const uint64_t ask = handOffTurns + 2 * static_cast<uint64_t>(r) + 1;
    turn.store(ask, std::memory_order_release);
    while (turn.load(std::memory_order_acquire) != ask + 1) {
    }
    const auto t0 = Clock::now();
    uint64_t sum = 0;
    // One load per cache line: the rate at which lines cross, not the loop's arithmetic.
    for (size_t i = 0; i < kReadBytes; i += 64) sum += static_cast<uint8_t>(buffer[i]);
    bestNs = std::min(bestNs, nsSince(t0));
    sink = sink + sum;
  }
  helper.join();
  if (!pinnedHere || !pinned) return false;
  std::nth_element(batches.begin(), batches.begin() + kBatches / 2, batches.end());
  out->handOffNs = batches[kBatches / 2];
  out->readGBs = static_cast<double>(kReadBytes) / bestNs;
  return true;
}

int run(int argc, char** argv) {
  Args args = parseArgs(argc, argv);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    std::fprintf(stderr, "plexus-core-link: sched_getaffinity: %s\n", std::strerror(errno));
    return 1;
  }
  if (args.a < 0) {
    for (int c = 0; c < CPU_SETSIZE && args.b < 0; ++c) {
      if (CPU_ISSET(c, &set)) (args.a < 0 ? args.a : args.b) = c;
    }
    if (args.b < 0) {
      std::fprintf(stderr, "plexus-core-link: this process may run on one core only\n");
      return 1;
    }
  }
  // Both threads spin: on one core each hand-off would wait for a preemption.
  for (int c : {args.a, args.b}) {
    if (c >= CPU_SETSIZE || !CPU_ISSET(c, &set)) {
      std::fprintf(stderr, "plexus-core-link: core %d is not in this process's affinity mask\n", c);
      return 1;
    }
  }
  Result r;
  if (!measure(args.a, args.b, &r)) {
    std::fprintf(stderr, "plexus-core-link: cannot pin threads to cores %d and %d\n", args.a,
                 args.b);
    return 1;
  }
  if (args.json) {
    std::printf("{\"cores\": [%d, %d], \"hand_off_ns\": %.1f, \"read_GBps\": %.2f}\n", args.a,
                args.b, r.handOffNs, r.readGBs);
  } else {
    std::printf(
        "cores %d,%d: cache line hand-off %.0f ns one way; %zu KiB written on %d, read on "
        "%d at %.1f GB/s\n",
        args.a, args.b, r.handOffNs, kReadBytes / 1024, args.b, args.a, r.readGBs);
  }
  return 0;
}

}  // namespace
}  // namespace plexus::bench

int main(int argc, char** argv) { return plexus::bench::run(argc, argv); }
