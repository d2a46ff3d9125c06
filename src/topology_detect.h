// Pieces shared by the two host detectors (hwloc in topology_hwloc.cc, /proc and /sys in
// topology_sysfs.cc): host identity and the few facts only sysfs knows.
#pragma once

#include <cstdint>
#include <string>

#include "src/topology.h"

namespace plexus::topology_detail {

/// The first line of a (sysfs or procfs) file without its newline; empty when unreadable.
std::string readFirstLine(const std::string& path);
/// Fills hostname, bootId, pid and the node id (`nodeId`, or the hostname when empty).
void fillIdentity(const std::string& nodeId, HostTopology* topo);
/// Port speed of network interface `name` in Mbit/s from /sys/class/net, -1 when the OS does
/// not know it (virtio and down links report -1 or nothing).
int64_t netSpeedMbps(const std::string& name);
/// True for a display or 3D-controller PCI function of a compute-GPU vendor (NVIDIA, AMD): how
/// a GPU is recognised when no GPU library (CUDA, NVML, ROCm) is there to name it.
bool isGpuPciFunction(unsigned classId, unsigned vendorId);

#if PLEXUS_HAVE_HWLOC
/// The hwloc detector (topology_hwloc.cc), built only with hwloc.
StatusOr<HostTopology> detectWithHwloc(const std::string& nodeId);
#endif

}  // namespace plexus::topology_detail
