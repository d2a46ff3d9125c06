// plexus-zero-copy: an all-reduce of one node's ranks as it runs when every rank can load and
// store the others' buffers directly, measured on this host, beside the memory ceiling.
//
//   plexus-zero-copy [-n RANKS] [-b MIN] [-e MAX] [-f FACTOR] [-i ITERS] [-r REPS]
//                    [-m all|allreduce|staged|copy] [--json FILE]
//
// RANKS processes (fork; default 2) share one mapping that holds every rank's input and output,
// as if each could see the others' memory (xpmem, or buffers allocated shared). Rank r owns
// block r of the buffer; a call of f32 sum runs one of two schedules, with Plexus's reduction
// kernels, in rank order, 16 KiB at a time:
// - pull: (1) a barrier (the inputs are ready, every rank has finished reading the last call's
//   outputs); (2) out_r[block r] = in_0[block r] + … + in_{n−1}[block r]; (3) a barrier; (4)
//   copy out_j[block j] into out_r[block j] for every j ≠ r. Per rank S read, S/n written, then
//   (n−1)/n·S read and written again: 2.5 S of memory traffic for 2 ranks.
// - push: (1) a barrier; (2) sum block r of every input and store it into block r of every
//   rank's output; (3) a barrier (every output is whole). Per rank S read and S written: the
//   memory ceiling's traffic (below).
// Each with plain stores and with streaming (non-temporal) ones; the best of the four counts.
// A library whose ranks cannot touch each other's buffers (Plexus's shm all-reduce copies
// through a shared region: user buffers are private and there is no xpmem here) moves more
// memory than push does, so a target that asks more than this reaches is beyond the memory
// system, and one that asks less is within reach of zero-copy alone: compare.py prints it
// beside Plexus (column zcopy) and names the sizes above it. It is a reference, not a proof of
// a bound: another schedule could beat it.
//
// staged: the same all-reduce when no rank may touch another's buffers, as with private (heap)
// memory and no xpmem: everything a rank gives or takes crosses a shared staging area, which is
// all Plexus's shm all-reduce can do with heap buffers. In rounds of a piece of every block:
// (a) copy the piece of block j of the input into the rank's staging area, for every j ≠ r;
// (b) a barrier; (c) sum the piece of block r, the own input and the others' staged copies in
// rank order, into the output and into a shared result area; (d) after the next round's (a), a
// barrier; (e) copy the others' result pieces into the output. One barrier per round, and per
// rank for 2 ranks S/2 + S + S/2 read and as much written: twice push's traffic. Pieces of 64
// KiB, 256 KiB and the whole block (one round); the best counts (column staged).
//
// The memory ceiling: every rank copying its own input into its own output at once, the least
// memory traffic any all-reduce has (each input read, each output written once), shown as the
// busbw of an all-reduce that fast. Each copy is timed three ways and the best counts: one
// memcpy, memcpy in 256 KiB calls (glibc's memcpy takes non-temporal stores for long calls,
// which lose to plain ones while the buffers still fit the cache) and streaming stores. `-m`
// runs only the zero-copy all-reduce, only the staged one or only the copy (`all`: the three).
//
// Each size runs ITERS calls (default: 256 MiB of calls, 10 to 500) REPS times (default 5) per
// variant; the best repetition counts. Every output element is checked after each variant (the
// inputs are small integers, so the f32 sums are exact); a wrong value exits 1. Bad arguments
// exit 2.
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "src/config.h"
#include "src/reduce_cpu.h"

namespace plexus::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kPage = 4096;
constexpr size_t kLine = 64;
constexpr size_t kStepFloats = 4096;  // 16 KiB of f32 per pass of the reduction
constexpr int kSpins = 2000;          // then yield: more ranks than cores must not collapse
constexpr int kMaxRanks = 64;
constexpr size_t kCopyChunkBytes = 256 * 1024;  // below glibc's non-temporal threshold
// The staged all-reduce's pieces of a block, in floats; 0 is the whole block in one round.
constexpr std::array<size_t, 3> kStagedPieceFloats = {16384, 65536, 0};

