// Every collective × algorithm × world size × count × type × op, in place and out of place,
// against references the test computes itself (reference.h): results are compared bit for bit.
// Algorithms are forced by name, so each one is checked, not only the selector's choice. One
// world per size runs the whole matrix for that size.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "plexus/plexus.h"
#include "src/communicator_impl.h"
#include "tests/algorithms/reference.h"
#include "tests/harness/world.h"

namespace plexus {
namespace {

using testing::expected;
using testing::firstDifference;
using testing::input;
using testing::runWorld;
using testing::store;

constexpr uint8_t kGuard = 0x5A;
constexpr uint8_t kUntouched = 0xAB;

struct Case {
  CollectiveKind kind;
  std::string algorithm;
  size_t count;
  DataType type;
  ReduceOp op;
  bool inPlace;
  int root;
};

std::string describe(const Case& c) {
  return std::string(collectiveName(c.kind)) + "/" + c.algorithm + " count " +
         std::to_string(c.count) + " " + dataTypeName(c.type) + " " + reduceOpName(c.op) +
         (c.inPlace ? " in-place" : " out-of-place") + " root " + std::to_string(c.root);
}

// A byte buffer of `elems` elements plus a guard byte past the end.
struct Buffer {
  Buffer(size_t elems, size_t elem, uint8_t fill) : guardAt(elems * elem) {
    bytes.assign(guardAt + 1, fill);
    bytes[guardAt] = kGuard;
  }
  uint8_t* at(size_t elem, size_t i) { return bytes.data() + elem * i; }
  bool guardIntact() const { return bytes[guardAt] == kGuard; }
  size_t guardAt;
  std::vector<uint8_t> bytes;
};

// Element counts of the send and receive buffers, NCCL conventions.
void extents(const Case& c, int n, size_t* sendElems, size_t* recvElems) {
  const size_t all = c.count * n;
  *sendElems = *recvElems = c.count;
  if (c.kind == CollectiveKind::kAllGather) *recvElems = all;
  if (c.kind == CollectiveKind::kReduceScatter) *sendElems = all;
  if (c.kind == CollectiveKind::kAllToAll) *sendElems = *recvElems = all;
}

// What rank `r` puts at send element `i`, and what it must find at receive element `i`.
double sendValue(const Case& c, int r, int n, size_t i) {
  switch (c.kind) {
    case CollectiveKind::kAllToAll:
      return input(c.type, ReduceOp::kSum, r * 131 + static_cast<int>(i / c.count), i % c.count);
    case CollectiveKind::kBroadcast:
    case CollectiveKind::kAllGather:
      return input(c.type, ReduceOp::kSum, r, i);
    default:
      (void)n;
      return input(c.type, c.op, r, i);
  }
}
double recvValue(const Case& c, int r, int n, size_t i) {
  switch (c.kind) {
    case CollectiveKind::kBroadcast:
      return input(c.type, ReduceOp::kSum, c.root, i);
    case CollectiveKind::kAllGather:
      return input(c.type, ReduceOp::kSum, static_cast<int>(i / c.count), i % c.count);
    case CollectiveKind::kAllToAll:
      return input(c.type, ReduceOp::kSum, static_cast<int>(i / c.count) * 131 + r, i % c.count);
    case CollectiveKind::kReduceScatter:
      return expected(c.type, c.op, n, r * c.count + i);
    default:
      return expected(c.type, c.op, n, i);
  }
}

// Runs one case; returns an empty string on success, else what went wrong.
std::string runCase(Communicator& comm, const Case& c) {
  const int n = comm.size(), r = comm.rank();
  const size_t elem = dataTypeSize(c.type);
  size_t sendElems = 0, recvElems = 0;
  extents(c, n, &sendElems, &recvElems);
  Buffer send(sendElems, elem, 0), recv(recvElems, elem, kUntouched), want(recvElems, elem, 0);
  for (size_t i = 0; i < sendElems; ++i) store(c.type, send.at(elem, 0), i, sendValue(c, r, n, i));
  const bool receives = c.kind != CollectiveKind::kReduce || r == c.root;
  if (receives) {
    for (size_t i = 0; i < recvElems; ++i) {
      store(c.type, want.at(elem, 0), i, recvValue(c, r, n, i));
    }
  } else {
    want.bytes = recv.bytes;  // off the root, reduce must not touch recvbuf
  }

  CollectiveRequest req;
  req.kind = c.kind;
  req.type = c.type;
  req.op = c.op;
  req.count = c.count;
  req.root = c.root;
  req.send = send.at(elem, 0);
  req.recv = recv.at(elem, 0);
  uint8_t* result = recv.at(elem, 0);
  if (c.inPlace) {
    // Place the input where the in-place convention expects it.
    if (c.kind == CollectiveKind::kAllGather) {
      std::memcpy(recv.at(elem, r * c.count), send.at(elem, 0), c.count * elem);
      req.send = recv.at(elem, r * c.count);
    } else if (c.kind == CollectiveKind::kReduceScatter) {
      // The send buffer doubles as the receive buffer: block r of it.
      req.send = send.at(elem, 0);
      req.recv = result = send.at(elem, r * c.count);
    } else if (receives) {
      std::memcpy(recv.at(elem, 0), send.at(elem, 0), sendElems * elem);
      req.send = recv.at(elem, 0);
    }
  }
  if (c.kind == CollectiveKind::kBroadcast && r != c.root) req.send = nullptr;  // never read
  Status s = comm.impl()->run(req, c.algorithm);
  if (!s.ok()) return describe(c) + ": " + s.toString();
  if (!recv.guardIntact() || !send.guardIntact()) return describe(c) + ": wrote past the end";
  const int64_t bad = firstDifference(result, want.at(elem, 0), recvElems, c.type);
  if (c.kind == CollectiveKind::kReduceScatter && c.inPlace) {
    const int64_t badRs = firstDifference(result, want.at(elem, 0), c.count, c.type);
    return badRs < 0 ? "" : describe(c) + ": first wrong element " + std::to_string(badRs);
  }
  return bad < 0 ? "" : describe(c) + ": first wrong element " + std::to_string(bad);
}

bool reduces(CollectiveKind k) {
  return k == CollectiveKind::kAllReduce || k == CollectiveKind::kReduce ||
         k == CollectiveKind::kReduceScatter;
}

testing::WorldOptions longDeadline() {
  testing::WorldOptions o;
  o.deadline = std::chrono::seconds(280);
  return o;
}

class Collectives : public ::testing::TestWithParam<int> {};

TEST_P(Collectives, EveryAlgorithmCountTypeOpAndPlacement) {
  ASSERT_TRUE(runWorld(
      GetParam(),
      [](Communicator& comm) {
        const CollectiveKind kinds[] = {CollectiveKind::kAllReduce,     CollectiveKind::kBroadcast,
                                        CollectiveKind::kReduce,        CollectiveKind::kAllGather,
                                        CollectiveKind::kReduceScatter, CollectiveKind::kAllToAll};
        int cases = 0;
        for (CollectiveKind kind : kinds) {
          for (const auto& algo : comm.impl()->algorithms()) {
            if (algo->collective() != kind) continue;
            for (size_t count : {size_t{0}, size_t{1}, size_t{101}, size_t{100003}}) {
              for (int t = 0; t < kNumDataTypes; ++t) {
                for (int o = 0; o < (reduces(kind) ? kNumReduceOps : 1); ++o) {
                  for (bool inPlace : {false, true}) {
                    Case c{kind,
                           algo->name(),
                           count,
                           static_cast<DataType>(t),
                           static_cast<ReduceOp>(o),
                           inPlace,
                           static_cast<int>((count + t) % comm.size())};
                    std::string error = runCase(comm, c);
                    ASSERT_EQ(error, "");
                    ++cases;
                  }
                }
              }
            }
          }
        }
        EXPECT_GT(cases, 0);
      },
      longDeadline()));
}

INSTANTIATE_TEST_SUITE_P(WorldSizes, Collectives, ::testing::Values(1, 2, 3, 4, 5, 7, 8),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

}  // namespace
}  // namespace plexus
