// Bad input to the collectives, the selector and PLEXUS_ALGO: a clear Status on the calling
// rank, and no hang elsewhere beyond the timeout.
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "plexus/plexus.h"
#include "src/communicator_impl.h"
#include "src/selector.h"
#include "tests/harness/world.h"

namespace plexus {
namespace {

using testing::mentions;
using testing::runRanks;
using testing::runWorld;
using testing::shortTimeout;
using testing::WorldOptions;

TEST(CollectiveErrors, RootsBuffersAndGroupsAreCheckedOnTheCallingRank) {
  ASSERT_TRUE(runWorld(3, [](Communicator& comm) {
    std::vector<float> buf(64);
    Status s = comm.broadcast(buf.data(), buf.data(), 8, DataType::kFloat32, 3);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(mentions(s, "root 3 is outside [0, 3)")) << s.toString();
    s = comm.reduce(buf.data(), buf.data(), 8, DataType::kFloat32, ReduceOp::kSum, -1);
    EXPECT_TRUE(mentions(s, "root -1")) << s.toString();
    // all-gather: the send block overlaps the receive buffer but is not this rank's block.
    s = comm.allGather(buf.data() + 1, buf.data(), 4, DataType::kFloat32);
    EXPECT_TRUE(mentions(s, "overlap")) << s.toString();
    s = comm.reduceScatter(buf.data(), nullptr, 4, DataType::kFloat32, ReduceOp::kSum);
    EXPECT_TRUE(mentions(s, "recvbuf is null")) << s.toString();
    s = comm.allToAll(buf.data(), buf.data() + 3, 4, DataType::kFloat32);
    EXPECT_TRUE(mentions(s, "overlap")) << s.toString();
    // reduce off the root needs no receive buffer.
    s = comm.reduce(buf.data(), comm.rank() == 0 ? buf.data() + 8 : nullptr, 8, DataType::kFloat32,
                    ReduceOp::kSum, 0);
    EXPECT_TRUE(s.ok()) << s.toString();

    // A send to self needs a matching receive from self in the same group.
    s = comm.send(buf.data(), 4, DataType::kFloat32, comm.rank());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(mentions(s, "matching recv from self")) << s.toString();
    ASSERT_TRUE(comm.groupStart().ok());
    ASSERT_TRUE(comm.send(buf.data(), 4, DataType::kFloat32, comm.rank()).ok());
    ASSERT_TRUE(comm.recv(buf.data() + 8, 5, DataType::kFloat32, comm.rank()).ok());
    s = comm.groupEnd();
    EXPECT_TRUE(mentions(s, "matching recv from self has 20")) << s.toString();
    s = comm.send(buf.data(), 4, DataType::kFloat32, 7);
    EXPECT_TRUE(mentions(s, "peer is outside [0, 3)")) << s.toString();
    s = comm.groupEnd();
    EXPECT_TRUE(mentions(s, "without groupStart")) << s.toString();

    // Forcing an algorithm the collective does not have says which exist.
    CollectiveRequest req;
    req.kind = CollectiveKind::kAllReduce;
    req.count = 4;
    req.send = req.recv = buf.data();
    s = comm.impl()->run(req, "pairwise");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(mentions(s, "known: ring, rhd, tree")) << s.toString();
    // The communicator still works.
    float one = 1, sum = 0;
    ASSERT_TRUE(comm.allReduce(&one, &sum, 1, DataType::kFloat32, ReduceOp::kSum).ok());
    EXPECT_EQ(sum, 3.0f);
  }));
}

TEST(CollectiveErrors, MismatchedCountsFailWithinTheTimeout) {
  ASSERT_TRUE(runWorld(
      3,
      [](Communicator& comm) {
        std::vector<float> in(4096, 1.0f), out(3 * 4096);
        const size_t count = comm.rank() == 1 ? 300 : 100;
        auto t0 = std::chrono::steady_clock::now();
        Status s = comm.allGather(in.data(), out.data(), count, DataType::kFloat32);
        EXPECT_FALSE(s.ok());
        EXPECT_NE(s.code(), StatusCode::kInternal) << s.toString();
        EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
      },
      shortTimeout()));
}

// The same for the all-reduce on each of its single-node algorithms: rank 1 passes three times
// the others' count. Every rank returns an error (the counts named, or the rank it waited for)
// within the timeout; none returns OK with wrong values.
TEST(CollectiveErrors, MismatchedAllReduceCountsFailOnEveryAlgorithm) {
  for (const char* algo : {"shm", "ring", "rhd", "tree"}) {
    WorldOptions o = shortTimeout();
    o.env["PLEXUS_ALGO"] = std::string("allreduce:") + algo;
    ASSERT_TRUE(runWorld(
        3,
        [algo](Communicator& comm) {
          const size_t count = comm.rank() == 1 ? 3000 : 1000;
          std::vector<float> in(3000, 1.0f), out(3000);
          auto t0 = std::chrono::steady_clock::now();
          Status s =
              comm.allReduce(in.data(), out.data(), count, DataType::kFloat32, ReduceOp::kSum);
          EXPECT_FALSE(s.ok()) << algo << " on rank " << comm.rank();
          EXPECT_NE(s.code(), StatusCode::kInternal) << s.toString();
          EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15)) << algo;
        },
        o))
        << algo;
  }
}

