#include "tools/plexusrun_job.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

extern char** environ;

namespace plexus::run {

namespace {

// How long stopped ranks get to exit after SIGTERM (or a forwarded signal) before SIGKILL:
// enough to flush logs, short enough that a wedged job does not hold the machine.
constexpr auto kKillGrace = std::chrono::seconds(3);
// After the last rank is reaped its pipes normally hit EOF at once; only a descendant that
// left the rank's process group (setsid) can hold them open, and we do not wait for it long.
constexpr auto kDrainGrace = std::chrono::seconds(1);
// When a rank exits with an error code, how long we wait for a rank killed by a signal before
// blaming the error: a killed rank's sockets close before it becomes a zombie, so its peers can
// notice ("connection reset"), exit 1 and be reaped first. The signal is the root cause.
constexpr auto kBlameWindow = std::chrono::milliseconds(250);
// Pipe reads per stream when draining an exited rank: a pipe holds 64 KiB, so a few reads
// empty it, and a bound keeps a stray writer from pinning the loop.
constexpr int kMaxDrainReads = 16;
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kExitInternal = 1;
constexpr int kExitTimeout = 124;
constexpr int kExitCannotExecute = 126;
constexpr int kExitNotFound = 127;

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string signalName(int signal) {
  const char* abbrev = ::sigabbrev_np(signal);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(signal);
}

// The exit code a shell would report for `waitStatus`.
int exitCodeOf(int waitStatus) {
  if (WIFEXITED(waitStatus)) return WEXITSTATUS(waitStatus);
  if (WIFSIGNALED(waitStatus)) return 128 + WTERMSIG(waitStatus);
  return kExitInternal;
}

// Descriptors the child needs between fork and exec.
struct ChildFds {
  int stdinFd;
  int stdoutFd;
  int stderrFd;
  int execErrorFd;  // close-on-exec: EOF tells the parent exec succeeded, an errno that it failed
};

// Runs in the forked child. Only async-signal-safe calls: the parent is single-threaded, but
// keeping to them keeps this correct if it ever is not. With `cpu`, the rank (and every thread
// it starts) runs on that CPU alone; a failure to bind reaches the parent as −errno.
[[noreturn]] void becomeRank(const ChildFds& fds, const sigset_t& mask, pid_t parent, char** argv,
                             char** envp, const cpu_set_t* cpu) {
  auto fail = [&](int err) {
    ssize_t ignored = ::write(fds.execErrorFd, &err, sizeof(err));
    (void)ignored;
    ::_exit(err == ENOENT ? kExitNotFound : err < 0 ? kExitInternal : kExitCannotExecute);
  };
  if (cpu != nullptr && ::sched_setaffinity(0, sizeof(*cpu), cpu) != 0) fail(-errno);
  ::setpgid(0, 0);
  // If plexusrun died before the prctl took effect, no signal will ever come: leave now.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(kExitInternal);
  // The mask survives exec; the rank must see the signals plexusrun reads via signalfd.
  ::sigprocmask(SIG_SETMASK, &mask, nullptr);
  if (::dup2(fds.stdinFd, STDIN_FILENO) < 0 || ::dup2(fds.stdoutFd, STDOUT_FILENO) < 0 ||
      ::dup2(fds.stderrFd, STDERR_FILENO) < 0) {
    fail(errno);
  }
  ::execvpe(argv[0], argv, envp);
  fail(errno);
  ::_exit(kExitInternal);  // unreachable; fail() does not return
}

// A pipe whose both ends are close-on-exec, so no rank inherits another rank's pipes (which
// would keep them open past that rank's exit). dup2 onto 0/1/2 clears the flag in the child.
Status makePipe(UniqueFd& readEnd, UniqueFd& writeEnd) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return internalError(errnoText("pipe2"));
  readEnd.reset(fds[0]);
  writeEnd.reset(fds[1]);
  return okStatus();
}

}  // namespace

