// Ring reduce-scatter. The input holds n blocks of `count` elements; rank r ends with the sum
// of everyone's block r. In step s (0 ≤ s < n−1) rank r sends its running partial sum of block
// (r−s−1) mod n to its right neighbour (at step 0: its own input block) and receives the left
// neighbour's partial sum of block (r−s−2) mod n, adding its own input block to it. The block
// received at the last step is block r, now summed over all ranks; it goes straight into the
// output (and is averaged there for kAvg).
//
// Bytes per rank: (n−1) · count sent and received, the optimum. Latency: (n−1) · α. Each block
// is summed in one fixed order (around the ring), so results are reproducible.
//
// Memory: two blocks of scratch (what arrives, and the partial sum being sent), reused.
#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"
#include "algorithms/primitives.h"
#include "src/reduce_cpu.h"

namespace plexus {
namespace {

class RingReduceScatter final : public Algorithm {
 public:
  const char* name() const override { return "ring"; }
  const char* description() const override {
    return "ring reduce-scatter: n−1 steps, bandwidth-optimal";
  }
  CollectiveKind collective() const override { return CollectiveKind::kReduceScatter; }
  Status supports(const CollectiveRequest& request, int) const override {
    return requireHostMemory(request, "ring reduce-scatter");
  }
  // n−1 steps, each a block S through the link and reduced.
  double estimateUs(const CollectiveRequest& request, int n, const CostModel& m) const override {
    const double s = static_cast<double>(request.bytes());
    return (n - 1) * (m.alphaUs + s * (m.betaUsPerB + m.gammaUsPerB));
  }
  Status run(const CollectiveRequest& req, CollectiveContext& ctx) override {
    const int n = ctx.size(), r = ctx.rank();
    const size_t bytes = req.bytes();
    const auto* own = static_cast<const uint8_t*>(req.send);
    auto* out = static_cast<uint8_t*>(req.recv);
    if (bytes == 0) return okStatus();
    if (n == 1) {
      copyUnlessSame(out, own, bytes);
      return okStatus();
    }
    auto* incoming = static_cast<uint8_t*>(ctx.scratch(2 * bytes));
    uint8_t* partial = incoming + bytes;
    const int right = (r + 1) % n, left = (r + n - 1) % n;
    for (int s = 0; s < n - 1; ++s) {
      const int sendBlock = (r - s - 1 + 2 * n) % n, recvBlock = (r - s - 2 + 2 * n) % n;
      const uint8_t* src = s == 0 ? own + sendBlock * bytes : partial;
      PLEXUS_TRY(sendRecv(ctx, right, src, bytes, left, incoming, bytes,
                          ctx.tag(static_cast<uint32_t>(s), 0)));
      uint8_t* dst = s == n - 2 ? out : partial;
      reduceCpu(req.type, req.op, dst, own + recvBlock * bytes, incoming, req.count);
    }
    if (req.op == ReduceOp::kAvg) divideInPlace(req.type, out, req.count, n);
    return okStatus();
  }
};

}  // namespace

std::unique_ptr<Algorithm> makeRingReduceScatter() { return std::make_unique<RingReduceScatter>(); }

}  // namespace plexus
