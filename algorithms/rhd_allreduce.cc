// Recursive halving-doubling all-reduce (Rabenseifner): a reduce-scatter by recursive vector
// halving, then an all-gather by recursive doubling.
//
// Let p be the largest power of two ≤ n and rem = n − p. Ranks 2i and 2i+1 for i < rem first
// fold: the even rank sends its whole input to the odd one, which adds it and stands in for
// both ("new rank" i); the remaining ranks r ≥ 2·rem become new rank r − rem. The buffer is cut
// into p blocks. Halving: at distance d = p/2, p/4, …, 1 each new rank exchanges half of its
// current window with new rank ^ d (the lower rank keeps the lower half) and adds what it
// receives to the half it keeps; after log2 p steps new rank k holds the full sum of block k.
// Doubling walks back (d = 1, 2, …, p/2) swapping finished windows until everyone has all p
// blocks; finally the odd rank of each folded pair sends the result to its even partner.
//
// Bytes per rank: 2(p−1)/p · S for halving plus doubling, the same as the ring; folded pairs
// move another S each way. Latency: 2 · log2(p) · α, plus 2α when n is not a power of two,
// against the ring's 2(n−1) · α.
//
// Up to kFuseLastLevelBytes the last halving step and the first doubling step become one: at
// distance 1 the partners swap their whole two-block window and both reduce all of it (lower
// rank's operand first, so both get the same bits), which moves the same bytes in one message
// instead of two, for an extra block reduced: 2·log2(p) − 1 steps.
//
// Short messages (≤ kWholeBufferBytes) skip the halving: recursive doubling exchanges the
// whole buffer at distances 1, 2, …, p/2 and adds it, log2(p) · α of latency for log2(p) · S
// bytes, which wins while α dominates (MPICH makes the same switch). Each pair adds the same
// two operands (IEEE addition, min and max commute bit for bit), so ranks still agree. Each block
// is summed at exactly one rank and then copied, so every rank ends with bitwise identical results.
#include <cmath>

#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"
#include "algorithms/primitives.h"
#include "src/reduce_cpu.h"

namespace plexus {
namespace {

// Largest message that takes the whole-buffer recursive-doubling path: with 4 ranks on 2 cores,
// 32 KiB took 14-34 us this way against 24-52 us by plain halving-doubling; against
// halving-doubling with its last level fused (below), in-process medians (plexus-tune --check,
// three runs each), 32 KiB 25.3-26.1 against 24.2-25.0 us with the cores near and 40.1-55.6
// against 31.3-47.6 with them apart, so 32 KiB fuses; 16 KiB was mixed (23.4-32.3 against
// 21.7-31.0) and stays here.
constexpr size_t kWholeBufferBytes = 16 * 1024;

// Largest message whose last halving level is fused with the first doubling one (see the opening
// comment): 4 ranks on 2 cores, 64 KiB, best/median of 6 interleaved runs, 36.3/42.0 us against
// 39.0/46.4 unfused (the ring 48.9/51.9); at 128 KiB the window of that level is 64 KiB, the UCX
// rendezvous threshold, and fusing was no faster (91.1/112.3 against 88.0/103.9).
constexpr size_t kFuseLastLevelBytes = 64 * 1024;

bool fusesLastLevel(size_t bytes) {
  return bytes > kWholeBufferBytes && bytes <= kFuseLastLevelBytes;
}

// The unfold's tag step, past any halving or doubling step (at most 2 · 31 of them).
constexpr uint32_t kUnfoldStep = 0xFFFF;

class RhdAllReduce final : public Algorithm {
 public:
  const char* name() const override { return "rhd"; }
  const char* description() const override {
    return "recursive halving-doubling (Rabenseifner): log-step latency at ring-like bandwidth";
  }
  CollectiveKind collective() const override { return CollectiveKind::kAllReduce; }
  Status supports(const CollectiveRequest& request, int) const override {
    return requireHostMemory(request, "rhd all-reduce");
  }
  double estimateUs(const CollectiveRequest& request, int n, const CostModel& m) const override {
    if (n == 1) return 0;
    const int p = 1 << static_cast<int>(std::floor(std::log2(n)));
    const double s = static_cast<double>(request.bytes()), f = (p - 1.0) / p;
    double t =
        request.bytes() <= kWholeBufferBytes
            ? std::log2(p) * (m.alphaUs + s * (m.betaUsPerB + m.gammaUsPerB))
            : 2 * std::log2(p) * m.alphaUs + 2 * f * s * m.betaUsPerB + f * s * m.gammaUsPerB;
    if (fusesLastLevel(request.bytes())) t += -m.alphaUs + s / p * m.gammaUsPerB;
    if (p != n) t += 2 * m.alphaUs + 2 * s * m.betaUsPerB + s * m.gammaUsPerB;
    return t;
  }
  Status run(const CollectiveRequest& req, CollectiveContext& ctx) override;

