// detectLaunch: each launcher's variables are read into one shape (rank, size, local rank and
// size, job id), checked, and then the store address and secret are settled the same way for all.
#include "src/bootstrap/launch_env.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <utility>

#include "src/log.h"

namespace plexus::bootstrap {
namespace {

// Where ranks on one node put the store when no address is given: a port derived from the job
// id in [kDerivedPortBase, kDerivedPortBase + kDerivedPortRange), below Linux's ephemeral range.
constexpr int kDerivedPortBase = 20000;
constexpr int kDerivedPortRange = 40000;
constexpr const char* kLoopback = "127.0.0.1";
constexpr const char* kDefaultSecret = "plexus-default-job-secret";

// What one launcher tells us, with the variable names for messages.
struct Launcher {
  std::string name;
  int rank = 0, size = 1, localRank = 0, localSize = 1;
  std::string rankVar, sizeVar, localRankVar, localSizeVar;
  std::string jobId;            // empty when the launcher gave none
  bool mayDeriveStore = false;  // may fall back to loopback and a job-derived port
};

Launcher named(const char* name, const char* rankVar, const char* sizeVar, const char* localRankVar,
               const char* localSizeVar) {
  Launcher l;
  l.name = name;
  l.rankVar = rankVar;
  l.sizeVar = sizeVar;
  l.localRankVar = localRankVar;
  l.localSizeVar = localSizeVar;
  return l;
}

Status malformed(const std::string& name, const std::string& value, const std::string& why) {
  return invalidArgument(name + "='" + value + "' " + why);
}

// A whole-string decimal integer in [min, max]: no sign prefix other than '-', no spaces.
StatusOr<int> parseInt(const std::string& name, const std::string& value, int min, int max) {
  int result = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), result);
  if (value.empty() || ec != std::errc() || ptr != value.data() + value.size()) {
    return malformed(name, value, "is not an integer");
  }
  if (result < min || result > max) {
    return malformed(name, value,
                     "is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return result;
}

// A required integer variable; absence is an error naming it.
StatusOr<int> requiredInt(const EnvLookup& env, const std::string& name, int min) {
  std::optional<std::string> value = env(name);
  if (!value) return invalidArgument(name + " is not set");
  return parseInt(name, *value, min, INT_MAX);
}

// An optional integer variable; `fallback` when absent.
StatusOr<int> optionalInt(const EnvLookup& env, const std::string& name, int min, int fallback) {
  std::optional<std::string> value = env(name);
  if (!value) return fallback;
  return parseInt(name, *value, min, INT_MAX);
}

// Tasks on node `node` from Slurm's compressed list, e.g. "2(x3),1" = nodes 0-2 run 2, node 3
// runs 1. The whole list is validated even when the node comes early.
StatusOr<int> slurmTasksOnNode(const std::string& name, const std::string& list, int node) {
  int64_t firstNodeOfItem = 0;
  int found = -1;
  size_t pos = 0;
  while (true) {
    size_t end = list.find(',', pos);
    std::string item = list.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    std::string tasks = item, repeat = "1";
    size_t open = item.find("(x");
    if (open != std::string::npos) {
      if (item.back() != ')') return malformed(name, list, "is not a Slurm tasks-per-node list");
      tasks = item.substr(0, open);
      repeat = item.substr(open + 2, item.size() - open - 3);
    }
    StatusOr<int> count = parseInt(name, tasks, 1, INT_MAX);
    StatusOr<int> times = parseInt(name, repeat, 1, INT_MAX);
    if (!count.ok() || !times.ok()) {
      return malformed(name, list, "is not a Slurm tasks-per-node list (like \"2(x3),1\")");
    }
    if (node >= firstNodeOfItem && node < firstNodeOfItem + *times) found = *count;
    firstNodeOfItem += *times;  // at most INT_MAX items of INT_MAX each: fits in int64
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  if (found < 0) {
    return malformed(name, list,
                     "lists " + std::to_string(firstNodeOfItem) + " nodes, but this is node " +
                         std::to_string(node) + " (SLURM_NODEID)");
  }
  return found;
}

StatusOr<Launcher> fromTorchrun(const EnvLookup& env) {
  Launcher l = named("torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE");
  StatusOr<int> size = requiredInt(env, "WORLD_SIZE", 1);
  StatusOr<int> rank = requiredInt(env, "RANK", 0);
  if (!size.ok()) return size.status();
  if (!rank.ok()) return rank.status();
  // Without local variables (RANK/WORLD_SIZE set by hand), assume one node.
  StatusOr<int> localRank = optionalInt(env, "LOCAL_RANK", 0, *rank);
  StatusOr<int> localSize = optionalInt(env, "LOCAL_WORLD_SIZE", 1, *size);
  if (!localRank.ok()) return localRank.status();
  if (!localSize.ok()) return localSize.status();
  l.rank = *rank, l.size = *size, l.localRank = *localRank, l.localSize = *localSize;
  l.jobId = env("TORCHELASTIC_RUN_ID").value_or("");
  return l;
}

StatusOr<Launcher> fromOpenMpi(const EnvLookup& env) {
  Launcher l = named("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                     "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE");
  l.mayDeriveStore = true;
  struct Field {
    const std::string& name;
    int& value;
    int min;
  };
  for (const Field& f :
       {Field{l.rankVar, l.rank, 0}, Field{l.sizeVar, l.size, 1},
        Field{l.localRankVar, l.localRank, 0}, Field{l.localSizeVar, l.localSize, 1}}) {
    StatusOr<int> value = requiredInt(env, f.name, f.min);
    if (!value.ok()) return value.status().withContext("Open MPI launch");
    f.value = *value;
  }
  // Open MPI 4 names the job in the MCA variable; Open MPI 5 (PRRTE) only in the PMIx namespace.
  for (const char* name : {"OMPI_MCA_ess_base_jobid", "PMIX_NAMESPACE"}) {
    std::optional<std::string> value = env(name);
    if (value && !value->empty()) {
      l.jobId = *value;
      break;
    }
  }
  return l;
}

StatusOr<Launcher> fromSlurm(const EnvLookup& env) {
  // localSizeVar is whichever tasks-per-node variable is found below.
  Launcher l = named("slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "");
  l.mayDeriveStore = true;
  StatusOr<int> rank = requiredInt(env, "SLURM_PROCID", 0);
  StatusOr<int> size = requiredInt(env, "SLURM_NTASKS", 1);
  StatusOr<int> localRank = requiredInt(env, "SLURM_LOCALID", 0);
  StatusOr<int> node = optionalInt(env, "SLURM_NODEID", 0, 0);
  for (const Status& s : {rank.status(), size.status(), localRank.status(), node.status()}) {
    if (!s.ok()) return s.withContext("Slurm launch");
  }
  l.rank = *rank, l.size = *size, l.localRank = *localRank;
  // The step's own layout first: the job's allocation can differ from what srun launched.
  std::optional<int> localSize;
  for (const char* name : {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"}) {
    std::optional<std::string> value = env(name);
    if (!value) continue;
    StatusOr<int> tasks = slurmTasksOnNode(name, *value, *node);
    if (!tasks.ok()) return tasks.status();
    localSize = *tasks;
    l.localSizeVar = name;
    break;
  }
  if (!localSize && env("SLURM_NTASKS_PER_NODE")) {
    StatusOr<int> tasks = requiredInt(env, "SLURM_NTASKS_PER_NODE", 1);
    if (!tasks.ok()) return tasks.status();
    localSize = std::min(*tasks, l.size);
    l.localSizeVar = "SLURM_NTASKS_PER_NODE";
  }
  if (!localSize) {
    return invalidArgument(
        "Slurm launch: none of SLURM_STEP_TASKS_PER_NODE, SLURM_TASKS_PER_NODE and "
        "SLURM_NTASKS_PER_NODE is set, so the ranks per node are unknown (run under srun)");
  }
  l.localSize = *localSize;
  std::optional<std::string> job = env("SLURM_JOB_ID");
  if (!job) job = env("SLURM_JOBID");
  std::optional<std::string> step = env("SLURM_STEP_ID");
  if (!step) step = env("SLURM_STEPID");
  if (job && !job->empty()) l.jobId = *job + (step ? "." + *step : "");
  return l;
}

Status checkLayout(const Launcher& l) {
  auto pair = [](const std::string& name, int value) { return name + "=" + std::to_string(value); };
  if (l.rank >= l.size) {
    return invalidArgument(pair(l.rankVar, l.rank) + " is not below " + pair(l.sizeVar, l.size));
  }
  if (l.localSize > l.size) {
    return invalidArgument(pair(l.localSizeVar, l.localSize) + " exceeds " +
                           pair(l.sizeVar, l.size));
  }
  if (l.localRank >= l.localSize) {
    return invalidArgument(pair(l.localRankVar, l.localRank) + " is not below " +
                           pair(l.localSizeVar, l.localSize));
  }
  return okStatus();
}

// A host name or dotted address: non-empty, printable, no spaces (resolved when connecting).
StatusOr<std::string> parseHost(const std::string& name, const std::string& value) {
  if (value.empty() || value.size() > 253) return malformed(name, value, "is not a host name");
  for (char c : value) {
    if (c <= ' ' || c > '~') return malformed(name, value, "is not a host name");
  }
  return value;
}

uint16_t derivedPort(const std::string& launcher, const std::string& jobId) {
  // FNV-1a: stable across processes, builds and hosts, unlike std::hash.
  uint64_t h = 1469598103934665603ull;
  for (char c : launcher + ":" + jobId) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return static_cast<uint16_t>(kDerivedPortBase + h % kDerivedPortRange);
}

// Fills storeHost and storePort: explicit PLEXUS_STORE_* first, then MASTER_*, then (Open MPI
// and Slurm on one node) loopback and a port derived from the job id.
Status resolveStore(const EnvLookup& env, const Launcher& l, LaunchInfo& info) {
  const bool oneNode = l.localSize == l.size;
  for (const char* name : {"PLEXUS_STORE_ADDR", "MASTER_ADDR"}) {
    if (std::optional<std::string> value = env(name)) {
      StatusOr<std::string> host = parseHost(name, *value);
      if (!host.ok()) return host.status();
      info.storeHost = *host;
      break;
    }
  }
  for (const char* name : {"PLEXUS_STORE_PORT", "MASTER_PORT"}) {
    if (std::optional<std::string> value = env(name)) {
      StatusOr<int> port = parseInt(name, *value, 1, 65535);
      if (!port.ok()) return port.status();
      info.storePort = static_cast<uint16_t>(*port);
      break;
    }
  }
  if (info.storeHost.empty() && l.mayDeriveStore && oneNode) info.storeHost = kLoopback;
  if (info.storePort == 0 && l.mayDeriveStore && !l.jobId.empty()) {
    info.storePort = derivedPort(l.name, l.jobId);
  }
  if (!info.storeHost.empty() && info.storePort != 0) return okStatus();
  std::string why;
  if (!l.mayDeriveStore) {
    why = "a torchrun-style launch (RANK, WORLD_SIZE) needs the store address";
  } else if (!oneNode) {
    why = l.name + " job spans several nodes (" + l.localSizeVar + "=" +
          std::to_string(l.localSize) + " of " + l.sizeVar + "=" + std::to_string(l.size) +
          "), so the store cannot default to loopback";
  } else {
    why = l.name + " gave no job id to derive the store port from";
  }
  return invalidArgument(why + ": set MASTER_ADDR and MASTER_PORT (or PLEXUS_STORE_ADDR and " +
                         "PLEXUS_STORE_PORT) to an address of rank 0's node and a free port");
}

Status resolveOptions(const EnvLookup& env, const Launcher& l, LaunchInfo& info) {
  if (std::optional<std::string> hosted = env("PLEXUS_STORE_HOSTED")) {
    if (*hosted == "1" || *hosted == "true") {
      info.storeHostedByLauncher = true;
    } else if (!hosted->empty() && *hosted != "0" && *hosted != "false") {
      return malformed("PLEXUS_STORE_HOSTED", *hosted, "is not 0 or 1");
    }
  }
  info.nodeId = env("PLEXUS_NODE_ID").value_or("");
  if (std::optional<std::string> secret = env("PLEXUS_SECRET")) {
    if (secret->empty()) return invalidArgument("PLEXUS_SECRET is set but empty");
    info.secret = *secret;
  } else if (!l.jobId.empty()) {
    // Every rank of the job sees the same id and address, and other jobs see other ones.
    info.secret = "plexus:" + l.name + ":" + l.jobId + "@" + info.storeHost + ":" +
                  std::to_string(info.storePort);
  } else {
    PLEXUS_LOG(kInfo,
               "no PLEXUS_SECRET and no %s job id: the store uses the default secret, so "
               "set PLEXUS_SECRET to keep other jobs out of it",
               l.name.c_str());
    info.secret = kDefaultSecret;
  }
  return okStatus();
}

// The launchers in the documented order of precedence.
StatusOr<Launcher> pickLauncher(const EnvLookup& env) {
  if (env("RANK") && env("WORLD_SIZE")) return fromTorchrun(env);
  if (env("OMPI_COMM_WORLD_RANK")) return fromOpenMpi(env);
  if (env("SLURM_PROCID") && env("SLURM_NTASKS")) return fromSlurm(env);
  std::string hint;
  if (env("RANK")) hint = " (RANK is set but WORLD_SIZE is not)";
  if (env("WORLD_SIZE")) hint = " (WORLD_SIZE is set but RANK is not)";
  return invalidArgument("no launcher recognised" + hint +
                         ": run under torchrun or plexusrun (RANK, WORLD_SIZE, MASTER_ADDR, "
                         "MASTER_PORT), Open MPI's mpirun, or Slurm's srun");
}

}  // namespace

EnvLookup processEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

EnvLookup mapEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

StatusOr<LaunchInfo> detectLaunch(const EnvLookup& env) {
  StatusOr<Launcher> launcher = pickLauncher(env);
  if (!launcher.ok()) return launcher.status();
  PLEXUS_TRY(checkLayout(*launcher));
  LaunchInfo info;
  info.launcher = launcher->name;
  info.rank = launcher->rank;
  info.size = launcher->size;
  info.localRank = launcher->localRank;
  info.localSize = launcher->localSize;
  PLEXUS_TRY(resolveStore(env, *launcher, info));
  PLEXUS_TRY(resolveOptions(env, *launcher, info));
  return info;
}

}  // namespace plexus::bootstrap
