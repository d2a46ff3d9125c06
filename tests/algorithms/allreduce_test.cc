// All-reduce against a reference the test computes itself: every world size × count × type ×
// op, in place and out of place. Inputs are small integers (and products of ±1 and 2), so every
// result is exact in every type and is compared bit for bit, whatever order ranks combine in.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "plexus/plexus.h"
#include "src/reduce_cpu.h"
#include "tests/harness/world.h"

namespace plexus {
namespace {

using testing::runWorld;

bool isUnsigned(DataType t) { return t == DataType::kUInt8; }

double input(DataType t, ReduceOp op, int rank, size_t i) {
  const bool u = isUnsigned(t);
  switch (op) {
    case ReduceOp::kProd: {
      static const double kSigned[] = {1, 2, -1, 1, 2};
      return u ? 1 + (rank + i) % 2 : kSigned[(rank * 3 + i) % 5];
    }
    case ReduceOp::kMin:
    case ReduceOp::kMax:
      return static_cast<double>((rank * 17 + i * 5) % 23) - (u ? 0 : 11);
    default:
      return static_cast<double>((rank * 31 + i * 7) % 13) - (u ? 0 : 6);
  }
}

double expected(DataType t, ReduceOp op, int n, size_t i) {
  double acc = input(t, op, 0, i);
  for (int r = 1; r < n; ++r) {
    double v = input(t, op, r, i);
    if (op == ReduceOp::kProd)
      acc *= v;
    else if (op == ReduceOp::kMin)
      acc = std::min(acc, v);
    else if (op == ReduceOp::kMax)
      acc = std::max(acc, v);
    else
      acc += v;
  }
  if (op != ReduceOp::kAvg) return acc;
  if (t == DataType::kFloat64) return acc / n;
  if (t == DataType::kFloat32 || t == DataType::kFloat16 || t == DataType::kBFloat16) {
    return static_cast<float>(acc) / static_cast<float>(n);
  }
  return std::trunc(acc / n);
}

// Stores v as element i of a buffer of type t; integers wrap as two's complement.
void store(DataType t, void* buf, size_t i, double v) {
  auto asInt = static_cast<int64_t>(v);
  switch (t) {
    case DataType::kFloat32:
      static_cast<float*>(buf)[i] = static_cast<float>(v);
      break;
    case DataType::kFloat64:
      static_cast<double*>(buf)[i] = v;
      break;
    case DataType::kFloat16:
      static_cast<uint16_t*>(buf)[i] = floatToHalf(static_cast<float>(v));
      break;
    case DataType::kBFloat16:
      static_cast<uint16_t*>(buf)[i] = floatToBfloat16(static_cast<float>(v));
      break;
    case DataType::kInt8:
      static_cast<int8_t*>(buf)[i] = static_cast<int8_t>(asInt);
      break;
    case DataType::kUInt8:
      static_cast<uint8_t*>(buf)[i] = static_cast<uint8_t>(asInt);
      break;
    case DataType::kInt32:
      static_cast<int32_t*>(buf)[i] = static_cast<int32_t>(asInt);
      break;
    case DataType::kInt64:
      static_cast<int64_t*>(buf)[i] = asInt;
      break;
  }
}

// Runs one all-reduce and returns the index of the first wrong element, or -1.
int64_t checkOne(Communicator& comm, size_t count, DataType t, ReduceOp op, bool inPlace) {
  const size_t elem = dataTypeSize(t);
  const int n = comm.size();
  std::vector<uint8_t> send(count * elem + 1), recv(count * elem + 1, 0xAB), want(count * elem + 1);
  for (size_t i = 0; i < count; ++i) {
    store(t, send.data(), i, input(t, op, comm.rank(), i));
    store(t, want.data(), i, expected(t, op, n, i));
  }
  // A guard byte past the end catches writes beyond count.
  recv[count * elem] = send[count * elem] = 0x5A;
  if (inPlace) std::memcpy(recv.data(), send.data(), count * elem);
  Status s = comm.allReduce(inPlace ? recv.data() : send.data(), recv.data(), count, t, op);
  EXPECT_TRUE(s.ok()) << s.toString();
  if (recv[count * elem] != 0x5A) return static_cast<int64_t>(count);
  for (size_t i = 0; i < count; ++i) {
    if (std::memcmp(recv.data() + i * elem, want.data() + i * elem, elem) != 0) {
      return static_cast<int64_t>(i);
    }
  }
  return -1;
}

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
            int64_t bad = checkOne(comm, count, type, op, inPlace);
            ASSERT_EQ(bad, -1) << "count " << count << " " << dataTypeName(type) << " "
                               << reduceOpName(op) << (inPlace ? " in-place" : " out-of-place")
                               << ": first wrong element " << bad;
          }
        }
      }
    }
  }));
}

INSTANTIATE_TEST_SUITE_P(WorldSizes, AllReduceWorld, ::testing::Values(1, 2, 3, 4, 7, 8),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

// For a fixed algorithm and world size, the same float inputs give bitwise-identical results on
// every run and on every rank.
TEST(AllReduce, FloatResultsAreDeterministicAndIdenticalOnAllRanks) {
  ASSERT_TRUE(runWorld(4, [](Communicator& comm) {
    const size_t count = 300001;
    std::mt19937 gen(1234 + comm.rank());
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> in(count), a(count), b(count), all(count * 4);
    for (float& x : in) x = dist(gen);
    ASSERT_TRUE(
        comm.allReduce(in.data(), a.data(), count, DataType::kFloat32, ReduceOp::kSum).ok());
    ASSERT_TRUE(
        comm.allReduce(in.data(), b.data(), count, DataType::kFloat32, ReduceOp::kSum).ok());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), count * sizeof(float)), 0);
    // Every rank holds the same bits: reduce the bit patterns with max and min and compare.
    std::vector<int32_t> bits(count), hi(count), lo(count);
    std::memcpy(bits.data(), a.data(), count * sizeof(float));
    ASSERT_TRUE(
        comm.allReduce(bits.data(), hi.data(), count, DataType::kInt32, ReduceOp::kMax).ok());
    ASSERT_TRUE(
        comm.allReduce(bits.data(), lo.data(), count, DataType::kInt32, ReduceOp::kMin).ok());
    EXPECT_EQ(hi, lo);
  }));
}

}  // namespace
}  // namespace plexus
