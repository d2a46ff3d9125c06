// Hierarchical all-reduce: a composition of the other collectives over the node-local and
// cross-node sub-communicators (hierarchy.h), so that the slow inter-node links carry each byte
// once per node instead of once per rank.
//
// Two schedules, and the cost model picks between them per request:
//   shard  (equal nodes)  reduce-scatter inside the node → all-reduce of each 1/L shard among
//                         the ranks that own it on every node → all-gather inside the node;
//   leader (any layout)   reduce to the node leader → all-reduce among the leaders → broadcast
//                         inside the node. Fewer steps: small messages, and unequal nodes.
// On one node, or with one rank per node, there is nothing to compose: a flat algorithm runs.
// Both are pipelined over segments of the buffer: the network phase of segment i runs async on
// the cross-node sub-communicator while the node phases of segments i + 1 and i − 1 run here.
//
// kAvg runs every phase as kSum and divides once by the world size, so unequal nodes average
// correctly and integer averages round as in the flat algorithms.
#include <algorithm>
#include <limits>
#include <optional>

#include "algorithms/builtin.h"
#include "algorithms/hierarchy.h"
#include "src/reduce_cpu.h"

namespace plexus {
namespace {

// Pipeline segments: enough to overlap the phases, few enough that each stays efficient.
constexpr size_t kMinSegmentBytes = 256 * 1024;
constexpr size_t kMaxSegments = 8;

// Runs a three-phase composition over `segments`: first(i) and last(i) run here (on the local
// sub-communicator), middle(i, async) runs the cross-node phase — queued on its sub-communicator
// when `async`, returning the Work, else to completion here — and last(i) starts only once
// middle(i) finished. A single segment has nothing to overlap, and skips the hand-off to another
// thread (a wake-up that costs more than a small message's whole all-reduce). On an error, work
// already queued is awaited before returning: it may still be using the caller's buffers. When
// a phase lost a peer (Unavailable, DeadlineExceeded), onPeerFailure() aborts the
// sub-communicators first, so that the queued work fails at once instead of timing out too.
template <class First, class Middle, class Last, class OnPeerFailure>
Status runPipeline(size_t segments, First first, Middle middle, Last last,
                   OnPeerFailure onPeerFailure) {
  std::optional<Work> inFlight;
  Status failed;
  auto finishPrevious = [&](size_t i) {
    if (inFlight) {
      Status s = inFlight->wait();
      inFlight.reset();
      if (!s.ok()) return s;
    }
    return last(i);
  };
  for (size_t i = 0; i < segments && failed.ok(); ++i) {
    failed = first(i);
    if (!failed.ok()) break;
    std::optional<Work> started;
    StatusOr<std::optional<Work>> queued = middle(i, segments > 1);
    if (!queued.ok()) {
      failed = queued.status();
      break;
    }
    started = std::move(queued).value();
    if (i > 0) failed = finishPrevious(i - 1);
    inFlight = std::move(started);
  }
  if (failed.ok() && segments > 0) failed = finishPrevious(segments - 1);
  if (failed.ok()) return failed;
  if (failed.code() == StatusCode::kUnavailable || failed.code() == StatusCode::kDeadlineExceeded) {
    onPeerFailure();
  }
  if (inFlight) (void)inFlight->wait();  // keep the first error
  return failed;
}

// Runs `request` on `comm`: queued (the Work returned) when `async`, else to completion.
StatusOr<std::optional<Work>> inPhase(SubCommunicator& comm, const CollectiveRequest& request,
                                      bool async) {
  if (!async) {
    PLEXUS_TRY(comm.run(request));
    return std::optional<Work>();
  }
  auto work = comm.runAsync(request);
  PLEXUS_TRY(work.status());
  return std::optional<Work>(std::move(work).value());
}

CollectiveRequest subRequest(const CollectiveRequest& req, CollectiveKind kind, size_t count,
                             const void* send, void* recv, int root = -1) {
  CollectiveRequest sub = req;  // its type, memory kind and stream
  sub.kind = kind;
  sub.op = req.op == ReduceOp::kAvg ? ReduceOp::kSum : req.op;
  sub.count = count;
  sub.send = send;
  sub.recv = recv;
  sub.root = root;
  return sub;
}

class HierAllReduce final : public Algorithm {
 public:
  HierAllReduce(const Hierarchy* hierarchy, std::unique_ptr<Algorithm> flat)
      : h_(hierarchy), flat_(std::move(flat)) {}

