// Broadcast over a pipelined tree (tree_pipeline.h): the root's buffer is cut into pieces of
// about PLEXUS_CHUNK_BYTES / 4 and every rank forwards each piece to its children as soon as it
// has arrived, so pieces stream down the tree one behind the other.
//
// Two shapes. "tree", a binomial tree: latency ⌈log2 n⌉ · α, but the root sends the whole
// buffer to each of its ⌈log2 n⌉ children, ⌈log2 n⌉ · S bytes; best for small messages.
// "ring", a chain root → root+1 → …: every rank receives and sends S once (bandwidth-optimal)
// and the latency is (n−1) · α plus the time of one piece per hop to fill the pipeline; best
// for large messages.
#include <algorithm>
#include <cmath>

#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"
#include "algorithms/primitives.h"
#include "algorithms/tree_pipeline.h"

namespace plexus {
namespace {

class PipelinedBroadcast final : public Algorithm {
 public:
  explicit PipelinedBroadcast(bool chain) : chain_(chain) {}
  const char* name() const override { return chain_ ? "ring" : "tree"; }
  const char* description() const override {
    return chain_ ? "pipelined chain broadcast: every rank sends S once, for large messages"
                  : "pipelined binomial-tree broadcast: log2(n) latency, for small messages";
  }
  CollectiveKind collective() const override { return CollectiveKind::kBroadcast; }
  Status supports(const CollectiveRequest& request, int) const override {
    return requireHostMemory(request, "broadcast");
  }
  double estimateUs(const CollectiveRequest& request, int n, const CostModel& m) const override {
    const double s = static_cast<double>(request.bytes()), steps = std::ceil(std::log2(n));
    if (chain_) return (n - 1) * m.alphaUs + s * m.betaUsPerB;
    return steps * m.alphaUs + steps * s * m.betaUsPerB;
  }
  Status run(const CollectiveRequest& req, CollectiveContext& ctx) override {
    if (req.count == 0) return okStatus();
    const int n = ctx.size(), r = ctx.rank();
    const TreeCall call = treeCallFor(req, ctx, TreeFlow::kDown, static_cast<uint8_t*>(req.recv));
    TreeShare share;
    share.links = chain_ ? chainTree(r, n, req.root) : binomialTree(r, n, req.root);
    share.count = req.count;
    return runTreePipeline(ctx, call, &share, 1);
  }

 private:
  bool chain_;
};

}  // namespace

std::unique_ptr<Algorithm> makeTreeBroadcast() {
  return std::make_unique<PipelinedBroadcast>(false);
}
std::unique_ptr<Algorithm> makeChainBroadcast() {
  return std::make_unique<PipelinedBroadcast>(true);
}

}  // namespace plexus
