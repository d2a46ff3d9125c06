// The store's contents and the gets parked on absent keys: plain data with no sockets, owned by
// the server's one serving thread (not thread-safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "plexus/status.h"

namespace plexus::bootstrap {

/// Keys plus values the store holds at most.
inline constexpr size_t kMaxStoreBytes = size_t{1} << 30;
/// Gets one connection may have parked. A well-behaved client has one (it cancels those it gives
/// up on), so this only bounds a misbehaving one.
inline constexpr size_t kMaxParkedGets = 16;

/// Key-value table with atomic counters and parked gets.
class StoreTable {
 public:
  /// A parked get: the connection that asked and its request id.
  struct Waiter {
    uint64_t connection = 0;
    uint32_t request = 0;
    bool operator==(const Waiter&) const = default;
  };

  /// The value of key, or nullptr when absent. Valid until the next change of the table.
  const std::vector<uint8_t>* find(const std::string& key) const;
  /// Stores value under key (overwriting) and returns the gets parked on key, now unparked, to be
  /// answered with the new value. Unavailable when the table would exceed kMaxStoreBytes.
  StatusOr<std::vector<Waiter>> set(const std::string& key, std::vector<uint8_t> value);
  /// Adds delta to the counter at key (absent: 0), stores the sum as decimal text (so a get
  /// reads it naturally) and returns it; the gets it unparks are appended to `woken`.
  /// InvalidArgument when key holds something else or the sum overflows.
  StatusOr<int64_t> add(const std::string& key, int64_t delta, std::vector<Waiter>* woken);
  /// Removes key and its value (nothing when absent). Gets parked on it stay parked.
  void erase(const std::string& key);
  /// Keys held (tests).
  size_t size() const { return values_.size(); }
  /// Parks a get of an absent key; InvalidArgument when the connection has kMaxParkedGets.
  Status park(const std::string& key, const Waiter& waiter);
  /// Forgets a parked get whose client gave up; nothing when it is not parked.
  void cancel(const Waiter& waiter);
  /// Forgets every get parked by a connection that closed.
  void forgetConnection(uint64_t connection);

 private:
  void unpark(const std::string& key, const Waiter& waiter);

  std::unordered_map<std::string, std::vector<uint8_t>> values_;
  size_t storedBytes_ = 0;
  std::unordered_map<std::string, std::vector<Waiter>> waitersByKey_;
  std::unordered_map<uint64_t, std::vector<std::pair<uint32_t, std::string>>> parkedByConnection_;
};

}  // namespace plexus::bootstrap
