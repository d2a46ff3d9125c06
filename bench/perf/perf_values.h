// Deterministic test values whose reductions are exact in every data type (small integers, and
// products of ones and twos), so that the expected result can be computed independently of the
// order in which ranks combine them, and checked bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "plexus/types.h"

namespace plexus::perf {

/// The value rank `rank` contributes at element `i` for `op`.
double inputValue(ReduceOp op, int rank, size_t i);
/// The exact reduction over `ranks` ranks of inputValue at element `i`, before conversion.
double expectedValue(ReduceOp op, int ranks, size_t i, DataType type);
/// Stores `v` as element `i` of `buf` of `type` (wrapping integers, rounding f16/bf16).
void storeValue(DataType type, void* buf, size_t i, double v);
/// True when element `i` of `buf` equals `v` stored as `type`, bit for bit.
bool matchesValue(DataType type, const void* buf, size_t i, double v);

}  // namespace plexus::perf
