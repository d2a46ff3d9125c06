#include "src/shm_region.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <random>

#include "src/unique_fd.h"

namespace plexus {
namespace {

// The inode of this process's pid namespace (0 when /proc does not say).
uint64_t pidNamespace() {
  struct stat st {};
  return ::stat("/proc/self/ns/pid", &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

std::string errnoText(const std::string& what, const std::string& name) {
  return what + " /dev/shm/" + name + ": " + std::strerror(errno);
}

void unlinkShm(const std::string& name) { ::shm_unlink(("/" + name).c_str()); }

}  // namespace

std::string shmRegionName() {
  std::random_device random;
  char name[96];
  std::snprintf(name, sizeof(name), "plexus_%" PRIu64 "_%d_%08x%08x", pidNamespace(),
                static_cast<int>(::getpid()), random(), random());
  return name;
}

int removeStaleShmRegions(const std::string& dir) {
  const uint64_t ns = pidNamespace();
  if (ns == 0) return 0;  // no way to tell whose pids these are
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  int removed = 0;
  while (const dirent* entry = ::readdir(d)) {
    uint64_t theirNs = 0;
    int pid = 0, used = 0;
    char hex[17] = {};
    // The whole name must parse: "plexus_<ns>_<pid>_<16 hex digits>".
    if (std::sscanf(entry->d_name, "plexus_%" SCNu64 "_%d_%16[0-9a-f]%n", &theirNs, &pid, hex,
                    &used) != 3 ||
        entry->d_name[used] != '\0' || std::strlen(hex) != 16 || theirNs != ns || pid <= 0) {
      continue;
    }
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
    if (::unlink((dir + "/" + entry->d_name).c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

StatusOr<std::unique_ptr<ShmRegion>> ShmRegion::create(size_t bytes) {
  removeStaleShmRegions();
  return map(shmRegionName(), O_RDWR | O_CREAT | O_EXCL, bytes);
}

StatusOr<std::unique_ptr<ShmRegion>> ShmRegion::open(const std::string& name, size_t bytes) {
  return map(name, O_RDWR, bytes);
}

StatusOr<std::unique_ptr<ShmRegion>> ShmRegion::map(std::string name, int flags, size_t bytes) {
  const bool create = (flags & O_CREAT) != 0;
  UniqueFd fd(::shm_open(("/" + name).c_str(), flags, 0600));
  if (!fd.valid()) return unavailable(errnoText(create ? "cannot create" : "cannot open", name));
  // posix_fallocate, not ftruncate: pages of tmpfs are otherwise allocated on first touch, and
  // a full /dev/shm would then kill the process with SIGBUS instead of returning an error here.
  if (create) {
    const int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(bytes));
    if (rc != 0) {
      errno = rc;
      Status s =
          unavailable(errnoText("cannot allocate " + std::to_string(bytes) + " bytes for", name));
      unlinkShm(name);
      return s;
    }
  }
  struct stat st {};
  if (!create && (::fstat(fd.get(), &st) != 0 || static_cast<size_t>(st.st_size) != bytes)) {
    return invalidArgument("/dev/shm/" + name + " holds " + std::to_string(st.st_size) +
                           " bytes, not the " + std::to_string(bytes) + " expected");
  }
  // MAP_POPULATE: this process's page tables are filled now, not one minor fault per page on
  // first touch inside the first collectives, which made a short benchmark's first sizes slow
  // (2 ranks, 10 calls of 256 KiB after 5 with the 4 MiB region of 8 parts: 54 us a call
  // without, 22-26 with).
  void* base =
      ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
  if (base == MAP_FAILED) {
    Status s = unavailable(errnoText("cannot map", name));
    if (create) unlinkShm(name);
    return s;
  }
  return std::unique_ptr<ShmRegion>(new ShmRegion(std::move(name), base, bytes, create));
}

void ShmRegion::unlinkName() {
  if (linked_) unlinkShm(name_);
  linked_ = false;
}

ShmRegion::~ShmRegion() {
  unlinkName();
  ::munmap(base_, bytes_);
}

}  // namespace plexus