Job::Job(LaunchOptions options, JobIdentity identity)
    : options_(std::move(options)), identity_(std::move(identity)), readBuffer_(kReadChunk) {
  for (std::string& arg : options_.command) argv_.push_back(arg.data());
  argv_.push_back(nullptr);
}

Status Job::prepare() {
  // Block before the first fork so no SIGCHLD can be lost; signalfd then delivers them in order
  // with everything else, and the loop needs no async handlers.
  sigset_t handled;
  sigemptyset(&handled);
  for (int sig : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaddset(&handled, sig);
  if (::sigprocmask(SIG_BLOCK, &handled, &originalMask_) != 0) {
    return internalError(errnoText("sigprocmask"));
  }
  signalFd_.reset(::signalfd(-1, &handled, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signalFd_.valid()) return internalError(errnoText("signalfd"));
  // Ranks run in their own process groups, outside the terminal's foreground group, where
  // reading the terminal would stop them with SIGTTIN: give them /dev/null instead.
  devNull_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devNull_.valid()) return internalError(errnoText("open /dev/null"));
  if (options_.bindCores) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (::sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
      return internalError(errnoText("--bind core: sched_getaffinity"));
    }
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &allowed)) cpus_.push_back(c);
    }
    if (cpus_.empty()) return internalError("--bind core: this process may run on no CPU");
  }
  return okStatus();
}

int Job::run() {
  if (Status status = prepare(); !status.ok()) {
    notice(status.message());
    return kExitInternal;
  }
  std::vector<RankPlacement> placements = placeRanks(options_.ranksPerNode);
  ranks_.reserve(placements.size());  // Stream pointers in supervise() must stay valid
  if (options_.timeoutSeconds) {
    jobDeadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(*options_.timeoutSeconds));
  }
  for (const RankPlacement& placement : placements) {
    if (!launchRank(placement)) break;
  }
  supervise();
  return exitCode_;
}

bool Job::launchRank(const RankPlacement& placement) {
  const std::string rankText = "rank " + std::to_string(placement.rank);
  UniqueFd outRead, outWrite, errRead, errWrite, execRead, execWrite;
  Status piped = makePipe(outRead, outWrite);
  if (piped.ok()) piped = makePipe(errRead, errWrite);
  if (piped.ok()) piped = makePipe(execRead, execWrite);
  if (!piped.ok()) {
    stop(kExitInternal, "cannot start " + rankText + ": " + piped.message(), SIGTERM);
    return false;
  }
  std::vector<std::string> env = mergeEnvironment(environ, rankVariables(placement, identity_));
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (std::string& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);

  cpu_set_t cpu;
  CPU_ZERO(&cpu);
  const int cpuIndex = cpus_.empty() ? -1 : cpus_[placement.rank % cpus_.size()];
  if (cpuIndex >= 0) CPU_SET(cpuIndex, &cpu);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    stop(kExitInternal, errnoText("cannot start " + rankText + ": fork"), SIGTERM);
    return false;
  }
  if (pid == 0) {
    becomeRank({devNull_.get(), outWrite.get(), errWrite.get(), execWrite.get()}, originalMask_,
               parent, argv_.data(), envp.data(), cpuIndex >= 0 ? &cpu : nullptr);
  }
  ::setpgid(pid, pid);  // also done by the child; whichever runs first wins, both agree
  outWrite.reset();
  errWrite.reset();
  execWrite.reset();
  ranks_.push_back(Rank{
      .rank = placement.rank,
      .pid = pid,
      .running = true,
      .out = {std::move(outRead), LineForwarder(placement.rank, STDOUT_FILENO, options_.tagOutput)},
      .err = {std::move(errRead), LineForwarder(placement.rank, STDERR_FILENO, options_.tagOutput)},
  });
  ++running_;

  // Wait for exec: a failure there (program not found, not executable) is the same for every
  // rank, so report it once, clearly, instead of N copies of a shell-style error.
  int childErrno = 0;
  ssize_t n;
  do {
    n = ::read(execRead.get(), &childErrno, sizeof(childErrno));
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof(childErrno))) return true;
  if (childErrno < 0) {
    stop(kExitInternal,
         "--bind core: cannot bind " + rankText + " to CPU " + std::to_string(cpuIndex) + ": " +
             std::strerror(-childErrno),
         SIGTERM);
    return false;
  }
  const std::string& program = options_.command.front();
  std::string message = "cannot run '" + program + "': " + std::strerror(childErrno);
  if (childErrno == ENOENT && program.find('/') == std::string::npos) message += " (not in PATH)";
  if (running_ > 1) message += "; stopping the ranks already started";
  stop(childErrno == ENOENT ? kExitNotFound : kExitCannotExecute, message, SIGTERM);
  return false;
}

