#include "bench/perf/perf_values.h"

#include <cmath>
#include <cstring>

#include "src/reduce_cpu.h"

namespace plexus::perf {

double inputValue(ReduceOp op, int rank, size_t i) {
  switch (op) {
    case ReduceOp::kProd:
      return 1.0 + static_cast<double>((rank + i) % 2);  // 1 or 2
    case ReduceOp::kMin:
    case ReduceOp::kMax:
      return static_cast<double>((rank * 5 + i) % 11);
    default:
      return static_cast<double>((rank + 3 * i) % 7);  // sum, avg
  }
}

double expectedValue(ReduceOp op, int ranks, size_t i, DataType type) {
  double acc = inputValue(op, 0, i);
  for (int r = 1; r < ranks; ++r) {
    double v = inputValue(op, r, i);
    switch (op) {
      case ReduceOp::kProd:
        acc *= v;
        break;
      case ReduceOp::kMin:
        acc = std::fmin(acc, v);
        break;
      case ReduceOp::kMax:
        acc = std::fmax(acc, v);
        break;
      default:
        acc += v;
        break;
    }
  }
  if (op == ReduceOp::kAvg) {
    switch (type) {
      case DataType::kFloat64:
        return acc / ranks;
      case DataType::kFloat32:
      case DataType::kFloat16:
      case DataType::kBFloat16:
        return static_cast<float>(acc) / static_cast<float>(ranks);
      default:
        return std::trunc(acc / ranks);
    }
  }
  return acc;
}

void storeValue(DataType type, void* buf, size_t i, double v) {
  switch (type) {
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
    // Integers wrap, as the library's integer arithmetic does.
    case DataType::kInt8:
      static_cast<int8_t*>(buf)[i] = static_cast<int8_t>(static_cast<int64_t>(v));
      break;
    case DataType::kUInt8:
      static_cast<uint8_t*>(buf)[i] = static_cast<uint8_t>(static_cast<int64_t>(v));
      break;
    case DataType::kInt32:
      static_cast<int32_t*>(buf)[i] = static_cast<int32_t>(static_cast<int64_t>(v));
      break;
    case DataType::kInt64:
      static_cast<int64_t*>(buf)[i] = static_cast<int64_t>(v);
      break;
  }
}

bool matchesValue(DataType type, const void* buf, size_t i, double v) {
  uint64_t want = 0, got = 0;
  size_t size = dataTypeSize(type);
  storeValue(type, &want, 0, v);
  std::memcpy(&got, static_cast<const uint8_t*>(buf) + i * size, size);
  return want == got;
}

}  // namespace plexus::perf
