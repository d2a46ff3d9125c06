// Named POSIX shared-memory regions in /dev/shm: the ones Plexus maps between the ranks of one
// node (the shared-memory all-reduce), and the naming that lets a later process remove what a
// killed one left behind (also used for libfabric shm endpoints, which name their regions
// after the endpoint).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "plexus/status.h"

namespace plexus {

/// A fresh region name: "plexus_<pid namespace inode>_<pid>_<64 random bits in hex>". The pid
/// and its namespace tell removeStaleShmRegions whether the process that made it still exists.
std::string shmRegionName();

/// Removes from `dir` (/dev/shm) the regions named by shmRegionName() in this pid namespace
/// whose process no longer exists: a rank killed before it cleaned up would otherwise leave its
/// region for the life of the machine. A live process's region, one of another pid namespace
/// sharing the directory, or any other name is never touched. Returns how many were removed.
int removeStaleShmRegions(const std::string& dir = "/dev/shm");

/// One mapping of a named region, unmapped on destruction. The creator unlinks the name once
/// every process that needs it has mapped it (unlinkName), or on destruction at the latest;
/// the memory lives on until the last mapping goes.
class ShmRegion {
 public:
  /// Creates a region of `bytes` zero bytes under a fresh name (after removing stale ones).
  static StatusOr<std::unique_ptr<ShmRegion>> create(size_t bytes);
  /// Maps the region `name` that another process created; it must hold exactly `bytes`.
  static StatusOr<std::unique_ptr<ShmRegion>> open(const std::string& name, size_t bytes);
  ~ShmRegion();
  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;

  void* base() const { return base_; }
  size_t bytes() const { return bytes_; }
  const std::string& name() const { return name_; }
  /// Removes the name (creator only; a no-op afterwards or for a region opened by name).
  void unlinkName();

 private:
  ShmRegion(std::string name, void* base, size_t bytes, bool owner)
      : name_(std::move(name)), base_(base), bytes_(bytes), linked_(owner) {}
  static StatusOr<std::unique_ptr<ShmRegion>> map(std::string name, int flags, size_t bytes);

  std::string name_;
  void* base_;
  size_t bytes_;
  bool linked_;  // this process created the name and has not removed it yet
};

}  // namespace plexus
