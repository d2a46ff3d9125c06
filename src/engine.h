// The progress engine: executes a communicator's collectives one at a time, in the order they
// were issued, on one driver thread at a time.
//
// Who drives. Async calls are queued and run by the engine's background thread. A blocking call
// that finds the engine idle (nothing queued, nobody driving) runs inline on the calling thread
// instead: this saves two thread hand-offs per call, which cost more than a small message, and
// leaves one thread per rank on the cores when ranks outnumber cores. Either way exactly one
// thread drives the transport at any time (whoever turns the atomic `driving_` from false to
// true), and order is kept: an inline call only happens when nothing issued earlier is queued
// (`queued_`). The inline path takes no lock (two uncontended lock/unlock pairs were ~15 ns of a
// 0.3 us 2-rank 8 B all-reduce); the queue and the thread's sleep stay under `mu_`.
//
// Waiting. The background thread sleeps on a condition variable while the queue is empty; a
// thread waiting for a Work spins briefly, then sleeps (see WorkState).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "plexus/status.h"

namespace plexus::internal {

/// Shared state behind a Work handle.
class WorkState {
 public:
  /// Records the outcome and wakes waiters. Called once, by the driver.
  void finish(Status status);
  /// Waits for the outcome (spinning for `spin` first); DeadlineExceeded when `timeout` passes.
  Status wait(std::chrono::milliseconds timeout, std::chrono::microseconds spin) const;
  bool test() const { return done_.load(std::memory_order_acquire); }
  Status error() const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::atomic<bool> done_{false};
  Status status_;
};

class ProgressEngine {
 public:
  using Task = std::function<Status()>;

  explicit ProgressEngine(std::chrono::microseconds spin);
  /// Runs what is queued, then stops the background thread.
  ~ProgressEngine();
  ProgressEngine(const ProgressEngine&) = delete;
  ProgressEngine& operator=(const ProgressEngine&) = delete;

  /// Queues `task`; the returned state finishes when it has run.
  std::shared_ptr<WorkState> submit(Task task);

  /// Runs `task` after everything issued before it and returns its status. Runs inline when the
  /// engine is idle (no allocation, no hand-off); otherwise queues it and waits.
  template <typename F>
  Status runBlocking(F&& task) {
    if (tryBecomeDriver()) {
      Status s = task();
      releaseDriver();
      return s;
    }
    return submit(Task(std::forward<F>(task)))->wait(std::chrono::milliseconds::max(), spin_);
  }

 private:
  bool tryBecomeDriver();
  void releaseDriver();
  void loop();

  struct Queued {
    Task task;
    std::shared_ptr<WorkState> work;
  };

  const std::chrono::microseconds spin_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Queued> queue_;       // under mu_
  std::atomic<size_t> queued_{0};  // queue_.size(), changed under mu_
  std::atomic<bool> driving_{false};
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace plexus::internal
