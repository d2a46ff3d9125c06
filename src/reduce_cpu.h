// CPU reduction kernels: the arithmetic of every host-memory collective. Vectorised for every
// DataType x ReduceOp; f16 and bf16 are widened to f32, combined, and rounded back to nearest
// even. Integer arithmetic wraps (two's complement) instead of overflowing.
#pragma once

#include <cstddef>
#include <cstdint>

#include "plexus/types.h"

namespace plexus {

/// dst[i] = a[i] op b[i] for i < count. dst may be the same pointer as a or b (not a partial
/// overlap). kAvg combines as kSum; the division is divideInPlace's job. `type` and `op` must be
/// valid (checked at the API boundary; an invalid value aborts with file:line).
void reduceCpu(DataType type, ReduceOp op, void* dst, const void* a, const void* b, size_t count);

/// dst[i] = dst[i] / divisor, the last step of kAvg. Integers truncate toward zero; f16/bf16
/// divide in f32 and round back.
void divideInPlace(DataType type, void* dst, size_t count, int divisor);

/// Conversions used by the f16/bf16 paths (round to nearest even; NaN stays NaN).
float halfToFloat(uint16_t h);
uint16_t floatToHalf(float f);
float bfloat16ToFloat(uint16_t b);
uint16_t floatToBfloat16(float f);

}  // namespace plexus
