// The regions libfabric's shm provider leaves in /dev/shm when a rank dies before it closes its
// endpoint: removeStaleShmRegions removes those of exited Plexus processes in this pid
// namespace, and nothing else.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "transports/ofi/ofi_resources.h"

namespace plexus {
namespace {

std::string makeDir() {
  char path[] = "/tmp/plexus_shm_test_XXXXXX";
  const char* made = ::mkdtemp(path);
  EXPECT_NE(made, nullptr);
  return made != nullptr ? made : "";
}

void touch(const std::string& path) { std::ofstream(path) << "region"; }
bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// A pid that belonged to a process that has exited.
int deadPid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return static_cast<int>(child);
}

TEST(OfiShmRegions, EndpointNamesCarryNamespacePidAndRandomBits) {
  const std::string a = ofi::shmEndpointName(), b = ofi::shmEndpointName();
  EXPECT_NE(a, b);
  uint64_t ns = 0;
  int pid = 0;
  char hex[17] = {};
  ASSERT_EQ(std::sscanf(a.c_str(), "plexus_%" SCNu64 "_%d_%16[0-9a-f]", &ns, &pid, hex), 3) << a;
  EXPECT_EQ(pid, static_cast<int>(::getpid()));
  EXPECT_GT(ns, 0u);
  EXPECT_EQ(std::string(hex).size(), 16u);
}

TEST(OfiShmRegions, OnlyRegionsOfExitedProcessesInThisNamespaceAreRemoved) {
  const std::string dir = makeDir();
  ASSERT_FALSE(dir.empty());
  // This process's own name tells the namespace.
  const std::string mine = ofi::shmEndpointName();
  const std::string ns = mine.substr(7, mine.find('_', 7) - 7);
  const std::string dead = "plexus_" + ns + "_" + std::to_string(deadPid()) + "_0123456789abcdef";
  const std::string alive = "plexus_" + ns + "_" + std::to_string(::getpid()) + "_fedcba9876543210";
  const std::string otherNs =
      "plexus_1" + ns + "_" + std::to_string(deadPid()) + "_0123456789abcdef";
  const std::string oldStyle = "plexus_" + std::to_string(deadPid()) + "_0123456789abcdef";
  const std::string suffixed = dead + "x";
  const std::string foreign = "some_other_region";
  for (const std::string* name : {&dead, &alive, &otherNs, &oldStyle, &suffixed, &foreign}) {
    touch(dir + "/" + *name);
  }
  EXPECT_EQ(ofi::removeStaleShmRegions(dir), 1);
  EXPECT_FALSE(exists(dir + "/" + dead));
  for (const std::string* name : {&alive, &otherNs, &oldStyle, &suffixed, &foreign}) {
    EXPECT_TRUE(exists(dir + "/" + *name)) << *name;
    ::unlink((dir + "/" + *name).c_str());
  }
  EXPECT_EQ(ofi::removeStaleShmRegions(dir + "/missing"), 0);  // no directory: nothing to do
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace plexus
