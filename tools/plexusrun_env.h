// The environment plexusrun gives each rank: the job's identity (store port, secret, job id),
// drawn once per launch, plus the rank's torchrun-style placement variables.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "plexus/status.h"
#include "tools/plexusrun_options.h"

namespace plexus::run {

/// What every rank of one launch shares.
struct JobIdentity {
  uint16_t masterPort = 0;  ///< free loopback port for rank 0's rendezvous store
  std::string secret;       ///< 64 hex characters (256 bits) authenticating store peers
  std::string jobId;        ///< 16 hex characters naming this launch
};

/// Draws a fresh identity: a port the kernel reports free on 127.0.0.1 (released again, so
/// another process could take it before rank 0 binds it; the store reports that clearly) and
/// randomness from getrandom(2).
StatusOr<JobIdentity> makeJobIdentity();

/// The variables plexusrun sets for `placement`, as (name, value) pairs.
std::vector<std::pair<std::string, std::string>> rankVariables(const RankPlacement& placement,
                                                               const JobIdentity& identity);

/// `base` (a NULL-terminated "NAME=value" array such as environ) with every variable of
/// `variables` replaced: the user's environment passes through except what plexusrun owns.
std::vector<std::string> mergeEnvironment(
    char** base, const std::vector<std::pair<std::string, std::string>>& variables);

}  // namespace plexus::run
