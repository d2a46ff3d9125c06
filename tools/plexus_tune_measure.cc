// plexus-tune's timing loops. Times are taken the way plexus-perf takes them (a barrier, N
// calls, elapsed / N), then the slowest rank's value counts: a collective is as slow as its
// slowest rank. Shared VMs are noisy and their speed changes in spells (another job takes a
// core, and every step of a collective then waits for a descheduled peer), so the sweep runs
// in passes: every pass times every candidate of every cell once, in an order shuffled afresh
// each pass and after one untimed call of its own, and a cell's repetitions lie seconds apart.
// (A rotating order gave each candidate the same predecessor every pass: the selector's choice
// timed right after the same algorithm forced came out 11% faster than it at 128 KiB-2 MiB.) A
// short sweep (2 s for all-reduce to 8 MiB on 2 or 4 ranks) runs further passes until it has lasted
// --min-seconds: on this 2-core VM the shm all-reduce of 8 MiB on 4 ranks ran 4.0-4.9 ms in some
// spells and 6.5-8.7 ms in others, while rhd ran 5.1-5.9 ms in both, and a table from one 2-second
// sweep in a slow spell chose rhd, which lost by 30% in the fast ones. The spells are the VM's two
// vCPUs sharing a cache or not (bench/core_link.cc); they last seconds to minutes, so the spread
// covers the short ones only, and a table records the state it was made in. A candidate is ranked
// by the mean of its fastest quarter of repetitions (its speed on the machine undisturbed), its
// fastest, or the median (--stat).
#include "tools/plexus_tune_measure.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>

#include "src/communicator_impl.h"
#include "src/reduce_cpu.h"

namespace plexus::tune {
namespace {

using Clock = std::chrono::steady_clock;

double usSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// Element-wise maximum over ranks, in place.
Status maxOverRanks(Communicator& comm, std::vector<double>& values) {
  if (values.empty()) return okStatus();
  return comm.allReduce(values.data(), values.data(), values.size(), DataType::kFloat64,
                        ReduceOp::kMax);
}

double score(std::vector<double> v, SweepOptions::Stat stat) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  if (n == 0) return 0;
  switch (stat) {
    case SweepOptions::Stat::kMin:
      return v[0];
    case SweepOptions::Stat::kMedian:
      return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    case SweepOptions::Stat::kFast:
      break;
  }
  const size_t quarter = (n + 3) / 4;
  double sum = 0;
  for (size_t i = 0; i < quarter; ++i) sum += v[i];
  return sum / quarter;
}

std::string sizeText(size_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (u < 3 && bytes >= 1024 && bytes % 1024 == 0) bytes /= 1024, ++u;
  return std::to_string(bytes) + " " + units[u];
}

// What CommunicatorImpl::run takes for a candidate: kAuto is the selector's choice.
std::string_view forcedName(const std::string& candidate) {
  return candidate == kAuto ? std::string_view{} : std::string_view{candidate};
}

// Times `calls` runs of `req` with `candidate`, started together, after one untimed call (the
// candidate timed before it leaves caches, pages and the transport's state its own way);
// this rank's us per call.
StatusOr<double> timeCalls(Communicator& comm, const CollectiveRequest& req,
                           const std::string& candidate, int calls) {
  const std::string_view forced = forcedName(candidate);
  PLEXUS_TRY(comm.impl()->run(req, forced));
  PLEXUS_TRY(comm.barrier());
  const auto t0 = Clock::now();
  for (int i = 0; i < calls; ++i) PLEXUS_TRY(comm.impl()->run(req, forced));
  return usSince(t0) / calls;
}

// One-way time of a `bytes` message between this rank and `peer` (ping-pong, best of 3 runs
// of `trips` round trips); `first` sends first.
StatusOr<double> pingPongUs(Communicator& comm, bool first, int peer, size_t bytes, int trips) {
  std::vector<uint8_t> buf(bytes, 1);
  double best = 1e300;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    for (int i = 0; i < trips; ++i) {
      if (first) PLEXUS_TRY(comm.send(buf.data(), bytes, DataType::kUInt8, peer));
      PLEXUS_TRY(comm.recv(buf.data(), bytes, DataType::kUInt8, peer));
      if (!first) PLEXUS_TRY(comm.send(buf.data(), bytes, DataType::kUInt8, peer));
    }
    best = std::min(best, usSince(t0) / (2.0 * trips));
  }
  return best;
}

