// The hwloc host detector: packages, NUMA nodes, cores and PUs from the CPU tree; GPUs and NICs
// from hwloc's OS devices with the PCI function and NUMA node they hang off. Built only with
// hwloc (PLEXUS_HAVE_HWLOC); topology_sysfs.cc covers builds without it.
#include <hwloc.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include <cstdio>
#include <map>
#include <memory>
#include <utility>

#include "src/topology.h"
#include "src/topology_detect.h"

namespace plexus::topology_detail {
namespace {

struct TopologyDeleter {
  void operator()(hwloc_topology* t) const { hwloc_topology_destroy(t); }
};
using UniqueTopology = std::unique_ptr<hwloc_topology, TopologyDeleter>;

struct BitmapDeleter {
  void operator()(hwloc_bitmap_s* b) const { hwloc_bitmap_free(b); }
};
using UniqueBitmap = std::unique_ptr<hwloc_bitmap_s, BitmapDeleter>;

// Ascending OS indexes of a cpuset or nodeset; an infinite or absurd set yields what fits.
std::vector<int> toList(hwloc_const_bitmap_t set) {
  std::vector<int> out;
  if (set == nullptr) return out;
  for (int i = hwloc_bitmap_first(set); i >= 0 && i <= kMaxCpuIndex;
       i = hwloc_bitmap_next(set, i)) {
    out.push_back(i);
  }
  return out;
}

std::string info(hwloc_obj_t obj, const char* name) {
  const char* value = hwloc_obj_get_info_by_name(obj, name);
  return value != nullptr ? value : "";
}

// The release built against: hwloc_get_api_version() reports the API level (2.8 for 2.9.0),
// which would not match what `lstopo --version` says.
std::string versionText() { return std::string("hwloc ") + HWLOC_VERSION; }

hwloc_obj_t pciFunctionOf(hwloc_obj_t obj) {
  for (hwloc_obj_t o = obj; o != nullptr; o = o->parent) {
    if (o->type == HWLOC_OBJ_PCI_DEVICE) return o;
  }
  return nullptr;
}

std::string busIdOf(hwloc_obj_t pci) {
  if (pci == nullptr) return "";
  char text[32];
  std::snprintf(text, sizeof(text), "%04x:%02x:%02x.%01x", pci->attr->pcidev.domain,
                pci->attr->pcidev.bus, pci->attr->pcidev.dev, pci->attr->pcidev.func);
  return text;
}

// Model of a PCI function: hwloc's name from pci.ids when it has one, else the ids.
std::string pciModel(hwloc_obj_t pci) {
  if (pci == nullptr) return "";
  std::string vendor = info(pci, "PCIVendor"), device = info(pci, "PCIDevice");
  if (!device.empty()) return vendor.empty() ? device : vendor + " " + device;
  char text[32];
  std::snprintf(text, sizeof(text), "PCI %04x:%04x", pci->attr->pcidev.vendor_id,
                pci->attr->pcidev.device_id);
  return text;
}

// The CPU-side object an I/O object is attached to tells its locality: its PUs, and its NUMA
// node when exactly one is local (a device under the whole machine has none).
void localityOf(hwloc_topology_t topo, hwloc_obj_t obj, int* numa, std::vector<int>* cpus) {
  hwloc_obj_t anchor = hwloc_get_non_io_ancestor_obj(topo, obj);
  *numa = -1;
  cpus->clear();
  if (anchor == nullptr) return;
  *cpus = toList(anchor->cpuset);
  if (anchor->nodeset != nullptr && hwloc_bitmap_weight(anchor->nodeset) == 1) {
    *numa = hwloc_bitmap_first(anchor->nodeset);
  }
}

// An OS device that names a compute GPU: CUDA/OpenCL/LevelZero co-processors, and GPU devices
// from a management library (NVML, RSMI carry a subtype). DRM nodes (card0, renderD128) have no
// subtype and would list every display adapter.
bool isGpuOsDevice(hwloc_obj_t osdev) {
  auto type = osdev->attr->osdev.type;
  if (type == HWLOC_OBJ_OSDEV_COPROC) return true;
  return type == HWLOC_OBJ_OSDEV_GPU && osdev->subtype != nullptr &&
         std::string(osdev->subtype) != "Display";
}

void detectCpus(hwloc_topology_t topo, HostTopology* t) {
  hwloc_obj_t root = hwloc_get_root_obj(topo);
  t->memoryBytes = root->total_memory;
  t->pus = toList(hwloc_topology_get_topology_cpuset(topo));
  for (hwloc_obj_t o = nullptr; (o = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PACKAGE, o));) {
    t->packages.push_back({static_cast<int>(o->os_index), info(o, "CPUModel"), toList(o->cpuset)});
  }
  for (hwloc_obj_t o = nullptr; (o = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, o));) {
    t->numaNodes.push_back(
        {static_cast<int>(o->os_index), o->attr->numanode.local_memory, toList(o->cpuset)});
  }
  for (hwloc_obj_t o = nullptr; (o = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_CORE, o));) {
    hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, o);
    int package = pkg != nullptr ? static_cast<int>(pkg->logical_index) : -1;
    t->cores.push_back({static_cast<int>(o->os_index), package, toList(o->cpuset)});
  }
}

