// The /proc and /sys host detector: the fallback for builds without hwloc, and the source of
// the few facts hwloc does not report (host identity, Ethernet port speed). Linux only.
#include <dirent.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <utility>

#include "src/config.h"
#include "src/topology.h"
#include "src/topology_detect.h"

namespace plexus {
namespace topology_detail {
namespace {

constexpr const char* kFallbackNote =
    "/proc+/sys fallback (no hwloc in this build: PCI link speeds and non-Linux hosts are "
    "unsupported; install libhwloc-dev and rebuild)";

std::vector<std::string> listDir(const std::string& path) {
  std::vector<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(path.c_str()), ::closedir);
  if (!dir) return names;
  while (dirent* entry = ::readdir(dir.get())) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

int readInt(const std::string& path, int fallback) {
  std::string text = readFirstLine(path);
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  return text.empty() || *end != '\0' || v < INT_MIN || v > INT_MAX ? fallback
                                                                    : static_cast<int>(v);
}

std::vector<int> readCpuList(const std::string& path) {
  std::vector<int> cpus;
  if (!parseCpuList(readFirstLine(path), &cpus)) cpus.clear();
  return cpus;
}

// "model name" per "physical id" from /proc/cpuinfo (x86 names both; others may name neither).
std::map<int, std::string> cpuModels() {
  std::map<int, std::string> models;
  std::ifstream in("/proc/cpuinfo");
  std::string line, model;
  auto value = [](const std::string& l) {
    size_t colon = l.find(':');
    return colon == std::string::npos || colon + 2 > l.size() ? std::string() : l.substr(colon + 2);
  };
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) model = value(line);
    if (line.rfind("physical id", 0) == 0)
      models.try_emplace(std::atoi(value(line).c_str()), model);
  }
  return models;
}

// Where a PCI function sits: its bus id, closest NUMA node and local PUs. `devicePath` is a
// sysfs device directory at or below the PCI function (virtio devices hang one level under it).
struct PciLocality {
  std::string busId;
  int numaNode = -1;
  std::vector<int> cpus;
};

PciLocality pciLocality(const std::string& devicePath, int onlyNumaNode) {
  PciLocality loc;
  char resolved[PATH_MAX];
  if (::realpath(devicePath.c_str(), resolved) == nullptr) return loc;
  static const std::regex kBusId("[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]");
  std::string path = resolved, pciDir;
  for (size_t start = 0; start < path.size();) {
    size_t slash = path.find('/', start + 1);
    std::string part =
        path.substr(start + 1, slash == std::string::npos ? slash : slash - start - 1);
    if (std::regex_match(part, kBusId)) {
      loc.busId = part;
      pciDir = path.substr(0, slash);
    }
    start = slash == std::string::npos ? path.size() : slash;
  }
  if (loc.busId.empty()) return loc;
  loc.numaNode = readInt(pciDir + "/numa_node", -1);
  // The kernel says -1 when the platform does not tell; on a one-node machine it is that node.
  if (loc.numaNode < 0) loc.numaNode = onlyNumaNode;
  loc.cpus = readCpuList(pciDir + "/local_cpulist");
  return loc;
}

void detectCpus(HostTopology* t) {
  const std::string cpuRoot = "/sys/devices/system/cpu/";
  t->pus = readCpuList(cpuRoot + "online");
  if (t->pus.empty()) {
    for (long i = 0, n = ::sysconf(_SC_NPROCESSORS_ONLN); i < n; ++i) t->pus.push_back(int(i));
  }
  std::map<int, std::string> models = cpuModels();
  std::map<int, int> packageIndex;               // physical_package_id -> index
  std::map<std::pair<int, int>, int> coreIndex;  // (package id, core_id) -> index
  for (int pu : t->pus) {
    std::string topo = cpuRoot + "cpu" + std::to_string(pu) + "/topology/";
    int pkgId = readInt(topo + "physical_package_id", 0);
    int coreId = readInt(topo + "core_id", pu);
    auto [pkg, newPkg] = packageIndex.try_emplace(pkgId, static_cast<int>(t->packages.size()));
    if (newPkg) t->packages.push_back({pkgId, models.count(pkgId) ? models[pkgId] : "", {}});
    t->packages[pkg->second].cpus.push_back(pu);
    auto [core, newCore] =
        coreIndex.try_emplace({pkgId, coreId}, static_cast<int>(t->cores.size()));
    if (newCore) t->cores.push_back({coreId, pkg->second, {}});
    t->cores[core->second].pus.push_back(pu);
  }
}

void detectNuma(HostTopology* t) {
  const std::string nodeRoot = "/sys/devices/system/node/";
  std::vector<int> ids = readCpuList(nodeRoot + "online");
  for (int id : ids) {
    std::string dir = nodeRoot + "node" + std::to_string(id) + "/";
    NumaNode node{id, 0, readCpuList(dir + "cpulist")};
    // "Node 0 MemTotal:       6252760 kB"
    std::ifstream in(dir + "meminfo");
    std::string line;
    while (std::getline(in, line)) {
      size_t at = line.find("MemTotal:");
      if (at != std::string::npos)
        node.memoryBytes = std::strtoull(&line[at + 9], nullptr, 10) << 10;
    }
    t->memoryBytes += node.memoryBytes;
    t->numaNodes.push_back(std::move(node));
  }
  if (t->numaNodes.empty()) {  // kernel without NUMA support: one node holds everything
    std::ifstream in("/proc/meminfo");
    std::string key;
    uint64_t kib = 0;
    in >> key >> kib;
    t->memoryBytes = key == "MemTotal:" ? kib << 10 : 0;
    t->numaNodes.push_back({0, t->memoryBytes, t->pus});
  }
}

void detectDevices(HostTopology* t) {
  int onlyNode = t->numaNodes.size() == 1 ? t->numaNodes[0].osIndex : -1;
  for (const std::string& name : listDir("/sys/class/net")) {
    PciLocality loc = pciLocality("/sys/class/net/" + name + "/device", onlyNode);
    if (loc.busId.empty()) continue;  // virtual: loopback, veth, bridges, tunnels
    t->nics.push_back({name, "net", loc.busId, readFirstLine("/sys/class/net/" + name + "/address"),
                       loc.numaNode, loc.cpus, netSpeedMbps(name), 0});
  }
  for (const std::string& name : listDir("/sys/class/infiniband")) {
    std::string dir = "/sys/class/infiniband/" + name;
    PciLocality loc = pciLocality(dir + "/device", onlyNode);
    t->nics.push_back({name, "openfabrics", loc.busId, readFirstLine(dir + "/node_guid"),
                       loc.numaNode, loc.cpus, -1, 0});
  }
  const std::string pciRoot = "/sys/bus/pci/devices/";
  for (const std::string& busId : listDir(pciRoot)) {
    // "0x030200": class 0x03 (display), subclass 0x02 (3D), programming interface 0x00.
    unsigned cls = std::strtoul(readFirstLine(pciRoot + busId + "/class").c_str(), nullptr, 16);
    std::string vendor = readFirstLine(pciRoot + busId + "/vendor");
    std::string device = readFirstLine(pciRoot + busId + "/device");
    if (!isGpuPciFunction(cls >> 8, std::strtoul(vendor.c_str(), nullptr, 16))) continue;
    PciLocality loc = pciLocality(pciRoot + busId, onlyNode);
    std::string model = "PCI " + vendor.substr(std::min<size_t>(2, vendor.size())) + ":" +
                        device.substr(std::min<size_t>(2, device.size()));
    t->gpus.push_back({busId, model, {}, loc.numaNode, loc.cpus});
  }
}

}  // namespace

