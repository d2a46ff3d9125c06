// Ring all-gather. Rank r first places its own block at position r of the output; in step s
// (0 ≤ s < n−1) it sends block (r−s) mod n to its right neighbour and receives block
// (r−s−1) mod n from its left one, straight into the output. After n−1 steps every rank has
// every block.
//
// Bytes per rank: (n−1) · count sent and received, the optimum for all-gather. Latency:
// (n−1) · α. There is nothing to reduce, so steps need no chunk pipelining: each step is one
// message per direction, which the transport pipelines itself (rendezvous for large ones).
#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"
#include "algorithms/primitives.h"

namespace plexus {
namespace {

class RingAllGather final : public Algorithm {
 public:
  const char* name() const override { return "ring"; }
  const char* description() const override {
    return "ring all-gather: n−1 steps, bandwidth-optimal";
  }
  CollectiveKind collective() const override { return CollectiveKind::kAllGather; }
  Status supports(const CollectiveRequest& request, int) const override {
    return requireHostMemory(request, "ring all-gather");
  }
  // n−1 steps, each a block S through the link.
  double estimateUs(const CollectiveRequest& request, int n, const CostModel& m) const override {
    return (n - 1) * (m.alphaUs + static_cast<double>(request.bytes()) * m.betaUsPerB);
  }
  Status run(const CollectiveRequest& req, CollectiveContext& ctx) override {
    const int n = ctx.size(), r = ctx.rank();
    const size_t bytes = req.bytes();
    auto* out = static_cast<uint8_t*>(req.recv);
    if (bytes == 0) return okStatus();
    copyUnlessSame(out + r * bytes, req.send, bytes);
    const int right = (r + 1) % n, left = (r + n - 1) % n;
    for (int s = 0; s < n - 1; ++s) {
      const int sendBlock = (r - s + n) % n, recvBlock = (r - s - 1 + n) % n;
      PLEXUS_TRY(sendRecv(ctx, right, out + sendBlock * bytes, bytes, left, out + recvBlock * bytes,
                          bytes, ctx.tag(static_cast<uint32_t>(s), 0)));
    }
    return okStatus();
  }
};

}  // namespace

std::unique_ptr<Algorithm> makeRingAllGather() { return std::make_unique<RingAllGather>(); }

}  // namespace plexus
