// Work: the handle of an asynchronous collective.
#pragma once

#include <chrono>
#include <memory>

#include "plexus/export.h"
#include "plexus/status.h"

namespace plexus {

namespace internal {
class WorkState;
}

/// Handle to an operation queued on a communicator's progress engine. Copyable; all copies
/// refer to the same operation. The buffers passed to the call must stay valid until the
/// operation has finished (test() is true or wait() returned). Thread-safe.
class PLEXUS_API Work {
 public:
  /// An infinite timeout for wait().
  static constexpr std::chrono::milliseconds kForever = std::chrono::milliseconds::max();

  /// Blocks until the operation finished or `timeout` passed. Returns the operation's status,
  /// or DeadlineExceeded when the timeout passed first (the operation keeps running).
  Status wait(std::chrono::milliseconds timeout = kForever) const;
  /// True when the operation has finished, successfully or not. Never blocks.
  bool test() const;
  /// The operation's status: OK while pending or after success.
  Status error() const;

  explicit Work(std::shared_ptr<internal::WorkState> state);

 private:
  std::shared_ptr<internal::WorkState> state_;
};

}  // namespace plexus
