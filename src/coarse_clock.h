// The steady clock at the resolution of the kernel's tick (CLOCK_MONOTONIC_COARSE, 1-4 ms), for
// times that need no more: when the flight recorder's operations end. It costs a few
// nanoseconds where a precise read costs ~25 ns under KVM (two precise reads were 15% of a 2-rank
// 8 B all-reduce's cycles). Same base as std::chrono::steady_clock (CLOCK_MONOTONIC on Linux),
// but it can lag by a tick or more (after the core slept): never use it for a deadline.
#pragma once

#include <time.h>

#include <chrono>

namespace plexus {

inline std::chrono::steady_clock::time_point coarseNow() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::chrono::steady_clock::time_point(std::chrono::seconds(ts.tv_sec) +
                                               std::chrono::nanoseconds(ts.tv_nsec));
}

}  // namespace plexus