TEST(CollectiveErrors, ASkippedSplitIsAnErrorNotAHang) {
  ASSERT_TRUE(runWorld(
      3,
      [](Communicator& comm) {
        if (comm.rank() == 1) return;  // never calls split
        auto child = comm.split(0, comm.rank());
        ASSERT_FALSE(child.ok());
        EXPECT_EQ(child.status().code(), StatusCode::kDeadlineExceeded)
            << child.status().toString();
        EXPECT_TRUE(mentions(child.status(), "rank 1 did not join")) << child.status().toString();
      },
      shortTimeout()));
}

TEST(CollectiveErrors, MalformedAlgoOverrideFailsCreation) {
  WorldOptions o = shortTimeout();
  o.env["PLEXUS_ALGO"] = "allreduce:0-64k:rhd;64k-xx:ring";
  ASSERT_TRUE(runRanks(
      1,
      [](int, const UniqueId& id) {
        auto c = Communicator::create(id, 0, 1);
        ASSERT_FALSE(c.ok());
        EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
        EXPECT_TRUE(mentions(c.status(), "'64k-xx' is not a size range")) << c.status().toString();
      },
      o));
}

TEST(CollectiveErrors, AlgoOverrideSteersTheChoice) {
  WorldOptions o;
  o.env["PLEXUS_ALGO"] = "allreduce:0-64k:rhd;64k-inf:ring;broadcast:tree";
  ASSERT_TRUE(runWorld(
      2,
      [](Communicator& comm) {
        CollectiveRequest req;
        req.count = 1000;
        auto pick = [&](CollectiveKind kind, size_t count) {
          req.kind = kind;
          req.count = count;
          auto a = comm.impl()->selector().select(req, "");
          return a.ok() ? std::string((*a)->name()) : a.status().toString();
        };
        EXPECT_EQ(pick(CollectiveKind::kAllReduce, 1000), "rhd");
        EXPECT_EQ(pick(CollectiveKind::kAllReduce, 16 * 1024), "ring");  // 64k bytes
        EXPECT_EQ(pick(CollectiveKind::kBroadcast, 1 << 24), "tree");
        std::vector<float> a(20000, 1.0f);
        ASSERT_TRUE(
            comm.allReduce(a.data(), a.data(), a.size(), DataType::kFloat32, ReduceOp::kSum).ok());
        EXPECT_EQ(a[0], 2.0f);
      },
      o));
}

// The selector over stand-in algorithms: one that refuses every request is never chosen,
// and forcing it reports its reason.
class FakeAlgorithm final : public Algorithm {
 public:
  FakeAlgorithm(const char* name, bool refuses, double us, double usPerByte = 0,
                bool refusesCuda = false)
      : name_(name), refuses_(refuses), us_(us), usPerByte_(usPerByte), refusesCuda_(refusesCuda) {}
  const char* name() const override { return name_; }
  const char* description() const override { return "test stand-in"; }
  CollectiveKind collective() const override { return CollectiveKind::kAllReduce; }
  Status supports(const CollectiveRequest& req, int) const override {
    if (refusesCuda_ && req.memory == MemoryKind::kCuda) return unimplemented("fake: host only");
    return refuses_ ? unimplemented("fake cannot run this") : okStatus();
  }
  double estimateUs(const CollectiveRequest& req, int, const CostModel&) const override {
    return us_ + usPerByte_ * static_cast<double>(req.bytes());
  }
  Status run(const CollectiveRequest&, CollectiveContext&) override { return okStatus(); }

 private:
  const char* name_;
  bool refuses_;
  double us_;
  double usPerByte_;
  bool refusesCuda_;
};

