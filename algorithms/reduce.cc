// Reduce to a root over a pipelined tree (tree_pipeline.h): pieces of about
// PLEXUS_CHUNK_BYTES / 4 climb the tree; each rank adds its children's partial sums of a piece
// to its own input (children in a fixed order, so float results are reproducible) and passes
// the sum up while later pieces are still arriving. Only the root writes its receive buffer.
//
// Two shapes, as for broadcast. "tree", binomial: latency ⌈log2 n⌉ · α, but the root receives
// and reduces ⌈log2 n⌉ · S bytes. "ring", a chain ending at the root: every rank receives,
// reduces and sends S once (bandwidth-optimal); latency (n−1) · α plus the pipeline fill.
#include <algorithm>
#include <cmath>

#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"
#include "algorithms/primitives.h"
#include "algorithms/tree_pipeline.h"

namespace plexus {
namespace {

class PipelinedReduce final : public Algorithm {
 public:
  explicit PipelinedReduce(bool chain) : chain_(chain) {}
  const char* name() const override { return chain_ ? "ring" : "tree"; }
  const char* description() const override {
    return chain_ ? "pipelined chain reduce: every rank moves S once, for large messages"
                  : "pipelined binomial-tree reduce: log2(n) latency, for small messages";
  }
  CollectiveKind collective() const override { return CollectiveKind::kReduce; }
  Status supports(const CollectiveRequest& request, int) const override {
    return requireHostMemory(request, "reduce");
  }
  double estimateUs(const CollectiveRequest& request, int n, const CostModel& m) const override {
    const double s = static_cast<double>(request.bytes()), steps = std::ceil(std::log2(n));
    if (chain_) return (n - 1) * m.alphaUs + s * (m.betaUsPerB + m.gammaUsPerB);
    return steps * (m.alphaUs + s * (m.betaUsPerB + m.gammaUsPerB));
  }
  Status run(const CollectiveRequest& req, CollectiveContext& ctx) override {
    if (req.count == 0) return okStatus();
    const int n = ctx.size(), r = ctx.rank();
    const TreeCall call = treeCallFor(req, ctx, TreeFlow::kUp,
                                      r == req.root ? static_cast<uint8_t*>(req.recv) : nullptr);
    TreeShare share;
    // The chain runs towards the root: it is the broadcast chain of root+1, reversed.
    share.links = chain_ ? reversedChain(r, n, req.root) : binomialTree(r, n, req.root);
    share.count = req.count;
    return runTreePipeline(ctx, call, &share, 1);
  }

 private:
  static TreeLinks reversedChain(int r, int n, int root) {
    TreeLinks t;
    if (r != root) t.parent = (r + 1) % n;
    if ((r - root + n) % n != 1 && n > 1) t.addChild((r - 1 + n) % n);
    return t;
  }
  bool chain_;
};

}  // namespace

std::unique_ptr<Algorithm> makeTreeReduce() { return std::make_unique<PipelinedReduce>(false); }
std::unique_ptr<Algorithm> makeChainReduce() { return std::make_unique<PipelinedReduce>(true); }

}  // namespace plexus
