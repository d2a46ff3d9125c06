// Memory that every rank of a communicator has mapped: the communicator (src/) creates it when
// all its ranks share one host and one node, and the shared-memory algorithms lay out their
// slots and flags in it. They see only this description, so they stay free of how it was made.
#pragma once

#include <cstddef>

namespace plexus {

struct SharedRegion {
  void* base = nullptr;  ///< zero-filled at creation; null when the communicator has none
  size_t bytes = 0;
  /// Why there is none (for the error of an algorithm forced without one).
  const char* missing = "the communicator has no shared-memory region";
};

}  // namespace plexus
