// plexusrun's command line: parsing, validation, and where each rank lands (node, local rank).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "plexus/status.h"

namespace plexus::run {

/// The usage text printed with --help and after every argument error.
extern const char* const kUsage;

/// A parsed and validated command line.
struct LaunchOptions {
  bool showHelp = false;                 ///< -h/--help: print usage, launch nothing
  int numRanks = 0;                      ///< -n N, >= 1
  std::vector<int> ranksPerNode;         ///< every entry >= 1, summing to numRanks
  std::optional<double> timeoutSeconds;  ///< --timeout S, > 0
  bool tagOutput = true;                 ///< prefix every output line with "[rank] "
  bool bindCores = false;                ///< --bind core: rank i on one CPU (see kUsage)
  std::vector<std::string> command;      ///< program and its arguments, non-empty
};

/// Parses argv. Options stop at `--` or at the first argument that is not an option, so the
/// program's own flags need no `--`. Returns InvalidArgument with a one-line message (no
/// "plexusrun:" prefix) for anything wrong.
StatusOr<LaunchOptions> parseOptions(int argc, char** argv);

/// Ranks per node when `numRanks` are spread over `numNodes` in contiguous blocks: rank i goes to
/// node floor(i * numNodes / numRanks). Requires 1 <= numNodes <= numRanks, so no node is empty.
std::vector<int> spreadOverNodes(int numRanks, int numNodes);

/// Where one rank stands in the job, as torchrun describes it.
struct RankPlacement {
  int rank = 0;
  int worldSize = 1;
  int localRank = 0;       ///< index among the ranks of its node
  int localWorldSize = 1;  ///< ranks on its node
  int node = 0;            ///< node index, GROUP_RANK
  int numNodes = 1;        ///< GROUP_WORLD_SIZE
};

/// One placement per rank, in rank order, from the ranks-per-node layout.
std::vector<RankPlacement> placeRanks(const std::vector<int>& ranksPerNode);

}  // namespace plexus::run
