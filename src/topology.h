// Topology: what one host looks like (packages, NUMA nodes, cores, GPUs, NICs and where they sit
// on PCI), a compact wire form that ranks publish through bootstrap, and the job-wide view built
// from every rank's record (which node each rank is on, local ranks, node leaders, and the class
// of every rank-to-rank link).
//
// Nodes. A node is a shared-memory domain. By default it is the host (hostname, told apart from
// a same-named host by the kernel's boot id); PLEXUS_NODE_ID (set by plexusrun --nodes and by
// bench/netsim) splits one host into several emulated nodes so that multi-node code paths run on
// a laptop. One node id may never span two hosts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "plexus/status.h"

namespace plexus {

/// A CPU package (socket).
struct CpuPackage {
  int osIndex = -1;
  std::string model;      ///< e.g. "AMD EPYC 7763"; empty when unknown
  std::vector<int> cpus;  ///< OS indexes of its PUs, ascending

  friend bool operator==(const CpuPackage&, const CpuPackage&) = default;
};

/// A NUMA node and the memory it holds.
struct NumaNode {
  int osIndex = -1;
  uint64_t memoryBytes = 0;  ///< local memory; 0 when unknown
  std::vector<int> cpus;     ///< PUs local to it, ascending (empty for CPU-less memory)

  friend bool operator==(const NumaNode&, const NumaNode&) = default;
};

/// A physical core and its hardware threads.
struct CpuCore {
  int osIndex = -1;
  int package = -1;      ///< index into HostTopology::packages, -1 when unknown
  std::vector<int> pus;  ///< OS indexes of its PUs, ascending

  friend bool operator==(const CpuCore&, const CpuCore&) = default;
};

/// A GPU (or other accelerator) found through its OS devices (CUDA, NVML, OpenCL, ...), or as a
/// display/3D PCI function of a GPU vendor when no such library is present.
struct GpuDevice {
  std::string pciBusId;            ///< "0000:17:00.0"; empty when not on PCI
  std::string model;               ///< e.g. "NVIDIA H100"; empty when unknown
  std::vector<std::string> names;  ///< its OS devices, e.g. {"cuda0", "nvml0"}; {} for bare PCI
  int numaNode = -1;               ///< OS index of the closest NUMA node, -1 when not one
  std::vector<int> localCpus;      ///< PUs closest to it

  friend bool operator==(const GpuDevice&, const GpuDevice&) = default;
};

/// A network interface: an IP interface ("eth0") or an RDMA device ("mlx5_0").
struct NicDevice {
  std::string name;
  std::string kind;            ///< "net" or "openfabrics"
  std::string pciBusId;        ///< empty when not on PCI (virtual interfaces are not listed)
  std::string address;         ///< MAC or GUID when known
  int numaNode = -1;           ///< OS index of the closest NUMA node, -1 when not one
  std::vector<int> localCpus;  ///< PUs closest to it
  int64_t speedMbps = -1;      ///< port speed (Mbit/s) from the OS, -1 when unknown
  double pciLinkGBps = 0;      ///< PCI link bandwidth (GB/s) hwloc reports, 0 when unknown

  friend bool operator==(const NicDevice&, const NicDevice&) = default;
};

/// One host as one rank sees it.
struct HostTopology {
  std::string hostname;
  std::string bootId;             ///< kernel boot id: tells same-named hosts apart
  std::string nodeId;             ///< the node this rank belongs to (see the file comment)
  bool nodeIdOverridden = false;  ///< nodeId came from PLEXUS_NODE_ID, not the host
  std::string source;  ///< how it was found: "hwloc 2.9.0", or the fallback with its note
  int64_t pid = 0;     ///< this process (same-process links)
  uint64_t memoryBytes = 0;
  std::vector<int> pus;  ///< every PU OS index of the machine, ascending
  std::vector<CpuPackage> packages;
  std::vector<NumaNode> numaNodes;
  std::vector<CpuCore> cores;
  std::vector<GpuDevice> gpus;
  std::vector<NicDevice> nics;
  std::vector<int> binding;  ///< PUs this process may run on, ascending

