#include "plexus/types.h"

#include <cstring>

#include "plexus/version.h"

namespace plexus {
namespace {

struct TypeName {
  DataType type;
  const char* name;
  const char* ncclName;
};
constexpr TypeName kTypes[] = {
    {DataType::kFloat32, "f32", "float"}, {DataType::kFloat64, "f64", "double"},
    {DataType::kFloat16, "f16", "half"},  {DataType::kBFloat16, "bf16", "bfloat16"},
    {DataType::kInt8, "i8", "int8"},      {DataType::kUInt8, "u8", "uint8"},
    {DataType::kInt32, "i32", "int32"},   {DataType::kInt64, "i64", "int64"},
};
constexpr const char* kOpNames[] = {"sum", "prod", "min", "max", "avg"};

}  // namespace

const char* versionString() { return "0.1.0"; }

const char* dataTypeName(DataType type) {
  return isValidDataType(type) ? kTypes[static_cast<int>(type)].name : "invalid";
}
const char* reduceOpName(ReduceOp op) {
  return isValidReduceOp(op) ? kOpNames[static_cast<int>(op)] : "invalid";
}

bool parseDataType(const char* name, DataType* out) {
  for (const TypeName& t : kTypes) {
    if (std::strcmp(name, t.name) == 0 || std::strcmp(name, t.ncclName) == 0) {
      *out = t.type;
      return true;
    }
  }
  return false;
}

bool parseReduceOp(const char* name, ReduceOp* out) {
  for (int i = 0; i < kNumReduceOps; ++i) {
    if (std::strcmp(name, kOpNames[i]) == 0) {
      *out = static_cast<ReduceOp>(i);
      return true;
    }
  }
  return false;
}

}  // namespace plexus
