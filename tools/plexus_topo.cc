// plexus-topo: prints the detected topology (nodes, NUMA, cores, GPUs, NICs, and which transport
// each rank pair would use).
//
//   plexus-topo [--json]
//
// Run alone, it describes this host. Under a launcher (plexusrun, torchrun, mpirun, srun) every
// rank detects its host and publishes it through the job's rendezvous store, and rank 0 prints
// the whole job: that is how ranks will learn each other's topology at communicator creation.
// Exits 1 on a failure, 2 on bad arguments.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "src/bootstrap/job_store.h"
#include "src/bootstrap/launch_env.h"
#include "src/config.h"
#include "src/topology.h"
#include "tools/plexus_topo_report.h"

namespace plexus::topo {
namespace {

constexpr const char* kUsage = "usage: plexus-topo [--json]\n";

std::string hostKey(int rank) { return "topo/host/" + std::to_string(rank); }

// True when a launcher started this process: then detectLaunch's errors are real errors, not
// "run alone".
bool underLauncher(const bootstrap::EnvLookup& env) {
  for (const char* var : {"RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"}) {
    if (env(var)) return true;
  }
  return false;
}

// Every rank publishes its host; rank 0 collects them all (in rank order), the others get {}.
StatusOr<std::vector<HostTopology>> gather(const bootstrap::LaunchInfo& launch,
                                           const Config& config) {
  auto self = detectHostTopology(launch.nodeId);
  PLEXUS_TRY(self.status());
  auto store = bootstrap::joinJobStore(launch, config.bindAddress, config.timeout);
  PLEXUS_TRY(store.status());
  PLEXUS_TRY(store->client->set(hostKey(launch.rank), encodeHostTopology(*self)));
  std::vector<HostTopology> all;
  if (launch.rank != 0) return all;
  for (int rank = 0; rank < launch.size; ++rank) {
    auto blob = store->client->get(hostKey(rank), config.timeout);
    if (!blob.ok()) return blob.status().withContext("waiting for rank " + std::to_string(rank));
    auto host = decodeHostTopology(*blob);
    if (!host.ok()) return host.status().withContext("rank " + std::to_string(rank));
    all.push_back(std::move(host).value());
  }
  return all;
}

StatusOr<std::vector<HostTopology>> collect(const bootstrap::EnvLookup& env) {
  if (!underLauncher(env)) {
    auto self = detectHostTopology(env("PLEXUS_NODE_ID").value_or(""));
    PLEXUS_TRY(self.status());
    return std::vector<HostTopology>{std::move(self).value()};
  }
  auto config = Config::fromEnv(env);
  PLEXUS_TRY(config.status());
  auto launch = bootstrap::detectLaunch(env);
  PLEXUS_TRY(launch.status());
  return gather(*launch, *config);
}

int run(int argc, char** argv) {
  bool asJson = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) {
      asJson = true;
    } else if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "plexus-topo: unknown argument '%s'\n%s", argv[i], kUsage);
      return 2;
    }
  }
  bootstrap::EnvLookup env = bootstrap::processEnv();
  auto hosts = collect(env);
  if (!hosts.ok()) {
    std::fprintf(stderr, "plexus-topo: %s\n", hosts.status().toString().c_str());
    return 1;
  }
  if (hosts->empty()) return 0;  // not rank 0: it prints
  auto job = JobTopology::build(std::move(hosts).value());
  if (!job.ok()) {
    std::fprintf(stderr, "plexus-topo: %s\n", job.status().toString().c_str());
    return 1;
  }
  LevelTransports transports = LevelTransports::fromEnv(env);
  if (asJson) {
    std::fputs(toJson(*job, transports).c_str(), stdout);
  } else {
    printText(*job, transports, stdout);
  }
  return 0;
}

}  // namespace
}  // namespace plexus::topo

int main(int argc, char** argv) { return plexus::topo::run(argc, argv); }
