// Topology records: cpulists, the wire form ranks publish, and the job-wide view. Detection
// lives in topology_hwloc.cc and topology_sysfs.cc.
#include "src/topology.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <utility>

#include "src/bytes.h"
#include "src/topology_detect.h"

namespace plexus {
namespace {

constexpr uint32_t kTopologyMagic = 0x50545850;  // "PXTP"
constexpr uint32_t kTopologyVersion = 1;
// Caps on what a peer's record may hold: far above any real machine, far below the store's
// value cap, so a corrupt or hostile blob fails fast instead of allocating.
constexpr size_t kMaxNameBytes = 256;
constexpr size_t kMaxCpuListBytes = 512 * 1024;
constexpr uint32_t kMaxDevices = 4096;   // packages, NUMA nodes, GPUs, NICs, names per GPU
constexpr uint32_t kMaxCores = 1 << 16;  // cores

void putU64(ByteWriter& w, uint64_t v) {
  w.u32(static_cast<uint32_t>(v));
  w.u32(static_cast<uint32_t>(v >> 32));
}
uint64_t getU64(ByteReader& r) {
  uint64_t lo = r.u32();
  return lo | (uint64_t{r.u32()} << 32);
}
void putI32(ByteWriter& w, int v) { w.u32(static_cast<uint32_t>(v)); }
int getI32(ByteReader& r) { return static_cast<int32_t>(r.u32()); }

// Cpulists travel as text: compact for the usual contiguous ranges, and one parser (with its
// caps) serves sysfs and the wire.
void putCpus(ByteWriter& w, const std::vector<int>& cpus) { w.str(formatCpuList(cpus)); }
std::vector<int> getCpus(ByteReader& r, bool* good) {
  std::vector<int> cpus;
  std::string text = r.str(kMaxCpuListBytes);
  if (r.ok() && !parseCpuList(text, &cpus)) *good = false;
  return cpus;
}

// Reads a count and checks it against `cap`; the elements are read one by one afterwards, so a
// lying count fails on the first missing element rather than on a huge reservation.
uint32_t getCount(ByteReader& r, uint32_t cap, bool* good) {
  uint32_t n = r.u32();
  if (n > cap) *good = false;
  return *good ? n : 0;
}

// A NUMA index and a package index are either -1 (unknown) or a small non-negative number.
bool plausibleIndex(int v) { return v >= -1 && v <= kMaxCpuIndex; }

}  // namespace

std::string formatCpuList(const std::vector<int>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

bool parseCpuList(const std::string& text, std::vector<int>* out) {
  // A bitmap bounds the work by kMaxCpuIndex whatever ranges the text repeats.
  std::vector<bool> seen(kMaxCpuIndex + 1, false);
  auto number = [](const char*& p, const char* end, int* v) {
    auto [next, ec] = std::from_chars(p, end, *v);
    if (ec != std::errc() || next == p || *v < 0 || *v > kMaxCpuIndex) return false;
    p = next;
    return true;
  };
  const char* p = text.data();
  const char* end = p + text.size();
  int top = -1;
  while (p < end) {
    int lo = 0, hi = 0;
    if (!number(p, end, &lo)) return false;
    hi = lo;
    if (p < end && *p == '-') {
      ++p;
      if (!number(p, end, &hi) || hi < lo) return false;
    }
    for (int c = lo; c <= hi; ++c) seen[c] = true;
    top = std::max(top, hi);
    if (p < end) {
      if (*p != ',' || p + 1 == end) return false;
      ++p;
    }
  }
  out->clear();
  for (int c = 0; c <= top; ++c) {
    if (seen[c]) out->push_back(c);
  }
  return true;
}

// The largest PCI link bandwidth a record carries, in MB/s (4 PB/s: far beyond any link).
constexpr uint32_t kMaxLinkMBps = 4'000'000'000u;

std::vector<uint8_t> encodeHostTopology(const HostTopology& t) {
  ByteWriter w;
  w.u32(kTopologyMagic);
  w.u32(kTopologyVersion);
  w.str(t.hostname);
  w.str(t.bootId);
  w.str(t.nodeId);
  w.u32(t.nodeIdOverridden ? 1 : 0);
  w.str(t.source);
  putU64(w, static_cast<uint64_t>(t.pid));
  putU64(w, t.memoryBytes);
  putCpus(w, t.pus);
  w.u32(static_cast<uint32_t>(t.packages.size()));
  for (const auto& p : t.packages) {
    putI32(w, p.osIndex);
    w.str(p.model);
    putCpus(w, p.cpus);
  }
  w.u32(static_cast<uint32_t>(t.numaNodes.size()));
  for (const auto& n : t.numaNodes) {
    putI32(w, n.osIndex);
    putU64(w, n.memoryBytes);
    putCpus(w, n.cpus);
  }
  w.u32(static_cast<uint32_t>(t.cores.size()));
  for (const auto& c : t.cores) {
    putI32(w, c.osIndex);
    putI32(w, c.package);
    putCpus(w, c.pus);
  }
  w.u32(static_cast<uint32_t>(t.gpus.size()));
  for (const auto& g : t.gpus) {
    w.str(g.pciBusId);
    w.str(g.model);
    w.u32(static_cast<uint32_t>(g.names.size()));
    for (const auto& name : g.names) w.str(name);
    putI32(w, g.numaNode);
    putCpus(w, g.localCpus);
  }
  w.u32(static_cast<uint32_t>(t.nics.size()));
  for (const auto& n : t.nics) {
    w.str(n.name);
    w.str(n.kind);
    w.str(n.pciBusId);
    w.str(n.address);
    putI32(w, n.numaNode);
    putCpus(w, n.localCpus);
    putU64(w, static_cast<uint64_t>(n.speedMbps));
    w.u32(static_cast<uint32_t>(
        std::lround(std::clamp(n.pciLinkGBps * 1000.0, 0.0, double{kMaxLinkMBps}))));  // MB/s
  }
  putCpus(w, t.binding);
  return w.take();
}

StatusOr<HostTopology> decodeHostTopology(const std::vector<uint8_t>& blob) {
  ByteReader r(blob);
  bool good = true;
  HostTopology t;
  if (r.u32() != kTopologyMagic || r.u32() != kTopologyVersion) {
    return invalidArgument("topology record has the wrong magic or version (mixed Plexus builds?)");
  }
  t.hostname = r.str(kMaxNameBytes);
  t.bootId = r.str(kMaxNameBytes);
  t.nodeId = r.str(kMaxNameBytes);
  const uint32_t overridden = r.u32();  // a flag: 0 or 1, nothing else (found by fuzzing)
  good = good && overridden <= 1;
  t.nodeIdOverridden = overridden == 1;
  t.source = r.str(kMaxNameBytes);
  t.pid = static_cast<int64_t>(getU64(r));
  t.memoryBytes = getU64(r);
  t.pus = getCpus(r, &good);
  for (uint32_t i = 0, n = getCount(r, kMaxDevices, &good); i < n && r.ok(); ++i) {
    CpuPackage& p = t.packages.emplace_back();
    p.osIndex = getI32(r);
    p.model = r.str(kMaxNameBytes);
    p.cpus = getCpus(r, &good);
  }
  for (uint32_t i = 0, n = getCount(r, kMaxDevices, &good); i < n && r.ok(); ++i) {
    NumaNode& node = t.numaNodes.emplace_back();
    node.osIndex = getI32(r);
    node.memoryBytes = getU64(r);
    node.cpus = getCpus(r, &good);
  }
  for (uint32_t i = 0, n = getCount(r, kMaxCores, &good); i < n && r.ok(); ++i) {
    CpuCore& c = t.cores.emplace_back();
    c.osIndex = getI32(r);
    c.package = getI32(r);
    c.pus = getCpus(r, &good);
    good = good && c.package >= -1 && c.package < static_cast<int>(t.packages.size());
  }
  for (uint32_t i = 0, n = getCount(r, kMaxDevices, &good); i < n && r.ok(); ++i) {
    GpuDevice& g = t.gpus.emplace_back();
    g.pciBusId = r.str(kMaxNameBytes);
    g.model = r.str(kMaxNameBytes);
    for (uint32_t k = 0, m = getCount(r, kMaxDevices, &good); k < m && r.ok(); ++k) {
      g.names.push_back(r.str(kMaxNameBytes));
    }
    g.numaNode = getI32(r);
    g.localCpus = getCpus(r, &good);
    good = good && plausibleIndex(g.numaNode);
  }
  for (uint32_t i = 0, n = getCount(r, kMaxDevices, &good); i < n && r.ok(); ++i) {
    NicDevice& nic = t.nics.emplace_back();
    nic.name = r.str(kMaxNameBytes);
    nic.kind = r.str(kMaxNameBytes);
    nic.pciBusId = r.str(kMaxNameBytes);
    nic.address = r.str(kMaxNameBytes);
    nic.numaNode = getI32(r);
    nic.localCpus = getCpus(r, &good);
    nic.speedMbps = static_cast<int64_t>(getU64(r));
    const uint32_t linkMBps = r.u32();
    good = good && linkMBps <= kMaxLinkMBps;  // what the encoder can write (found by fuzzing)
    nic.pciLinkGBps = linkMBps / 1000.0;
    good = good && plausibleIndex(nic.numaNode) && nic.speedMbps >= -1;
  }
  t.binding = getCpus(r, &good);
  if (!r.ok() || !good || !r.atEnd() || t.nodeId.empty()) {
    return invalidArgument("malformed topology record (" + std::to_string(blob.size()) +
                           " bytes): truncated, oversized or inconsistent");
  }
  return t;
}

StatusOr<HostTopology> detectHostTopology(const std::string& nodeId) {
#if PLEXUS_HAVE_HWLOC
  return topology_detail::detectWithHwloc(nodeId);
#else
  return detectHostTopologyFromSysfs(nodeId);
#endif
}

const char* linkClassName(LinkClass link) {
  switch (link) {
    case LinkClass::kSelf:
      return "self";
    case LinkClass::kSameProcess:
      return "process";
    case LinkClass::kSameNode:
      return "node";
    case LinkClass::kCrossNode:
      return "network";
  }
  return "?";
}

StatusOr<JobTopology> JobTopology::build(std::vector<HostTopology> ranks) {
  if (ranks.empty()) return invalidArgument("a job topology needs at least one rank");
  JobTopology job;
  job.hosts_ = std::move(ranks);
  auto hostKey = [](const HostTopology& h) { return h.hostname + "/" + h.bootId; };
  // An emulated node is named by its id; a real one by its host, so that two hosts that share
  // a hostname (containers, cloned VMs) stay two nodes.
  auto nodeKey = [&](const HostTopology& h) {
    return h.nodeIdOverridden ? "id:" + h.nodeId : "host:" + hostKey(h);
  };
  std::map<std::string, int> nodeIndex;
  std::vector<int> firstRankOfNode;
  for (int rank = 0; rank < job.size(); ++rank) {
    const HostTopology& h = job.hosts_[rank];
    auto [it, added] = nodeIndex.try_emplace(nodeKey(h), job.numNodes());
    if (added) {
      job.ranksOfNode_.emplace_back();
      job.leaders_.push_back(rank);
      firstRankOfNode.push_back(rank);
    } else if (hostKey(job.hosts_[firstRankOfNode[it->second]]) != hostKey(h)) {
      const HostTopology& first = job.hosts_[firstRankOfNode[it->second]];
      return invalidArgument("node id '" + h.nodeId + "' spans two hosts: rank " +
                             std::to_string(firstRankOfNode[it->second]) + " on " + first.hostname +
                             " and rank " + std::to_string(rank) + " on " + h.hostname +
                             " (PLEXUS_NODE_ID must differ between hosts)");
    }
    job.nodeOfRank_.push_back(it->second);
    job.localRank_.push_back(static_cast<int>(job.ranksOfNode_[it->second].size()));
    job.ranksOfNode_[it->second].push_back(rank);
  }
  std::map<std::string, int> nameCount;
  for (int leader : job.leaders_) ++nameCount[job.hosts_[leader].nodeId];
  for (int node = 0; node < job.numNodes(); ++node) {
    const std::string& id = job.hosts_[job.leaders_[node]].nodeId;
    job.nodeNames_.push_back(nameCount[id] > 1 ? id + "#" + std::to_string(node) : id);
  }
  return job;
}

bool JobTopology::sameHost(int a, int b) const {
  const HostTopology& x = hosts_.at(a);
  const HostTopology& y = hosts_.at(b);
  return x.hostname == y.hostname && x.bootId == y.bootId;
}

LinkClass JobTopology::link(int a, int b) const {
  if (a == b) return LinkClass::kSelf;
  if (nodeOf(a) != nodeOf(b)) return LinkClass::kCrossNode;
  bool oneProcess = sameHost(a, b) && hosts_.at(a).pid == hosts_.at(b).pid;
  return oneProcess ? LinkClass::kSameProcess : LinkClass::kSameNode;
}

}  // namespace plexus
