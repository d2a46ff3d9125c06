// Logging to stderr, filtered by PLEXUS_DEBUG=WARN|INFO|TRACE (default WARN). Lines read
// "plexus[rank R] LEVEL: message". Thread-safe: each line is one write.
#pragma once

#include <string>

namespace plexus {

enum class LogLevel : int { kError = 0, kWarn = 1, kInfo = 2, kTrace = 3 };

/// The level in force (read from PLEXUS_DEBUG once, on first use).
LogLevel logLevel();
/// Overrides the level (tests, tools).
void setLogLevel(LogLevel level);
/// Sets the rank shown in this process's log lines (-1: none).
void setLogRank(int rank);
/// True when messages of `level` are printed.
inline bool logEnabled(LogLevel level) {
  return static_cast<int>(level) <= static_cast<int>(logLevel());
}
/// Prints a printf-style message at `level` when enabled.
void logf(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace plexus

#define PLEXUS_LOG(level, ...)                                \
  do {                                                        \
    if (::plexus::logEnabled(::plexus::LogLevel::level))      \
      ::plexus::logf(::plexus::LogLevel::level, __VA_ARGS__); \
  } while (0)
