#include "src/bootstrap/store_table.h"

#include <algorithm>
#include <charconv>

#include "src/bootstrap/store_protocol.h"

namespace plexus::bootstrap {

const std::vector<uint8_t>* StoreTable::find(const std::string& key) const {
  auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

void StoreTable::erase(const std::string& key) {
  auto found = values_.find(key);
  if (found == values_.end()) return;
  storedBytes_ -= key.size() + found->second.size();
  values_.erase(found);
}

StatusOr<std::vector<StoreTable::Waiter>> StoreTable::set(const std::string& key,
                                                          std::vector<uint8_t> value) {
  auto found = values_.find(key);
  const size_t previous = found == values_.end() ? 0 : key.size() + found->second.size();
  // storedBytes_ <= kMaxStoreBytes and key and value are capped by the protocol, so this cannot
  // overflow.
  if (storedBytes_ - previous + key.size() + value.size() > kMaxStoreBytes) {
    return unavailable("the store is full (" + std::to_string(kMaxStoreBytes) + " bytes)");
  }
  storedBytes_ = storedBytes_ - previous + key.size() + value.size();
  values_[key] = std::move(value);
  // Hand the key's waiters to the caller and forget them here, in both indexes, so a later
  // cancel or disconnect of those connections finds nothing left to undo.
  std::vector<Waiter> woken;
  auto waiting = waitersByKey_.find(key);
  if (waiting == waitersByKey_.end()) return woken;
  woken = std::move(waiting->second);
  waitersByKey_.erase(waiting);
  for (const Waiter& w : woken) {
    auto parked = parkedByConnection_.find(w.connection);
    if (parked == parkedByConnection_.end()) continue;
    std::erase_if(parked->second, [&](const auto& p) { return p.first == w.request; });
    if (parked->second.empty()) parkedByConnection_.erase(parked);
  }
  return woken;
}

StatusOr<int64_t> StoreTable::add(const std::string& key, int64_t delta,
                                  std::vector<Waiter>* woken) {
  int64_t current = 0;
  if (const std::vector<uint8_t>* value = find(key)) {
    const char* begin = reinterpret_cast<const char*>(value->data());
    const char* end = begin + value->size();
    auto [ptr, ec] = std::from_chars(begin, end, current);
    if (ec != std::errc() || ptr != end) {
      return invalidArgument("key '" + wire::printable(key) +
                             "' holds a value that is not a counter");
    }
  }
  int64_t sum = 0;
  if (__builtin_add_overflow(current, delta, &sum)) {
    return invalidArgument("adding " + std::to_string(delta) + " to key '" + wire::printable(key) +
                           "' overflows");
  }
  std::string text = std::to_string(sum);
  StatusOr<std::vector<Waiter>> unparked = set(key, std::vector<uint8_t>(text.begin(), text.end()));
  if (!unparked.ok()) return unparked.status();
  woken->insert(woken->end(), unparked->begin(), unparked->end());
  return sum;
}

Status StoreTable::park(const std::string& key, const Waiter& waiter) {
  auto& parked = parkedByConnection_[waiter.connection];
  if (parked.size() >= kMaxParkedGets) {
    return invalidArgument("already waiting for " + std::to_string(kMaxParkedGets) + " keys");
  }
  parked.emplace_back(waiter.request, key);
  waitersByKey_[key].push_back(waiter);
  return okStatus();
}

void StoreTable::cancel(const Waiter& waiter) {
  auto parked = parkedByConnection_.find(waiter.connection);
  if (parked == parkedByConnection_.end()) return;
  std::erase_if(parked->second, [&](const auto& p) {
    if (p.first != waiter.request) return false;
    unpark(p.second, waiter);
    return true;
  });
  if (parked->second.empty()) parkedByConnection_.erase(parked);
}

void StoreTable::forgetConnection(uint64_t connection) {
  auto parked = parkedByConnection_.find(connection);
  if (parked == parkedByConnection_.end()) return;
  for (const auto& [request, key] : parked->second) unpark(key, Waiter{connection, request});
  parkedByConnection_.erase(parked);
}

void StoreTable::unpark(const std::string& key, const Waiter& waiter) {
  auto it = waitersByKey_.find(key);
  if (it == waitersByKey_.end()) return;
  std::erase(it->second, waiter);
  if (it->second.empty()) waitersByKey_.erase(it);
}

}  // namespace plexus::bootstrap
