// Status and StatusOr: the error model of every Plexus boundary. No exception crosses the public
// API; every fallible call returns a value that cannot be silently ignored.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "plexus/export.h"

namespace plexus {

/// What went wrong, coarsely; the message says the rest.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,   ///< the caller passed something wrong (null buffer, bad rank, ...)
  kUnavailable = 2,       ///< a peer failed or could not be reached
  kDeadlineExceeded = 3,  ///< a wait ran past its deadline
  kAborted = 4,           ///< the communicator was aborted
  kInternal = 5,          ///< a bug or an unexpected failure below us (transport, OS)
  kUnimplemented = 6,     ///< the request is valid but this build cannot serve it
};

/// Returns "OK", "InvalidArgument", ... for logs and messages.
PLEXUS_API const char* statusCodeName(StatusCode code);

/// The outcome of an operation: a code and, when not OK, a message with context (rank, peer,
/// transport, operation). Cheap to copy when OK.
class [[nodiscard]] PLEXUS_API Status {
 public:
  /// An OK status.
  Status() = default;
  /// A status with `code` and `message`; `code` kOk ignores the message.
  Status(StatusCode code, std::string message);

  /// True when the operation succeeded.
  bool ok() const { return code_ == StatusCode::kOk; }
  /// The code; kOk on success.
  StatusCode code() const { return code_; }
  /// The message; empty on success.
  const std::string& message() const { return message_; }
  /// "OK" or "<CodeName>: <message>".
  std::string toString() const;
  /// A copy whose message is "<prefix>: <message>"; OK stays OK.
  Status withContext(const std::string& prefix) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

/// An OK status.
inline Status okStatus() { return Status(); }
/// Constructors for each error code.
PLEXUS_API Status invalidArgument(std::string message);
PLEXUS_API Status unavailable(std::string message);
PLEXUS_API Status deadlineExceeded(std::string message);
PLEXUS_API Status aborted(std::string message);
PLEXUS_API Status internalError(std::string message);
PLEXUS_API Status unimplemented(std::string message);

/// Either a value of type T or a non-OK Status. Access the value only after checking ok().
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  /// Holds a value.
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  /// Holds an error; an OK status here is a programming error and becomes kInternal.
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "StatusOr built from OK status");
  }

  /// True when a value is held.
  bool ok() const { return status_.ok(); }
  /// The error, or OK when a value is held.
  const Status& status() const { return status_; }
  /// The value; only valid when ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace plexus

/// Returns from the enclosing function when `expr` (a Status) is not OK. The one propagation
/// macro: no hidden goto, no chains.
#define PLEXUS_TRY(expr)                                     \
  do {                                                       \
    ::plexus::Status plexus_try_status_ = (expr);            \
    if (!plexus_try_status_.ok()) return plexus_try_status_; \
  } while (0)
