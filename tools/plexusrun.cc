// plexusrun: launches N local ranks of a program with torchrun-style environment and
// supervises them as one job. See kUsage in plexusrun_options.cc and Job in plexusrun_job.h.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "tools/plexusrun_env.h"
#include "tools/plexusrun_job.h"
#include "tools/plexusrun_options.h"
#include "tools/plexusrun_output.h"

namespace {

constexpr int kExitUsage = 2;

// If we were started with 0, 1 or 2 closed, the first pipe would land there and dup2 onto
// itself in the child would keep its close-on-exec flag; fill the holes with /dev/null. These
// descriptors live as long as the process, like the standard streams they stand in for.
void ensureStandardFdsOpen() {
  for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) ::open("/dev/null", O_RDWR);
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace plexus::run;
  ensureStandardFdsOpen();
  plexus::StatusOr<LaunchOptions> options = parseOptions(argc, argv);
  if (!options.ok()) {
    notice(options.status().message());
    writeAll(STDERR_FILENO, kUsage);
    return kExitUsage;
  }
  if (options->showHelp) {
    writeAll(STDOUT_FILENO, kUsage);
    return 0;
  }
  plexus::StatusOr<JobIdentity> identity = makeJobIdentity();
  if (!identity.ok()) {
    notice(identity.status().message());
    return 1;
  }
  Job job(std::move(*options), std::move(*identity));
  return job.run();
}