void detectDevices(hwloc_topology_t topo, HostTopology* t) {
  std::map<std::string, size_t> gpuByBus;  // one GpuDevice per PCI function
  for (hwloc_obj_t o = nullptr; (o = hwloc_get_next_osdev(topo, o));) {
    hwloc_obj_t pci = pciFunctionOf(o);
    auto type = o->attr->osdev.type;
    if (isGpuOsDevice(o)) {
      std::string bus = pci != nullptr ? busIdOf(pci) : std::string("osdev:") + o->name;
      auto [it, added] = gpuByBus.try_emplace(bus, t->gpus.size());
      if (added) {
        GpuDevice& g = t->gpus.emplace_back();
        g.pciBusId = pci != nullptr ? bus : "";
        g.model = info(o, "GPUModel").empty() ? pciModel(pci) : info(o, "GPUModel");
        localityOf(topo, o, &g.numaNode, &g.localCpus);
      }
      t->gpus[it->second].names.push_back(o->name);
    } else if (type == HWLOC_OBJ_OSDEV_NETWORK || type == HWLOC_OBJ_OSDEV_OPENFABRICS) {
      NicDevice& n = t->nics.emplace_back();
      bool net = type == HWLOC_OBJ_OSDEV_NETWORK;
      n.name = o->name;
      n.kind = net ? "net" : "openfabrics";
      n.pciBusId = busIdOf(pci);
      n.address = info(o, net ? "Address" : "NodeGUID");
      localityOf(topo, o, &n.numaNode, &n.localCpus);
      // hwloc knows the PCI link; the port speed only the OS knows (RDMA ports: not yet).
      n.speedMbps = net ? netSpeedMbps(n.name) : -1;
      n.pciLinkGBps = pci != nullptr ? pci->attr->pcidev.linkspeed : 0;
    }
  }
  // GPUs no library reported (no CUDA/NVML plugin in this hwloc): their PCI functions.
  for (hwloc_obj_t o = nullptr; (o = hwloc_get_next_pcidev(topo, o));) {
    const auto& pci = o->attr->pcidev;
    if (!isGpuPciFunction(pci.class_id, pci.vendor_id) || gpuByBus.count(busIdOf(o))) continue;
    GpuDevice& g = t->gpus.emplace_back();
    g.pciBusId = busIdOf(o);
    g.model = pciModel(o);
    localityOf(topo, o, &g.numaNode, &g.localCpus);
  }
}

}  // namespace

StatusOr<HostTopology> detectWithHwloc(const std::string& nodeId) {
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) return internalError("hwloc_topology_init failed");
  UniqueTopology topo(raw);
  // I/O objects are off by default; "important" keeps GPUs, NICs and the PCI path to them.
  if (hwloc_topology_set_io_types_filter(topo.get(), HWLOC_TYPE_FILTER_KEEP_IMPORTANT) != 0) {
    return internalError("hwloc_topology_set_io_types_filter failed (" + versionText() + ")");
  }
  int loaded;
  {
#if defined(__SANITIZE_ADDRESS__)
    // hwloc's PCI plugin leaks about 1 KiB inside libpciaccess on every load, and is unloaded
    // before LeakSanitizer could name it ("unknown module"): not ours to report.
    __lsan::ScopedDisabler notOurLeaks;
#endif
    loaded = hwloc_topology_load(topo.get());
  }
  if (loaded != 0) {
    return internalError("hwloc could not load this host's topology (" + versionText() + ")");
  }
  HostTopology t;
  fillIdentity(nodeId, &t);
  t.source = versionText();
  detectCpus(topo.get(), &t);
  detectDevices(topo.get(), &t);
  UniqueBitmap binding(hwloc_bitmap_alloc());
  if (binding == nullptr) return internalError("hwloc_bitmap_alloc failed");
  if (hwloc_get_cpubind(topo.get(), binding.get(), HWLOC_CPUBIND_PROCESS) != 0) {
    // Binding queries can be unsupported (some containers): report what we may run on.
    hwloc_bitmap_copy(binding.get(), hwloc_topology_get_allowed_cpuset(topo.get()));
  }
  t.binding = toList(binding.get());
  return t;
}

}  // namespace plexus::topology_detail
