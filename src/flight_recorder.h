// The flight recorder: every communicator remembers its last operations (sequence number,
// collective, bytes, algorithm, state, duration), so that when one times out the log shows
// where each rank stood. Ranks number their collectives alike, so the rank whose last sequence
// number is lowest is the one the others wait for (send/recv groups, which only some ranks
// join, have a numbering of their own: compare collectives with collectives).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "algorithms/algorithm.h"
#include "plexus/status.h"

namespace plexus::internal {

/// One recorded operation.
struct FlightRecord {
  enum class State : uint8_t { kRunning, kDone, kFailed };
  uint64_t sequence = 0;
  CollectiveKind kind = CollectiveKind::kAllReduce;
  size_t bytes = 0;
  const char* algorithm = "";  ///< an Algorithm's name (static storage)
  State state = State::kRunning;
  StatusCode code = StatusCode::kOk;
  std::chrono::steady_clock::time_point start{};
  std::chrono::steady_clock::time_point end{};  ///< when it finished (not running)
  // start and end are read from the coarse clock (coarse_clock.h): dump() prints milliseconds.
};

/// A ring of the last `capacity` operations. Every call comes from the communicator's driver,
/// the one thread at a time that runs its collectives (the progress engine orders one driver
/// after the other), so it has no lock: the two uncontended lock/unlock pairs it had per
/// collective were ~15 ns of a 0.3 us 2-rank 8 B all-reduce.
class FlightRecorder {
 public:
  explicit FlightRecorder(size_t capacity = 32);

  /// Records operation `sequence` as running since `start` (the caller has read the coarse
  /// clock).
  void begin(uint64_t sequence, CollectiveKind kind, size_t bytes, const char* algorithm,
             std::chrono::steady_clock::time_point start);
  /// Records how the running operation `sequence` ended.
  void end(uint64_t sequence, const Status& status);
  /// The recorded operations, oldest first.
  std::vector<FlightRecord> snapshot() const;
  /// One line per operation, oldest first, e.g.
  /// "#41 allreduce 4194304 B ring: done in 812 us" or "#42 ... running for 3000 ms".
  std::string dump() const;

 private:
  std::vector<FlightRecord> ring_;
  size_t next_ = 0;   // slot of the next begin()
  size_t last_ = 0;   // slot of the latest begin() (no division on the per-call path)
  size_t count_ = 0;  // slots filled, at most ring_.size()
};

}  // namespace plexus::internal
