// Hierarchical all-reduce and the multi-node plumbing under it, with nodes emulated on this host
// by PLEXUS_NODE_ID: topology in the communicator, per-level transports, the node-local and
// cross-node sub-communicators, and the hierarchical schedules (shard and leader, pipelined)
// checked bit for bit against the reference on every layout the issue names.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "algorithms/hierarchy.h"
#include "plexus/plexus.h"
#include "src/communicator_impl.h"
#include "src/selector.h"
#include "tests/algorithms/reference.h"
#include "tests/harness/world.h"

namespace plexus {
namespace {

using testing::checkAllReduce;
using testing::mentions;
using testing::runRanks;
using testing::WorldOptions;

// The node of `rank` when `layout` lists the ranks of every node in order.
int nodeOf(const std::vector<int>& layout, int rank) {
  for (int node = 0, first = 0; node < static_cast<int>(layout.size()); ++node) {
    first += layout[node];
    if (rank < first) return node;
  }
  return -1;
}

// Runs `body` on a communicator whose ranks sit on emulated nodes as `layout` says.
::testing::AssertionResult runLayout(const std::vector<int>& layout,
                                     const std::function<void(Communicator&)>& body,
                                     WorldOptions options = {}) {
  const int n = std::accumulate(layout.begin(), layout.end(), 0);
  return runRanks(
      n,
      [&](int rank, const UniqueId& id) {
        ::setenv("PLEXUS_NODE_ID", ("node" + std::to_string(nodeOf(layout, rank))).c_str(), 1);
        auto comm = Communicator::create(id, rank, n);
        ASSERT_TRUE(comm.ok()) << comm.status().toString();
        body(**comm);
      },
      options);
}

struct Layout {
  const char* name;
  std::vector<int> ranksPerNode;
};

void PrintTo(const Layout& layout, std::ostream* os) { *os << layout.name; }

class HierLayout : public ::testing::TestWithParam<Layout> {};

// Forced hier (PLEXUS_ALGO) on every count that exercises a schedule: empty, fewer elements than
// ranks per node, a tail that is not a multiple of them, and several pipeline segments.
TEST_P(HierLayout, MatchesTheReference) {
  const std::vector<int>& layout = GetParam().ranksPerNode;
  WorldOptions options;
  options.env["PLEXUS_ALGO"] = "allreduce:hier";
  options.deadline = std::chrono::seconds(240);
  ASSERT_TRUE(runLayout(
      layout,
      [&](Communicator& comm) {
        EXPECT_EQ(comm.numNodes(), static_cast<int>(layout.size()));
        EXPECT_EQ(comm.localSize(), layout[nodeOf(layout, comm.rank())]);
        for (size_t count : {size_t{0}, size_t{1}, size_t{2}, size_t{7}, size_t{1001}}) {
          for (int t = 0; t < kNumDataTypes; ++t) {
            for (int o = 0; o < kNumReduceOps; ++o) {
              for (bool inPlace : {false, true}) {
                auto type = static_cast<DataType>(t);
                auto op = static_cast<ReduceOp>(o);
                ASSERT_EQ(checkAllReduce(comm, count, type, op, inPlace), -1)
                    << "count " << count << " " << dataTypeName(type) << " " << reduceOpName(op)
                    << (inPlace ? " in place" : " out of place");
              }
            }
          }
        }
        // Large: pipelined over several segments, in both schedules' cost range.
        const size_t big = (size_t{3} << 20) + 5;
        for (auto [type, op] : {std::pair{DataType::kFloat32, ReduceOp::kSum},
                                {DataType::kInt32, ReduceOp::kAvg},
                                {DataType::kFloat16, ReduceOp::kMax}}) {
          for (bool inPlace : {false, true}) {
            ASSERT_EQ(checkAllReduce(comm, big, type, op, inPlace), -1)
                << dataTypeName(type) << " " << reduceOpName(op) << " of " << big;
          }
        }
      },
      options));
}

INSTANTIATE_TEST_SUITE_P(Layouts, HierLayout,
                         ::testing::Values(Layout{"n2x2", {2, 2}}, Layout{"n2x3", {3, 3}},
                                           Layout{"n3x1", {1, 1, 1}}, Layout{"n1x4", {4}},
                                           Layout{"unequal3p1", {3, 1}},
                                           Layout{"unequal1p2", {1, 2}}),
                         [](const auto& info) { return std::string(info.param.name); });

// Links inside a node and between nodes on differently configured transports (the TCP-only
// one with its own rendezvous threshold); ranks that disagree on a level's transport fail with
// a message naming the variable.
TEST(Hier, PerLevelTransports) {
  WorldOptions options;
  options.env["PLEXUS_TRANSPORT_INTRA"] = "ucx:sm,self";
  options.env["PLEXUS_TRANSPORT_INTER"] = "ucx:tcp";
  ASSERT_TRUE(runLayout(
      {2, 2},
      [](Communicator& comm) {
        EXPECT_EQ(comm.transportName(), "ucx");
        const std::string links = comm.impl()->describeTransports();
        EXPECT_NE(links.find("intra-node ucx 1."), std::string::npos) << links;
        EXPECT_NE(links.find("(UCX_TLS=sm,self, rendezvous from 64K)"), std::string::npos) << links;
        EXPECT_NE(links.find("(UCX_TLS=tcp, rendezvous from 1M)"), std::string::npos) << links;
        for (size_t count : {size_t{7}, size_t{1} << 18}) {
          EXPECT_EQ(checkAllReduce(comm, count, DataType::kFloat32, ReduceOp::kSum, false), -1);
        }
      },
      options));
}

// The pipeline chunk follows the links a ring across nodes waits on: OFI's shm provider inside
// the nodes wants none (1 GiB chunks), the UCX tcp links between them the default 256 KiB; on
// one node the shm provider's wish holds. (Taking the largest wish left the cross-node ring
// unpipelined.)
TEST(Hier, PipelineChunkFollowsTheInterNodeTransport) {
  WorldOptions options;
  options.env["PLEXUS_TRANSPORT_INTRA"] = "ofi";
  options.env["PLEXUS_OFI_PROVIDER"] = "shm";
  options.env["PLEXUS_TRANSPORT_INTER"] = "ucx:tcp";
  options.env["PLEXUS_ALGO"] = "allreduce:ring";
  for (const std::vector<int>& layout : {std::vector<int>{2, 2}, std::vector<int>{3}}) {
    const size_t want = layout.size() > 1 ? size_t{256} << 10 : size_t{1} << 30;
    ASSERT_TRUE(runLayout(
        layout,
        [want](Communicator& comm) {
          EXPECT_EQ(comm.impl()->pipelineChunkBytes(), want) << comm.impl()->describeTransports();
          for (size_t count : {size_t{7}, size_t{1} << 18}) {
            EXPECT_EQ(checkAllReduce(comm, count, DataType::kFloat32, ReduceOp::kSum, true), -1);
          }
        },
        options));
  }
}

TEST(Hier, MismatchedLevelTransportIsAnError) {
  WorldOptions options = testing::shortTimeout();
  ASSERT_TRUE(runRanks(
      2,
      [](int rank, const UniqueId& id) {
        ::setenv("PLEXUS_NODE_ID", ("node" + std::to_string(rank)).c_str(), 1);
        ::setenv("PLEXUS_TRANSPORT_INTER", rank == 0 ? "ucx" : "ucx:tcp", 1);
        auto comm = Communicator::create(id, rank, 2);
        ASSERT_FALSE(comm.ok());
        EXPECT_TRUE(mentions(comm.status(), "PLEXUS_TRANSPORT_INTER")) << comm.status().toString();
      },
      options));
}

TEST(Hier, BadTransportSpecIsAnError) {
  WorldOptions options = testing::shortTimeout();
  options.env["PLEXUS_TRANSPORT_INTRA"] = "ucx:nosuchtransport";
  ASSERT_TRUE(runRanks(
      2,
      [](int rank, const UniqueId& id) {
        auto comm = Communicator::create(id, rank, 2);
        ASSERT_FALSE(comm.ok());
        EXPECT_TRUE(mentions(comm.status(), "intra-node transport 'ucx:nosuchtransport'"))
            << comm.status().toString();
      },
      options));
}

// A rank killed in the middle of hierarchical all-reduces: every survivor fails within the
// timeout plus a margin, and the ones that shared a sub-communicator with it name it by its
// world rank (sub-communicators number their ranks from 0).
TEST(Hier, KilledRankIsNamedByItsWorldRank) {
  const int victim = 3;  // node 1, local rank 1: rank 2 shares its node, rank 1 its local rank
  WorldOptions options = testing::shortTimeout();
  options.env["PLEXUS_ALGO"] = "allreduce:hier";
  options.mayDie = {victim};
  ASSERT_TRUE(runLayout(
      {2, 2},
      [&](Communicator& comm) {
        std::vector<float> buf(size_t{1} << 18, 1.0f);
        for (int i = 0;; ++i) {
          if (comm.rank() == victim && i == 3) ::raise(SIGKILL);
          auto start = std::chrono::steady_clock::now();
          Status s = comm.allReduce(buf.data(), buf.data(), buf.size(), DataType::kFloat32,
                                    ReduceOp::kMax);
          if (s.ok()) {
            ASSERT_LT(i, 100000) << "the victim never failed anyone";
            continue;
          }
          EXPECT_TRUE(s.code() == StatusCode::kUnavailable ||
                      s.code() == StatusCode::kDeadlineExceeded)
              << s.toString();
          // Within the timeout and a margin: a phase queued behind the failed one must not add
          // a timeout of its own.
          EXPECT_LE(std::chrono::steady_clock::now() - start, std::chrono::seconds(3 + 2));
          if (comm.rank() == 1 || comm.rank() == 2) {
            EXPECT_TRUE(mentions(s, "(world rank 3)")) << s.toString();
          } else {
            EXPECT_TRUE(mentions(s, "rank")) << s.toString();
          }
          return;
        }
      },
      options));
}

// The cost model spans nodes: flat algorithms are paced by the network link, and the
// hierarchical one wins for large messages once there are several ranks per node.
TEST(Hier, CostModelPrefersHierAcrossNodesForLargeMessages) {
  std::vector<HostTopology> hosts(8);
  for (int r = 0; r < 8; ++r) {
    hosts[r].hostname = "host";
    hosts[r].bootId = "boot";
    hosts[r].nodeId = "node" + std::to_string(r / 4);
    hosts[r].nodeIdOverridden = true;
    hosts[r].pid = 100 + r;
  }
  auto topo = JobTopology::build(hosts);
  ASSERT_TRUE(topo.ok());
  const CostModel m = internal::costModelFor(*topo);
  EXPECT_EQ(m.nodes, 2);
  EXPECT_EQ(m.ranksPerNode, 4);
  EXPECT_EQ(m.betaUsPerB, std::max(m.intra.betaUsPerB, m.inter.betaUsPerB));

  // A hierarchy whose sub-communicators are never called: the selector only asks for costs.
  struct Idle final : SubCommunicator {
    int rank() const override { return 0; }
    int size() const override { return 4; }
    Status run(const CollectiveRequest&) override { return internalError("not here"); }
    StatusOr<Work> runAsync(const CollectiveRequest&) override { return internalError("not here"); }
    void abort() override {}
  } idle;
  Hierarchy h;
  h.local = h.cross = &idle;
  h.numNodes = 2;
  h.worldSize = 8;
  h.uniform = true;
  h.model = m;
  auto algos = builtinAlgorithms(&h, nullptr);
  internal::Selector selector(&algos, {}, m, 8);
  CollectiveRequest req;
  req.count = size_t{16} << 20;
  auto chosen = selector.select(req, "");
  ASSERT_TRUE(chosen.ok());
  EXPECT_STREQ((*chosen)->name(), "hier");

  // On one node there is nothing to compose: hier is never the automatic choice.
  for (auto& host : hosts) host.nodeId = "one";
  auto single = JobTopology::build(hosts);
  ASSERT_TRUE(single.ok());
  Hierarchy flat;
  auto flatAlgos = builtinAlgorithms(&flat, nullptr);
  internal::Selector flatSelector(&flatAlgos, {}, internal::costModelFor(*single), 8);
  for (size_t count : {size_t{1}, size_t{16} << 20}) {
    req.count = count;
    chosen = flatSelector.select(req, "");
    ASSERT_TRUE(chosen.ok());
    EXPECT_STRNE((*chosen)->name(), "hier") << count;
  }
}

}  // namespace
}  // namespace plexus