struct Args {
  int ranks = 2;
  size_t minBytes = 1 << 20, maxBytes = 64 << 20;
  size_t factor = 2;
  int iters = 0;  // 0: from the size
  int reps = 5;
  bool allReduce = true;  // -m all|allreduce
  bool staged = true;     // -m all|staged
  bool copy = true;       // -m all|copy
  std::string json;
};

// Rank 0's best seconds per call at one size: the all-reduce pulling and pushing, each with
// plain and with streaming stores (index 2·pushes + streaming), and every rank copying its own
// buffer at once (the best of three ways), and the staged all-reduce (the best piece); 0 when
// not run.
struct Timing {
  std::array<double, 4> allReduce{};
  double copy = 0;
  double staged = 0;
  double bestAllReduce() const { return *std::min_element(allReduce.begin(), allReduce.end()); }
};

// Buffers in the shared mapping: every rank's input and output, staged input, and the results.
size_t buffersFor(int ranks) { return 3 * static_cast<size_t>(ranks) + 1; }

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "plexus-zero-copy: %s\nusage: plexus-zero-copy [-n RANKS] [-b MIN] "
               "[-e MAX] [-f FACTOR] [-i ITERS] [-r REPS] [-m all|allreduce|staged|copy] "
               "[--json FILE]\n",
               why.c_str());
  std::exit(2);
}

long parseCount(const char* flag, const char* v, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || errno != 0 || x < lo || x > hi) {
    usage(std::string(flag) + " wants a whole number from " + std::to_string(lo) + " to " +
          std::to_string(hi) + ", not '" + v + "'");
  }
  return x;
}

Args parseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "-h" || f == "--help") usage("measures a zero-copy all-reduce on this host");
    if (i + 1 >= argc) usage(f + " needs a value");
    const char* v = argv[++i];
    if (f == "-n") {
      a.ranks = static_cast<int>(parseCount("-n", v, 2, kMaxRanks));
    } else if (f == "-b" || f == "-e") {
      size_t bytes = 0;
      if (!parseByteSize(v, &bytes) || bytes == 0) usage(f + " wants a size like 1M, not " + v);
      (f == "-b" ? a.minBytes : a.maxBytes) = bytes;
    } else if (f == "-f") {
      a.factor = static_cast<size_t>(parseCount("-f", v, 2, 1024));
    } else if (f == "-i") {
      a.iters = static_cast<int>(parseCount("-i", v, 1, 1000000));
    } else if (f == "-r") {
      a.reps = static_cast<int>(parseCount("-r", v, 1, 1000));
    } else if (f == "-m") {
      const std::string m = v;
      if (m != "all" && m != "allreduce" && m != "staged" && m != "copy") {
        usage("-m wants all, allreduce, staged or copy");
      }
      a.allReduce = m == "all" || m == "allreduce";
      a.staged = m == "all" || m == "staged";
      a.copy = m == "all" || m == "copy";
    } else if (f == "--json") {
      a.json = v;
    } else {
      usage("unknown option " + f);
    }
  }
  if (a.minBytes < sizeof(float)) usage("-b is below one f32 (4 bytes)");
  if (a.minBytes > a.maxBytes) usage("-b is larger than -e");
  if (a.maxBytes > (size_t{1} << 34) / buffersFor(a.ranks)) {
    usage("-e times (3 -n + 1) is over 16 GiB");
  }
  return a;
}

// The shared mapping's head: the barrier and what the ranks report back to rank 0.
struct alignas(kLine) Control {
  std::atomic<uint64_t> arrived;  // barrier k is passed once this reaches k·ranks
  alignas(kLine) std::atomic<int64_t> wrong;
};

class ZeroCopy {
 public:
  // `children`: rank 0's, which its barriers watch; empty on the other ranks, whose barriers
  // watch that rank 0 (`parent`) is still there.
  ZeroCopy(const Args& args, uint8_t* base, size_t stride, std::vector<pid_t> children,
           pid_t parent)
      : a_(args),
        control_(reinterpret_cast<Control*>(base)),
        base_(base),
        stride_(stride),
        children_(std::move(children)),
        parent_(parent) {}

