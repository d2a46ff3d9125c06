// plexus-topo's output: the job's topology as text for people (like `nvidia-smi topo -m`) and
// as JSON for scripts.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "src/bootstrap/launch_env.h"
#include "src/topology.h"

namespace plexus::topo {

/// Which transport each level of links would use: PLEXUS_TRANSPORT_INTRA / _INTER, else
/// PLEXUS_TRANSPORT, else the build's preferred transport ("ucx" in a build without any).
struct LevelTransports {
  std::string intra;               ///< links within a node (and within a process)
  std::string inter;               ///< links between nodes
  std::vector<std::string> built;  ///< transports compiled into this build

  static LevelTransports fromEnv(const bootstrap::EnvLookup& env);
  /// The transport a link of class `link` uses; empty for kSelf.
  const std::string& forLink(LinkClass link) const;
  /// `name`, marked "(not built)" when this build lacks it.
  std::string label(const std::string& name) const;
};

/// Prints nodes and their ranks, each distinct host's hardware, every rank's placement and
/// binding, and the rank x rank matrix of link classes and transports.
void printText(const JobTopology& job, const LevelTransports& transports, std::FILE* out);

/// The same as one JSON document (pretty-printed, newline-terminated).
std::string toJson(const JobTopology& job, const LevelTransports& transports);

}  // namespace plexus::topo
