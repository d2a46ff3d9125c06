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
// Above kFuseLastLevelBytes the levels have radix 4 where they can (radix 2 for an odd last
// bit): at a radix-4 level a rank's window is cut in four, it sends three quarters to the three
// ranks that differ from it in that pair of bits, receives its quarter from each and adds the
// three to its own (its own operand first, then theirs in rank order: one fixed order per
// block); doubling swaps each finished window with the same three. The bytes are the same, the
// steps half as many, and each message a quarter of the window instead of half (at 128 KiB on
// 4 ranks, 32 KiB messages stay under UCX's 64 KiB rendezvous threshold).
//
// Bytes per rank: 2(p−1)/p · S for halving plus doubling, the same as the ring; folded pairs
// move another S each way. Latency: 2 · L · α with L = log2(p) levels (about half as many at
// radix 4), plus 2α when n is not a power of two, against the ring's 2(n−1) · α.
//
// From kWholeBufferBytes to kFuseLastLevelBytes the last halving step and the first doubling
// step become one: at distance 1 the partners swap their whole two-block window and both reduce
// all of it (lower rank's operand first, so both get the same bits), which moves the same bytes
// in one message instead of two, for an extra block reduced: 2·log2(p) − 1 steps.
//
// Every exchange is an exchange() (primitives.h): on a one-node communicator a message of up
// to 64 KiB goes through the shared region's mailboxes (shm_mailbox.h), and the receiver
// reduces (or, doubling, copies) straight from the sender's ring, a fragment at a time as it
// fills; the reduction order, and so every bit of the result, is the same either way.
//
// Short messages (≤ kWholeBufferBytes) skip the halving: recursive doubling exchanges the
// whole buffer at distances 1, 2, …, p/2 and adds it, log2(p) · α of latency for log2(p) · S
// bytes, which wins while α dominates (MPICH makes the same switch). Each pair adds the same
// two operands (IEEE addition, min and max commute bit for bit), so ranks still agree. Each block
// is summed at exactly one rank and then copied, so every rank ends with bitwise identical results.
#include <array>
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

// The largest radix of the halving levels (see the opening comment). 4 ranks on 2 cores,
// `plexus-tune --check -a ring,rhd --stat median`, three interleaved runs each, us (ring / rhd
// radix 2 / rhd radix 4): 128 KiB 68-71 / 86-89 / 52-61, 256 KiB 175-196 / 156-166 / 138-156,
// 512 KiB to 4 MiB level. Up to 64 KiB radix 2 with the fused level stays: radix 4 was level
// there with the cores near (64 KiB 34.7-35.8 against 33.9-35.9 us), and as one whole-buffer
// step of three messages at 8-16 KiB it lost (16 KiB 19.7-20.5 against 15.8-16.8).
int radixFor(size_t bytes) { return bytes > kFuseLastLevelBytes ? 4 : 2; }

bool fusesLastLevel(size_t bytes) {
  return bytes > kWholeBufferBytes && bytes <= kFuseLastLevelBytes;
}

// The unfold's tag step, past any halving or doubling step (at most 2 · 31 of them).
constexpr uint32_t kUnfoldStep = 0xFFFF;

// The rank that stands for new rank v after the fold (the odd rank of a folded pair).
int realRank(int v, int rem) { return v < rem ? 2 * v + 1 : v + rem; }

