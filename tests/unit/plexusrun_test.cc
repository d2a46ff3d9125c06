// Drives the real plexusrun binary with /bin/sh ranks: environment per rank, node layouts,
// output tagging, exit-code propagation, stopping and killing, timeouts, argument errors.
// Time bounds are generous (a loaded 2-core machine): they catch a hang, not a slow run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace plexus {
namespace {

using Clock = std::chrono::steady_clock;
// Far above any expected run; only a hung plexusrun gets near it.
constexpr auto kHangLimit = std::chrono::seconds(60);
// A stopped job must end this fast: far below the 100 s the ranks sleep.
constexpr double kQuickSeconds = 20;

struct RunResult {
  int exitCode = -1;
  std::string out;
  std::string err;
  double seconds = 0;
};

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "[r] text" lines of tagged output, by rank; each rank is expected to print one line.
std::map<int, std::string> lineByRank(const std::string& out) {
  std::map<int, std::string> lines;
  for (const std::string& line : splitLines(out)) {
    size_t close = line.find("] ");
    if (line.empty() || line[0] != '[' || close == std::string::npos) continue;
    lines[std::stoi(line.substr(1, close - 1))] = line.substr(close + 2);
  }
  return lines;
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> result;
  std::istringstream in(text);
  for (std::string word; in >> word;) result.push_back(word);
  return result;
}

// Gone, or a zombie waiting for whoever adopted it: either way no longer running.
bool processEnded(pid_t pid) {
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

bool allEndWithin(const std::vector<pid_t>& pids, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  for (pid_t pid : pids) {
    while (!processEnded(pid)) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return true;
}

class PlexusrunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "plexusrun_test.XXXXXX");
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Starts plexusrun with `args`, stdout and stderr to files in dir_, `extraEnv` added.
  pid_t start(const std::vector<std::string>& args, std::vector<std::string> extraEnv = {}) {
    std::vector<std::string> argStore = {PLEXUSRUN_PATH};
    argStore.insert(argStore.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& arg : argStore) argv.push_back(arg.data());
    argv.push_back(nullptr);
    for (char** entry = environ; *entry != nullptr; ++entry) extraEnv.emplace_back(*entry);
    std::vector<char*> envp;  // extraEnv first: getenv() takes the first match
    for (std::string& entry : extraEnv) envp.push_back(entry.data());
    envp.push_back(nullptr);
    const std::string outPath = dir_ / "out", errPath = dir_ / "err";
    started_ = Clock::now();
    pid_t pid = ::fork();
    if (pid == 0) {
      int out = ::open(outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = ::open(errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out < 0 || err < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(99);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(98);
    }
    return pid;
  }

  RunResult finish(pid_t pid) {
    RunResult result;
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (Clock::now() - started_ > kHangLimit) {
        ADD_FAILURE() << "plexusrun hung; killing it";
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    result.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.out = readFile(dir_ / "out");
    result.err = readFile(dir_ / "err");
    return result;
  }

  RunResult run(const std::vector<std::string>& args, std::vector<std::string> extraEnv = {}) {
    return finish(start(args, std::move(extraEnv)));
  }

  // Runs `script` as every rank: plexusrun <options> -- /bin/sh -c script.
  RunResult runScript(std::vector<std::string> options, const std::string& script) {
    options.insert(options.end(), {"--", "/bin/sh", "-c", script});
    return run(options);
  }

  // Waits until plexusrun's stdout has `count` lines; false after kHangLimit.
  bool waitForLines(size_t count) {
    while (splitLines(readFile(dir_ / "out")).size() < count) {
      if (Clock::now() - started_ > kHangLimit) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }

  std::filesystem::path dir_;
  Clock::time_point started_;
};

TEST_F(PlexusrunTest, SetsTorchrunEnvironmentPerRank) {
  const std::string script =
      "echo $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $GROUP_RANK $GROUP_WORLD_SIZE "
      "$PLEXUS_NODE_ID $MASTER_ADDR $MASTER_PORT $PLEXUS_JOB_ID $PLEXUS_SECRET";
  RunResult result = runScript({"-n", "4"}, script);
  ASSERT_EQ(result.exitCode, 0) << result.err;
  std::map<int, std::string> lines = lineByRank(result.out);
  ASSERT_EQ(lines.size(), 4u) << result.out;
  std::set<std::string> shared;  // MASTER_ADDR .. PLEXUS_SECRET, identical on every rank
  for (const auto& [rank, line] : lines) {
    std::vector<std::string> v = words(line);
    ASSERT_EQ(v.size(), 11u) << line;
    EXPECT_EQ(v[0], std::to_string(rank));
    EXPECT_EQ(v[1], "4");
    EXPECT_EQ(v[2], std::to_string(rank));
    EXPECT_EQ(v[3], "4");
    EXPECT_EQ(v[4], "0");
    EXPECT_EQ(v[5], "1");
    EXPECT_EQ(v[6], "node0");
    EXPECT_EQ(v[7], "127.0.0.1");
    int port = std::stoi(v[8]);
    EXPECT_TRUE(port > 0 && port < 65536) << v[8];
    EXPECT_FALSE(v[9].empty());
    EXPECT_EQ(v[10].size(), 64u);
    EXPECT_EQ(v[10].find_first_not_of("0123456789abcdef"), std::string::npos) << v[10];
    shared.insert(v[7] + " " + v[8] + " " + v[9] + " " + v[10]);
  }
  EXPECT_EQ(shared.size(), 1u);

  // A fresh secret and job id per launch.
  RunResult again = runScript({"-n", "1"}, "echo $PLEXUS_JOB_ID $PLEXUS_SECRET");
  std::vector<std::string> first = words(lines[0]), second = words(lineByRank(again.out)[0]);
  ASSERT_EQ(second.size(), 2u) << again.out;
  EXPECT_NE(second[0], first[9]);
  EXPECT_NE(second[1], first[10]);
}

TEST_F(PlexusrunTest, KeepsUserEnvironmentButOwnsItsVariables) {
  RunResult result =
      run({"-n", "2", "/bin/sh", "-c",
           "echo $PLEXUSRUN_TEST_VAR $RANK $PLEXUS_SECRET ${PLEXUS_STORE_PORT:-unset}"},
          {"PLEXUSRUN_TEST_VAR=kept", "RANK=99", "PLEXUS_SECRET=stale", "PLEXUS_STORE_PORT=1"});
  ASSERT_EQ(result.exitCode, 0) << result.err;
  std::map<int, std::string> lines = lineByRank(result.out);
  ASSERT_EQ(lines.size(), 2u) << result.out;
  for (const auto& [rank, line] : lines) {
    std::vector<std::string> v = words(line);
    ASSERT_EQ(v.size(), 4u) << line;
    EXPECT_EQ(v[0], "kept");
    EXPECT_EQ(v[1], std::to_string(rank));
    EXPECT_EQ(v[2].size(), 64u);
    EXPECT_EQ(v[3], "unset");  // a stale store override must not reach the ranks
  }
}

// (GROUP_RANK, LOCAL_RANK, LOCAL_WORLD_SIZE) expected for each rank under some options.
struct LayoutCase {
  std::vector<std::string> options;
  std::vector<std::string> expected;  // "node local localSize nodeId numNodes" per rank
};

TEST_F(PlexusrunTest, PlacesRanksOnEmulatedNodes) {
  const std::vector<LayoutCase> cases = {
      {{"-n", "4", "--nodes", "2"},
       {"0 0 2 node0 2", "0 1 2 node0 2", "1 0 2 node1 2", "1 1 2 node1 2"}},
      // rank i goes to node floor(i * 2 / 5): blocks of 3 and 2
      {{"-n", "5", "--nodes", "2"},
       {"0 0 3 node0 2", "0 1 3 node0 2", "0 2 3 node0 2", "1 0 2 node1 2", "1 1 2 node1 2"}},
      {{"-n", "4", "--layout", "3,1"},
       {"0 0 3 node0 2", "0 1 3 node0 2", "0 2 3 node0 2", "1 0 1 node1 2"}},
      {{"-n", "3", "--nodes", "3"}, {"0 0 1 node0 3", "1 0 1 node1 3", "2 0 1 node2 3"}},
  };
  for (const LayoutCase& c : cases) {
    RunResult result = runScript(c.options,
                                 "echo $GROUP_RANK $LOCAL_RANK $LOCAL_WORLD_SIZE $PLEXUS_NODE_ID "
                                 "$GROUP_WORLD_SIZE");
    SCOPED_TRACE(c.options[1] + " " + c.options[2] + " " + c.options[3]);
    ASSERT_EQ(result.exitCode, 0) << result.err;
    std::map<int, std::string> lines = lineByRank(result.out);
    ASSERT_EQ(lines.size(), c.expected.size()) << result.out;
    for (size_t rank = 0; rank < c.expected.size(); ++rank) {
      EXPECT_EQ(lines[static_cast<int>(rank)], c.expected[rank]) << "rank " << rank;
    }
  }
}

// --bind core: rank i on the (i mod C)-th CPU plexusrun may use (those of this test process),
// read back from each rank's /proc/self/status; 3 ranks wrap around a 2-CPU machine.
TEST_F(PlexusrunTest, BindCorePutsRanksOnTheAllowedCpusInTurn) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ASSERT_EQ(::sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  }
  ASSERT_FALSE(cpus.empty());
  RunResult result = runScript({"--bind", "core", "-n", "3"},
                               "sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status");
  ASSERT_EQ(result.exitCode, 0) << result.err;
  std::map<int, std::string> lines = lineByRank(result.out);
  ASSERT_EQ(lines.size(), 3u) << result.out;
  for (int rank = 0; rank < 3; ++rank) {
    EXPECT_EQ(lines[rank], std::to_string(cpus[rank % cpus.size()])) << "rank " << rank;
  }
}

TEST_F(PlexusrunTest, TagsStdoutAndStderrLinesWithRank) {
  RunResult result =
      runScript({"-n", "2"}, "echo out$RANK; echo err$RANK >&2; echo two$RANK; printf tail$RANK");
  ASSERT_EQ(result.exitCode, 0) << result.err;
  std::vector<std::string> out = splitLines(result.out);
  std::multiset<std::string> outSet(out.begin(), out.end());
  EXPECT_EQ(outSet, (std::multiset<std::string>{"[0] out0", "[0] two0", "[0] tail0", "[1] out1",
                                                "[1] two1", "[1] tail1"}))
      << result.out;
  EXPECT_EQ(result.out.back(), '\n');  // the unterminated last line was completed
  std::vector<std::string> err = splitLines(result.err);
  EXPECT_EQ(std::multiset<std::string>(err.begin(), err.end()),
            (std::multiset<std::string>{"[0] err0", "[1] err1"}))
      << result.err;
}

TEST_F(PlexusrunTest, NoTagOutputPassesBytesThrough) {
  RunResult result = runScript({"-n", "1", "--no-tag-output"}, "echo a; echo b >&2; printf c");
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(result.out, "a\nc");
  EXPECT_EQ(result.err, "b\n");
}

TEST_F(PlexusrunTest, AllRanksSucceedingGivesZero) {
  RunResult result = run({"-n", "3", "true"});
  EXPECT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(result.err, "");
}

TEST_F(PlexusrunTest, FirstFailureStopsOtherRanksAndPropagatesItsCode) {
  RunResult result =
      runScript({"-n", "3"}, "if [ \"$RANK\" = 1 ]; then echo bye; exit 3; fi; sleep 100");
  EXPECT_EQ(result.exitCode, 3) << result.err;
  EXPECT_LT(result.seconds, kQuickSeconds);
  EXPECT_NE(result.err.find("plexusrun: rank 1 exited with code 3; stopping the other ranks"),
            std::string::npos)
      << result.err;
  EXPECT_EQ(result.out, "[1] bye\n");
}

TEST_F(PlexusrunTest, LeavesNoRankProcessBehind) {
  // Each rank's shell starts a background sleep and prints its pid; rank 1 fails. Both the
  // stopped ranks' children and the failed rank's leftover child must end.
  RunResult result = runScript(
      {"-n", "3"}, "sleep 100 & echo $!; if [ \"$RANK\" = 1 ]; then sleep 0.2; exit 4; fi; wait");
  EXPECT_EQ(result.exitCode, 4) << result.err;
  EXPECT_LT(result.seconds, kQuickSeconds);
  std::vector<pid_t> pids;
  for (const auto& [rank, line] : lineByRank(result.out)) pids.push_back(std::stoi(line));
  ASSERT_EQ(pids.size(), 3u) << result.out;
  EXPECT_TRUE(allEndWithin(pids, std::chrono::seconds(10)));
}

TEST_F(PlexusrunTest, RankKilledBySignalGives128PlusSignal) {
  RunResult result =
      runScript({"-n", "2"}, "if [ \"$RANK\" = 0 ]; then kill -KILL $$; fi; sleep 100");
  EXPECT_EQ(result.exitCode, 128 + SIGKILL) << result.err;
  EXPECT_LT(result.seconds, kQuickSeconds);
  EXPECT_NE(result.err.find("rank 0 was killed by signal SIGKILL"), std::string::npos)
      << result.err;
}

// The rank killed by a signal is blamed even when a peer that noticed it exits with an error
// first (as a survivor of a SIGKILLed rank does on "connection reset"): rank 1 kills rank 0,
// then exits 1 at once.
TEST_F(PlexusrunTest, BlamesTheKilledRankOverAPeerThatExitedFirst) {
  const std::string pidFile = dir_ / "rank0.pid";
  RunResult result = runScript(
      {"-n", "2"}, "if [ \"$RANK\" = 0 ]; then echo $$ > " + pidFile + ".tmp; mv " + pidFile +
                       ".tmp " + pidFile + "; sleep 100; fi; while [ ! -e " + pidFile +
                       " ]; do sleep 0.01; done; kill -KILL $(cat " + pidFile + "); exit 1");
  EXPECT_EQ(result.exitCode, 128 + SIGKILL) << result.err;
  EXPECT_LT(result.seconds, kQuickSeconds);
  EXPECT_NE(result.err.find("rank 0 was killed by signal SIGKILL"), std::string::npos)
      << result.err;
  EXPECT_EQ(result.err.find("rank 1 exited with code 1"), std::string::npos) << result.err;
}

TEST_F(PlexusrunTest, EscalatesToSigkillWhenSigtermIsIgnored) {
  // Rank 1 ignores SIGTERM (and so does its sleep); rank 0 fails only once that is in place.
  const std::string ready = dir_ / "ready";
  RunResult result = runScript({"-n", "2"}, "if [ \"$RANK\" = 1 ]; then trap '' TERM; touch " +
                                                ready + "; sleep 100; fi; while [ ! -e " + ready +
                                                " ]; do sleep 0.02; done; exit 5");
  EXPECT_EQ(result.exitCode, 5) << result.err;
  EXPECT_GT(result.seconds, 2.0);  // the grace period is 3 s
  EXPECT_LT(result.seconds, kQuickSeconds);
  EXPECT_NE(result.err.find("sending SIGKILL"), std::string::npos) << result.err;
}

TEST_F(PlexusrunTest, ForwardsSigtermToRanks) {
  pid_t pid = start({"-n", "2", "--", "/bin/sh", "-c", "echo ready; exec sleep 100"});
  ASSERT_TRUE(waitForLines(2));
  ::kill(pid, SIGTERM);
  RunResult result = finish(pid);
  EXPECT_EQ(result.exitCode, 128 + SIGTERM) << result.err;
  EXPECT_LT(result.seconds, kQuickSeconds);
  EXPECT_NE(result.err.find("received SIGTERM; forwarding it to all ranks"), std::string::npos)
      << result.err;
}

TEST_F(PlexusrunTest, RanksDieWhenPlexusrunIsKilled) {
  // exec: the printed pid is the sleeping rank itself, which carries PR_SET_PDEATHSIG.
  pid_t pid = start({"-n", "2", "--", "/bin/sh", "-c", "echo $$; exec sleep 100"});
  ASSERT_TRUE(waitForLines(2));
  ::kill(pid, SIGKILL);
  finish(pid);
  std::vector<pid_t> pids;
  for (const auto& [rank, line] : lineByRank(readFile(dir_ / "out"))) {
    pids.push_back(std::stoi(line));
  }
  ASSERT_EQ(pids.size(), 2u);
  EXPECT_TRUE(allEndWithin(pids, std::chrono::seconds(10)));
}

TEST_F(PlexusrunTest, TimeoutStopsTheJobWith124) {
  RunResult result = run({"-n", "2", "--timeout", "0.5", "sleep", "100"});
  EXPECT_EQ(result.exitCode, 124) << result.err;
  EXPECT_GT(result.seconds, 0.4);
  EXPECT_LT(result.seconds, kQuickSeconds);
  EXPECT_NE(result.err.find("timed out after 0.5 s"), std::string::npos) << result.err;
}

TEST_F(PlexusrunTest, ReportsProgramsThatCannotRun) {
  RunResult missing = run({"-n", "2", "plexusrun-test-no-such-program"});
  EXPECT_EQ(missing.exitCode, 127);
  EXPECT_NE(missing.err.find("plexusrun: cannot run 'plexusrun-test-no-such-program'"),
            std::string::npos)
      << missing.err;
  const std::string notExecutable = dir_ / "not-executable";
  std::ofstream(notExecutable) << "#!/bin/sh\n";
  // No execute bit at all: EACCES even for root.
  ::chmod(notExecutable.c_str(), 0644);
  RunResult denied = run({"-n", "1", notExecutable});
  EXPECT_EQ(denied.exitCode, 126);
  EXPECT_NE(denied.err.find("Permission denied"), std::string::npos) << denied.err;
}

TEST_F(PlexusrunTest, BadArgumentsExitWith2AndUsage) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"true"},
      {"-n"},
      {"-n", "0", "true"},
      {"-n", "abc", "true"},
      {"-n", "-3", "true"},
      {"-n", "2"},
      {"-n", "2", "--nodes", "3", "true"},
      {"-n", "2", "--nodes", "0", "true"},
      {"-n", "3", "--layout", "3,1", "true"},
      {"-n", "2", "--layout", "2,0", "true"},
      {"-n", "3", "--layout", "2,,1", "true"},
      {"-n", "4", "--nodes", "2", "--layout", "3,1", "true"},
      {"-n", "1", "--timeout", "-1", "true"},
      {"-n", "1", "--timeout", "soon", "true"},
      {"-n", "1", "--frobnicate", "true"},
      {"-n", "1", "--no-tag-output=1", "true"},
      {"-n", "1", "--bind", "socket", "true"},
      {"-n", "1", "--bind"},
  };
  for (const auto& args : bad) {
    std::string joined;
    for (const std::string& arg : args) joined += arg + " ";
    SCOPED_TRACE(joined);
    RunResult result = run(args);
    EXPECT_EQ(result.exitCode, 2);
    std::vector<std::string> lines = splitLines(result.err);
    ASSERT_GE(lines.size(), 2u) << result.err;
    EXPECT_EQ(lines[0].rfind("plexusrun: ", 0), 0u) << lines[0];
    EXPECT_EQ(lines[1].rfind("usage: plexusrun", 0), 0u) << lines[1];
    EXPECT_EQ(result.out, "");
  }
  RunResult help = run({"--help"});
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_EQ(help.out.rfind("usage: plexusrun", 0), 0u);
}

}  // namespace
}  // namespace plexus
