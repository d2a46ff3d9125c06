#include "plexus/status.h"

#include <gtest/gtest.h>

#include "plexus/types.h"

namespace plexus {
namespace {

Status failsWith(StatusCode code) { return Status(code, "boom"); }

Status propagates(StatusCode code, bool* reachedEnd) {
  PLEXUS_TRY(failsWith(code));
  *reachedEnd = true;
  return okStatus();
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(okStatus().ok());
  Status s = unavailable("peer 3 died");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.toString(), "Unavailable: peer 3 died");
  EXPECT_EQ(s.withContext("allreduce").message(), "allreduce: peer 3 died");
}

TEST(StatusTest, TryPropagatesOnlyErrors) {
  bool reached = false;
  EXPECT_EQ(propagates(StatusCode::kInternal, &reached).code(), StatusCode::kInternal);
  EXPECT_FALSE(reached);
  EXPECT_TRUE(propagates(StatusCode::kOk, &reached).ok());
  EXPECT_TRUE(reached);
}

TEST(StatusTest, StatusOrHoldsValueOrError) {
  StatusOr<int> v = 42;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 42);
  StatusOr<int> e = invalidArgument("bad");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  StatusOr<int> fromOk = okStatus();
  EXPECT_EQ(fromOk.status().code(), StatusCode::kInternal);
}

TEST(TypesTest, NamesSizesAndParsing) {
  EXPECT_EQ(dataTypeSize(DataType::kBFloat16), 2u);
  EXPECT_EQ(dataTypeSize(static_cast<DataType>(99)), 0u);
  EXPECT_FALSE(isValidReduceOp(static_cast<ReduceOp>(7)));
  for (int t = 0; t < kNumDataTypes; ++t) {
    DataType parsed;
    ASSERT_TRUE(parseDataType(dataTypeName(static_cast<DataType>(t)), &parsed));
    EXPECT_EQ(static_cast<int>(parsed), t);
  }
  DataType f;
  EXPECT_TRUE(parseDataType("float", &f));
  EXPECT_EQ(f, DataType::kFloat32);
  EXPECT_FALSE(parseDataType("f128", &f));
  ReduceOp op;
  EXPECT_TRUE(parseReduceOp("avg", &op));
  EXPECT_FALSE(parseReduceOp("xor", &op));
}

}  // namespace
}  // namespace plexus