void Job::supervise() {
  std::vector<pollfd> fds;
  std::vector<Stream*> streams;  // streams[i] is watched by fds[i + 1]
  while (!finished()) {
    fds.assign(1, pollfd{.fd = signalFd_.get(), .events = POLLIN, .revents = 0});
    streams.clear();
    for (Rank& rank : ranks_) {
      for (Stream* stream : {&rank.out, &rank.err}) {
        if (!stream->fd.valid()) continue;
        fds.push_back({.fd = stream->fd.get(), .events = POLLIN, .revents = 0});
        streams.push_back(stream);
      }
    }
    int ready = ::poll(fds.data(), fds.size(), pollTimeoutMs());
    if (ready < 0 && errno != EINTR) {
      // Cannot happen short of ENOMEM; without poll we cannot supervise, so end the job hard.
      notice(errnoText("poll") + "; killing all ranks");
      if (!stopping_) exitCode_ = kExitInternal;
      signalRunning(SIGKILL);
      for (Rank& rank : ranks_) {
        if (rank.running) ::waitpid(rank.pid, nullptr, 0);
      }
      return;
    }
    if (ready > 0) {
      if (fds[0].revents != 0) handleSignals();
      for (size_t i = 0; i < streams.size(); ++i) {
        // A stream may have been drained and closed by handleSignals() above.
        if (fds[i + 1].revents != 0 && streams[i]->fd.valid()) readStream(*streams[i]);
      }
    }
    checkDeadlines();
  }
}