// Latency and inverse bandwidth of the link between ranks a and b, from a small and a large
// message: α = t(small), β = (t(large) − t(small)) / (large − small), as a sees it. Only a and
// b exchange messages (point-to-point messages are numbered per pair of ranks, so the others'
// collectives stay matched); the barrier keeps one link's measurement from overlapping the
// next one's.
StatusOr<LinkCost> linkCost(Communicator& comm, int a, int b) {
  constexpr size_t kSmall = 8, kLarge = size_t{1} << 20;
  PLEXUS_TRY(comm.barrier());
  const int me = comm.rank();
  LinkCost c;
  if (me != a && me != b) return c;  // not on this link: nothing measured here
  auto small = pingPongUs(comm, me == a, me == a ? b : a, kSmall, 200);
  PLEXUS_TRY(small.status());
  auto large = pingPongUs(comm, me == a, me == a ? b : a, kLarge, 10);
  PLEXUS_TRY(large.status());
  // Noise can make the large message look free; 1e-7 us/B (10 TB/s) keeps β positive.
  c.betaUsPerB = std::max(1e-7, (*large - *small) / static_cast<double>(kLarge - kSmall));
  c.alphaUs = std::max(0.0, *small - kSmall * c.betaUsPerB);
  return c;
}

// Reduction time per byte of f32 sum over 4 MiB operands, best of 5.
double reductionUsPerByte() {
  constexpr size_t kCount = size_t{1} << 20;
  std::vector<float> a(kCount, 1.0f), b(kCount, 2.0f), dst(kCount);
  double best = 1e300;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    reduceCpu(DataType::kFloat32, ReduceOp::kSum, dst.data(), a.data(), b.data(), kCount);
    best = std::min(best, usSince(t0));
  }
  return std::max(1e-9, best / (kCount * sizeof(float)));
}

// One cell of the sweep: a collective at one size, with the algorithms that can run it.
struct Cell {
  CollectiveRequest req;
  size_t target = 0;               // index into the targets
  std::vector<std::string> names;  // candidates
  std::vector<double> calls;       // calls per timed repetition, by candidate
  std::vector<double> times;       // us per call, [pass × names.size() + candidate]
};

// Ranks a cell's candidates: the fastest wins, unless `previous` (the winner of the size
// below) is within the tolerance of it.
SizeResult rank(const Cell& cell, const SweepOptions& o, const std::string& previous) {
  SizeResult sr;
  sr.bytes = cell.req.bytes();
  const size_t n = cell.names.size();
  double bestUs = 0;
  for (size_t j = 0; j < n; ++j) {
    CandidateTimes c;
    c.algorithm = cell.names[j];
    for (size_t i = j; i < cell.times.size(); i += n) c.us.push_back(cell.times[i]);
    c.scoreUs = score(c.us, o.stat);
    if (sr.winner.empty() || c.scoreUs < bestUs) sr.winner = c.algorithm, bestUs = c.scoreUs;
    sr.candidates.push_back(std::move(c));
  }
  for (const CandidateTimes& c : sr.candidates) {
    if (c.algorithm == previous && c.scoreUs <= bestUs * (1 + o.tolerance)) sr.winner = previous;
  }
  if (o.verbose && cell.req.count > 0) {
    std::fprintf(stderr, "plexus-tune: %-9s %9s:", collectiveName(cell.req.kind),
                 sizeText(sr.bytes).c_str());
    for (const auto& c : sr.candidates) {
      std::fprintf(stderr, " %s", c.algorithm.c_str());
      for (size_t r = 0; r < c.us.size(); ++r)
        std::fprintf(stderr, "%s%.1f", r ? "," : " ", c.us[r]);
    }
    std::fprintf(stderr, " us -> %s\n", sr.winner.c_str());
  }
  return sr;
}

}  // namespace

