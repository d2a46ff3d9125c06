// Reads where a rank stands in its job from the launcher's environment variables.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "plexus/status.h"

namespace plexus::bootstrap {

/// Reads one environment variable; nullopt when unset. Injectable so tests need no setenv.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment.
EnvLookup processEnv();
/// A fixed map, for tests.
EnvLookup mapEnv(std::map<std::string, std::string> vars);

/// Where this rank stands and how to reach the rendezvous store.
struct LaunchInfo {
  std::string launcher;  ///< "torchrun" (also plexusrun), "openmpi", "slurm"
  int rank = 0;
  int size = 1;
  int localRank = 0;
  int localSize = 1;
  std::string storeHost;               ///< where the store listens (rank 0 binds it when it hosts)
  uint16_t storePort = 0;              ///< its port
  bool storeHostedByLauncher = false;  ///< PLEXUS_STORE_HOSTED=1: rank 0 must not host it
  std::string secret;                  ///< PLEXUS_SECRET, else derived from the launcher's job id
  std::string nodeId;  ///< PLEXUS_NODE_ID when set, else empty (topology uses the host)
};

/// Detects the launcher, in this order: torchrun-style (RANK and WORLD_SIZE), Open MPI
/// (OMPI_COMM_WORLD_RANK), Slurm (SLURM_PROCID with SLURM_NTASKS). PLEXUS_STORE_ADDR and
/// PLEXUS_STORE_PORT override the store address for every launcher; otherwise torchrun uses
/// MASTER_ADDR/MASTER_PORT, and Open MPI and Slurm use MASTER_ADDR/MASTER_PORT when set, else,
/// when all ranks are on one node, loopback and a port derived from the job id. Returns
/// InvalidArgument naming the variable for anything malformed or inconsistent (rank >= size,
/// non-numeric values, a multi-node job with no store address), and NotFound-style
/// InvalidArgument when no launcher is recognised.
StatusOr<LaunchInfo> detectLaunch(const EnvLookup& env);

}  // namespace plexus::bootstrap
