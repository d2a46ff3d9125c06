// Double binary tree all-reduce, pipelined (NCCL's "tree" algorithm).
//
// A single binary tree wastes half the links: leaves only send up and only receive down. The
// double binary tree runs two binary trees at once, each on half of the buffer, built so that
// every rank is a leaf in (at least) one of them (tree 1 is tree 0 mirrored for even n, shifted
// by one for odd n; see tree_pipeline.h). In each tree, pieces of about PLEXUS_CHUNK_BYTES / 4
// flow up (each rank receives its children's partial sums, adds its own input and passes the
// sum to its parent) and, once the root has the total, back down. Pieces are pipelined: piece
// c+1 climbs while piece c descends, so depth adds latency per piece, not per buffer.
//
// Bytes per rank: an interior rank of one tree receives 2 · S/2 and sends S/2 up, then
// receives S/2 and sends 2 · S/2 down; as a leaf of the other tree it moves S/2 each way. In
// all about 2S sent and 2S received, against the ring's 2(n−1)/n · S. Latency: 2 · ⌈log2 n⌉ · α
// (up and down the tree) against the ring's 2(n−1) · α, which is why it wins for small and
// medium messages on many ranks. The root of each tree sees every contribution, so every rank
// ends with bitwise identical results.
#include <algorithm>
#include <cmath>

#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"
#include "algorithms/primitives.h"
#include "algorithms/tree_pipeline.h"

namespace plexus {
namespace {

class TreeAllReduce final : public Algorithm {
 public:
  const char* name() const override { return "tree"; }
  const char* description() const override {
    return "pipelined double binary tree: log-depth latency, for small and medium messages";
  }
  CollectiveKind collective() const override { return CollectiveKind::kAllReduce; }
  Status supports(const CollectiveRequest& request, int) const override {
    return requireHostMemory(request, "tree all-reduce");
  }
  double estimateUs(const CollectiveRequest& request, int n, const CostModel& m) const override {
    if (n == 1) return 0;
    const double s = static_cast<double>(request.bytes()), depth = std::ceil(std::log2(n));
    // Pieces are reduced while others travel, so the γ term hides behind β, except for the
    // first piece of each tree: on its way up every level adds two children's sums to its own
    // before anything else can move (a message of one piece per tree hides nothing). Pieces
    // are a quarter of the chunk (tree_pipeline.cc).
    const double firstPiece = std::min(s / 2, m.chunkBytes / 4);
    return 2 * depth * m.alphaUs + 2 * s * m.betaUsPerB + depth * 2 * firstPiece * m.gammaUsPerB;
  }
  Status run(const CollectiveRequest& req, CollectiveContext& ctx) override {
    const int n = ctx.size(), r = ctx.rank();
    const TreeCall call = treeCallFor(req, ctx, TreeFlow::kUpDown, static_cast<uint8_t*>(req.recv));
    if (req.count == 0) return okStatus();
    const BlockSplit halves(req.count, 2);
    TreeShare shares[2];
    for (int t = 0; t < 2; ++t) {
      shares[t].links = doubleBinaryTree(r, n, t);
      shares[t].begin = halves.start(t);
      shares[t].count = halves.size(t);
    }
    return runTreePipeline(ctx, call, shares, 2);
  }
};

}  // namespace

std::unique_ptr<Algorithm> makeTreeAllReduce() { return std::make_unique<TreeAllReduce>(); }

}  // namespace plexus