  float* in(int rank) const { return buffer(2 * rank); }
  float* out(int rank) const { return buffer(2 * rank + 1); }
  // The staged all-reduce's shared area: each rank's staged input, and the results.
  float* stage(int rank) const { return buffer(2 * a_.ranks + rank); }
  float* result() const { return buffer(3 * a_.ranks); }

  // Every rank waits here until all have arrived `passes_` times.
  void barrier() {
    const uint64_t target = ++passes_ * static_cast<uint64_t>(a_.ranks);
    control_->arrived.fetch_add(1, std::memory_order_acq_rel);
    for (int spin = 0; control_->arrived.load(std::memory_order_acquire) < target; ++spin) {
      if (spin < kSpins) continue;
      sched_yield();
      if (spin % 4096 == 0) watchTheOthers();
    }
  }

  // Block r of `count` elements: cut at multiples of 16 floats (a cache line).
  size_t blockStart(int r, size_t count) const {
    const size_t lines = (count + 15) / 16;
    return std::min(count, lines * static_cast<size_t>(r) / static_cast<size_t>(a_.ranks) * 16);
  }

  // One all-reduce of `count` floats on rank `me` by pulling (the opening comment's steps 1-4).
  // With `streaming`, each 16 KiB of the block is summed into `scratch_` (in L1) and every
  // write to the output is a non-temporal store: past the cache, the output's lines are then
  // not read from memory before they are overwritten.
  void pull(int me, size_t count, bool streaming) {
    barrier();
    const size_t lo = blockStart(me, count), hi = blockStart(me + 1, count);
    float* mine = out(me);
    for (size_t at = lo; at < hi; at += kStepFloats) {
      const size_t len = std::min(kStepFloats, hi - at);
      float* sum = streaming ? scratch_.data() : mine + at;
      sumInputs(sum, at, len);
      if (streaming) copyStreamingUnfenced(mine + at, sum, len * sizeof(float));
    }
    if (streaming) streamingFence();
    barrier();
    for (int j = 0; j < a_.ranks; ++j) {
      if (j == me) continue;
      const size_t from = blockStart(j, count), to = blockStart(j + 1, count);
      store(mine + from, out(j) + from, to - from, streaming);
    }
    if (streaming) streamingFence();
  }

  // The same by pushing: rank r sums its block of the inputs 16 KiB at a time and stores each
  // piece into every rank's output (for 2 ranks with plain stores, in the summing pass itself),
  // then waits at a barrier. Per rank S read and S written: the memory ceiling's traffic.
  void push(int me, size_t count, bool streaming) {
    barrier();
    const size_t lo = blockStart(me, count), hi = blockStart(me + 1, count);
    for (size_t at = lo; at < hi; at += kStepFloats) {
      const size_t len = std::min(kStepFloats, hi - at);
      if (a_.ranks == 2 && !streaming) {
        reduceCpuTwice(DataType::kFloat32, ReduceOp::kSum, out(0) + at, out(1) + at, in(0) + at,
                       in(1) + at, len);
        continue;
      }
      sumInputs(scratch_.data(), at, len);
      for (int k = 1; k <= a_.ranks; ++k) {  // the others' first, this rank's own last
        store(out((me + k) % a_.ranks) + at, scratch_.data(), len, streaming);
      }
    }
    if (streaming) streamingFence();
    barrier();
  }