  const char* name() const override { return "hier"; }
  const char* description() const override {
    return "hierarchical: node reduce-scatter, all-reduce across nodes, node all-gather "
           "(or node leaders for small messages and unequal nodes); pipelined";
  }
  CollectiveKind collective() const override { return CollectiveKind::kAllReduce; }

  Status supports(const CollectiveRequest& req, int worldSize) const override {
    return composed() ? okStatus() : flat_->supports(req, worldSize);
  }

  double estimateUs(const CollectiveRequest& req, int n, const CostModel& m) const override {
    // Nothing to compose: the flat algorithm's cost and a little more, so that only forcing
    // hier picks it.
    if (!composed()) return flat_->estimateUs(req, n, m) * 1.01 + 1;
    return std::min(leaderUs(req, n, m), shardUs(req, n, m));
  }

  Status run(const CollectiveRequest& req, CollectiveContext& ctx) override {
    if (!composed()) return flat_->run(req, ctx);
    // The phases run on the sub-communicators, with their own contexts.
    const int n = h_->worldSize;
    const bool shard = h_->uniform && req.count >= static_cast<size_t>(h_->local->size()) &&
                       shardUs(req, n, h_->model) <= leaderUs(req, n, h_->model);
    Status s = shard ? runShard(req) : runLeader(req);
    if (!s.ok()) return s.withContext("hier all-reduce");
    return okStatus();
  }

 private:
  static size_t segmentsFor(size_t bytes) {
    return std::clamp<size_t>(bytes / kMinSegmentBytes, 1, kMaxSegments);
  }

  // Leader schedule: node reduce and broadcast as binomial trees (log2 L steps of the whole
  // segment), the leaders' all-reduce as a ring over the node links.
  static double leaderUs(const CollectiveRequest& req, int n, const CostModel& m) {
    const double s = static_cast<double>(req.bytes());
    const int nodes = std::max(1, m.nodes), local = std::max(1, (n + nodes - 1) / nodes);
    double depth = 0;
    while ((1 << static_cast<int>(depth)) < local) ++depth;
    const double node = 2 * depth * (m.intra.alphaUs + s * (m.intra.betaUsPerB + m.gammaUsPerB));
    const double net =
        2 * (nodes - 1) * m.inter.alphaUs + 2.0 * (nodes - 1) / nodes * s * m.inter.betaUsPerB;
    return pipelined(node, net, segmentsFor(req.bytes()));
  }

  // Shard schedule: the node phases move (L−1)/L of the buffer each; the L shards cross the
  // network at once, sharing the node's link, so together they cost one buffer's all-reduce.
  static double shardUs(const CollectiveRequest& req, int n, const CostModel& m) {
    if (m.ranksPerNode <= 0) return std::numeric_limits<double>::infinity();
    const double s = static_cast<double>(req.bytes());
    const int nodes = std::max(1, m.nodes), local = m.ranksPerNode;
    (void)n;
    const double f = (local - 1.0) / local;
    const double node = 2 * (local - 1) * m.intra.alphaUs + 2 * f * s * m.intra.betaUsPerB;
    const double net =
        2 * (nodes - 1) * m.inter.alphaUs + 2.0 * (nodes - 1) / nodes * s * m.inter.betaUsPerB;
    return pipelined(node, net, segmentsFor(req.bytes()));
  }

  // A two-stage pipeline over k segments: the slower stage, plus one segment of the faster.
  static double pipelined(double a, double b, size_t k) {
    return std::max(a, b) + std::min(a, b) / static_cast<double>(k);
  }

