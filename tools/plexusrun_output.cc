#include "tools/plexusrun_output.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace plexus::run {

namespace {

// A rank printing a progress bar with '\r' and no newline would otherwise grow the buffer
// without bound; past this many bytes the pending text is forwarded as a line of its own.
constexpr size_t kMaxPendingLine = 64 * 1024;

}  // namespace

void writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{.fd = fd, .events = POLLOUT, .revents = 0};
      ::poll(&pfd, 1, -1);
    } else {
      return;
    }
  }
}

void notice(std::string_view message) {
  std::string line = "plexusrun: ";
  line.append(message);
  line.push_back('\n');
  writeAll(STDERR_FILENO, line);
}

LineForwarder::LineForwarder(int rank, int destinationFd, bool tag)
    : destinationFd_(destinationFd), tag_(tag) {
  // Appended piecewise: "[" + std::to_string(...) trips GCC 12's false -Wrestrict at -O3.
  prefix_.push_back('[');
  prefix_.append(std::to_string(rank));
  prefix_.append("] ");
}

void LineForwarder::consume(std::string_view bytes) {
  // Everything completed by this chunk goes out in one write, so a burst of lines costs one
  // syscall and stays contiguous even if other ranks write to the same destination.
  std::string out;
  size_t newline;
  while ((newline = bytes.find('\n')) != std::string_view::npos) {
    if (partial_.empty()) {
      appendLine(out, bytes.substr(0, newline), true);
    } else {
      partial_.append(bytes.substr(0, newline));
      appendLine(out, partial_, true);
      partial_.clear();
    }
    bytes.remove_prefix(newline + 1);
  }
  partial_.append(bytes);
  if (partial_.size() >= kMaxPendingLine) {
    appendLine(out, partial_, tag_);
    partial_.clear();
  }
  if (!out.empty()) writeAll(destinationFd_, out);
}

void LineForwarder::finish() {
  if (partial_.empty()) return;
  std::string out;
  appendLine(out, partial_, tag_);
  partial_.clear();
  writeAll(destinationFd_, out);
}

void LineForwarder::appendLine(std::string& out, std::string_view line, bool terminated) const {
  if (tag_) out.append(prefix_);
  out.append(line);
  if (terminated) out.push_back('\n');
}

}  // namespace plexus::run
