// Named shared-memory regions: ShmRegion maps one between processes, and removeStaleShmRegions
// removes what exited Plexus processes left in /dev/shm (their ShmRegions, or libfabric shm
// endpoints' regions named by shmRegionName) in this pid namespace, and nothing else.
#include "src/shm_region.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

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

TEST(ShmRegions, NamesCarryNamespacePidAndRandomBits) {
  const std::string a = shmRegionName(), b = shmRegionName();
  EXPECT_NE(a, b);
  uint64_t ns = 0;
  int pid = 0;
  char hex[17] = {};
  ASSERT_EQ(std::sscanf(a.c_str(), "plexus_%" SCNu64 "_%d_%16[0-9a-f]", &ns, &pid, hex), 3) << a;
  EXPECT_EQ(pid, static_cast<int>(::getpid()));
  EXPECT_GT(ns, 0u);
  EXPECT_EQ(std::string(hex).size(), 16u);
}

TEST(ShmRegions, OnlyRegionsOfExitedProcessesInThisNamespaceAreRemoved) {
  const std::string dir = makeDir();
  ASSERT_FALSE(dir.empty());
  // This process's own name tells the namespace.
  const std::string mine = shmRegionName();
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
  EXPECT_EQ(removeStaleShmRegions(dir), 1);
  EXPECT_FALSE(exists(dir + "/" + dead));
  for (const std::string* name : {&alive, &otherNs, &oldStyle, &suffixed, &foreign}) {
    EXPECT_TRUE(exists(dir + "/" + *name)) << *name;
    ::unlink((dir + "/" + *name).c_str());
  }
  EXPECT_EQ(removeStaleShmRegions(dir + "/missing"), 0);  // no directory: nothing to do
  ::rmdir(dir.c_str());
}

TEST(ShmRegions, ACreatedRegionIsZeroSharedAndUnlinkedOnce) {
  auto made = ShmRegion::create(8192);
  ASSERT_TRUE(made.ok()) << made.status().toString();
  ShmRegion& a = **made;
  const std::string path = "/dev/shm/" + a.name();
  EXPECT_TRUE(exists(path));
  for (size_t i = 0; i < a.bytes(); ++i) ASSERT_EQ(static_cast<char*>(a.base())[i], 0) << i;
  auto opened = ShmRegion::open(a.name(), 8192);
  ASSERT_TRUE(opened.ok()) << opened.status().toString();
  static_cast<char*>(a.base())[100] = 42;
  EXPECT_EQ(static_cast<char*>((*opened)->base())[100], 42);  // one memory, two mappings
  // Another size than the creator's is refused, naming both.
  auto wrong = ShmRegion::open(a.name(), 4096);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("8192 bytes, not the 4096"), std::string::npos)
      << wrong.status().toString();
  (*opened).reset();  // a region opened by name leaves the name alone
  EXPECT_TRUE(exists(path));
  a.unlinkName();
  EXPECT_FALSE(exists(path));
  EXPECT_EQ(static_cast<char*>(a.base())[100], 42);  // the mapping outlives the name
  EXPECT_FALSE(ShmRegion::open(a.name(), 8192).ok());
}

TEST(ShmRegions, TheCreatorRemovesTheNameWhenItGoes) {
  std::string path;
  {
    auto made = ShmRegion::create(4096);
    ASSERT_TRUE(made.ok()) << made.status().toString();
    path = "/dev/shm/" + (*made)->name();
    EXPECT_TRUE(exists(path));
  }
  EXPECT_FALSE(exists(path));
}

}  // namespace
}  // namespace plexus
