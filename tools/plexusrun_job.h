// Job: launches the ranks of one plexusrun invocation and supervises them to the end: forwards
// their output, stops everyone when one fails, on timeout or on SIGINT/SIGTERM, and reaps every
// child before returning.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "src/unique_fd.h"
#include "tools/plexusrun_env.h"
#include "tools/plexusrun_options.h"
#include "tools/plexusrun_output.h"

namespace plexus::run {

/// One launch. Single-threaded: one poll() loop watches a signalfd (SIGCHLD, SIGINT, SIGTERM,
/// SIGHUP) and every rank's stdout/stderr pipe.
///
/// Each rank runs in its own process group (so a stop reaches the shells and helpers it
/// spawned) with PR_SET_PDEATHSIG=SIGKILL (so it dies if plexusrun is SIGKILLed). When a rank
/// exits, whatever is left in its process group is SIGKILLed before the rank is reaped: nothing
/// outlives its rank and holds our pipes open.
class Job {
 public:
  Job(LaunchOptions options, JobIdentity identity);

  /// Launches every rank and returns once all have been reaped: 0 when all succeeded; else the
  /// exit code of whatever stopped the job first: the first failing rank (128+S for signal S),
  /// 124 for --timeout, 128+S for a signal S sent to plexusrun, 126/127 for a program that
  /// cannot be executed, 1 for a failure of plexusrun itself.
  int run();

 private:
  using Clock = std::chrono::steady_clock;

  // One output pipe of one rank.
  struct Stream {
    UniqueFd fd;
    LineForwarder forwarder;
  };
  struct Rank {
    int rank = 0;
    pid_t pid = -1;
    bool running = true;  // not reaped yet
    Stream out;
    Stream err;
  };

  Status prepare();
  // Forks and execs one rank; false (after stopping the job) when it cannot be started.
  bool launchRank(const RankPlacement& placement);
  void supervise();
  int pollTimeoutMs() const;
  void handleSignals();
  void userSignal(int signal);
  void reapExited();
  void rankExited(Rank& rank, int waitStatus);
  void readStream(Stream& stream);
  void drainAvailable(Rank& rank);
  void closeStream(Stream& stream);
  void checkDeadlines();
  bool finished() const;
  // Starts stopping the job for the first time: records `exitCode`, prints `message`, sends
  // `signal` to every running rank and arms the SIGKILL escalation.
  void stop(int exitCode, const std::string& message, int signal);
  // stop() for a failed rank, with SIGTERM to the others.
  void stopAfterFailure(int code, std::string message);
  void signalRunning(int signal);

  LaunchOptions options_;
  JobIdentity identity_;
  std::vector<char*> argv_;  // points into options_.command
  sigset_t originalMask_{};  // restored in each rank before exec
  UniqueFd signalFd_;
  UniqueFd devNull_;       // every rank's stdin
  std::vector<int> cpus_;  // --bind core: the CPUs plexusrun may run on, rank i on cpus_[i % C]
  std::vector<Rank> ranks_;
  std::vector<char> readBuffer_;
  int running_ = 0;
  bool stopping_ = false;
  int exitCode_ = 0;
  std::optional<Clock::time_point> jobDeadline_;    // --timeout
  std::optional<Clock::time_point> killDeadline_;   // SIGKILL escalation after a stop
  std::optional<Clock::time_point> drainDeadline_;  // give up on pipes once all ranks are reaped
  // The first rank that exited with an error code, blamed at blameDeadline_ unless a rank
  // killed by a signal turns up first (see kBlameWindow).
  struct Blame {
    int code;
    std::string message;
  };
  std::optional<Blame> blamed_;
  std::optional<Clock::time_point> blameDeadline_;
};

}  // namespace plexus::run