  // One all-reduce of `count` floats on rank `me` through the staging area, in rounds of
  // `pieceFloats` of every block (0: the whole block): the opening comment's steps (a)-(e).
  void staged(int me, size_t count, size_t pieceFloats) {
    size_t longest = 0;
    for (int j = 0; j < a_.ranks; ++j) {
      longest = std::max(longest, blockStart(j + 1, count) - blockStart(j, count));
    }
    if (longest == 0) return;
    const size_t piece = pieceFloats ? pieceFloats : longest;
    const size_t rounds = (longest + piece - 1) / piece;  // the same on every rank
    // [from, to) of block j in round k.
    auto slice = [&](int j, size_t k, size_t* from, size_t* to) {
      const size_t start = blockStart(j, count), end = blockStart(j + 1, count);
      *from = std::min(end, start + k * piece);
      *to = std::min(end, *from + piece);
    };
    auto give = [&](size_t k) {  // (a)
      for (int j = 0; j < a_.ranks; ++j) {
        size_t from = 0, to = 0;
        slice(j, k, &from, &to);
        if (j != me) store(stage(me) + from, in(me) + from, to - from, false);
      }
    };
    auto take = [&](size_t k) {  // (e)
      for (int j = 0; j < a_.ranks; ++j) {
        size_t from = 0, to = 0;
        slice(j, k, &from, &to);
        if (j != me) store(out(me) + from, result() + from, to - from, false);
      }
    };
    give(0);
    barrier();
    for (size_t k = 0; k < rounds; ++k) {
      size_t from = 0, to = 0;
      slice(me, k, &from, &to);
      for (size_t at = from; at < to; at += kStepFloats) {  // (c), 16 KiB at a time
        const size_t len = std::min(kStepFloats, to - at);
        auto operand = [&](int r) { return (r == me ? in(me) : stage(r)) + at; };
        if (a_.ranks == 2) {
          reduceCpuTwice(DataType::kFloat32, ReduceOp::kSum, out(me) + at, result() + at,
                         operand(0), operand(1), len);
          continue;
        }
        reduceCpu(DataType::kFloat32, ReduceOp::kSum, out(me) + at, operand(0), operand(1), len);
        for (int r = 2; r < a_.ranks; ++r) {
          reduceCpu(DataType::kFloat32, ReduceOp::kSum, out(me) + at, out(me) + at, operand(r),
                    len);
        }
        std::memcpy(result() + at, out(me) + at, len * sizeof(float));
      }
      if (k + 1 < rounds) give(k + 1);
      barrier();  // (d): round k's results and round k+1's pieces are in place
      take(k);
    }
  }

  // sum[0, len) = in_0[at, at+len) + … + in_{n−1}[at, at+len), in rank order.
  void sumInputs(float* sum, size_t at, size_t len) const {
    reduceCpu(DataType::kFloat32, ReduceOp::kSum, sum, in(0) + at, in(1) + at, len);
    for (int j = 2; j < a_.ranks; ++j) {
      reduceCpu(DataType::kFloat32, ReduceOp::kSum, sum, sum, in(j) + at, len);
    }
  }

  static void store(float* dst, const float* src, size_t len, bool streaming) {
    if (streaming) {
      copyStreamingUnfenced(dst, src, len * sizeof(float));
    } else {
      std::memcpy(dst, src, len * sizeof(float));
    }
  }

  static float inputValue(int rank, size_t i) { return static_cast<float>(rank + 1 + i % 13); }

  // Fills this rank's input (first touched by its owner, as a rank's own buffer is).
  void fill(int me, size_t count) const {
    float* x = in(me);
    for (size_t i = 0; i < count; ++i) x[i] = inputValue(me, i);
  }

  // Wrong elements of this rank's output after an all-reduce of `count`.
  int64_t check(int me, size_t count) const {
    const float* o = out(me);
    const double n = a_.ranks;
    int64_t wrong = 0;
    for (size_t i = 0; i < count; ++i) {
      wrong += o[i] != static_cast<float>(n * (n + 1) / 2 + n * static_cast<double>(i % 13));
    }
    return wrong;
  }

  // Copies this rank's input into its output in calls of at most `chunk` bytes (glibc's
  // memcpy switches to non-temporal stores for long calls), or with streaming stores.
  void copyOwn(int me, size_t count, size_t chunk, bool streaming) const {
    const auto* src = reinterpret_cast<const uint8_t*>(in(me));
    auto* dst = reinterpret_cast<uint8_t*>(out(me));
    const size_t bytes = count * sizeof(float);
    if (streaming) {
      copyStreamingUnfenced(dst, src, bytes);
      streamingFence();
      return;
    }
    for (size_t at = 0; at < bytes; at += chunk) {
      std::memcpy(dst + at, src + at, std::min(chunk, bytes - at));
    }
  }

  // Wrong elements of this rank's output after copyOwn.
  int64_t checkCopy(int me, size_t count) const {
    int64_t wrong = 0;
    for (size_t i = 0; i < count; ++i) wrong += out(me)[i] != in(me)[i];
    return wrong;
  }