 private:
  // Reduce-scatter by halving, all-gather by doubling, among the p ranks left after the fold.
  static Status halvingDoubling(const CollectiveRequest& req, CollectiveContext& ctx, int self,
                                int p, int rem, const uint8_t* cur, uint8_t* incoming,
                                uint32_t step);
};

Status RhdAllReduce::run(const CollectiveRequest& req, CollectiveContext& ctx) {
  const int n = ctx.size(), r = ctx.rank();
  const size_t bytes = req.bytes();
  const auto* own = static_cast<const uint8_t*>(req.send);
  auto* out = static_cast<uint8_t*>(req.recv);
  if (n == 1 || req.count == 0) {
    copyUnlessSame(out, own, bytes);
    return okStatus();
  }
  int p = 1;
  while (p * 2 <= n) p *= 2;
  const int rem = n - p;
  auto* incoming = static_cast<uint8_t*>(ctx.scratch(bytes));
  uint32_t step = 0;

  // Fold: even ranks below 2·rem hand their input to their odd neighbour and sit out.
  const uint8_t* cur = own;  // this rank's partial sums so far
  int self = r - rem;        // new rank; -1 for a rank that sat out
  if (r < 2 * rem) {
    if (r % 2 == 0) {
      PLEXUS_TRY(sendRecv(ctx, r + 1, own, bytes, -1, nullptr, 0, ctx.tag(step, 0)));
      return sendRecv(ctx, -1, nullptr, 0, r + 1, out, bytes, ctx.tag(kUnfoldStep, 0));
    }
    PLEXUS_TRY(sendRecv(ctx, -1, nullptr, 0, r - 1, incoming, bytes, ctx.tag(step, 0)));
    reduceCpu(req.type, req.op, out, incoming, own, req.count);
    cur = out;
    self = r / 2;
  }
  ++step;
  auto real = [rem](int v) { return v < rem ? 2 * v + 1 : v + rem; };

  if (bytes <= kWholeBufferBytes) {
    for (int d = 1; d < p; d *= 2, ++step) {
      PLEXUS_TRY(sendRecv(ctx, real(self ^ d), cur, bytes, real(self ^ d), incoming, bytes,
                          ctx.tag(step, 0)));
      reduceCpu(req.type, req.op, out, cur, incoming, req.count);
      cur = out;
    }
    if (req.op == ReduceOp::kAvg) divideInPlace(req.type, out, req.count, n);
  } else {
    PLEXUS_TRY(halvingDoubling(req, ctx, self, p, rem, cur, incoming, step));
  }

  // Unfold: hand the result to the rank that sat out.
  if (r < 2 * rem) return sendRecv(ctx, r - 1, out, bytes, -1, nullptr, 0, ctx.tag(kUnfoldStep, 0));
  return okStatus();
}

Status RhdAllReduce::halvingDoubling(const CollectiveRequest& req, CollectiveContext& ctx, int self,
                                     int p, int rem, const uint8_t* cur, uint8_t* incoming,
                                     uint32_t step) {
  const size_t elem = dataTypeSize(req.type);
  auto* out = static_cast<uint8_t*>(req.recv);
  auto real = [rem](int v) { return v < rem ? 2 * v + 1 : v + rem; };
  // Halving: the window [lo, lo + len) of blocks shrinks to this rank's own block.
  const BlockSplit blocks(req.count, p);
  size_t lo = 0, len = static_cast<size_t>(p);
  const bool fuse = fusesLastLevel(req.bytes());
  for (int d = p / 2; d >= (fuse ? 2 : 1); d /= 2, ++step) {
    const size_t half = len / 2;
    const bool lower = (self & d) == 0;
    const size_t keep = lower ? lo : lo + half, give = lower ? lo + half : lo;
    const size_t keepAt = blocks.start(keep) * elem, keepN = blocks.span(keep, half);
    PLEXUS_TRY(sendRecv(ctx, real(self ^ d), cur + blocks.start(give) * elem,
                        blocks.span(give, half) * elem, real(self ^ d), incoming, keepN * elem,
                        ctx.tag(step, 0)));
    reduceCpu(req.type, req.op, out + keepAt, cur + keepAt, incoming, keepN);
    cur = out;
    lo = keep;
    len = half;
  }
  if (fuse) {
    const size_t at = blocks.start(lo) * elem, cnt = blocks.span(lo, len);
    PLEXUS_TRY(sendRecv(ctx, real(self ^ 1), cur + at, cnt * elem, real(self ^ 1), incoming,
                        cnt * elem, ctx.tag(step, 0)));
    const bool lower = (self & 1) == 0;
    reduceCpu(req.type, req.op, out + at, lower ? cur + at : incoming, lower ? incoming : cur + at,
              cnt);
    ++step;
  }
  if (req.op == ReduceOp::kAvg) {
    divideInPlace(req.type, out + blocks.start(lo) * elem, blocks.span(lo, len), ctx.size());
  }

  // Doubling: swap finished windows with ever farther partners.
  for (int d = fuse ? 2 : 1; d < p; d *= 2, ++step) {
    const bool lower = (self & d) == 0;
    const size_t theirs = lower ? lo + len : lo - len;
    PLEXUS_TRY(sendRecv(ctx, real(self ^ d), out + blocks.start(lo) * elem,
                        blocks.span(lo, len) * elem, real(self ^ d),
                        out + blocks.start(theirs) * elem, blocks.span(theirs, len) * elem,
                        ctx.tag(step, 0)));
    lo = lower ? lo : theirs;
    len *= 2;
  }
  return okStatus();
}

}  // namespace

std::unique_ptr<Algorithm> makeRhdAllReduce() { return std::make_unique<RhdAllReduce>(); }

}  // namespace plexus