  Status runShard(const CollectiveRequest& req) const {
    SubCommunicator& local = *h_->local;
    SubCommunicator& cross = *h_->cross;
    const size_t elem = dataTypeSize(req.type), ranks = static_cast<size_t>(local.size());
    const size_t lr = static_cast<size_t>(local.rank());
    const size_t whole = req.count / ranks * ranks, tail = req.count - whole;
    const size_t segments = std::min(segmentsFor(whole * elem), whole / ranks);
    const size_t shardPerSegment = (whole / ranks + segments - 1) / segments;
    const auto* send = static_cast<const uint8_t*>(req.send);
    auto* recv = static_cast<uint8_t*>(req.recv);
    const int worldSize = h_->worldSize;
    // Segment i covers elements [i·L·q, min(whole, (i+1)·L·q)) of L shards of q elements each.
    auto shardOf = [&](size_t i) {  // clamped: rounding up can leave the last segments empty
      const size_t begin = std::min(whole / ranks, i * shardPerSegment);
      return std::pair(begin, std::min(whole / ranks, begin + shardPerSegment) - begin);
    };
    auto mine = [&](size_t i) {  // this rank's shard of segment i
      auto [q0, q] = shardOf(i);
      return recv + (q0 * ranks + lr * q) * elem;
    };
    Status s = runPipeline(
        segments,
        [&](size_t i) {
          auto [q0, q] = shardOf(i);
          return local.run(subRequest(req, CollectiveKind::kReduceScatter, q,
                                      send + q0 * ranks * elem, mine(i)));
        },
        [&](size_t i, bool async) {
          auto [q0, q] = shardOf(i);
          return inPhase(cross, subRequest(req, CollectiveKind::kAllReduce, q, mine(i), mine(i)),
                         async);
        },
        [&](size_t i) {
          auto [q0, q] = shardOf(i);
          if (req.op == ReduceOp::kAvg) divideInPlace(req.type, mine(i), q, worldSize);
          return local.run(
              subRequest(req, CollectiveKind::kAllGather, q, mine(i), recv + q0 * ranks * elem));
        },
        [&] { abortPhases(); });
    PLEXUS_TRY(s);
    if (tail == 0) return okStatus();
    // The last count mod L elements: reduced inside the node, then across it.
    uint8_t* out = recv + whole * elem;
    PLEXUS_TRY(
        local.run(subRequest(req, CollectiveKind::kAllReduce, tail, send + whole * elem, out)));
    PLEXUS_TRY(cross.run(subRequest(req, CollectiveKind::kAllReduce, tail, out, out)));
    if (req.op == ReduceOp::kAvg) divideInPlace(req.type, out, tail, worldSize);
    return okStatus();
  }

  Status runLeader(const CollectiveRequest& req) const {
    SubCommunicator& local = *h_->local;
    SubCommunicator& leaders = *h_->cross;  // local rank 0's cross group is the leaders
    const bool leader = local.rank() == 0;
    const size_t elem = dataTypeSize(req.type);
    const size_t segments = std::max<size_t>(1, std::min(segmentsFor(req.bytes()), req.count));
    const size_t per = (req.count + segments - 1) / segments;
    const auto* send = static_cast<const uint8_t*>(req.send);
    auto* recv = static_cast<uint8_t*>(req.recv);
    const int worldSize = h_->worldSize;
    auto range = [&](size_t i) {
      const size_t begin = std::min(req.count, i * per);
      return std::pair(begin, std::min(req.count, begin + per) - begin);
    };
    return runPipeline(
        segments,
        [&](size_t i) {
          auto [at, cnt] = range(i);
          return local.run(
              subRequest(req, CollectiveKind::kReduce, cnt, send + at * elem, recv + at * elem, 0));
        },
        [&](size_t i, bool async) -> StatusOr<std::optional<Work>> {
          if (!leader) return std::optional<Work>();
          auto [at, cnt] = range(i);
          return inPhase(
              leaders,
              subRequest(req, CollectiveKind::kAllReduce, cnt, recv + at * elem, recv + at * elem),
              async);
        },
        [&](size_t i) {
          auto [at, cnt] = range(i);
          if (leader && req.op == ReduceOp::kAvg) {
            divideInPlace(req.type, recv + at * elem, cnt, worldSize);
          }
          return local.run(subRequest(req, CollectiveKind::kBroadcast, cnt, recv + at * elem,
                                      recv + at * elem, 0));
        },
        [&] { abortPhases(); });
  }

  void abortPhases() const {
    h_->local->abort();
    h_->cross->abort();
  }

  // False when the communicator lies on one node or has one rank per node: then the
  // composition degenerates to a single all-reduce, and the flat algorithm runs it.
  bool composed() const { return h_ != nullptr && h_->local != nullptr; }

  const Hierarchy* h_;
  std::unique_ptr<Algorithm> flat_;
};

}  // namespace

std::unique_ptr<Algorithm> makeHierAllReduce(const Hierarchy* hierarchy,
                                             std::unique_ptr<Algorithm> flat) {
  return std::make_unique<HierAllReduce>(hierarchy, std::move(flat));
}

}  // namespace plexus