const char* statName(SweepOptions::Stat stat) {
  switch (stat) {
    case SweepOptions::Stat::kMin:
      return "min";
    case SweepOptions::Stat::kMedian:
      return "median";
    case SweepOptions::Stat::kFast:
      break;
  }
  return "mean of the fastest quarter";
}

std::vector<std::pair<CollectiveKind, std::vector<std::string>>> tunableCollectives(
    Communicator& comm) {
  // As CommunicatorImpl::buildHierarchy decides: hier composes only when the job spans
  // several nodes and some node holds several ranks.
  const int nodes = comm.numNodes();
  const bool composes = nodes > 1 && nodes < comm.size();
  std::vector<std::pair<CollectiveKind, std::vector<std::string>>> out;
  for (const auto& algo : comm.impl()->algorithms()) {
    if (std::string(algo->name()) == "hier" && !composes) continue;
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const auto& entry) { return entry.first == algo->collective(); });
    if (it == out.end()) it = out.insert(out.end(), {algo->collective(), {}});
    it->second.push_back(algo->name());
  }
  std::erase_if(out, [](const auto& entry) { return entry.second.size() < 2; });
  return out;
}

std::vector<size_t> sweepSizes(const SweepOptions& o) {
  std::vector<size_t> sizes;
  for (size_t bytes = std::max<size_t>(o.minBytes, 4);; bytes *= o.factor) {
    sizes.push_back(bytes / 4 * 4);  // whole f32 elements
    if (bytes >= o.maxBytes || bytes > o.maxBytes / o.factor) break;
  }
  return sizes;
}

