// Topology: detection agrees with lstopo on this host (both detectors), the wire form round-trips
// and rejects truncated or corrupt records, and the job view places ranks right for typical
// layouts.
#include "src/topology.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace plexus {
namespace {

// ---- detection vs lstopo ----

// stdout of `command`, or nullopt when it could not run or failed.
std::optional<std::string> capture(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return std::nullopt;
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), pipe.get())) out.append(buf, n);
  if (::pclose(pipe.release()) != 0) return std::nullopt;
  return out;
}

// What lstopo's XML says: OS indexes per object type, and the names of network OS devices
// (hwloc osdev_type 2 = network, 3 = OpenFabrics).
struct Lstopo {
  std::set<int> objects(const std::string& type) const {
    std::set<int> found;
    std::regex re("<object type=\"" + type + "\"[^>]*os_index=\"([0-9]+)\"");
    for (std::sregex_iterator it(xml.begin(), xml.end(), re), end; it != end; ++it) {
      found.insert(std::stoi((*it)[1]));
    }
    return found;
  }
  size_t count(const std::string& type) const {
    std::regex re("<object type=\"" + type + "\"");
    return std::distance(std::sregex_iterator(xml.begin(), xml.end(), re), std::sregex_iterator());
  }
  std::set<std::string> nics() const {
    std::set<std::string> found;
    std::regex re("<object type=\"OSDev\"[^>]*name=\"([^\"]+)\"[^>]*osdev_type=\"[23]\"");
    for (std::sregex_iterator it(xml.begin(), xml.end(), re), end; it != end; ++it) {
      found.insert((*it)[1]);
    }
    return found;
  }
  std::string xml;
};

template <typename T, typename F>
std::set<int> osIndexes(const std::vector<T>& items, F get) {
  std::set<int> out;
  for (const auto& item : items) out.insert(get(item));
  return out;
}

struct Detector {
  const char* name;
  StatusOr<HostTopology> (*detect)(const std::string&);
  // The fallback lists every online PU and node, as `lstopo --disallowed` does; hwloc, like
  // plain lstopo, hides what this process's cgroup forbids.
  const char* lstopoFlags;
  friend void PrintTo(const Detector& d, std::ostream* os) { *os << d.name; }
};

class DetectTest : public ::testing::TestWithParam<Detector> {};

TEST_P(DetectTest, MatchesLstopo) {
  if (!capture("command -v lstopo-no-graphics >/dev/null")) {
    GTEST_SKIP() << "lstopo-no-graphics is not installed (Debian: apt install hwloc)";
  }
  auto xml = capture(std::string("lstopo-no-graphics --of xml ") + GetParam().lstopoFlags + " -");
  ASSERT_TRUE(xml.has_value()) << "lstopo-no-graphics --of xml failed";
  Lstopo ref{*xml};
  auto topo = GetParam().detect("");
  ASSERT_TRUE(topo.ok()) << topo.status().toString();
  SCOPED_TRACE(topo->source);

  EXPECT_EQ(topo->packages.size(), ref.count("Package"));
  EXPECT_EQ(topo->numaNodes.size(), ref.count("NUMANode"));
  EXPECT_EQ(topo->cores.size(), ref.count("Core"));
  EXPECT_EQ(topo->pus.size(), ref.count("PU"));
  EXPECT_EQ(std::set<int>(topo->pus.begin(), topo->pus.end()), ref.objects("PU"));
  EXPECT_EQ(osIndexes(topo->numaNodes, [](const NumaNode& n) { return n.osIndex; }),
            ref.objects("NUMANode"));
  EXPECT_EQ(osIndexes(topo->packages, [](const CpuPackage& p) { return p.osIndex; }),
            ref.objects("Package"));
  std::set<std::string> nics;
  for (const auto& n : topo->nics) nics.insert(n.name);
  EXPECT_EQ(nics, ref.nics());

  // Every PU sits in exactly one core, and cores point at real packages.
  size_t pusInCores = 0;
  for (const auto& c : topo->cores) {
    pusInCores += c.pus.size();
    EXPECT_GE(c.package, 0);
    EXPECT_LT(c.package, static_cast<int>(topo->packages.size()));
  }
  EXPECT_EQ(pusInCores, topo->pus.size());

  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_EQ(topo->binding.size(), static_cast<size_t>(CPU_COUNT(&set)));
  EXPECT_FALSE(topo->hostname.empty());
  EXPECT_EQ(topo->nodeId, topo->hostname);
  EXPECT_FALSE(topo->nodeIdOverridden);
}