  friend bool operator==(const HostTopology&, const HostTopology&) = default;
};

/// Detects this host with hwloc when the build has it, else from /proc and /sys (then `source`
/// says what is missing). `nodeId` non-empty overrides the node identity (PLEXUS_NODE_ID).
/// Internal when the OS or hwloc fails.
StatusOr<HostTopology> detectHostTopology(const std::string& nodeId = "");
/// The /proc and /sys detector alone (the fallback; also exercised by tests on hwloc builds).
StatusOr<HostTopology> detectHostTopologyFromSysfs(const std::string& nodeId = "");

/// This host's largest CPU cache in bytes (the highest level sysfs lists for cpu0, e.g. a 32 MiB
/// L3), read once per process; kDefaultLastLevelCacheBytes when sysfs lists none. (glibc's
/// sysconf(_SC_LEVEL3_CACHE_SIZE) reported 256 MiB on a VM whose sysfs says 32 MiB.)
size_t lastLevelCacheBytes();
inline constexpr size_t kDefaultLastLevelCacheBytes = size_t{32} << 20;

/// Linux cpulist text ("0-3,8,10-11") of ascending, unique indexes.
std::string formatCpuList(const std::vector<int>& cpus);
/// Parses cpulist text into ascending unique indexes. False on junk, on an index above
/// kMaxCpuIndex, or when the list would exceed kMaxCpuIndex + 1 entries.
bool parseCpuList(const std::string& text, std::vector<int>* out);
inline constexpr int kMaxCpuIndex = (1 << 16) - 1;

/// The wire form ranks publish: versioned, little-endian, lengths capped on decode.
std::vector<uint8_t> encodeHostTopology(const HostTopology& topo);
/// Decodes a blob from encodeHostTopology. InvalidArgument on anything truncated, oversized,
/// trailing or inconsistent; never reads past `blob` and never allocates more than it holds.
StatusOr<HostTopology> decodeHostTopology(const std::vector<uint8_t>& blob);

/// How two ranks are connected, from closest to farthest.
enum class LinkClass : uint8_t {
  kSelf,         ///< the same rank
  kSameProcess,  ///< two ranks in one process (threads)
  kSameNode,     ///< one node: shared memory is possible
  kCrossNode,    ///< different nodes: the network
};
/// "self", "process", "node", "network".
const char* linkClassName(LinkClass link);

/// The job-wide view: every rank's node, local rank and node leader. Nodes are numbered in
/// order of their lowest rank, so node 0 holds rank 0, and the leader of a node is its lowest
/// rank.
class JobTopology {
 public:
  /// Builds the view from every rank's HostTopology, indexed by rank. InvalidArgument for an
  /// empty job, or a node id shared by ranks on different hosts.
  static StatusOr<JobTopology> build(std::vector<HostTopology> ranks);

  int size() const { return static_cast<int>(hosts_.size()); }
  int numNodes() const { return static_cast<int>(ranksOfNode_.size()); }
  /// Node index of `rank`, in [0, numNodes()).
  int nodeOf(int rank) const { return nodeOfRank_.at(rank); }
  /// Index of `rank` among its node's ranks, in [0, localSize(rank)).
  int localRank(int rank) const { return localRank_.at(rank); }
  int localSize(int rank) const { return static_cast<int>(ranksOfNode_.at(nodeOf(rank)).size()); }
  /// The ranks of node `node`, ascending.
  const std::vector<int>& ranksOfNode(int node) const { return ranksOfNode_.at(node); }
  /// The leader (lowest rank) of every node, in node order.
  const std::vector<int>& leaders() const { return leaders_; }
  bool isLeader(int rank) const { return leaders_.at(nodeOf(rank)) == rank; }
  /// The node's id as ranks reported it (unique: same-named hosts get a boot-id suffix).
  const std::string& nodeName(int node) const { return nodeNames_.at(node); }
  /// The record of `rank`.
  const HostTopology& host(int rank) const { return hosts_.at(rank); }
  /// True when two ranks run on one physical host (even on different emulated nodes).
  bool sameHost(int a, int b) const;
  /// The class of the link between ranks a and b.
  LinkClass link(int a, int b) const;

 private:
  std::vector<HostTopology> hosts_;
  std::vector<int> nodeOfRank_;
  std::vector<int> localRank_;
  std::vector<std::vector<int>> ranksOfNode_;
  std::vector<int> leaders_;
  std::vector<std::string> nodeNames_;
};

}  // namespace plexus
