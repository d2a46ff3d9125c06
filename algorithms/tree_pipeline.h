// Trees and the pipelined tree engine shared by the tree all-reduce, broadcast and reduce.
//
// A call runs over one or more trees (the double binary tree uses two, each carrying half of
// the buffer). Each tree's share is cut into pieces of about `chunkElems`; every piece walks
// the tree on its own: up (receive the children's partial results, reduce them with this
// rank's input, send the sum to the parent) and/or down (receive the result from the parent,
// pass it to the children). While one piece is being reduced, later pieces are in flight, so
// a deep tree costs depth × (one piece) of latency instead of depth × (the whole buffer).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "algorithms/algorithm.h"
#include "algorithms/context.h"
#include "plexus/types.h"

namespace plexus {

/// Most children a rank can have in any tree here (a binomial tree over 2^32 ranks has 32).
inline constexpr int kMaxTreeChildren = 32;

/// One rank's place in a tree: its parent (-1 at the root) and its children, in the order
/// their contributions are combined (fixed, so float results are reproducible).
struct TreeLinks {
  int parent = -1;
  int numChildren = 0;
  std::array<int, kMaxTreeChildren> children{};

  void addChild(int child) { children[numChildren++] = child; }
};

/// Binomial tree rooted at `root`: parent = relative rank without its lowest set bit; the
/// larger subtrees come first. Depth ⌈log2 n⌉.
TreeLinks binomialTree(int rank, int size, int root);
/// Chain root → root+1 → … → root−1: a pipeline in which every rank sends the buffer once.
TreeLinks chainTree(int rank, int size, int root);
/// Tree `which` (0 or 1) of NCCL's double binary tree: tree 0 is an in-order binary tree
/// rooted at rank 0 whose leaves are the odd ranks; tree 1 is its mirror (even n) or its shift
/// by one (odd n), so every rank is a leaf in at least one of the two.
TreeLinks doubleBinaryTree(int rank, int size, int which);

/// What flows through the trees.
enum class TreeFlow { kUp, kDown, kUpDown };

/// One tree's share of a call: the elements it carries and this rank's links in it.
struct TreeShare {
  TreeLinks links;
  size_t begin = 0;
  size_t count = 0;
};

/// One call of the tree engine.
struct TreeCall {
  TreeFlow flow = TreeFlow::kUpDown;
  DataType type = DataType::kFloat32;
  ReduceOp op = ReduceOp::kSum;
  int divisor = 1;               ///< kAvg divides by this at the root
  const uint8_t* own = nullptr;  ///< this rank's input (up), the root's data (down only)
  uint8_t* out = nullptr;        ///< the result; null where none is kept (reduce off-root)
  size_t chunkElems = 1;         ///< piece size
};

/// Piece size of the tree algorithms: PLEXUS_CHUNK_BYTES / 4 (at least 8 KiB), smaller than
/// the ring's because a tree pays its depth once per piece in flight.
size_t treeChunkElems(const CollectiveContext& ctx, DataType type);

/// The call for `request` flowing `flow`: its type, op, the world size as kAvg's divisor, its
/// send buffer as `own`, `out` as the result and treeChunkElems pieces.
TreeCall treeCallFor(const CollectiveRequest& request, const CollectiveContext& ctx, TreeFlow flow,
                     uint8_t* out);

/// Runs `call` over `trees` (at most 2). Tags use steps 2·tree (up) and 2·tree+1 (down) and
/// the piece index as chunk.
Status runTreePipeline(CollectiveContext& ctx, const TreeCall& call, const TreeShare* trees,
                       int numTrees);

}  // namespace plexus
