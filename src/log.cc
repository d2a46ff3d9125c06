#include "src/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace plexus {
namespace {

LogLevel levelFromEnv() {
  const char* v = std::getenv("PLEXUS_DEBUG");
  if (v == nullptr) return LogLevel::kWarn;
  if (strcasecmp(v, "ERROR") == 0) return LogLevel::kError;
  if (strcasecmp(v, "INFO") == 0) return LogLevel::kInfo;
  if (strcasecmp(v, "TRACE") == 0) return LogLevel::kTrace;
  return LogLevel::kWarn;
}

std::atomic<int>& levelSlot() {
  static std::atomic<int> level{static_cast<int>(levelFromEnv())};
  return level;
}

std::atomic<int> gRank{-1};

const char* levelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "ERROR";
    case LogLevel::kWarn:
      return "WARN";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kTrace:
      return "TRACE";
  }
  return "?";
}

}  // namespace

LogLevel logLevel() { return static_cast<LogLevel>(levelSlot().load(std::memory_order_relaxed)); }
void setLogLevel(LogLevel level) { levelSlot().store(static_cast<int>(level)); }
void setLogRank(int rank) { gRank.store(rank); }

void logf(LogLevel level, const char* format, ...) {
  char line[2048];
  int rank = gRank.load();
  int n = rank >= 0
              ? std::snprintf(line, sizeof(line), "plexus[rank %d] %s: ", rank, levelName(level))
              : std::snprintf(line, sizeof(line), "plexus %s: ", levelName(level));
  va_list args;
  va_start(args, format);
  int m = std::vsnprintf(line + n, sizeof(line) - n - 1, format, args);
  va_end(args);
  size_t len = std::min(sizeof(line) - 2, static_cast<size_t>(n + std::max(m, 0)));
  line[len++] = '\n';
  // One write per line so that lines of concurrent threads and ranks do not interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line, len);
  (void)ignored;
}

}  // namespace plexus