TEST(Selector, NeverPicksAnAlgorithmThatCannotRunTheRequest) {
  std::vector<std::unique_ptr<Algorithm>> algos;
  algos.push_back(std::make_unique<FakeAlgorithm>("cheap", true, 1.0));
  algos.push_back(std::make_unique<FakeAlgorithm>("dear", false, 9.0));
  internal::Selector selector(&algos, {}, internal::defaultCostModel(), 4);
  CollectiveRequest req;
  auto chosen = selector.select(req, "");
  ASSERT_TRUE(chosen.ok());
  EXPECT_STREQ((*chosen)->name(), "dear");
  auto forced = selector.select(req, "cheap");
  ASSERT_FALSE(forced.ok());
  EXPECT_TRUE(mentions(forced.status(), "fake cannot run this")) << forced.status().toString();
}

// The selector remembers the cost model's choices per (collective, memory, bytes); a
// remembered choice must be the one it would compute afresh, for every size, including sizes
// that share a slot of its table and requests that differ only in memory kind.
TEST(Selector, RemembersTheSameChoiceItWouldCompute) {
  std::vector<std::unique_ptr<Algorithm>> algos;
  algos.push_back(std::make_unique<FakeAlgorithm>("linear", false, 0.0, 1.0));  // us = bytes
  algos.push_back(std::make_unique<FakeAlgorithm>("flat", false, 4000.0, 0.0, true));
  internal::Selector selector(&algos, {}, internal::defaultCostModel(), 4);
  CollectiveRequest req;
  req.type = DataType::kUInt8;
  for (int pass = 0; pass < 3; ++pass) {  // pass 0 computes, passes 1-2 may remember
    for (size_t bytes = 0; bytes < 8000; bytes += 13) {
      req.count = bytes;
      req.memory = MemoryKind::kHost;
      auto chosen = selector.select(req, "");
      ASSERT_TRUE(chosen.ok());
      EXPECT_STREQ((*chosen)->name(), bytes < 4000 ? "linear" : "flat") << bytes << " " << pass;
      req.memory = MemoryKind::kCuda;  // "flat" cannot run it: never the host's choice
      chosen = selector.select(req, "");
      ASSERT_TRUE(chosen.ok());
      EXPECT_STREQ((*chosen)->name(), "linear") << bytes << " " << pass;
    }
  }
  // The real algorithms: remembered choices equal a fresh selector's at every size (shm
  // competes with a stand-in region: choosing never touches it).
  char region[64];
  SharedRegion shared{region, sizeof(region)};
  auto builtin = builtinAlgorithms(nullptr, &shared);
  internal::Selector warm(&builtin, {}, internal::defaultCostModel(), 4);
  req = CollectiveRequest();
  for (int pass = 0; pass < 3; ++pass) {  // fill, remember, forget and fill again
    for (size_t count = 1; count <= (size_t{1} << 24); count = count * 3 / 2 + 1) {
      req.count = count;
      internal::Selector cold(&builtin, {}, internal::defaultCostModel(), 4);
      auto expected = cold.select(req, "");
      auto got = warm.select(req, "");
      ASSERT_TRUE(expected.ok() && got.ok());
      EXPECT_EQ(*expected, *got) << count;
    }
    if (pass == 1) warm.forgetChoices();
  }
}

TEST(Selector, ParsesTheOverrideSyntax) {
  auto algos = builtinAlgorithms(nullptr, nullptr);
  auto rules = internal::parseAlgoRules("allreduce:0-64k:rhd;64k-1M:tree;1m-inf:ring#", algos);
  EXPECT_FALSE(rules.ok());  // '#' is not part of an algorithm name
  rules = internal::parseAlgoRules("allreduce:0-64k:rhd;64k-1M:tree;allgather:ring;ring", algos);
  ASSERT_TRUE(rules.ok()) << rules.status().toString();
  ASSERT_EQ(rules->size(), 4u);
  EXPECT_EQ((*rules)[0].hi, 64u * 1024);
  EXPECT_EQ((*rules)[1].kind, CollectiveKind::kAllReduce);
  EXPECT_EQ((*rules)[1].hi, 1u << 20);
  EXPECT_EQ((*rules)[2].kind, CollectiveKind::kAllGather);
  EXPECT_TRUE((*rules)[3].anyCollective);
  for (const char* bad : {"0-64k:rhd", "allreduce:64k-0:rhd", "allreduce:0-64k:nope",
                          "bogus:0-1k:ring", "a:b:c:d", "allreduce:0-64k:pairwise"}) {
    EXPECT_FALSE(internal::parseAlgoRules(bad, algos).ok()) << bad;
  }
}

}  // namespace
}  // namespace plexus
