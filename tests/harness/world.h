// Multi-rank test worlds: N ranks as forked processes (real processes, real transports), which
// find each other through a UniqueId whose store the test process hosts.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "plexus/communicator.h"

namespace plexus::testing {

/// True in a build under AddressSanitizer or ThreadSanitizer (GCC's macros, or clang's
/// __has_feature): everything runs several times slower, and the allocator keeps freed memory
/// in quarantine, so heap and resident-memory figures mean nothing there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kUnderSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kUnderSanitizer = true;
#else
inline constexpr bool kUnderSanitizer = false;
#endif
#else
inline constexpr bool kUnderSanitizer = false;
#endif

struct WorldOptions {
  /// Whole-world deadline: past it, every rank is SIGKILLed and the test fails (no hang).
  std::chrono::seconds deadline{90};
  /// Environment set in every rank before it starts (e.g. PLEXUS_TIMEOUT_MS).
  std::map<std::string, std::string> env;
  /// Ranks the test itself kills or stops (fault tests): their death by a signal is not a
  /// failure, and once every other rank has exited they are SIGKILLed.
  std::set<int> mayDie;
};

/// Options for tests of failures: a 3 s collective timeout (PLEXUS_TIMEOUT_MS) and a world
/// deadline well beyond it, so that error paths finish quickly but never look like hangs.
WorldOptions shortTimeout();

/// True when `status`'s message contains `text`.
inline bool mentions(const Status& status, const std::string& text) {
  return status.message().find(text) != std::string::npos;
}

/// Forks `n` ranks; each runs body(rank, id) and exits 0 unless the body recorded a gtest
/// failure (or crashed). Success when every rank exited 0 within the deadline. The id's store
/// runs in a separate forked process, so the calling process never gains threads: keep it that
/// way (do not call UniqueId::generate or create communicators in the test process itself).
::testing::AssertionResult runRanks(int n,
                                    const std::function<void(int rank, const UniqueId& id)>& body,
                                    const WorldOptions& options = {});

/// Like runRanks, but each rank first joins a communicator of `n` ranks and the body gets it.
::testing::AssertionResult runWorld(int n, const std::function<void(Communicator& comm)>& body,
                                    const WorldOptions& options = {});

}  // namespace plexus::testing
