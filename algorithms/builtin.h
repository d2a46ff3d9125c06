// Factories of the built-in algorithms; builtin.cc lists them in order of preference.
#pragma once

#include <memory>

#include "algorithms/algorithm.h"
#include "algorithms/shared_region.h"
#include "algorithms/shm_channel.h"

namespace plexus {

/// Pipelined ring all-reduce (ring_allreduce.cc).
std::unique_ptr<Algorithm> makeRingAllReduce();
/// Recursive halving-doubling all-reduce (rhd_allreduce.cc).
std::unique_ptr<Algorithm> makeRhdAllReduce();
/// Pipelined double binary tree all-reduce (tree_allreduce.cc).
std::unique_ptr<Algorithm> makeTreeAllReduce();
/// Shared-memory all-reduce, reduce-scatter and all-gather over the channel's region, which the
/// communicator fills when its ranks share a node (shm_allreduce.cc, shm_gather_scatter.cc);
/// without one they run only on a single rank. The algorithms of one communicator share one
/// channel (shm_channel.h).
std::unique_ptr<Algorithm> makeShmAllReduce(std::shared_ptr<ShmChannel> channel);
std::unique_ptr<Algorithm> makeShmReduceScatter(std::shared_ptr<ShmChannel> channel);
std::unique_ptr<Algorithm> makeShmAllGather(std::shared_ptr<ShmChannel> channel);
/// Hierarchical all-reduce over the sub-communicators of `hierarchy` (hier_allreduce.cc);
/// `flat` runs requests when the communicator has nothing to compose.
std::unique_ptr<Algorithm> makeHierAllReduce(const Hierarchy* hierarchy,
                                             std::unique_ptr<Algorithm> flat);
/// Dissemination barrier (barrier.cc).
std::unique_ptr<Algorithm> makeDisseminationBarrier();
/// Pipelined binomial-tree and chain broadcast (broadcast.cc).
std::unique_ptr<Algorithm> makeTreeBroadcast();
std::unique_ptr<Algorithm> makeChainBroadcast();
/// Pipelined binomial-tree and chain reduce (reduce.cc).
std::unique_ptr<Algorithm> makeTreeReduce();
std::unique_ptr<Algorithm> makeChainReduce();
/// Ring all-gather (ring_allgather.cc).
std::unique_ptr<Algorithm> makeRingAllGather();
/// Ring reduce-scatter (ring_reducescatter.cc).
std::unique_ptr<Algorithm> makeRingReduceScatter();
/// Pairwise all-to-all (alltoall.cc).
std::unique_ptr<Algorithm> makePairwiseAllToAll();
/// Grouped sends and receives (sendrecv.cc).
std::unique_ptr<Algorithm> makeGroupSendRecv();

}  // namespace plexus