TEST_P(DetectTest, NodeIdOverridesTheHost) {
  auto topo = GetParam().detect("node7");
  ASSERT_TRUE(topo.ok()) << topo.status().toString();
  EXPECT_EQ(topo->nodeId, "node7");
  EXPECT_TRUE(topo->nodeIdOverridden);
}

INSTANTIATE_TEST_SUITE_P(Detectors, DetectTest,
                         ::testing::Values(Detector{"default", detectHostTopology, ""},
                                           Detector{"sysfs", detectHostTopologyFromSysfs,
                                                    "--disallowed"}),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- cpulists and the wire form ----

TEST(CpuList, FormatsAndParses) {
  EXPECT_EQ(formatCpuList({}), "");
  EXPECT_EQ(formatCpuList({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
  std::vector<int> cpus;
  ASSERT_TRUE(parseCpuList("10-11,0-3,8,2", &cpus));
  EXPECT_EQ(cpus, (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  ASSERT_TRUE(parseCpuList("", &cpus));
  EXPECT_TRUE(cpus.empty());
  for (const char* bad : {"a", "1-", "-1", "3-1", "1,,2", "1,", "0-65536", "99999999999", " 1"}) {
    EXPECT_FALSE(parseCpuList(bad, &cpus)) << bad;
  }
  ASSERT_TRUE(parseCpuList("0-65535,0-65535", &cpus));  // repeats cost nothing extra
  EXPECT_EQ(cpus.size(), 65536u);
}

HostTopology sampleHost() {
  HostTopology t;
  t.hostname = "gpu-node-17";
  t.bootId = "79081cfd-97b2-4abb-a52f-66edb9d423d9";
  t.nodeId = "node1";
  t.nodeIdOverridden = true;
  t.source = "hwloc 2.9.0";
  t.pid = 4'000'000'123;
  t.memoryBytes = uint64_t{1} << 40;
  t.pus = {0, 1, 2, 3, 4, 5, 6, 7};
  t.packages = {{0, "AMD EPYC 7763", {0, 1, 2, 3}}, {1, "AMD EPYC 7763", {4, 5, 6, 7}}};
  t.numaNodes = {{0, uint64_t{3} << 33, {0, 1, 2, 3}}, {1, 0, {4, 5, 6, 7}}, {2, 1 << 20, {}}};
  t.cores = {{0, 0, {0, 1}}, {1, 0, {2, 3}}, {0, 1, {4, 5}}, {1, 1, {6, 7}}};
  t.gpus = {{"0000:17:00.0", "NVIDIA H100", {"cuda0", "nvml0"}, 0, {0, 1, 2, 3}},
            {"", "PCI 1002:740f", {}, -1, {}}};
  t.nics = {
      {"mlx5_0", "openfabrics", "0000:3b:00.0", "b8ce:f603:00d2:7b9a", 1, {4, 5, 6, 7}, -1, 31.5},
      {"eth0", "net", "0000:00:03.0", "02:fc:00:00:00:01", -1, {}, 100000, 7.877}};
  t.binding = {2, 3};
  return t;
}

TEST(TopologyWire, RoundTrips) {
  HostTopology t = sampleHost();
  auto back = decodeHostTopology(encodeHostTopology(t));
  ASSERT_TRUE(back.ok()) << back.status().toString();
  EXPECT_EQ(*back, t);

  auto here = detectHostTopology();
  ASSERT_TRUE(here.ok()) << here.status().toString();
  auto hereBack = decodeHostTopology(encodeHostTopology(*here));
  ASSERT_TRUE(hereBack.ok()) << hereBack.status().toString();
  EXPECT_EQ(*hereBack, *here);
}

TEST(TopologyWire, RejectsEveryTruncation) {
  std::vector<uint8_t> blob = encodeHostTopology(sampleHost());
  for (size_t len = 0; len < blob.size(); ++len) {
    std::vector<uint8_t> cut(blob.begin(), blob.begin() + len);
    EXPECT_FALSE(decodeHostTopology(cut).ok()) << "accepted the first " << len << " bytes";
  }
  blob.push_back(0);
  EXPECT_FALSE(decodeHostTopology(blob).ok()) << "accepted a trailing byte";
}

// Overwrites the u32 at `offset` (little-endian).
void poke(std::vector<uint8_t>& blob, size_t offset, uint32_t v) {
  for (int i = 0; i < 4; ++i) blob[offset + i] = static_cast<uint8_t>(v >> (8 * i));
}

TEST(TopologyWire, RejectsCorruptRecords) {
  const std::vector<uint8_t> good = encodeHostTopology(sampleHost());
  auto rejects = [](std::vector<uint8_t> blob) { return !decodeHostTopology(blob).ok(); };
  std::vector<uint8_t> blob = good;
  poke(blob, 0, 0xdeadbeef);
  EXPECT_TRUE(rejects(blob)) << "bad magic";
  blob = good;
  poke(blob, 4, 99);
  EXPECT_TRUE(rejects(blob)) << "future version";
  blob = good;
  poke(blob, 8, 0xffffffff);
  EXPECT_TRUE(rejects(blob)) << "hostname length past the end";

  // A bare header claiming 2^32-1 packages must fail at once, not allocate.
  HostTopology empty;
  empty.nodeId = "n";
  blob = encodeHostTopology(empty);
  size_t packagesAt = blob.size() - 4 * 6;  // counts of packages..nics, then the binding
  poke(blob, packagesAt, 0xffffffff);
  EXPECT_TRUE(rejects(blob)) << "absurd package count";
  blob = encodeHostTopology(empty);
  poke(blob, packagesAt, 1000);
  EXPECT_TRUE(rejects(blob)) << "count larger than the record";

  HostTopology t = sampleHost();
  t.cores[0].package = 5;
  EXPECT_TRUE(rejects(encodeHostTopology(t))) << "core in a missing package";
  t = sampleHost();
  t.nodeId.clear();
  EXPECT_TRUE(rejects(encodeHostTopology(t))) << "no node id";
  t = sampleHost();
  t.hostname.assign(300, 'h');
  EXPECT_TRUE(rejects(encodeHostTopology(t))) << "name over its cap";

  // Random damage never crashes or reads out of bounds; whatever decodes re-encodes cleanly.
  std::mt19937 rng(6);
  for (int trial = 0; trial < 2000; ++trial) {
    blob = good;
    for (int k = 0; k < 3; ++k) blob[rng() % blob.size()] = static_cast<uint8_t>(rng());
    auto decoded = decodeHostTopology(blob);
    if (decoded.ok()) {
      EXPECT_TRUE(decodeHostTopology(encodeHostTopology(*decoded)).ok());
    }
  }
}

// ---- the job view ----

// A job of emulated nodes on one host: ranksPerNode[i] ranks on "node<i>", one process each.
std::vector<HostTopology> emulatedJob(const std::vector<int>& ranksPerNode) {
  std::vector<HostTopology> ranks;
  for (size_t node = 0; node < ranksPerNode.size(); ++node) {
    for (int i = 0; i < ranksPerNode[node]; ++i) {
      HostTopology h;
      h.hostname = "vm";
      h.bootId = "boot";
      h.nodeId = "node" + std::to_string(node);
      h.nodeIdOverridden = true;
      h.pid = 1000 + static_cast<int64_t>(ranks.size());
      ranks.push_back(std::move(h));
    }
  }
  return ranks;
}

struct Layout {
  const char* name;
  std::vector<int> ranksPerNode;
  friend void PrintTo(const Layout& l, std::ostream* os) { *os << l.name; }
};

class LayoutTest : public ::testing::TestWithParam<Layout> {};

TEST_P(LayoutTest, PlacesRanks) {
  const std::vector<int>& layout = GetParam().ranksPerNode;
  auto job = JobTopology::build(emulatedJob(layout));
  ASSERT_TRUE(job.ok()) << job.status().toString();
  ASSERT_EQ(job->numNodes(), static_cast<int>(layout.size()));
  std::vector<int> leaders;
  int rank = 0;
  for (size_t node = 0; node < layout.size(); ++node) {
    leaders.push_back(rank);
    EXPECT_EQ(job->nodeName(node), "node" + std::to_string(node));
    EXPECT_EQ(job->ranksOfNode(node).size(), static_cast<size_t>(layout[node]));
    for (int local = 0; local < layout[node]; ++local, ++rank) {
      EXPECT_EQ(job->nodeOf(rank), static_cast<int>(node)) << "rank " << rank;
      EXPECT_EQ(job->localRank(rank), local) << "rank " << rank;
      EXPECT_EQ(job->localSize(rank), layout[node]) << "rank " << rank;
      EXPECT_EQ(job->isLeader(rank), local == 0) << "rank " << rank;
    }
  }
  EXPECT_EQ(job->size(), rank);
  EXPECT_EQ(job->leaders(), leaders);
  for (int a = 0; a < job->size(); ++a) {
    for (int b = 0; b < job->size(); ++b) {
      LinkClass want = a == b                             ? LinkClass::kSelf
                       : job->nodeOf(a) == job->nodeOf(b) ? LinkClass::kSameNode
                                                          : LinkClass::kCrossNode;
      EXPECT_EQ(job->link(a, b), want) << a << "-" << b;
      EXPECT_TRUE(job->sameHost(a, b));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, LayoutTest,
                         ::testing::Values(Layout{"2x2", {2, 2}}, Layout{"2x3", {3, 3}},
                                           Layout{"3x1", {1, 1, 1}}, Layout{"1x4", {4}},
                                           Layout{"3plus1", {3, 1}}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(JobTopology, NodesFollowTheirLowestRank) {
  // Ranks interleaved over two nodes: node 0 is the node of rank 0 whatever its name.
  std::vector<HostTopology> ranks = emulatedJob({4});
  for (int r : {0, 2}) ranks[r].nodeId = "b";
  for (int r : {1, 3}) ranks[r].nodeId = "a";
  auto job = JobTopology::build(ranks);
  ASSERT_TRUE(job.ok()) << job.status().toString();
  EXPECT_EQ(job->nodeName(0), "b");
  EXPECT_EQ(job->leaders(), (std::vector<int>{0, 1}));
  EXPECT_EQ(job->ranksOfNode(1), (std::vector<int>{1, 3}));
  EXPECT_EQ(job->localRank(3), 1);
  EXPECT_EQ(job->link(0, 2), LinkClass::kSameNode);
  EXPECT_EQ(job->link(0, 1), LinkClass::kCrossNode);
}

TEST(JobTopology, RealHostsAndProcesses) {
  // Two hosts that share a hostname (cloned VMs) stay two nodes; two ranks in one process are
  // a same-process link.
  std::vector<HostTopology> ranks(3);
  for (auto& h : ranks) h.hostname = h.nodeId = "vm";
  ranks[0].bootId = ranks[1].bootId = "boot-a";
  ranks[2].bootId = "boot-b";
  ranks[0].pid = ranks[1].pid = ranks[2].pid = 42;
  auto job = JobTopology::build(ranks);
  ASSERT_TRUE(job.ok()) << job.status().toString();
  EXPECT_EQ(job->numNodes(), 2);
  EXPECT_EQ(job->nodeName(0), "vm#0");
  EXPECT_EQ(job->nodeName(1), "vm#1");
  EXPECT_EQ(job->link(0, 1), LinkClass::kSameProcess);
  EXPECT_EQ(job->link(1, 2), LinkClass::kCrossNode);
  EXPECT_FALSE(job->sameHost(1, 2));
  EXPECT_STREQ(linkClassName(job->link(1, 2)), "network");
}

TEST(JobTopology, RejectsANodeIdSpanningHosts) {
  std::vector<HostTopology> ranks = emulatedJob({2});
  ranks[1].bootId = "another-host";
  auto job = JobTopology::build(ranks);
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("spans two hosts"), std::string::npos)
      << job.status().toString();
  EXPECT_FALSE(JobTopology::build({}).ok());
}

}  // namespace
}  // namespace plexus
