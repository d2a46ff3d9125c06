// detectLaunch over fixed environments: the three launchers, the store address and secret
// rules, and malformed values that must name the variable.
#include "src/bootstrap/launch_env.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace plexus::bootstrap {
namespace {

using Vars = std::map<std::string, std::string>;

Vars torchrun() {
  return {{"RANK", "3"},
          {"WORLD_SIZE", "8"},
          {"LOCAL_RANK", "1"},
          {"LOCAL_WORLD_SIZE", "2"},
          {"MASTER_ADDR", "node-a.local"},
          {"MASTER_PORT", "29500"},
          {"TORCHELASTIC_RUN_ID", "run7"}};
}

Vars openMpi() {
  return {{"OMPI_COMM_WORLD_RANK", "1"},
          {"OMPI_COMM_WORLD_SIZE", "2"},
          {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
          {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
          {"OMPI_MCA_ess_base_jobid", "2052784129"}};
}

Vars slurm() {
  return {{"SLURM_PROCID", "5"},
          {"SLURM_NTASKS", "7"},
          {"SLURM_LOCALID", "1"},
          {"SLURM_NODEID", "2"},
          {"SLURM_JOB_ID", "4242"},
          {"SLURM_STEP_ID", "0"},
          {"SLURM_TASKS_PER_NODE", "2(x3),1"},
          {"MASTER_ADDR", "10.0.0.1"},
          {"MASTER_PORT", "4000"}};
}

Vars with(Vars vars, const Vars& changes) {
  for (const auto& [k, v] : changes) vars[k] = v;
  return vars;
}

Vars without(Vars vars, const std::string& name) {
  vars.erase(name);
  return vars;
}

LaunchInfo detectOk(const Vars& vars) {
  auto info = detectLaunch(mapEnv(vars));
  EXPECT_TRUE(info.ok()) << info.status().toString();
  return info.ok() ? *info : LaunchInfo{};
}

// Expects InvalidArgument whose message contains every one of `needles`.
void expectInvalid(const Vars& vars, std::initializer_list<std::string> needles) {
  auto info = detectLaunch(mapEnv(vars));
  ASSERT_EQ(info.status().code(), StatusCode::kInvalidArgument) << info.status().toString();
  for (const auto& needle : needles) {
    EXPECT_NE(info.status().message().find(needle), std::string::npos)
        << "'" << needle << "' not in: " << info.status().message();
  }
}

TEST(LaunchEnvTest, Torchrun) {
  LaunchInfo info = detectOk(torchrun());
  EXPECT_EQ(info.launcher, "torchrun");
  EXPECT_EQ(info.rank, 3);
  EXPECT_EQ(info.size, 8);
  EXPECT_EQ(info.localRank, 1);
  EXPECT_EQ(info.localSize, 2);
  EXPECT_EQ(info.storeHost, "node-a.local");  // host names are resolved when connecting
  EXPECT_EQ(info.storePort, 29500);
  EXPECT_FALSE(info.storeHostedByLauncher);
  EXPECT_NE(info.secret.find("run7"), std::string::npos);
  EXPECT_NE(info.secret.find("node-a.local:29500"), std::string::npos);
  EXPECT_TRUE(info.nodeId.empty());
  // Set by hand without local variables: one node is assumed.
  LaunchInfo bare = detectOk(
      {{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "1234"}});
  EXPECT_EQ(bare.localRank, 0);
  EXPECT_EQ(bare.localSize, 2);
  EXPECT_FALSE(bare.secret.empty());  // the default, with an INFO note
}

TEST(LaunchEnvTest, OpenMpiOnOneNodeDerivesLoopbackStore) {
  LaunchInfo info = detectOk(openMpi());
  EXPECT_EQ(info.launcher, "openmpi");
  EXPECT_EQ(info.rank, 1);
  EXPECT_EQ(info.size, 2);
  EXPECT_EQ(info.localRank, 1);
  EXPECT_EQ(info.storeHost, "127.0.0.1");
  EXPECT_GE(info.storePort, 20000);
  EXPECT_LT(info.storePort, 60000);
  // Every rank of the job derives the same port and secret; another job differs.
  LaunchInfo rank0 = detectOk(
      with(openMpi(), {{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "0"}}));
  EXPECT_EQ(rank0.storePort, info.storePort);
  EXPECT_EQ(rank0.secret, info.secret);
  LaunchInfo otherJob = detectOk(with(openMpi(), {{"OMPI_MCA_ess_base_jobid", "17"}}));
  EXPECT_NE(otherJob.secret, info.secret);
  // Open MPI 5 has only the PMIx namespace.
  LaunchInfo v5 = detectOk(with(without(openMpi(), "OMPI_MCA_ess_base_jobid"),
                                {{"PMIX_NAMESPACE", "prterun-host-1234@1"}}));
  EXPECT_EQ(v5.storeHost, "127.0.0.1");
  EXPECT_NE(v5.storePort, 0);
}

TEST(LaunchEnvTest, OpenMpiAcrossNodesNeedsAnAddress) {
  Vars multi = with(openMpi(), {{"OMPI_COMM_WORLD_SIZE", "4"}});
  expectInvalid(multi, {"MASTER_ADDR", "MASTER_PORT", "PLEXUS_STORE_ADDR", "several nodes"});
  LaunchInfo info = detectOk(with(multi, {{"MASTER_ADDR", "10.1.2.3"}, {"MASTER_PORT", "5555"}}));
  EXPECT_EQ(info.storeHost, "10.1.2.3");
  EXPECT_EQ(info.storePort, 5555);
}

TEST(LaunchEnvTest, SlurmWithCompressedTasksPerNode) {
  LaunchInfo info = detectOk(slurm());
  EXPECT_EQ(info.launcher, "slurm");
  EXPECT_EQ(info.rank, 5);
  EXPECT_EQ(info.size, 7);
  EXPECT_EQ(info.localRank, 1);
  EXPECT_EQ(info.localSize, 2);  // node 2 of "2(x3),1"
  EXPECT_EQ(info.storeHost, "10.0.0.1");
  EXPECT_EQ(info.storePort, 4000);
  EXPECT_NE(info.secret.find("4242.0"), std::string::npos);
  LaunchInfo last = detectOk(
      with(slurm(), {{"SLURM_NODEID", "3"}, {"SLURM_LOCALID", "0"}, {"SLURM_PROCID", "6"}}));
  EXPECT_EQ(last.localSize, 1);
  // The step's layout wins over the allocation's.
  LaunchInfo step =
      detectOk(with(slurm(), {{"SLURM_STEP_TASKS_PER_NODE", "3,4"}, {"SLURM_NODEID", "1"}}));
  EXPECT_EQ(step.localSize, 4);
}

TEST(LaunchEnvTest, SlurmOnOneNodeDerivesLoopbackStore) {
  Vars single = {{"SLURM_PROCID", "0"},
                 {"SLURM_NTASKS", "4"},
                 {"SLURM_LOCALID", "0"},
                 {"SLURM_NTASKS_PER_NODE", "4"},
                 {"SLURM_JOB_ID", "99"}};
  LaunchInfo info = detectOk(single);
  EXPECT_EQ(info.localSize, 4);
  EXPECT_EQ(info.storeHost, "127.0.0.1");
  EXPECT_GE(info.storePort, 20000);
  EXPECT_LT(info.storePort, 60000);
  LaunchInfo nextStep = detectOk(with(single, {{"SLURM_STEP_ID", "1"}}));
  EXPECT_NE(nextStep.secret, info.secret);
  expectInvalid(without(single, "SLURM_JOB_ID"), {"job id", "MASTER_PORT"});
  expectInvalid(without(single, "SLURM_NTASKS_PER_NODE"), {"SLURM_TASKS_PER_NODE"});
}

TEST(LaunchEnvTest, PlexusOverridesAndOptions) {
  LaunchInfo info = detectOk(with(torchrun(), {{"PLEXUS_STORE_ADDR", "192.168.1.9"},
                                               {"PLEXUS_STORE_PORT", "7000"},
                                               {"PLEXUS_STORE_HOSTED", "1"},
                                               {"PLEXUS_SECRET", "s3cret"},
                                               {"PLEXUS_NODE_ID", "rack4-node2"}}));
  EXPECT_EQ(info.storeHost, "192.168.1.9");
  EXPECT_EQ(info.storePort, 7000);
  EXPECT_TRUE(info.storeHostedByLauncher);
  EXPECT_EQ(info.secret, "s3cret");
  EXPECT_EQ(info.nodeId, "rack4-node2");
  // The overrides rescue a multi-node Open MPI job too.
  LaunchInfo mpi = detectOk(with(openMpi(), {{"OMPI_COMM_WORLD_SIZE", "4"},
                                             {"PLEXUS_STORE_ADDR", "10.9.9.9"},
                                             {"PLEXUS_STORE_PORT", "6000"}}));
  EXPECT_EQ(mpi.storeHost, "10.9.9.9");
  EXPECT_EQ(mpi.storePort, 6000);
}

TEST(LaunchEnvTest, PrecedenceIsTorchrunThenOpenMpiThenSlurm) {
  Vars all = torchrun();
  for (const auto& [k, v] : openMpi()) all[k] = v;
  for (const auto& [k, v] : slurm()) all.emplace(k, v);
  EXPECT_EQ(detectOk(all).launcher, "torchrun");
  Vars mpiAndSlurm = openMpi();
  for (const auto& [k, v] : slurm()) mpiAndSlurm[k] = v;
  EXPECT_EQ(detectOk(mpiAndSlurm).launcher, "openmpi");
}

TEST(LaunchEnvTest, MalformedValuesNameTheVariable) {
  expectInvalid({}, {"no launcher recognised"});
  expectInvalid({{"RANK", "0"}}, {"WORLD_SIZE is not"});
  expectInvalid(with(torchrun(), {{"RANK", "abc"}}), {"RANK='abc'", "not an integer"});
  expectInvalid(with(torchrun(), {{"RANK", " 3"}}), {"RANK=' 3'"});
  expectInvalid(with(torchrun(), {{"RANK", "3x"}}), {"RANK='3x'"});
  expectInvalid(with(torchrun(), {{"RANK", "-1"}}), {"RANK='-1'", "out of range"});
  expectInvalid(with(torchrun(), {{"WORLD_SIZE", "0"}}), {"WORLD_SIZE='0'"});
  expectInvalid(with(torchrun(), {{"WORLD_SIZE", "99999999999"}}), {"WORLD_SIZE='99999999999'"});
  expectInvalid(with(torchrun(), {{"RANK", "8"}}), {"RANK=8", "WORLD_SIZE=8"});
  expectInvalid(with(torchrun(), {{"LOCAL_RANK", "2"}}), {"LOCAL_RANK=2", "LOCAL_WORLD_SIZE=2"});
  expectInvalid(with(torchrun(), {{"LOCAL_WORLD_SIZE", "9"}}), {"LOCAL_WORLD_SIZE=9"});
  expectInvalid(with(torchrun(), {{"MASTER_PORT", "70000"}}), {"MASTER_PORT='70000'"});
  expectInvalid(with(torchrun(), {{"MASTER_PORT", "http"}}), {"MASTER_PORT='http'"});
  expectInvalid(with(torchrun(), {{"MASTER_ADDR", ""}}), {"MASTER_ADDR=''"});
  expectInvalid(with(torchrun(), {{"MASTER_ADDR", "a b"}}), {"MASTER_ADDR='a b'"});
  expectInvalid(without(torchrun(), "MASTER_ADDR"), {"MASTER_ADDR", "torchrun"});
  expectInvalid(with(torchrun(), {{"PLEXUS_STORE_PORT", "0"}}), {"PLEXUS_STORE_PORT='0'"});
  expectInvalid(with(torchrun(), {{"PLEXUS_STORE_HOSTED", "maybe"}}),
                {"PLEXUS_STORE_HOSTED='maybe'"});
  expectInvalid(with(torchrun(), {{"PLEXUS_SECRET", ""}}), {"PLEXUS_SECRET"});
  expectInvalid(without(openMpi(), "OMPI_COMM_WORLD_SIZE"), {"OMPI_COMM_WORLD_SIZE is not set"});
  expectInvalid(with(openMpi(), {{"OMPI_COMM_WORLD_LOCAL_SIZE", "two"}}),
                {"OMPI_COMM_WORLD_LOCAL_SIZE='two'"});
  expectInvalid(with(slurm(), {{"SLURM_TASKS_PER_NODE", "2(x3"}}), {"SLURM_TASKS_PER_NODE='2(x3'"});
  expectInvalid(with(slurm(), {{"SLURM_TASKS_PER_NODE", "2(xx),1"}}),
                {"SLURM_TASKS_PER_NODE='2(xx),1'"});
  expectInvalid(with(slurm(), {{"SLURM_TASKS_PER_NODE", "2,,1"}}), {"SLURM_TASKS_PER_NODE"});
  expectInvalid(with(slurm(), {{"SLURM_NODEID", "9"}}), {"lists 4 nodes", "SLURM_NODEID"});
  expectInvalid(with(slurm(), {{"SLURM_LOCALID", "x"}}), {"SLURM_LOCALID='x'"});
}

TEST(LaunchEnvTest, ProcessEnvReadsTheEnvironment) {
  EnvLookup env = processEnv();
  EXPECT_FALSE(env("PLEXUS_SURELY_UNSET_VARIABLE_1234").has_value());
  EXPECT_TRUE(env("PATH").has_value());
}

}  // namespace
}  // namespace plexus::bootstrap
