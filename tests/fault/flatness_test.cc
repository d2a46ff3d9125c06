// Flatness: a rank that runs for long must not grow. Thousands of back-to-back collectives of
// random kinds and sizes, and communicator create/destroy cycles, must leave every rank with the
// descriptors and memory it had after warm-up. What "flat" means (flatnessViolations):
//
//  - open descriptors (/proc/self/fd): exactly equal. Everything Plexus, UCX and libfabric open
//    (sockets, eventfds, epoll sets, shared-memory files) either lives as long as the process or
//    is closed with its communicator; one descriptor per cycle left behind is a leak however
//    small, and the count has no noise to tolerate.
//  - heap in use (mallinfo2: bytes in allocated chunks plus mmapped chunks, all arenas): at most
//    kHeapSlack (256 KiB) above. It counts live allocations exactly, so over 9,000 collectives
//    it catches a leak of 30 bytes per collective, and one of 1.5 KiB per cycle over the 180
//    cycles ctest measures (300 bytes over the full 900): a leaked Work state, request, endpoint
//    or store record set is that large. The slack covers
//    what is legitimately live at one snapshot and not the other (a request in flight on a
//    progress thread, libc's per-thread caches): measured at 10-40 KiB whatever the count
//    (200, 400 or 1,000 split cycles alike), i.e. noise rather than growth.
//  - resident memory (/proc/self/statm): at most kRssSlack (4 MiB) above. Coarser than the heap
//    figure (pages of freed memory stay resident until malloc trims them; measured growth up to
//    0.3 MiB), but it also sees memory outside malloc: UCX's memory pools, mapped
//    shared-memory segments, thread stacks.
//
// ctest runs 10,000 collectives and 200 cycles of each kind; PLEXUS_FLATNESS_COLLECTIVES and
// PLEXUS_FLATNESS_CYCLES change them (the full run: 1,000 cycles). Nothing here depends on timing:
// the world deadline only turns a hang into a failure. Flatness.TheCheckTrips proves the
// measurements can fail.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "plexus/plexus.h"
#include "tests/harness/world.h"

namespace plexus {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
// Under a sanitizer, malloc is the sanitizer's: mallinfo2 does not see its heap, and freed
// memory sits in a quarantine, so resident memory grows by design. Descriptors are still
// checked exactly; memory only in plain builds.
constexpr bool kMemoryMeasurable = !plexus::testing::kUnderSanitizer;
constexpr size_t kHeapSlack = 256 * 1024;
constexpr size_t kRssSlack = 4 * kMiB;
// Communicator cycles per test in ctest: each costs tens of milliseconds (a UCX context and
// worker per communicator), so the full 1,000 (PLEXUS_FLATNESS_CYCLES) stays out of the suite.
constexpr int kDefaultCycles = 200;

// What a rank holds at one moment.
struct Resources {
  int fds = 0;
  size_t heapBytes = 0;
  size_t rssBytes = 0;
};

int openFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

Resources measure() {
  Resources r;
  r.fds = openFds();
  struct mallinfo2 mi = ::mallinfo2();
  r.heapBytes = mi.uordblks + mi.hblkhd;
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  r.rssBytes = static_cast<size_t>(resident) * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return r;
}

std::string describe(const Resources& r) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%d fds, heap %.1f KiB, rss %.2f MiB", r.fds,
                static_cast<double>(r.heapBytes) / 1024, static_cast<double>(r.rssBytes) / kMiB);
  return buf;
}

// Empty when `after` is flat against `before`; else what grew, and by how much.
std::string flatnessViolations(const Resources& before, const Resources& after) {
  std::string v;
  if (after.fds != before.fds) {
    v += "open descriptors " + std::to_string(before.fds) + " -> " + std::to_string(after.fds) +
         "; ";
  }
  if (!kMemoryMeasurable) return v;
  if (after.heapBytes > before.heapBytes + kHeapSlack) {
    v += "heap grew " + std::to_string(after.heapBytes - before.heapBytes) + " bytes (slack " +
         std::to_string(kHeapSlack) + "); ";
  }
  if (after.rssBytes > before.rssBytes + kRssSlack) {
    v += "resident memory grew " + std::to_string(after.rssBytes - before.rssBytes) +
         " bytes (slack " + std::to_string(kRssSlack) + "); ";
  }
  return v;
}

int countFromEnv(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && std::atoi(v) > 0 ? std::atoi(v) : fallback;
}

