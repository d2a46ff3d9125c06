#include "src/flight_recorder.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "src/coarse_clock.h"

namespace plexus::internal {

FlightRecorder::FlightRecorder(size_t capacity) : ring_(capacity == 0 ? 1 : capacity) {}

void FlightRecorder::begin(uint64_t sequence, CollectiveKind kind, size_t bytes,
                           const char* algorithm, std::chrono::steady_clock::time_point start) {
  FlightRecord& r = ring_[next_];
  r = FlightRecord{};
  r.sequence = sequence;
  r.kind = kind;
  r.bytes = bytes;
  r.algorithm = algorithm;
  r.start = start;
  last_ = next_;
  next_ = next_ + 1 == ring_.size() ? 0 : next_ + 1;
  if (count_ < ring_.size()) ++count_;
}

void FlightRecorder::end(uint64_t sequence, const Status& status) {
  if (count_ == 0) return;
  FlightRecord& r = ring_[last_];
  if (r.sequence != sequence || r.state != FlightRecord::State::kRunning) return;
  r.state = status.ok() ? FlightRecord::State::kDone : FlightRecord::State::kFailed;
  r.code = status.code();
  r.end = coarseNow();
}

std::vector<FlightRecord> FlightRecorder::snapshot() const {
  std::vector<FlightRecord> out;
  out.reserve(count_);
  for (size_t i = 0; i < count_; ++i) {
    out.push_back(ring_[(next_ + ring_.size() - count_ + i) % ring_.size()]);
  }
  return out;
}

std::string FlightRecorder::dump() const {
  const auto now = coarseNow();
  std::string text;
  for (const FlightRecord& r : snapshot()) {
    using std::chrono::duration_cast;
    using ms = std::chrono::milliseconds;
    const bool running = r.state == FlightRecord::State::kRunning;
    // Both ends come from the coarse clock (monotonic); the clamp guards hand-made records.
    const auto took =
        std::max<long long>(0, duration_cast<ms>((running ? now : r.end) - r.start).count());
    char line[192];
    std::snprintf(line, sizeof(line), "  #%" PRIu64 " %s %zu B %s: %s %s %lld ms\n", r.sequence,
                  collectiveName(r.kind), r.bytes, r.algorithm,
                  running                                 ? "running for"
                  : r.state == FlightRecord::State::kDone ? "done in"
                                                          : statusCodeName(r.code),
                  running ? "" : (r.state == FlightRecord::State::kDone ? "" : "after"),
                  static_cast<long long>(took));
    text += line;
  }
  return text;
}

}  // namespace plexus::internal