  // Best seconds per call of `iters` calls of `one` on every rank at once, over the
  // repetitions (rank 0's clock, from a barrier to a barrier after every rank's last call).
  template <typename Fn>
  double timeBest(int iters, Fn&& one) {
    for (int w = 0; w < std::max(2, iters / 10); ++w) one();
    double best = 1e300;
    for (int rep = 0; rep < a_.reps; ++rep) {
      barrier();
      const auto t0 = Clock::now();
      for (int it = 0; it < iters; ++it) one();
      barrier();
      best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count() / iters);
    }
    return best;
  }

  // Runs every size on rank `me`; rank 0 returns the timings of each.
  std::vector<Timing> run(int me, const std::vector<size_t>& sizes) {
    std::vector<Timing> timings;
    for (size_t bytes : sizes) {
      const size_t count = bytes / sizeof(float);
      fill(me, count);
      const int iters =
          a_.iters > 0 ? a_.iters
                       : static_cast<int>(std::clamp<size_t>((size_t{256} << 20) / bytes, 10, 500));
      Timing t;
      int64_t wrong = 0;
      // The output is cleared before each variant, which must then write all of it.
      auto clear = [&] {
        std::memset(out(me), 0, count * sizeof(float));
        barrier();
      };
      if (a_.allReduce) {
        for (int v = 0; v < 4; ++v) {
          const bool pushes = v >= 2, streaming = v % 2 == 1;
          clear();
          t.allReduce[v] = timeBest(iters, [&] {
            if (pushes) {
              push(me, count, streaming);
            } else {
              pull(me, count, streaming);
            }
          });
          wrong += check(me, count);
        }
      }
      if (a_.staged) {
        double best = 1e300;
        for (size_t piece : kStagedPieceFloats) {
          clear();
          best = std::min(best, timeBest(iters, [&] { staged(me, count, piece); }));
          wrong += check(me, count);
        }
        t.staged = best;
      }
      if (a_.copy) {
        double best = 1e300;
        for (int variant = 0; variant < 3; ++variant) {
          clear();
          const size_t chunk = variant == 0 ? bytes : kCopyChunkBytes;
          best = std::min(best, timeBest(iters, [&] { copyOwn(me, count, chunk, variant == 2); }));
          wrong += checkCopy(me, count);
        }
        t.copy = best;
      }
      control_->wrong.fetch_add(wrong, std::memory_order_relaxed);
      barrier();
      timings.push_back(t);
    }
    return timings;
  }

 private:
  // A rank that died leaves the others at a barrier forever: leave instead, saying so.
  void watchTheOthers() const {
    if (children_.empty() && ::getppid() != parent_) std::_Exit(1);
    for (pid_t c : children_) {
      int status = 0;
      if (::waitpid(c, &status, WNOHANG) == c) {
        std::fprintf(stderr, "plexus-zero-copy: rank process %d ended during the run\n",
                     static_cast<int>(c));
        std::exit(1);
      }
    }
  }

  // The i-th buffer of the mapping (buffersFor(ranks) of them).
  float* buffer(int i) const {
    return reinterpret_cast<float*>(base_ + kPage + static_cast<size_t>(i) * stride_);
  }

  const Args& a_;
  Control* control_;
  uint8_t* base_;
  size_t stride_;
  std::vector<pid_t> children_;
  pid_t parent_;
  uint64_t passes_ = 0;
  std::vector<float> scratch_ = std::vector<float>(kStepFloats);
};

