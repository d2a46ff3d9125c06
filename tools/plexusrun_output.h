// Forwarding of rank output: whole lines, optionally tagged with the rank, so that lines from
// different ranks never interleave mid-line.
#pragma once

#include <string>
#include <string_view>

namespace plexus::run {

/// Writes all of `data` to `fd`, retrying short writes, EINTR and EAGAIN (a non-blocking
/// terminal). Gives up silently on any other error: output is best effort, and a closed stdout
/// already kills us through SIGPIPE.
void writeAll(int fd, std::string_view data);

/// Writes "plexusrun: <message>\n" to stderr in one write.
void notice(std::string_view message);

/// Cuts one rank's byte stream into lines and writes each, prefixed with "[rank] " when tagging,
/// to a destination descriptor. Not thread-safe; one per (rank, stream).
class LineForwarder {
 public:
  LineForwarder(int rank, int destinationFd, bool tag);

  /// Consumes bytes read from the rank; writes every line completed by them.
  void consume(std::string_view bytes);
  /// The stream ended: writes the unterminated last line, if any. When tagging, a newline is
  /// added so that the next rank's tag starts a line; untagged output stays byte-exact.
  void finish();

 private:
  // Appends `line` (without its newline) to `out` in the forwarded form.
  void appendLine(std::string& out, std::string_view line, bool terminated) const;

  std::string prefix_;
  int destinationFd_;
  bool tag_;
  std::string partial_;  // bytes after the last newline seen
};

}  // namespace plexus::run
