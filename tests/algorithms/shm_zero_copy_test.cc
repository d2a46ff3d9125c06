// The shm collectives' zero-copy path (algorithms/shm_zero_copy.h) and the memory it runs on
// (plexus::memAlloc, src/host_memory.h): bad input to the allocator, what a peer can and cannot
// map, and, with every rank's buffers in memAlloc memory, all-reduce results bitwise those of
// the slot path for every rank count, type and op here, out of place and in place, in the cache
// and past it (where the slot path streams its output); the same for the reduce-scatter and the
// all-gather, which need only the inputs shared; a rank on heap memory, or one that cannot map
// the others' memory, sends every rank through the slots. Whether the path ran is read from
// /proc/self/maps: it maps the peers' memory, the slots do not.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "plexus/plexus.h"
#include "src/host_memory.h"
#include "src/reduce_cpu.h"
#include "src/topology.h"
#include "tests/harness/world.h"

namespace plexus {
namespace {

using testing::runWorld;
using testing::WorldOptions;

// Mappings of memAlloc memory in this process (/proc/self/maps names them "memfd:plexus-mem"):
// its own allocations and the peers' it has mapped.
int plexusMemMappings() {
  std::ifstream maps("/proc/self/maps");
  int count = 0;
  for (std::string line; std::getline(maps, line);) {
    count += line.find("/memfd:plexus-mem") != std::string::npos;
  }
  return count;
}

TEST(HostMemory, AllocatesZeroedPagesAndRefusesBadInput) {
  void* p = reinterpret_cast<void*>(1);
  EXPECT_EQ(memAlloc(0, &p).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(memAlloc(16, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(memAlloc(SIZE_MAX, &p).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(memAlloc(10000, &p).ok());
  const auto* bytes = static_cast<const uint8_t*>(p);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 4096, 0u);
  for (size_t i = 0; i < 10000; ++i) ASSERT_EQ(bytes[i], 0) << i;
  std::memset(p, 7, 10000);
  const SharedBufferRef inside = findSharedBuffer(bytes + 100, 9000);
  EXPECT_GE(inside.fd, 0);
  EXPECT_EQ(inside.offset, 100u);
  EXPECT_EQ(findSharedBuffer(bytes + 100, 100000).fd, -1);  // past the allocation's end
  std::vector<uint8_t> heap(64);
  EXPECT_EQ(findSharedBuffer(heap.data(), heap.size()).fd, -1);
  EXPECT_EQ(memFree(heap.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(memFree(const_cast<uint8_t*>(bytes) + 4096).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(plexusMemMappings(), 1);
  EXPECT_TRUE(memFree(p).ok());
  EXPECT_EQ(plexusMemMappings(), 0);
  EXPECT_EQ(memFree(p).code(), StatusCode::kInvalidArgument);  // freed already
  EXPECT_TRUE(memFree(nullptr).ok());
}

TEST(HostMemory, PeerMappingsMapWhatTheRefNamesAndNothingElse) {
  void* p = nullptr;
  ASSERT_TRUE(memAlloc(8192, &p).ok());
  std::memset(p, 0x5a, 8192);
  const SharedBufferRef ref = findSharedBuffer(static_cast<uint8_t*>(p) + 4096, 4096);
  ASSERT_GE(ref.fd, 0);
  {
    PeerMappings peers;
    uint8_t* view = peers.map(::getpid(), ref, 4096);
    ASSERT_NE(view, nullptr);
    EXPECT_NE(view, static_cast<uint8_t*>(p) + 4096);  // a second view of the same pages
    view[0] = 0x11;
    EXPECT_EQ(static_cast<uint8_t*>(p)[4096], 0x11);
    EXPECT_EQ(peers.map(::getpid(), ref, 4096), view);     // kept, not mapped again
    EXPECT_EQ(peers.map(::getpid(), ref, 4097), nullptr);  // past the end
    SharedBufferRef other = ref;
    other.inode += 1;  // the fd no longer that memory
    EXPECT_EQ(peers.map(::getpid(), other, 1), nullptr);
    EXPECT_EQ(peers.map(::getpid(), SharedBufferRef{}, 1), nullptr);
    EXPECT_EQ(peers.map(0x7ffffff0, ref, 1), nullptr);  // no such process
    EXPECT_EQ(plexusMemMappings(), 2);
  }
  EXPECT_EQ(plexusMemMappings(), 1);  // the mappings went with PeerMappings
  EXPECT_TRUE(memFree(p).ok());
}

// Deterministic inputs of every kind the cases use, different per rank.
void fillInput(DataType type, void* buf, size_t count, int rank) {
  for (size_t i = 0; i < count; ++i) {
    const float f = static_cast<float>((rank + 1) * static_cast<int>(i % 97)) * 0.37f - 11.0f;
    switch (type) {
      case DataType::kFloat32:
        static_cast<float*>(buf)[i] = f;
        break;
      case DataType::kFloat64:
        static_cast<double*>(buf)[i] = f * 1.0001;
        break;
      case DataType::kBFloat16:
        static_cast<uint16_t*>(buf)[i] = floatToBfloat16(f);
        break;
      case DataType::kInt8:
        static_cast<int8_t*>(buf)[i] =
            static_cast<int8_t>((i * 7 + static_cast<size_t>(rank)) % 251);
        break;
      default:
        FAIL() << "no input for " << dataTypeName(type);
    }
  }
}

struct Case {
  DataType type;
  ReduceOp op;
};

// memAlloc memory, freed at the end of the scope.
struct Shared {
  void* p = nullptr;
  explicit Shared(size_t bytes) { EXPECT_TRUE(memAlloc(bytes, &p).ok()); }
  ~Shared() { EXPECT_TRUE(memFree(p).ok()); }
  uint8_t* data() const { return static_cast<uint8_t*>(p); }
};

class ShmZeroCopy : public ::testing::TestWithParam<int> {};

TEST_P(ShmZeroCopy, AllReducesAreBitwiseTheSlotPathsOutOfPlaceAndInPlace) {
  WorldOptions o;
  o.env["PLEXUS_ALGO"] = "allreduce:shm";
  const int n = GetParam();
  ASSERT_TRUE(runWorld(
      n,
      [n](Communicator& comm) {
        const int me = comm.rank();
        // From the threshold (16 KiB of f32) through a prime count to past the last-level cache
        // (where the heap call streams its output), an odd count of one-byte elements among
        // them.
        const size_t past = lastLevelCacheBytes() / (2 * static_cast<size_t>(n)) / 4 + 777;
        bool first = true;
        for (size_t count : {size_t{4096}, size_t{100003}, past}) {
          for (Case c :
               {Case{DataType::kFloat32, ReduceOp::kSum}, Case{DataType::kFloat64, ReduceOp::kAvg},
                Case{DataType::kBFloat16, ReduceOp::kSum}, Case{DataType::kInt8, ReduceOp::kMax}}) {
            const size_t bytes = count * dataTypeSize(c.type);
            SCOPED_TRACE(std::string(dataTypeName(c.type)) + " " + reduceOpName(c.op) + ", " +
                         std::to_string(count) + " elements");
            std::vector<uint8_t> heapIn(bytes), heapOut(bytes);
            fillInput(c.type, heapIn.data(), count, me);
            ASSERT_TRUE(comm.allReduce(heapIn.data(), heapOut.data(), count, c.type, c.op).ok());
            Shared in(bytes), out(bytes);
            fillInput(c.type, in.data(), count, me);
            ASSERT_TRUE(comm.allReduce(in.data(), out.data(), count, c.type, c.op).ok());
            if (first) {  // its own two buffers and each peer's two, mapped by the zero-copy path
              EXPECT_EQ(plexusMemMappings(), 2 + 2 * (n - 1));
              first = false;
            }
            ASSERT_EQ(std::memcmp(out.data(), heapOut.data(), bytes), 0) << "out of place";
            ASSERT_TRUE(comm.allReduce(in.data(), in.data(), count, c.type, c.op).ok());
            ASSERT_EQ(std::memcmp(in.data(), heapOut.data(), bytes), 0) << "in place";
          }
        }
      },
      o));
}

// The reduce-scatter and the all-gather read only the others' inputs: with every input in
// memAlloc memory they go zero-copy whether the output lies there or on the heap, and give
// bitwise what the slots give (heap buffers), out of place and in place (NCCL's layout: the
// reduce-scatter's output is block r of its input, the all-gather's input block r of its output).
TEST_P(ShmZeroCopy, ReduceScattersAndAllGathersAreBitwiseTheSlotPaths) {
  WorldOptions o;
  o.env["PLEXUS_ALGO"] = "reducescatter:shm;allgather:shm";
  const int n = GetParam();
  ASSERT_TRUE(runWorld(
      n,
      [n](Communicator& comm) {
        const int me = comm.rank();
        const auto ranks = static_cast<size_t>(n);
        int maps = 0;  // what this rank has mapped so far: its own buffers, and peers' inputs
        // From just past the threshold (16 KiB in the longer buffer; in f32 and f64 only, the
        // narrower types stay below it there and take the slots) to past the last-level cache.
        const size_t past = lastLevelCacheBytes() / (2 * ranks * ranks) / 4 + 777;
        for (size_t count : {4096 / ranks + 1, size_t{100003}, past}) {
          for (Case c :
               {Case{DataType::kFloat32, ReduceOp::kSum}, Case{DataType::kFloat64, ReduceOp::kAvg},
                Case{DataType::kBFloat16, ReduceOp::kSum}, Case{DataType::kInt8, ReduceOp::kMax}}) {
            const size_t bytes = count * dataTypeSize(c.type), all = ranks * bytes;
            SCOPED_TRACE(std::string(dataTypeName(c.type)) + " " + reduceOpName(c.op) + ", " +
                         std::to_string(count) + " elements a block");
            // The slots' results, from heap buffers.
            std::vector<uint8_t> heapIn(all), wantRs(bytes), wantAg(all);
            fillInput(c.type, heapIn.data(), ranks * count, me);
            ASSERT_TRUE(comm.reduceScatter(heapIn.data(), wantRs.data(), count, c.type, c.op).ok());
            ASSERT_TRUE(comm.allGather(heapIn.data(), wantAg.data(), count, c.type).ok());
            Shared in(all), out(all);
            std::vector<uint8_t> heapOut(all);
            for (uint8_t* dst : {out.data(), heapOut.data()}) {
              fillInput(c.type, in.data(), ranks * count, me);
              std::memset(dst, 0xEE, all);
              ASSERT_TRUE(comm.reduceScatter(in.data(), dst, count, c.type, c.op).ok());
              ASSERT_EQ(std::memcmp(dst, wantRs.data(), bytes), 0) << "reduce-scatter";
              ASSERT_TRUE(comm.allGather(in.data(), dst, count, c.type).ok());
              ASSERT_EQ(std::memcmp(dst, wantAg.data(), all), 0) << "all-gather";
            }
            // In place: the reduce-scatter writes block `me` of its input, the all-gather
            // reads it from there.
            uint8_t* mine = in.data() + static_cast<size_t>(me) * bytes;
            ASSERT_TRUE(comm.reduceScatter(in.data(), mine, count, c.type, c.op).ok());
            ASSERT_EQ(std::memcmp(mine, wantRs.data(), bytes), 0) << "reduce-scatter in place";
            std::memcpy(mine, heapIn.data(), bytes);  // what the out-of-place calls gathered
            ASSERT_TRUE(comm.allGather(mine, in.data(), count, c.type).ok());
            ASSERT_EQ(std::memcmp(in.data(), wantAg.data(), all), 0) << "all-gather in place";
            if (maps == 0) {  // its own two buffers and each peer's input, mapped by zero copy
              maps = plexusMemMappings();
              EXPECT_EQ(maps, 2 + (n - 1));
            }
          }
        }
      },
      o));
}

// One rank's input on the heap: every rank takes the slots, maps nothing of the others', and
// gets the right results.
TEST(ShmZeroCopy, OneRanksInputOnTheHeapSendsTheGatherAndScatterThroughTheSlots) {
  WorldOptions o;
  o.env["PLEXUS_ALGO"] = "reducescatter:shm;allgather:shm";
  ASSERT_TRUE(runWorld(
      3,
      [](Communicator& comm) {
        const int me = comm.rank();
        const size_t count = 20000, bytes = count * sizeof(int32_t);
        Shared in(3 * bytes), out(3 * bytes);
        std::vector<int32_t> heap(3 * count);
        auto* src = me == 1 ? heap.data() : reinterpret_cast<int32_t*>(in.data());
        for (size_t i = 0; i < 3 * count; ++i) src[i] = static_cast<int32_t>(i) * (me + 1);
        ASSERT_TRUE(
            comm.reduceScatter(src, out.data(), count, DataType::kInt32, ReduceOp::kSum).ok());
        const auto* got = reinterpret_cast<const int32_t*>(out.data());
        for (size_t i = 0; i < count; ++i) {
          ASSERT_EQ(got[i], static_cast<int32_t>(me * count + i) * 6) << "reduce-scatter " << i;
        }
        ASSERT_TRUE(comm.allGather(src, out.data(), count, DataType::kInt32).ok());
        for (size_t i = 0; i < 3 * count; ++i) {
          ASSERT_EQ(got[i], static_cast<int32_t>(i % count) * static_cast<int32_t>(i / count + 1))
              << "all-gather " << i;
        }
        EXPECT_EQ(plexusMemMappings(), 2);  // its own only
      },
      o));
}

INSTANTIATE_TEST_SUITE_P(Ranks, ShmZeroCopy, ::testing::Values(2, 3, 4),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

// Fills `src` with i·(rank + 1 + shift), all-reduces it (i32 sum, 3 ranks) into `out` and
// checks every element of the result: i·(6 + 3·shift).
::testing::AssertionResult sumsOnThreeRanks(Communicator& comm, int32_t* src, void* out,
                                            size_t count, int shift = 0) {
  for (size_t i = 0; i < count; ++i) src[i] = static_cast<int32_t>(i) * (comm.rank() + 1 + shift);
  Status s = comm.allReduce(src, out, count, DataType::kInt32, ReduceOp::kSum);
  if (!s.ok()) return ::testing::AssertionFailure() << s.toString();
  const auto* got = static_cast<const int32_t*>(out);
  for (size_t i = 0; i < count; ++i) {
    const auto want = static_cast<int32_t>(i) * (6 + 3 * shift);
    if (got[i] != want) {
      return ::testing::AssertionFailure() << "element " << i << ": " << got[i] << ", not " << want;
    }
  }
  return ::testing::AssertionSuccess();
}

// One rank on heap memory: every rank takes the slots (the ranks on memAlloc memory left their
// part of the first piece out, so all start again on the slots), no rank maps another's memory,
// the results are right, in the cache and past it (streamingSplit's first piece); the next
// call, all on memAlloc memory, goes zero-copy.
TEST(ShmZeroCopy, OneRankOnHeapMemorySendsEveryRankThroughTheSlots) {
  WorldOptions o;
  o.env["PLEXUS_ALGO"] = "allreduce:shm";
  ASSERT_TRUE(runWorld(
      3,
      [](Communicator& comm) {
        const int me = comm.rank();
        const size_t past = lastLevelCacheBytes() / (2 * 3) / sizeof(int32_t) + 99;
        for (size_t count : {size_t{50000}, past}) {
          SCOPED_TRACE(std::to_string(count) + " elements");
          Shared in(count * sizeof(int32_t)), out(count * sizeof(int32_t));
          std::vector<int32_t> heap(count);
          auto* src = me == 0 ? heap.data() : reinterpret_cast<int32_t*>(in.data());
          ASSERT_TRUE(sumsOnThreeRanks(comm, src, out.data(), count));
          EXPECT_EQ(plexusMemMappings(), 2);  // its own only
        }
      },
      o));
  ASSERT_TRUE(runWorld(
      3,
      [](Communicator& comm) {
        const size_t count = 50000;
        Shared in(count * sizeof(int32_t)), out(count * sizeof(int32_t));
        ASSERT_TRUE(
            sumsOnThreeRanks(comm, reinterpret_cast<int32_t*>(in.data()), out.data(), count));
        EXPECT_EQ(plexusMemMappings(), 2 + 2 * 2);
      },
      o));
}

// The hierarchical all-reduce's node phases are the shm reduce-scatter (from the user's input)
// and all-gather (in place in the user's output): on memAlloc buffers both go zero-copy. Two
// emulated nodes of two ranks (PLEXUS_NODE_ID), forced hier, a count that pipelines over
// several segments and leaves a tail; every element checked, out of place and in place.
TEST(ShmZeroCopy, TheHierarchicalAllReducesNodePhasesGoZeroCopy) {
  WorldOptions o;
  o.env["PLEXUS_ALGO"] = "allreduce:hier";
  ASSERT_TRUE(testing::runRanks(
      4,
      [](int rank, const UniqueId& id) {
        ::setenv("PLEXUS_NODE_ID", rank < 2 ? "node0" : "node1", 1);
        auto comm = Communicator::create(id, rank, 4);
        ASSERT_TRUE(comm.ok()) << comm.status().toString();
        const size_t count = (size_t{3} << 20) + 5, bytes = count * sizeof(int32_t);
        Shared in(bytes), out(bytes);
        auto* src = reinterpret_cast<int32_t*>(in.data());
        for (bool inPlace : {false, true}) {
          for (size_t i = 0; i < count; ++i) src[i] = static_cast<int32_t>(i % 1000) * (rank + 1);
          void* dst = inPlace ? in.data() : out.data();
          ASSERT_TRUE((*comm)->allReduce(src, dst, count, DataType::kInt32, ReduceOp::kSum).ok());
          const auto* got = static_cast<const int32_t*>(dst);
          for (size_t i = 0; i < count; ++i) {
            ASSERT_EQ(got[i], static_cast<int32_t>(i % 1000) * 10)
                << "element " << i << (inPlace ? " in place" : " out of place");
          }
        }
        // Its own two buffers and the node peer's two (its input for the reduce-scatter, its
        // output for the all-gather).
        EXPECT_EQ(plexusMemMappings(), 4);
      },
      o));
}

// A rank that cannot map the others' memory (here: it gave up root, so /proc/PID/fd of the
// root-owned ranks is closed to it) says so in the mapping round, and every rank takes the slots:
// right results, that rank maps nothing of theirs, call after call. Needs root to give up.
TEST(ShmZeroCopy, ARankThatCannotMapTheOthersSendsEveryRankThroughTheSlots) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: a rank must give up its privileges";
  WorldOptions o;
  o.env["PLEXUS_ALGO"] = "allreduce:shm";
  ASSERT_TRUE(runWorld(
      3,
      [](Communicator& comm) {
        const int me = comm.rank();
        if (me == 1) {
          ASSERT_EQ(::setresuid(65534, 65534, 65534), 0);  // nobody
        }
        const size_t count = 50000;
        Shared in(count * sizeof(int32_t)), out(count * sizeof(int32_t));
        auto* src = reinterpret_cast<int32_t*>(in.data());
        for (int call = 0; call < 3; ++call) {
          SCOPED_TRACE("call " + std::to_string(call));
          ASSERT_TRUE(sumsOnThreeRanks(comm, src, out.data(), count, call));
          if (me == 1) {
            EXPECT_EQ(plexusMemMappings(), 2);  // its own only
          }
        }
      },
      o));
}

}  // namespace
}  // namespace plexus