int run(int argc, char** argv) {
  const Args args = parseArgs(argc, argv);
  std::vector<size_t> sizes;
  for (size_t b = args.minBytes; b <= args.maxBytes; b *= args.factor) {
    sizes.push_back(b / sizeof(float) * sizeof(float));
    if (b > args.maxBytes / args.factor) break;
  }
  const size_t stride = (args.maxBytes + kPage - 1) / kPage * kPage;
  const size_t bytes = kPage + buffersFor(args.ranks) * stride;
  void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) {
    std::fprintf(stderr, "plexus-zero-copy: mmap of %zu bytes: %s\n", bytes, std::strerror(errno));
    return 1;
  }
  auto* base = static_cast<uint8_t*>(map);
  new (base) Control{};
  std::fflush(stdout);
  std::vector<pid_t> children;
  const pid_t parent = ::getpid();
  for (int r = 1; r < args.ranks; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      std::fprintf(stderr, "plexus-zero-copy: fork: %s\n", std::strerror(errno));
      for (pid_t c : children) ::kill(c, SIGKILL);
      return 1;
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ZeroCopy(args, base, stride, {}, parent).run(r, sizes);
      std::_Exit(0);
    }
    children.push_back(pid);
  }
  const std::vector<Timing> timings = ZeroCopy(args, base, stride, children, parent).run(0, sizes);
  int failed = 0;
  for (pid_t c : children) {
    int status = 0;
    if (::waitpid(c, &status, 0) != c || !WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  const int64_t wrong = reinterpret_cast<Control*>(base)->wrong.load();
  const double factor = 2.0 * (args.ranks - 1) / args.ranks;
  auto busbw = [&](size_t bytes, double seconds) {
    return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 * factor : 0.0;
  };
  std::printf(
      "# zero-copy all-reduce, f32 sum, %d ranks, best of %d repetitions: us per call "
      "pulling and pushing (each the better of plain and streaming stores), busbw "
      "(GB/s) of the best; staged through a shared area (the best piece), and its busbw; the "
      "memory ceiling: us per copy of every rank's own buffer at once, as busbw\n",
      args.ranks, args.reps);
  std::printf("# %12s %10s %10s %10s %10s %10s %10s %10s\n", "size", "pull_us", "push_us", "busbw",
              "staged_us", "staged", "copy_us", "ceiling");
  FILE* json = args.json.empty() ? nullptr : std::fopen(args.json.c_str(), "w");
  if (!args.json.empty() && json == nullptr) {
    std::fprintf(stderr, "plexus-zero-copy: cannot write %s: %s\n", args.json.c_str(),
                 std::strerror(errno));
    return 1;
  }
  if (json) std::fprintf(json, "{\"ranks\": %d, \"results\": [", args.ranks);
  for (size_t i = 0; i < sizes.size(); ++i) {
    const Timing& t = timings[i];
    const auto& v = t.allReduce;
    const double ar = args.allReduce ? t.bestAllReduce() : 0;
    std::printf("  %12zu %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f\n", sizes[i],
                std::min(v[0], v[1]) * 1e6, std::min(v[2], v[3]) * 1e6, busbw(sizes[i], ar),
                t.staged * 1e6, busbw(sizes[i], t.staged), t.copy * 1e6, busbw(sizes[i], t.copy));
    if (json) {
      std::fprintf(json,
                   "%s{\"bytes\": %zu, \"time_us\": %.3f, \"busbw\": %.4f, \"pull_us\": "
                   "[%.3f, %.3f], \"push_us\": [%.3f, %.3f], \"staged_us\": %.3f, "
                   "\"staged\": %.4f, \"copy_us\": %.3f, \"ceiling\": %.4f}",
                   i ? ", " : "", sizes[i], ar * 1e6, busbw(sizes[i], ar), v[0] * 1e6, v[1] * 1e6,
                   v[2] * 1e6, v[3] * 1e6, t.staged * 1e6, busbw(sizes[i], t.staged), t.copy * 1e6,
                   busbw(sizes[i], t.copy));
    }
  }
  if (json) {
    std::fprintf(json, "], \"wrong\": %lld}\n", static_cast<long long>(wrong));
    std::fclose(json);
  }
  std::printf("# wrong values: %lld %s\n", static_cast<long long>(wrong), wrong ? "FAILED" : "OK");
  ::munmap(map, bytes);
  if (failed) {
    std::fprintf(stderr, "plexus-zero-copy: %d rank process(es) failed\n", failed);
    return 1;
  }
  return wrong == 0 ? 0 : 1;
}

}  // namespace
}  // namespace plexus::bench

int main(int argc, char** argv) { return plexus::bench::run(argc, argv); }
