// CPU reduction kernels: the arithmetic of every host-memory collective. Vectorised for every
// DataType x ReduceOp; f16 and bf16 are widened to f32, combined, and rounded back to nearest
// even. Integer arithmetic wraps (two's complement) instead of overflowing.
#pragma once

#include <cstddef>
#include <cstdint>

#include "plexus/types.h"

namespace plexus {

/// dst[i] = a[i] op b[i] for i < count. dst may be the same pointer as a or b (not a partial
/// overlap); no alignment is required. kAvg combines as kSum; the division is divideInPlace's
/// job. `type` and `op` must be valid (checked at the API boundary; an invalid value aborts with
/// file:line).
///
/// Float min/max (f32, f64, f16, bf16) are IEEE 754-2019 minimum/maximum: if either operand is
/// NaN the result is the default quiet NaN (f32 0x7FC00000, f16 0x7E00, bf16 0x7FC0), and -0 is
/// less than +0. Both are commutative bit for bit. Sum and prod follow IEEE arithmetic (a NaN
/// result's payload is unspecified). Apart from that payload, every instruction-set level gives
/// the same bits.
void reduceCpu(DataType type, ReduceOp op, void* dst, const void* a, const void* b, size_t count);

/// reduceCpu writing each result to two places: dst[i] = dst2[i] = a[i] op b[i], in one pass
/// (no second read of dst to copy it). Each of dst and dst2 may be the same pointer as a or b;
/// dst and dst2 must not overlap.
void reduceCpuTwice(DataType type, ReduceOp op, void* dst, void* dst2, const void* a, const void* b,
                    size_t count);

/// dst[i] = dst[i] / divisor, the last step of kAvg; divisor must be > 0 (the world size).
/// Integers truncate toward zero; f16/bf16 divide in f32 and round back.
void divideInPlace(DataType type, void* dst, size_t count, int divisor);

/// memcpy(dst, src, bytes) with non-temporal stores where the CPU has them (x86-64): dst's
/// lines are written to memory without being read first and without displacing the cache, for
/// outputs nothing reads soon. No alignment is required; dst and src must not overlap. Where
/// the CPU has no such stores it is memcpy. The stores are weakly ordered: call
/// streamingFence() after a run of such copies, before another thread may read what they wrote
/// (this thread sees them in order either way).
void copyStreamingUnfenced(void* dst, const void* src, size_t bytes);
void streamingFence();

/// Conversions used by the f16/bf16 paths (round to nearest even, overflow to inf; NaN stays
/// NaN, quieted, keeping its sign and the top of its payload, as F16C and AVX512-BF16 do).
/// Independent of the floating-point rounding mode and of FTZ/DAZ.
float halfToFloat(uint16_t h);
uint16_t floatToHalf(float f);
float bfloat16ToFloat(uint16_t b);
uint16_t floatToBfloat16(float f);

}  // namespace plexus