// Runs `total` steps; snapshots after the first tenth (warm-up: every lazily created endpoint,
// cache and pool exists by then) and at the end, both behind a barrier of `sync` so that no
// peer is mid-step. Each rank checks and prints its own figures.
template <typename Step>
void expectFlat(const char* what, Communicator& sync, int total, const Step& step) {
  const int warmup = std::max(1, total / 10);
  Resources before;
  for (int i = 0; i < total; ++i) {
    if (i == warmup) {
      ASSERT_TRUE(sync.barrier().ok());
      before = measure();
    }
    step(i);
    if (::testing::Test::HasFatalFailure()) return;
  }
  ASSERT_TRUE(sync.barrier().ok());
  Resources after = measure();
  std::printf("[flatness] %s, rank %d: %d steps, after %d: %s; at the end: %s\n", what, sync.rank(),
              total, warmup, describe(before).c_str(), describe(after).c_str());
  std::fflush(stdout);
  EXPECT_EQ(flatnessViolations(before, after), "") << what << " on rank " << sync.rank();
}

// The collectives under test, one per value; all are out of place over float buffers sized for
// the largest count, so the test itself never allocates after warm-up.
enum class Op {
  kAllReduce,
  kAllReduceAsync,
  kBroadcast,
  kReduce,
  kAllGather,
  kReduceScatter,
  kAllToAll,
  kSendRecv,
  kBarrier,
  kCount
};
constexpr size_t kMaxCount = 4096 + 16;

class RandomCollectives {
 public:
  explicit RandomCollectives(Communicator& comm)
      : comm_(comm), n_(comm.size()), send_(kMaxCount * n_, 1.0f), recv_(kMaxCount * n_, 0.0f) {}

  // Every rank draws the same sequence (same seed, same draws), so all pick the same call.
  void runOne() {
    const auto op = static_cast<Op>(rng_() % static_cast<unsigned>(Op::kCount));
    const size_t count = rng_() % 64 == 0 ? 0 : (size_t{1} << (rng_() % 13)) + rng_() % 16;
    const int root = static_cast<int>(rng_() % n_);
    Status s = run(op, count, root);
    ASSERT_TRUE(s.ok()) << "op " << static_cast<int>(op) << " count " << count << ": "
                        << s.toString();
    if (op == Op::kAllReduce && count > 0) {
      ASSERT_EQ(recv_[count - 1], static_cast<float>(n_)) << "all-reduce of " << count;
    }
  }

 private:
  Status run(Op op, size_t count, int root) {
    const float* in = send_.data();
    float* out = recv_.data();
    constexpr DataType f32 = DataType::kFloat32;
    switch (op) {
      case Op::kAllReduce:
        return comm_.allReduce(in, out, count, f32, ReduceOp::kSum);
      case Op::kAllReduceAsync: {
        auto work = comm_.allReduceAsync(in, out, count, f32, ReduceOp::kMax);
        return work.ok() ? work->wait() : work.status();
      }
      case Op::kBroadcast:
        return comm_.broadcast(in, out, count, f32, root);
      case Op::kReduce:
        return comm_.reduce(in, out, count, f32, ReduceOp::kSum, root);
      case Op::kAllGather:
        return comm_.allGather(in, out, count, f32);
      case Op::kReduceScatter:
        return comm_.reduceScatter(in, out, count, f32, ReduceOp::kSum);
      case Op::kAllToAll:
        return comm_.allToAll(in, out, count, f32);
      case Op::kSendRecv: {
        const int me = comm_.rank();
        PLEXUS_TRY(comm_.groupStart());
        PLEXUS_TRY(comm_.send(in, count, f32, (me + 1) % n_));
        PLEXUS_TRY(comm_.recv(out, count, f32, (me + n_ - 1) % n_));
        return comm_.groupEnd();
      }
      default:
        return comm_.barrier();
    }
  }

  Communicator& comm_;
  const int n_;
  std::mt19937 rng_{20240808};
  std::vector<float> send_, recv_;
};

// A hang guard, not a performance bound: generous for a loaded two-core machine.
testing::WorldOptions guard(int seconds) {
  testing::WorldOptions o;
  o.deadline = std::chrono::seconds(seconds);
  return o;
}

