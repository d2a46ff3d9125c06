// The registry behind plexus::memAlloc (include/plexus/memory.h), and what a collective asks of
// it: whether a buffer lies in such memory, and how a peer process maps it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace plexus {

/// Where a buffer of this process lies in memAlloc memory, enough for another process of the
/// same node to map it (PeerMappings): 20 bytes of data, so that a rank can publish two of them
/// beside its pid in one cache line. fd is -1 when the buffer is not in such memory.
struct SharedBufferRef {
  int32_t fd = -1;      // the memfd, in this process
  uint64_t inode = 0;   // the memfd's inode: the mapping's identity (fd numbers get reused)
  uint64_t offset = 0;  // of the buffer from the start of the allocation
};

/// The allocation holding all of [ptr, ptr + bytes), if any.
SharedBufferRef findSharedBuffer(const void* ptr, size_t bytes);

/// Another process's memAlloc memory mapped into this one, kept for reuse: a collective maps
/// each peer buffer once, not per call. Unmapped on destruction, and all of it by makeRoom()
/// when a call's mappings would not fit beside those held (a peer that frees and allocates
/// anew leaves stale ones behind).
class PeerMappings {
 public:
  PeerMappings() = default;
  PeerMappings(const PeerMappings&) = delete;
  PeerMappings& operator=(const PeerMappings&) = delete;
  ~PeerMappings();

  /// Before a call maps up to `needed` buffers: unmaps everything held if they might not fit
  /// (so no address map() returned during the call is unmapped before it ends).
  void makeRoom(size_t needed);
  /// The address in this process of `bytes` at `ref` in process `pid`'s memory, or nullptr
  /// when it cannot be mapped: /proc/pid/fd not open to this process (another pid namespace,
  /// another user), the fd no longer that inode, the range past its end, or no room left.
  uint8_t* map(pid_t pid, const SharedBufferRef& ref, size_t bytes);

  static constexpr size_t kMaxMappings = 64;

 private:
  struct Mapping {
    pid_t pid;
    uint64_t inode;
    uint8_t* base;
    size_t bytes;
  };
  void unmapAll();
  Mapping* find(pid_t pid, uint64_t inode);

  Mapping list_[kMaxMappings] = {};
  size_t count_ = 0;
};

}  // namespace plexus
