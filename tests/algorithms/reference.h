// Reference values for the collective tests. Inputs are small integers (and products of ±1 and
// 2), so every reduction is exact in every type and results are compared bit for bit, whatever
// order ranks combine in.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "bench/perf/perf_values.h"
#include "plexus/communicator.h"
#include "plexus/types.h"
#include "src/reduce_cpu.h"

namespace plexus::testing {

inline bool isUnsigned(DataType t) { return t == DataType::kUInt8; }

/// The value `rank` contributes at element `i` for `op`.
inline double input(DataType t, ReduceOp op, int rank, size_t i) {
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

/// The exact reduction of input() over ranks [0, n) at element `i`, as the library computes it.
inline double expected(DataType t, ReduceOp op, int n, size_t i) {
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

/// Stores v as element i of a buffer of type t; integers wrap as two's complement (the same
/// conversion plexus-perf checks with).
inline void store(DataType t, void* buf, size_t i, double v) { perf::storeValue(t, buf, i, v); }

/// Index of the first of `count` elements where `got` and `want` differ bit for bit, or -1.
inline int64_t firstDifference(const void* got, const void* want, size_t count, DataType t) {
  const size_t elem = dataTypeSize(t);
  const auto* g = static_cast<const uint8_t*>(got);
  const auto* w = static_cast<const uint8_t*>(want);
  if (std::memcmp(g, w, count * elem) == 0) return -1;
  for (size_t i = 0; i < count; ++i) {
    if (std::memcmp(g + i * elem, w + i * elem, elem) != 0) return static_cast<int64_t>(i);
  }
  return -1;
}

/// Runs one all-reduce of input() values on `comm` and returns the index of the first element
/// that differs from expected(), `count` when it wrote past the end, or -1 when all are right.
inline int64_t checkAllReduce(Communicator& comm, size_t count, DataType t, ReduceOp op,
                              bool inPlace) {
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
  const int64_t bad = firstDifference(recv.data(), want.data(), count, t);
  return bad;
}

}  // namespace plexus::testing