int Job::pollTimeoutMs() const {
  std::optional<Clock::time_point> next;
  for (const auto& deadline : {jobDeadline_, killDeadline_, drainDeadline_, blameDeadline_}) {
    if (deadline && (!next || *deadline < *next)) next = deadline;
  }
  if (!next) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now()).count();
  return static_cast<int>(std::clamp<decltype(left)>(left, 0, 60'000));
}

void Job::handleSignals() {
  signalfd_siginfo info;
  while (::read(signalFd_.get(), &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
    if (info.ssi_signo != SIGCHLD) userSignal(static_cast<int>(info.ssi_signo));
  }
  // SIGCHLDs coalesce, so reap everything that has exited rather than one per signal.
  reapExited();
}

void Job::userSignal(int signal) {
  if (!stopping_) {
    stop(128 + signal, "received " + signalName(signal) + "; forwarding it to all ranks", signal);
    return;
  }
  notice("received " + signalName(signal) + " again; killing all ranks");
  killDeadline_.reset();
  signalRunning(SIGKILL);
}

void Job::reapExited() {
  while (true) {
    siginfo_t info{};
    // WNOWAIT leaves the rank a zombie, which pins its pid and so its process group id while
    // we kill what is left in the group; reaping first could let the id be reused.
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
    const pid_t pid = info.si_pid;
    ::kill(-pid, SIGKILL);
    int waitStatus = 0;
    if (::waitpid(pid, &waitStatus, 0) != pid) return;
    for (Rank& rank : ranks_) {
      if (rank.pid == pid) rankExited(rank, waitStatus);
    }
  }
}

void Job::rankExited(Rank& rank, int waitStatus) {
  rank.running = false;
  --running_;
  // Forward what the rank wrote before it died ahead of our verdict on it.
  drainAvailable(rank);
  const int code = exitCodeOf(waitStatus);
  if (code != 0 && !stopping_) {
    if (WIFSIGNALED(waitStatus)) {
      stopAfterFailure(code, "rank " + std::to_string(rank.rank) + " was killed by signal " +
                                 signalName(WTERMSIG(waitStatus)));
    } else if (!blamed_) {
      blamed_ = Blame{
          code, "rank " + std::to_string(rank.rank) + " exited with code " + std::to_string(code)};
      blameDeadline_ = Clock::now() + kBlameWindow;
    }
  }
  if (running_ == 0) {
    if (blamed_ && !stopping_) stopAfterFailure(blamed_->code, blamed_->message);
    drainDeadline_ = Clock::now() + kDrainGrace;
  }
}

void Job::stopAfterFailure(int code, std::string message) {
  blamed_.reset();
  blameDeadline_.reset();
  if (running_ > 0) message += "; stopping the other ranks";
  stop(code, message, SIGTERM);
}

void Job::readStream(Stream& stream) {
  ssize_t n = ::read(stream.fd.get(), readBuffer_.data(), readBuffer_.size());
  if (n > 0) {
    stream.forwarder.consume({readBuffer_.data(), static_cast<size_t>(n)});
  } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    closeStream(stream);
  }
}

void Job::drainAvailable(Rank& rank) {
  for (Stream* stream : {&rank.out, &rank.err}) {
    for (int i = 0; i < kMaxDrainReads && stream->fd.valid(); ++i) {
      pollfd pfd{.fd = stream->fd.get(), .events = POLLIN, .revents = 0};
      if (::poll(&pfd, 1, 0) <= 0) break;
      readStream(*stream);
    }
  }
}

void Job::closeStream(Stream& stream) {
  stream.forwarder.finish();
  stream.fd.reset();
}

void Job::checkDeadlines() {
  const Clock::time_point now = Clock::now();
  if (blameDeadline_ && now >= *blameDeadline_ && blamed_ && !stopping_) {
    stopAfterFailure(blamed_->code, blamed_->message);
  }
  if (jobDeadline_ && now >= *jobDeadline_) {
    jobDeadline_.reset();
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%g", *options_.timeoutSeconds);
    stop(kExitTimeout, std::string("job timed out after ") + seconds + " s; stopping all ranks",
         SIGTERM);
  }
  if (killDeadline_ && now >= *killDeadline_) {
    killDeadline_.reset();
    if (running_ > 0) {
      notice(std::to_string(running_) + " rank(s) still running " +
             std::to_string(kKillGrace.count()) + " s after being stopped; sending SIGKILL");
      signalRunning(SIGKILL);
    }
  }
  if (drainDeadline_ && now >= *drainDeadline_) {
    drainDeadline_.reset();
    for (Rank& rank : ranks_) {
      if (rank.out.fd.valid()) closeStream(rank.out);
      if (rank.err.fd.valid()) closeStream(rank.err);
    }
  }
}

bool Job::finished() const {
  if (running_ > 0) return false;
  for (const Rank& rank : ranks_) {
    if (rank.out.fd.valid() || rank.err.fd.valid()) return false;
  }
  return true;
}

void Job::stop(int exitCode, const std::string& message, int signal) {
  if (stopping_) return;
  stopping_ = true;
  exitCode_ = exitCode;
  notice(message);
  jobDeadline_.reset();
  signalRunning(signal);
  killDeadline_ = Clock::now() + kKillGrace;
}

void Job::signalRunning(int signal) {
  for (const Rank& rank : ranks_) {
    if (!rank.running) continue;
    // The group reaches the shells' children too; the pid covers a rank that left its group.
    ::kill(-rank.pid, signal);
    if (::getpgid(rank.pid) != rank.pid) ::kill(rank.pid, signal);
  }
}

}  // namespace plexus::run