// The levels of the halving and doubling among p = 2^m ranks, farthest partners first: radix
// maxRadix (4) while two or more bits are left, then radix 2. At a level of radix k and stride
// s a rank's group is the k ranks that differ from it only in the digit (rank / s) % k.
constexpr int kMaxRadix = 4;
struct RadixLevels {
  RadixLevels(int p, int maxRadix) {
    int bits = 0;
    while ((1 << bits) < p) ++bits;
    int below = p;
    for (; bits > 0; ++count) {
      radix[count] = bits >= 2 && maxRadix >= 4 ? 4 : 2;
      bits -= radix[count] == 4 ? 2 : 1;
      below /= radix[count];
      stride[count] = below;
    }
  }
  int count = 0;
  int radix[32] = {};
  int stride[32] = {};
};

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
    double t = request.bytes() <= kWholeBufferBytes
                   ? std::log2(p) * (m.alphaUs + s * (m.betaUsPerB + m.gammaUsPerB))
                   : 2 * RadixLevels(p, radixFor(request.bytes())).count * m.alphaUs +
                         2 * f * s * m.betaUsPerB + f * s * m.gammaUsPerB;
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

  if (bytes <= kWholeBufferBytes) {
    for (int d = 1; d < p; d *= 2, ++step) {
      const int peer = realRank(self ^ d, rem);
      const Transfer ops[2] = {{peer, false, incoming, bytes, ctx.tag(step, 0)},
                               {peer, true, const_cast<uint8_t*>(cur), bytes, ctx.tag(step, 0)}};
      TransferRequest reqs[2];
      PLEXUS_TRY(
          exchange(ctx, ops, reqs, 2, [&](size_t, size_t at, const uint8_t* theirs, size_t len) {
            reduceCpu(req.type, req.op, out + at, cur + at, theirs, len / dataTypeSize(req.type));
          }));
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
  const BlockSplit blocks(req.count, p);
  const RadixLevels levels(p, radixFor(req.bytes()));
  const bool fuse = fusesLastLevel(req.bytes()) && levels.radix[levels.count - 1] == 2;
  const int halving = levels.count - (fuse ? 1 : 0);
  std::array<Transfer, 2 * (kMaxRadix - 1)> ops;
  std::array<TransferRequest, 2 * (kMaxRadix - 1)> reqs;
  // Halving: the window [lo, lo + len) of blocks shrinks to this rank's own block.
  size_t lo = 0, len = static_cast<size_t>(p);
  for (int l = 0; l < halving; ++l, ++step) {
    const int k = levels.radix[l], stride = levels.stride[l], digit = (self / stride) % k;
    const size_t part = len / k, keep = lo + static_cast<size_t>(digit) * part;
    const size_t keepAt = blocks.start(keep) * elem, keepN = blocks.span(keep, part);
    size_t n = 0;
    for (int m = 0, slot = 0; m < k; ++m) {
      if (m == digit) continue;
      const int peer = realRank(self + (m - digit) * stride, rem);
      const size_t give = lo + static_cast<size_t>(m) * part;
      ops[n++] = {peer, false, incoming + slot++ * keepN * elem, keepN * elem, ctx.tag(step, 0)};
      ops[n++] = {peer, true, const_cast<uint8_t*>(cur) + blocks.start(give) * elem,
                  blocks.span(give, part) * elem, ctx.tag(step, 0)};
    }
    // This rank's operand first, then the others' in the order of their digits: one fixed order
    // per block, and no other rank reduces this block at this level.
    PLEXUS_TRY(exchange(ctx, ops.data(), reqs.data(), n,
                        [&](size_t i, size_t at, const uint8_t* theirs, size_t len) {
                          const size_t to = keepAt + at;
                          reduceCpu(req.type, req.op, out + to, (i == 0 ? cur : out) + to, theirs,
                                    len / elem);
                        }));
    cur = out;
    lo = keep;
    len = part;
  }
  if (fuse) {
    const size_t at = blocks.start(lo) * elem, cnt = blocks.span(lo, len);
    const int peer = realRank(self ^ 1, rem);
    ops[0] = {peer, false, incoming, cnt * elem, ctx.tag(step, 0)};
    ops[1] = {peer, true, const_cast<uint8_t*>(cur) + at, cnt * elem, ctx.tag(step, 0)};
    const bool lower = (self & 1) == 0;
    PLEXUS_TRY(exchange(ctx, ops.data(), reqs.data(), 2,
                        [&](size_t, size_t off, const uint8_t* theirs, size_t len) {
                          const uint8_t* mine = cur + at + off;
                          reduceCpu(req.type, req.op, out + at + off, lower ? mine : theirs,
                                    lower ? theirs : mine, len / elem);
                        }));
    ++step;
  }
  if (req.op == ReduceOp::kAvg) {
    divideInPlace(req.type, out + blocks.start(lo) * elem, blocks.span(lo, len), ctx.size());
  }

  // Doubling: the levels in reverse, each rank sending its finished window to the k - 1 others
  // of its group and receiving theirs in place.
  for (int l = halving - 1; l >= 0; --l, ++step) {
    const int k = levels.radix[l], stride = levels.stride[l], digit = (self / stride) % k;
    const size_t parent = lo - static_cast<size_t>(digit) * len;
    size_t n = 0;
    for (int m = 0; m < k; ++m) {
      if (m == digit) continue;
      const int peer = realRank(self + (m - digit) * stride, rem);
      const size_t theirs = parent + static_cast<size_t>(m) * len;
      ops[n++] = {peer, false, out + blocks.start(theirs) * elem, blocks.span(theirs, len) * elem,
                  ctx.tag(step, 0)};
      ops[n++] = {peer, true, out + blocks.start(lo) * elem, blocks.span(lo, len) * elem,
                  ctx.tag(step, 0)};
    }
    PLEXUS_TRY(exchange(ctx, ops.data(), reqs.data(), n,
                        [&](size_t i, size_t at, const uint8_t* theirs, size_t len) {
                          copyUnlessSame(static_cast<uint8_t*>(ops[i].buffer) + at, theirs, len);
                        }));
    lo = parent;
    len *= k;
  }
  return okStatus();
}

}  // namespace

std::unique_ptr<Algorithm> makeRhdAllReduce() { return std::make_unique<RhdAllReduce>(); }

}  // namespace plexus
