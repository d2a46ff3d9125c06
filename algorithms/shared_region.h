// Memory that every rank of a communicator has mapped: the communicator (src/) creates it when
// all its ranks share one host and one node, and the shared-memory algorithms lay out their
// slots and flags in it. They see only this description, so they stay free of how it was made.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace plexus {

/// One line of the region per rank: the CPU the rank last ran on, plus one (0: not known yet).
/// A rank stores into its own line when it starts to wait; a waiter reads the line of the rank
/// it waits for (CollectiveContext). A line of its own per writer, so no rank's store evicts
/// another's.
struct alignas(64) RankCpuLine {
  std::atomic<int32_t> cpuPlusOne{0};
};

struct SharedRegion {
  void* base = nullptr;  ///< zero-filled at creation; null when the communicator has none
  size_t bytes = 0;      ///< of the shm algorithms' part, at `base`
  /// Why there is none (for the error of an algorithm forced without one).
  const char* missing = "the communicator has no shared-memory region";
  /// One RankCpuLine per rank of the communicator, in the region beside the algorithms' part;
  /// null when there is no region.
  RankCpuLine* rankCpus = nullptr;
};

}  // namespace plexus
