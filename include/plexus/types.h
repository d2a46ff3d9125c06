// Element types, reduction operators and memory kinds understood by every collective.
#pragma once

#include <cstddef>
#include <cstdint>

#include "plexus/export.h"

namespace plexus {

/// Element type of a collective's buffers. Values are stable (they travel in control messages).
enum class DataType : uint8_t {
  kFloat32 = 0,
  kFloat64 = 1,
  kFloat16 = 2,   ///< IEEE 754 binary16; reduced in f32 and rounded back
  kBFloat16 = 3,  ///< bfloat16; reduced in f32 and rounded back
  kInt8 = 4,
  kUInt8 = 5,
  kInt32 = 6,
  kInt64 = 7,
};
/// Number of DataType values (for loops in tests and tools).
inline constexpr int kNumDataTypes = 8;

/// Reduction operator. kAvg is the sum divided by the world size (integer types truncate).
enum class ReduceOp : uint8_t {
  kSum = 0,
  kProd = 1,
  kMin = 2,
  kMax = 3,
  kAvg = 4,
};
/// Number of ReduceOp values.
inline constexpr int kNumReduceOps = 5;

/// Where a buffer lives. Collectives on kCuda memory need a transport that moves CUDA memory.
enum class MemoryKind : uint8_t {
  kHost = 0,
  kCuda = 1,
};

/// Bytes of one element of `type`; 0 for a value outside the enum.
PLEXUS_API size_t dataTypeSize(DataType type);
/// True when `type` is one of the enumerators (guards against casts from integers).
PLEXUS_API bool isValidDataType(DataType type);
/// True when `op` is one of the enumerators.
PLEXUS_API bool isValidReduceOp(ReduceOp op);
/// "f32", "f64", "f16", "bf16", "i8", "u8", "i32", "i64"; "invalid" otherwise.
PLEXUS_API const char* dataTypeName(DataType type);
/// "sum", "prod", "min", "max", "avg"; "invalid" otherwise.
PLEXUS_API const char* reduceOpName(ReduceOp op);
/// Parses the names above (and the nccl-tests spellings "float", "double", "half", "bfloat16",
/// "int8", "uint8", "int32", "int64"); false when unknown.
PLEXUS_API bool parseDataType(const char* name, DataType* out);
/// Parses "sum", "prod", "min", "max", "avg"; false when unknown.
PLEXUS_API bool parseReduceOp(const char* name, ReduceOp* out);

}  // namespace plexus