StatusOr<std::vector<CollectiveResult>> sweep(Communicator& comm,
                                              const std::vector<TuningTarget>& targets,
                                              const SweepOptions& o) {
  const std::vector<size_t> sizes = sweepSizes(o);
  // All-gather receives, and reduce-scatter sends, size() blocks of the swept size.
  size_t blocks = 1;
  for (const TuningTarget& target : targets) {
    if (target.first == CollectiveKind::kAllGather ||
        target.first == CollectiveKind::kReduceScatter) {
      blocks = static_cast<size_t>(comm.size());
    }
  }
  std::vector<float> send(blocks * sizes.back() / 4, 1.0f), recv(blocks * sizes.back() / 4, 0.0f);
  std::vector<CollectiveResult> results(targets.size());
  std::vector<Cell> cells;
  for (size_t t = 0; t < targets.size(); ++t) {
    results[t].kind = targets[t].first;
    for (size_t bytes : sizes) {
      Cell cell;
      cell.req.kind = targets[t].first;
      cell.req.count = bytes / 4;
      cell.req.send = send.data();
      cell.req.recv = recv.data();
      cell.req.root = 0;
      cell.target = t;
      for (const auto& algo : comm.impl()->algorithms()) {
        auto named = [&](const std::vector<std::string>& list) {
          return std::find(list.begin(), list.end(), algo->name()) != list.end();
        };
        if (algo->collective() == cell.req.kind && named(targets[t].second) &&
            (o.algorithms.empty() || named(o.algorithms)) &&
            algo->supports(cell.req, comm.size()).ok()) {
          cell.names.push_back(algo->name());
        }
      }
      if (cell.names.empty()) continue;
      if (o.withAuto) cell.names.insert(cell.names.begin(), kAuto);
      cells.push_back(std::move(cell));
    }
  }
  // Warm up, then size each candidate's repetitions to about targetMs (all ranks agree).
  for (Cell& cell : cells) {
    cell.calls.assign(cell.names.size(), o.iters);
    for (size_t j = 0; j < cell.names.size(); ++j) {
      for (int w = 0; w < o.warmup; ++w) {
        PLEXUS_TRY(comm.impl()->run(cell.req, forcedName(cell.names[j])));
      }
      if (o.iters > 0) continue;
      auto one = timeCalls(comm, cell.req, cell.names[j], 1);
      PLEXUS_TRY(one.status());
      cell.calls[j] = *one;
    }
    if (o.iters > 0) continue;
    PLEXUS_TRY(maxOverRanks(comm, cell.calls));
    for (double& c : cell.calls) c = std::clamp(std::ceil(o.targetMs * 1000 / c), 1.0, 10000.0);
  }
  std::vector<double> times;  // pass by pass, cell by cell, candidate by candidate
  const auto sweepStart = Clock::now();
  const int maxPasses = o.reps * kMaxPassesPerRep;
  int passes = 0;
  for (bool more = true; more;) {
    const auto started = Clock::now();
    for (const Cell& cell : cells) {
      const size_t n = cell.names.size();
      const size_t base = times.size();
      times.resize(base + n);
      // A fresh order every pass (the same on every rank: same seed, same code): rotating one
      // order would give each candidate the same predecessor in every pass.
      std::vector<size_t> order(n);
      for (size_t j = 0; j < n; ++j) order[j] = j;
      std::mt19937 shuffle(static_cast<uint32_t>(passes * 7919 + base));
      for (size_t j = n; j > 1; --j) std::swap(order[j - 1], order[shuffle() % j]);
      for (size_t j : order) {
        auto us = timeCalls(comm, cell.req, cell.names[j], static_cast<int>(cell.calls[j]));
        PLEXUS_TRY(us.status());
        times[base + j] = *us;
      }
    }
    ++passes;
    // Rank 0's clock decides whether another pass runs; the others follow its word.
    const double elapsed = usSince(sweepStart) / 1e6;
    int32_t next = passes < o.reps || (elapsed < o.minSeconds && passes < maxPasses);
    PLEXUS_TRY(comm.broadcast(&next, &next, 1, DataType::kInt32, 0));
    more = next != 0;
    if (comm.rank() == 0 && (passes <= o.reps || !more || o.verbose)) {
      const std::string of = passes <= o.reps ? "/" + std::to_string(o.reps) : "";
      std::fprintf(stderr, "plexus-tune: pass %d%s (%.1f s; %.1f s in all)\n", passes, of.c_str(),
                   usSince(started) / 1e6, elapsed);
    }
  }
  if (comm.rank() == 0 && passes > o.reps) {
    std::fprintf(stderr, "plexus-tune: %d passes to spread the sweep over %.0f s\n", passes,
                 o.minSeconds);
  }
  PLEXUS_TRY(maxOverRanks(comm, times));
  size_t at = 0;
  for (int pass = 0; pass < passes; ++pass) {
    for (Cell& cell : cells) {
      cell.times.insert(cell.times.end(), times.begin() + at,
                        times.begin() + at + cell.names.size());
      at += cell.names.size();
    }
  }
  std::vector<std::string> previous(targets.size());  // each target's last winner
  for (const Cell& cell : cells) {
    SizeResult sr = rank(cell, o, previous[cell.target]);
    previous[cell.target] = sr.winner;
    if (o.withAuto) {
      auto chosen = comm.impl()->selector().select(cell.req, {});
      PLEXUS_TRY(chosen.status());
      sr.chosen = (*chosen)->name();
    }
    results[cell.target].sizes.push_back(std::move(sr));
  }
  return results;
}

StatusOr<internal::TuningLinks> measureLinks(Communicator& comm) {
  const JobTopology& topo = comm.impl()->topology();
  internal::TuningLinks links;
  if (topo.localSize(0) > 1) {
    auto intra = linkCost(comm, 0, topo.ranksOfNode(0)[1]);
    PLEXUS_TRY(intra.status());
    links.intra = *intra;
  }
  if (topo.numNodes() > 1) {
    auto inter = linkCost(comm, 0, topo.leaders()[1]);
    PLEXUS_TRY(inter.status());
    links.inter = *inter;
  }
  if (comm.rank() == 0) links.gammaUsPerB = reductionUsPerByte();
  PLEXUS_TRY(comm.barrier());
  return links;
}

}  // namespace plexus::tune
