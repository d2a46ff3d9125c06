#include "src/host_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "plexus/memory.h"
#include "src/unique_fd.h"

namespace plexus {
namespace {

struct Allocation {
  size_t bytes;  // mapped: a multiple of the page size
  int fd;
  uint64_t inode;
};

// Every live memAlloc allocation of this process, by base address.
struct Registry {
  std::mutex mutex;
  std::map<uintptr_t, Allocation> byBase;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: memFree may run during exit
  return *r;
}

std::string errnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

Status memAlloc(size_t bytes, void** ptr) {
  if (ptr == nullptr) return invalidArgument("memAlloc: ptr is null");
  *ptr = nullptr;
  if (bytes == 0) return invalidArgument("memAlloc: 0 bytes");
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (bytes > SIZE_MAX - page)
    return invalidArgument("memAlloc: " + std::to_string(bytes) + " bytes is too many");
  const size_t mapped = (bytes + page - 1) / page * page;
  UniqueFd fd(::memfd_create("plexus-mem", MFD_CLOEXEC));
  if (!fd.valid()) return unavailable(errnoText("memAlloc: memfd_create"));
  if (::ftruncate(fd.get(), static_cast<off_t>(mapped)) != 0) {
    return unavailable(errnoText(("memAlloc: ftruncate to " + std::to_string(mapped)).c_str()));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return unavailable(errnoText("memAlloc: fstat"));
  void* base = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) {
    return unavailable(
        errnoText(("memAlloc: mmap of " + std::to_string(mapped) + " bytes").c_str()));
  }
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.byBase[reinterpret_cast<uintptr_t>(base)] = {mapped, fd.release(),
                                                 static_cast<uint64_t>(st.st_ino)};
  *ptr = base;
  return okStatus();
}

Status memFree(void* ptr) {
  if (ptr == nullptr) return okStatus();
  Registry& r = registry();
  Allocation a{};
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.byBase.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == r.byBase.end()) {
      char at[32];
      std::snprintf(at, sizeof(at), "%p", ptr);
      return invalidArgument(std::string("memFree: ") + at +
                             " is not memory from memAlloc (or was freed already)");
    }
    a = it->second;
    r.byBase.erase(it);
  }
  ::munmap(ptr, a.bytes);
  ::close(a.fd);
  return okStatus();
}

SharedBufferRef findSharedBuffer(const void* ptr, size_t bytes) {
  const auto at = reinterpret_cast<uintptr_t>(ptr);
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.byBase.upper_bound(at);
  if (it == r.byBase.begin()) return {};
  --it;
  const uintptr_t offset = at - it->first;
  if (offset > it->second.bytes || bytes > it->second.bytes - offset) return {};
  return {it->second.fd, it->second.inode, offset};
}

PeerMappings::~PeerMappings() { unmapAll(); }

void PeerMappings::unmapAll() {
  for (size_t i = 0; i < count_; ++i) ::munmap(list_[i].base, list_[i].bytes);
  count_ = 0;
}

void PeerMappings::makeRoom(size_t needed) {
  if (count_ + needed > kMaxMappings) unmapAll();
}

PeerMappings::Mapping* PeerMappings::find(pid_t pid, uint64_t inode) {
  for (size_t i = 0; i < count_; ++i) {
    if (list_[i].pid == pid && list_[i].inode == inode) return &list_[i];
  }
  return nullptr;
}

uint8_t* PeerMappings::map(pid_t pid, const SharedBufferRef& ref, size_t bytes) {
  if (ref.fd < 0) return nullptr;
  Mapping* m = find(pid, ref.inode);
  if (m == nullptr) {
    const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(ref.fd);
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    struct stat st {};
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0 ||
        static_cast<uint64_t>(st.st_ino) != ref.inode || st.st_size <= 0) {
      return nullptr;
    }
    const auto size = static_cast<size_t>(st.st_size);
    void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (base == MAP_FAILED) return nullptr;
    if (count_ == kMaxMappings) {
      ::munmap(base, size);
      return nullptr;
    }
    list_[count_] = {pid, ref.inode, static_cast<uint8_t*>(base), size};
    m = &list_[count_++];
  }
  if (ref.offset > m->bytes || bytes > m->bytes - ref.offset) return nullptr;
  return m->base + ref.offset;
}

}  // namespace plexus