std::string readFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
  return line;
}

void fillIdentity(const std::string& nodeId, HostTopology* topo) {
  char name[HOST_NAME_MAX + 1] = {};
  topo->hostname = ::gethostname(name, sizeof(name) - 1) == 0 ? name : "unknown";
  topo->bootId = readFirstLine("/proc/sys/kernel/random/boot_id");
  topo->pid = ::getpid();
  topo->nodeIdOverridden = !nodeId.empty();
  topo->nodeId = nodeId.empty() ? topo->hostname : nodeId;
}

bool isGpuPciFunction(unsigned classId, unsigned vendorId) {
  constexpr unsigned kDisplayVga = 0x0300, kDisplay3d = 0x0302;
  constexpr unsigned kNvidia = 0x10de, kAmd = 0x1002;
  return (classId == kDisplayVga || classId == kDisplay3d) &&
         (vendorId == kNvidia || vendorId == kAmd);
}

int64_t netSpeedMbps(const std::string& name) {
  std::string text = readFirstLine("/sys/class/net/" + name + "/speed");
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  return text.empty() || *end != '\0' || v <= 0 ? -1 : v;
}

}  // namespace topology_detail

size_t lastLevelCacheBytes() {
  static const size_t bytes = [] {
    size_t largest = 0;
    int highest = 0;
    for (int i = 0;; ++i) {
      const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i);
      const std::string level = topology_detail::readFirstLine(dir + "/level");
      if (level.empty()) break;
      size_t size = 0;
      const int l = std::atoi(level.c_str());
      if (l >= highest && parseByteSize(topology_detail::readFirstLine(dir + "/size"), &size)) {
        highest = l;
        largest = size;
      }
    }
    return largest > 0 ? largest : kDefaultLastLevelCacheBytes;
  }();
  return bytes;
}

StatusOr<HostTopology> detectHostTopologyFromSysfs(const std::string& nodeId) {
  HostTopology t;
  topology_detail::fillIdentity(nodeId, &t);
  t.source = topology_detail::kFallbackNote;
  topology_detail::detectCpus(&t);
  topology_detail::detectNuma(&t);
  topology_detail::detectDevices(&t);
  // Sized for every index a cpulist may hold: cpu_set_t alone stops at 1024 CPUs.
  constexpr int kCpus = kMaxCpuIndex + 1;
  std::unique_ptr<cpu_set_t, void (*)(cpu_set_t*)> set(CPU_ALLOC(kCpus),
                                                       [](cpu_set_t* s) { CPU_FREE(s); });
  size_t bytes = CPU_ALLOC_SIZE(kCpus);
  CPU_ZERO_S(bytes, set.get());
  if (set == nullptr || ::sched_getaffinity(0, bytes, set.get()) != 0) {
    return internalError("sched_getaffinity failed while detecting this host's topology");
  }
  for (int cpu = 0; cpu < kCpus; ++cpu) {
    if (CPU_ISSET_S(cpu, bytes, set.get())) t.binding.push_back(cpu);
  }
  return t;
}

}  // namespace plexus