// A communicator whose store rank 0 hosts (the id is generated there and broadcast over
// `world`), as NCCL-style frameworks create them; its destruction ends that store too.
std::unique_ptr<Communicator> createHosted(Communicator& world) {
  UniqueId id;
  if (world.rank() == 0) {
    auto generated = UniqueId::generate();
    EXPECT_TRUE(generated.ok()) << generated.status().toString();
    if (!generated.ok()) return nullptr;
    id = *generated;
  }
  Status s =
      world.broadcast(id.bytes.data(), id.bytes.data(), id.bytes.size(), DataType::kUInt8, 0);
  EXPECT_TRUE(s.ok()) << s.toString();
  auto comm = Communicator::create(id, world.rank(), world.size());
  EXPECT_TRUE(comm.ok()) << comm.status().toString();
  return comm.ok() ? std::move(*comm) : nullptr;
}

// One all-reduce on a fresh communicator, so that its connections are really used.
void useOnce(Communicator& comm) {
  float one = 1, sum = 0;
  ASSERT_TRUE(comm.allReduce(&one, &sum, 1, DataType::kFloat32, ReduceOp::kSum).ok());
  ASSERT_EQ(sum, static_cast<float>(comm.size()));
}

TEST(Flatness, TheCheckTrips) {
  // The test process may measure itself: nothing here creates threads (see world.h).
  Resources before = measure();
  int leaked = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(leaked, 0);
  std::string v = flatnessViolations(before, measure());
  EXPECT_NE(v.find("open descriptors"), std::string::npos) << v;
  ::close(leaked);
  EXPECT_EQ(flatnessViolations(before, measure()), "");
  if (!kMemoryMeasurable) {
    GTEST_SKIP() << "memory is not measurable under a sanitizer (descriptors checked above)";
  }
  // Memory held and touched: 16 MiB in 4 KiB pieces (below malloc's mmap threshold).
  std::vector<std::unique_ptr<char[]>> held;
  for (int i = 0; i < 4096; ++i) {
    held.push_back(std::make_unique<char[]>(4096));
    for (size_t j = 0; j < 4096; j += 64) held.back()[j] = 1;
  }
  v = flatnessViolations(before, measure());
  EXPECT_NE(v.find("heap grew"), std::string::npos) << v;
  EXPECT_NE(v.find("resident memory grew"), std::string::npos) << v;
}

TEST(Flatness, BackToBackCollectives) {
  const int total = countFromEnv("PLEXUS_FLATNESS_COLLECTIVES", 10000);
  EXPECT_TRUE(testing::runWorld(
      3,
      [&](Communicator& comm) {
        RandomCollectives collectives(comm);
        expectFlat("random collectives", comm, total, [&](int) { collectives.runOne(); });
      },
      guard(60 + total / 50)));
}

TEST(Flatness, CommunicatorCreateDestroyCycles) {
  const int cycles = countFromEnv("PLEXUS_FLATNESS_CYCLES", kDefaultCycles);
  EXPECT_TRUE(testing::runWorld(
      2,
      [&](Communicator& world) {
        expectFlat("create/destroy", world, cycles, [&](int) {
          std::unique_ptr<Communicator> comm = createHosted(world);
          ASSERT_NE(comm, nullptr);
          useOnce(*comm);
        });
      },
      guard(60 + cycles)));
}

// Splits of the harness's world, whose store lives outside the ranks.
TEST(Flatness, SplitCycles) {
  const int cycles = countFromEnv("PLEXUS_FLATNESS_CYCLES", kDefaultCycles);
  EXPECT_TRUE(testing::runWorld(
      3,
      [&](Communicator& world) {
        expectFlat("split/destroy", world, cycles, [&](int) {
          auto child = world.split(0, world.rank());
          ASSERT_TRUE(child.ok()) << child.status().toString();
          useOnce(**child);
        });
      },
      guard(60 + cycles)));
}

// The same with the store on rank 0, whose figures then include what each split leaves in it:
// a child's records go when it is destroyed, a split record at the parent's next split.
TEST(Flatness, SplitCyclesWithTheStoreOnRankZero) {
  const int cycles = countFromEnv("PLEXUS_FLATNESS_CYCLES", kDefaultCycles);
  EXPECT_TRUE(testing::runWorld(
      3,
      [&](Communicator& world) {
        std::unique_ptr<Communicator> parent = createHosted(world);
        ASSERT_NE(parent, nullptr);
        expectFlat("split/destroy, store on rank 0", *parent, cycles, [&](int) {
          auto child = parent->split(0, parent->rank());
          ASSERT_TRUE(child.ok()) << child.status().toString();
          useOnce(**child);
        });
      },
      guard(60 + cycles)));
}

}  // namespace
}  // namespace plexus
