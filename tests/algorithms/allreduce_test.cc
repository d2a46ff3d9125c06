// All-reduce against a reference the test computes itself: every world size × count × type ×
// op, in place and out of place. Inputs are small integers (and products of ±1 and 2), so every
// result is exact in every type and is compared bit for bit, whatever order ranks combine in.
#include <gtest/gtest.h>
#include <malloc.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "plexus/plexus.h"
#include "src/reduce_cpu.h"
#include "tests/algorithms/reference.h"
#include "tests/harness/world.h"

namespace plexus {
namespace {

using testing::checkAllReduce;
using testing::runWorld;

class AllReduceWorld : public ::testing::TestWithParam<int> {};

TEST_P(AllReduceWorld, EveryCountTypeOpAndPlacement) {
  const int n = GetParam();
  ASSERT_TRUE(runWorld(n, [](Communicator& comm) {
    for (size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}, size_t{1} << 20 | 3}) {
      for (int t = 0; t < kNumDataTypes; ++t) {
        for (int o = 0; o < kNumReduceOps; ++o) {
          for (bool inPlace : {false, true}) {
            auto type = static_cast<DataType>(t);
            auto op = static_cast<ReduceOp>(o);
            int64_t bad = checkAllReduce(comm, count, type, op, inPlace);
            ASSERT_EQ(bad, -1) << "count " << count << " " << dataTypeName(type) << " "
                               << reduceOpName(op) << (inPlace ? " in-place" : " out-of-place")
                               << ": first wrong element " << bad;
          }
        }
      }
    }
  }));
}

// rhd between its whole-buffer path (16 KiB) and 64 KiB fuses its last halving and first
// doubling steps: every type and op there, counts of each type's element just past 24 and 48 KiB.
TEST_P(AllReduceWorld, RhdFusedLastLevelEveryTypeOpAndPlacement) {
  testing::WorldOptions o;
  o.env["PLEXUS_ALGO"] = "allreduce:rhd";
  ASSERT_TRUE(runWorld(
      GetParam(),
      [](Communicator& comm) {
        for (int t = 0; t < kNumDataTypes; ++t) {
          auto type = static_cast<DataType>(t);
          for (size_t kib : {24, 48}) {
            for (int o = 0; o < kNumReduceOps; ++o) {
              const size_t count = kib * 1024 / dataTypeSize(type) + 3;
              for (bool inPlace : {false, true}) {
                auto op = static_cast<ReduceOp>(o);
                int64_t bad = checkAllReduce(comm, count, type, op, inPlace);
                ASSERT_EQ(bad, -1)
                    << "count " << count << " " << dataTypeName(type) << " " << reduceOpName(op)
                    << (inPlace ? " in-place" : " out-of-place") << ": first wrong element " << bad;
              }
            }
          }
        }
      },
      o));
}

// The ring's in-place staging slots and the tree's receive slots hold the longest piece of the
// call, not a whole pipeline chunk: with PLEXUS_CHUNK_BYTES=1G (accepted) a 4 KiB all-reduce
// once took 1 GiB of zeroed scratch per rank, by the ring in place and by the tree alike.
TEST(AllReduceScratch, StagingSlotsHoldThePieceNotTheChunk) {
  for (const char* algo : {"ring", "tree"}) {
    testing::WorldOptions o;
    o.env["PLEXUS_ALGO"] = std::string("allreduce:") + algo;
    o.env["PLEXUS_CHUNK_BYTES"] = "1G";
    ASSERT_TRUE(testing::runWorld(
        3,
        [algo](Communicator& comm) {
          ASSERT_TRUE(comm.barrier().ok());
          const struct mallinfo2 before = ::mallinfo2();
          for (bool inPlace : {false, true}) {
            int64_t bad = checkAllReduce(comm, 1000, DataType::kFloat32, ReduceOp::kSum, inPlace);
            ASSERT_EQ(bad, -1) << algo << (inPlace ? " in place" : " out of place")
                               << ": first wrong element " << bad;
          }
          // mallinfo2 does not see a sanitizer's heap; the results are still checked there.
          if (testing::kUnderSanitizer) return;
          const struct mallinfo2 after = ::mallinfo2();
          const size_t was = before.uordblks + before.hblkhd, now = after.uordblks + after.hblkhd;
          // Far below the chunk, far above what the transports' lazily made connections and
          // pools take on the first calls (libfabric's: 17-34 MiB).
          EXPECT_LT(now > was ? now - was : 0, size_t{128} << 20)
              << algo << " on rank " << comm.rank() << ": heap in use " << was << " -> " << now;
        },
        o))
        << algo;
  }
}

// A tag keeps 16 bits of a piece's number (algorithms/context.cc), so with 1 KiB chunks the
// pieces of a 2-rank ring or tree past 128 MiB share tags with pieces 65536 before them. That is
// safe because equal tags match in the order posted and both ends post pieces in the same order;
// this holds the algorithms to it (pieces 0 and 65536 of a block, a tree's share, meet).
TEST(AllReduceTags, PiecesWhoseNumbersWrapTheTagStayApart) {
  // 2 x (64 MiB + 4 KiB) of f32: each ring block and each tree's share is 65540 pieces of 1 KiB.
  constexpr size_t kCount = 2 * ((size_t{64} << 20) + 4096) / sizeof(float);
  for (const char* algo : {"ring", "tree"}) {
    testing::WorldOptions o;
    o.env["PLEXUS_ALGO"] = std::string("allreduce:") + algo;
    o.env["PLEXUS_CHUNK_BYTES"] = "1k";
    ASSERT_TRUE(testing::runWorld(
        2,
        [algo](Communicator& comm) {
          int64_t bad = checkAllReduce(comm, kCount, DataType::kFloat32, ReduceOp::kSum, false);
          ASSERT_EQ(bad, -1) << algo << ": first wrong element " << bad;
        },
        o))
        << algo;
  }
}

INSTANTIATE_TEST_SUITE_P(WorldSizes, AllReduceWorld, ::testing::Values(1, 2, 3, 4, 7, 8),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

// Reproducibility of float results per algorithm: group_split_test.cc (Reproducible).

}  // namespace
}  // namespace plexus
