// Host memory that the ranks of one node can read and write in each other's processes: the
// zero-copy path of the shared-memory collectives, as NCCL's ncclMemAlloc is for its own.
#pragma once

#include <cstddef>

#include "plexus/export.h"
#include "plexus/status.h"

namespace plexus {

/// Allocates `bytes` (> 0) of host memory, page-aligned and zeroed, that the other ranks of
/// this node can map. A collective whose buffers on every rank of one node lie in such
/// allocations (any offset, as long as each buffer lies inside one) moves its data between
/// the ranks' buffers directly, without copying through the shared staging region: the shm
/// all-reduce (inputs and outputs in such memory), reduce-scatter and all-gather (inputs), from
/// 16 KiB. Any buffer works with every collective; only the speed differs.
/// The memory is a memfd mapping; its pages are counted as shared memory (shmem), not as
/// anonymous memory. InvalidArgument for 0 bytes; Unavailable when the system refuses.
PLEXUS_API Status memAlloc(size_t bytes, void** ptr);

/// Frees memory from memAlloc. InvalidArgument, and nothing freed, for a pointer memAlloc did
/// not return or that was freed already; nullptr is OK and does nothing. A peer that mapped
/// the memory for a collective keeps its mapping (and so the pages) until its communicator is
/// destroyed or it maps other memory of this process.
PLEXUS_API Status memFree(void* ptr);

}  // namespace plexus
