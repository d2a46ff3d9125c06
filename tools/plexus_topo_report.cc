#include "tools/plexus_topo_report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "transports/transport.h"

namespace plexus::topo {
namespace {

using nlohmann::json;

// Beyond this many ranks the matrix stops being readable; --json still has every link.
constexpr int kMaxMatrixRanks = 32;
constexpr const char* kDefaultTransport = "ucx";

std::string gib(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f GiB", static_cast<double>(bytes) / (1u << 30));
  return text;
}

std::string orDash(const std::string& s) { return s.empty() ? "-" : s; }
std::string numaText(int numa) { return numa < 0 ? "-" : std::to_string(numa); }

// Ranks grouped by physical host (emulated nodes of one host share it), in order of first rank.
std::vector<std::vector<int>> ranksByHost(const JobTopology& job) {
  std::vector<std::vector<int>> hosts;
  for (int rank = 0; rank < job.size(); ++rank) {
    auto it = std::find_if(hosts.begin(), hosts.end(),
                           [&](const auto& h) { return job.sameHost(h.front(), rank); });
    if (it == hosts.end()) {
      hosts.push_back({rank});
    } else {
      it->push_back(rank);
    }
  }
  return hosts;
}

// Short matrix label of a link, like nvidia-smi's "X", "NODE", "SYS".
std::string linkLabel(const JobTopology& job, int a, int b) {
  switch (job.link(a, b)) {
    case LinkClass::kSelf:
      return "X";
    case LinkClass::kSameProcess:
      return "PROC";
    case LinkClass::kSameNode:
      return "NODE";
    case LinkClass::kCrossNode:
      return job.sameHost(a, b) ? "NET*" : "NET";
  }
  return "?";
}

void printHost(const HostTopology& h, const std::vector<int>& ranks, std::FILE* out) {
  std::fprintf(
      out, "\nHost %s (%s): %zu package(s), %zu NUMA node(s), %zu cores, %zu PUs, %s; ranks %s\n",
      h.hostname.c_str(), h.source.c_str(), h.packages.size(), h.numaNodes.size(), h.cores.size(),
      h.pus.size(), gib(h.memoryBytes).c_str(), formatCpuList(ranks).c_str());
  for (const auto& p : h.packages) {
    size_t cores = std::count_if(h.cores.begin(), h.cores.end(), [&](const CpuCore& c) {
      return c.package >= 0 && h.packages[c.package].osIndex == p.osIndex;
    });
    std::fprintf(out, "  package P#%-3d %-28s %3zu cores  PUs %s\n", p.osIndex,
                 orDash(p.model).c_str(), cores, formatCpuList(p.cpus).c_str());
  }
  for (const auto& n : h.numaNodes) {
    std::fprintf(out, "  NUMA    N#%-3d %-28s            PUs %s\n", n.osIndex,
                 gib(n.memoryBytes).c_str(), orDash(formatCpuList(n.cpus)).c_str());
  }
  if (h.gpus.empty()) std::fprintf(out, "  GPU     none\n");
  for (size_t i = 0; i < h.gpus.size(); ++i) {
    const GpuDevice& g = h.gpus[i];
    std::string names;
    for (const auto& n : g.names) names += (names.empty() ? "" : ",") + n;
    std::fprintf(out, "  GPU%-4zu %-12s %-28s NUMA %-3s PUs %s  [%s]\n", i,
                 orDash(g.pciBusId).c_str(), orDash(g.model).c_str(), numaText(g.numaNode).c_str(),
                 orDash(formatCpuList(g.localCpus)).c_str(), orDash(names).c_str());
  }
  if (h.nics.empty()) std::fprintf(out, "  NIC     none\n");
  for (const auto& n : h.nics) {
    std::string speed = n.speedMbps > 0 ? std::to_string(n.speedMbps) + " Mb/s" : "speed ?";
    std::string pcie =
        n.pciLinkGBps > 0 ? std::to_string(n.pciLinkGBps).substr(0, 5) + " GB/s" : "PCI link ?";
    std::fprintf(out, "  NIC     %-12s %-12s %-15s NUMA %-3s PUs %-8s %s, %s\n", n.name.c_str(),
                 n.kind.c_str(), orDash(n.pciBusId).c_str(), numaText(n.numaNode).c_str(),
                 orDash(formatCpuList(n.localCpus)).c_str(), speed.c_str(), pcie.c_str());
  }
}

void printMatrix(const JobTopology& job, const LevelTransports& transports, std::FILE* out) {
  if (job.size() > kMaxMatrixRanks) {
    std::fprintf(out, "\nLinks: %d ranks, matrix omitted (over %d); plexus-topo --json lists all\n",
                 job.size(), kMaxMatrixRanks);
    return;
  }
  std::vector<std::vector<std::string>> cells(job.size());
  size_t width = 4;
  bool emulated = false;
  for (int a = 0; a < job.size(); ++a) {
    for (int b = 0; b < job.size(); ++b) {
      std::string cell = linkLabel(job, a, b);
      emulated = emulated || cell == "NET*";
      if (a != b) cell += "/" + transports.forLink(job.link(a, b));
      width = std::max(width, cell.size());
      cells[a].push_back(std::move(cell));
    }
  }
  std::fprintf(out, "\nLinks (class/transport)\n%6s", "");
  for (int b = 0; b < job.size(); ++b) {
    std::fprintf(out, " %-*s", static_cast<int>(width), ("r" + std::to_string(b)).c_str());
  }
  for (int a = 0; a < job.size(); ++a) {
    std::fprintf(out, "\n  r%-3d", a);
    for (const auto& cell : cells[a])
      std::fprintf(out, " %-*s", static_cast<int>(width), cell.c_str());
  }
  std::fprintf(out,
               "\n\nLegend: X = self, PROC = same process, NODE = same node (shared memory "
               "possible), NET = across nodes\n");
  if (emulated) {
    std::fprintf(out,
                 "        NET* = emulated nodes of one host (PLEXUS_NODE_ID): an inter-node "
                 "transport may still take shared memory unless its spec excludes it, e.g. "
                 "PLEXUS_TRANSPORT_INTER=ucx:tcp (see bench/netsim)\n");
  }
  std::fprintf(out, "Transports: intra-node %s, inter-node %s; built: ",
               transports.label(transports.intra).c_str(),
               transports.label(transports.inter).c_str());
  for (size_t i = 0; i < transports.built.size(); ++i) {
    std::fprintf(out, "%s%s", i ? ", " : "", transports.built[i].c_str());
  }
  std::fprintf(out, "%s\n", transports.built.empty() ? "none" : "");
}

json hostJson(const HostTopology& h) {
  json j = {{"hostname", h.hostname},      {"bootId", h.bootId},
            {"source", h.source},          {"memoryBytes", h.memoryBytes},
            {"pus", formatCpuList(h.pus)}, {"packages", json::array()},
            {"numaNodes", json::array()},  {"cores", json::array()},
            {"gpus", json::array()},       {"nics", json::array()}};
  for (const auto& p : h.packages) {
    j["packages"].push_back(
        {{"os", p.osIndex}, {"model", p.model}, {"cpus", formatCpuList(p.cpus)}});
  }
  for (const auto& n : h.numaNodes) {
    j["numaNodes"].push_back(
        {{"os", n.osIndex}, {"memoryBytes", n.memoryBytes}, {"cpus", formatCpuList(n.cpus)}});
  }
  for (const auto& c : h.cores) {
    j["cores"].push_back(
        {{"os", c.osIndex}, {"package", c.package}, {"pus", formatCpuList(c.pus)}});
  }
  for (const auto& g : h.gpus) {
    j["gpus"].push_back({{"pciBusId", g.pciBusId},
                         {"model", g.model},
                         {"names", g.names},
                         {"numaNode", g.numaNode},
                         {"localCpus", formatCpuList(g.localCpus)}});
  }
  for (const auto& n : h.nics) {
    j["nics"].push_back({{"name", n.name},
                         {"kind", n.kind},
                         {"pciBusId", n.pciBusId},
                         {"address", n.address},
                         {"numaNode", n.numaNode},
                         {"localCpus", formatCpuList(n.localCpus)},
                         {"speedMbps", n.speedMbps},
                         {"pciLinkGBps", n.pciLinkGBps}});
  }
  return j;
}

}  // namespace

LevelTransports LevelTransports::fromEnv(const bootstrap::EnvLookup& env) {
  LevelTransports t;
  t.built = availableTransports();
  std::string fallback =
      env("PLEXUS_TRANSPORT").value_or(t.built.empty() ? kDefaultTransport : t.built.front());
  t.intra = env("PLEXUS_TRANSPORT_INTRA").value_or(fallback);
  t.inter = env("PLEXUS_TRANSPORT_INTER").value_or(fallback);
  return t;
}

const std::string& LevelTransports::forLink(LinkClass link) const {
  static const std::string kNone;
  if (link == LinkClass::kSelf) return kNone;
  return link == LinkClass::kCrossNode ? inter : intra;
}

std::string LevelTransports::label(const std::string& name) const {
  bool have = std::find(built.begin(), built.end(), transportSpecName(name)) != built.end();
  return have ? name : name + " (not built)";
}

void printText(const JobTopology& job, const LevelTransports& transports, std::FILE* out) {
  std::vector<std::vector<int>> hosts = ranksByHost(job);
  std::fprintf(out, "Plexus topology: %d rank(s) on %d node(s), %zu host(s)\n\nNodes\n", job.size(),
               job.numNodes(), hosts.size());
  for (int node = 0; node < job.numNodes(); ++node) {
    int leader = job.leaders()[node];
    std::fprintf(out, "  node %-3d %-20s host %-16s ranks %-10s leader %d\n", node,
                 job.nodeName(node).c_str(), job.host(leader).hostname.c_str(),
                 formatCpuList(job.ranksOfNode(node)).c_str(), leader);
  }
  for (const auto& ranks : hosts) printHost(job.host(ranks.front()), ranks, out);
  std::fprintf(out, "\nRanks\n  rank  node  local  pid       binding\n");
  for (int rank = 0; rank < job.size(); ++rank) {
    const HostTopology& h = job.host(rank);
    std::fprintf(out, "  %-5d %-5d %d/%-4d %-9lld %s\n", rank, job.nodeOf(rank),
                 job.localRank(rank), job.localSize(rank), static_cast<long long>(h.pid),
                 formatCpuList(h.binding).c_str());
  }
  printMatrix(job, transports, out);
}

std::string toJson(const JobTopology& job, const LevelTransports& transports) {
  json j = {
      {"ranks", json::array()},
      {"nodes", json::array()},
      {"hosts", json::array()},
      {"transports",
       {{"intra", transports.intra}, {"inter", transports.inter}, {"built", transports.built}}},
      {"links", json::array()}};
  std::vector<std::vector<int>> hosts = ranksByHost(job);
  for (size_t i = 0; i < hosts.size(); ++i) {
    json host = hostJson(job.host(hosts[i].front()));
    host["ranks"] = hosts[i];
    j["hosts"].push_back(std::move(host));
  }
  for (int node = 0; node < job.numNodes(); ++node) {
    j["nodes"].push_back({{"id", job.nodeName(node)},
                          {"ranks", job.ranksOfNode(node)},
                          {"leader", job.leaders()[node]}});
  }
  for (int rank = 0; rank < job.size(); ++rank) {
    const HostTopology& h = job.host(rank);
    auto host = std::find_if(hosts.begin(), hosts.end(), [&](const auto& r) {
      return std::find(r.begin(), r.end(), rank) != r.end();
    });
    j["ranks"].push_back({{"rank", rank},
                          {"node", job.nodeOf(rank)},
                          {"localRank", job.localRank(rank)},
                          {"localSize", job.localSize(rank)},
                          {"host", host - hosts.begin()},
                          {"pid", h.pid},
                          {"binding", formatCpuList(h.binding)}});
    json row = json::array();
    for (int peer = 0; peer < job.size(); ++peer) {
      LinkClass link = job.link(rank, peer);
      row.push_back({{"class", linkClassName(link)},
                     {"sameHost", job.sameHost(rank, peer)},
                     {"transport", transports.forLink(link)}});
    }
    j["links"].push_back(std::move(row));
  }
  return j.dump(2) + "\n";
}

}  // namespace plexus::topo
