#include "src/engine.h"

#include <pthread.h>

namespace plexus::internal {

void WorkState::finish(Status status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = std::move(status);
    done_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

Status WorkState::wait(std::chrono::milliseconds timeout, std::chrono::microseconds spin) const {
  auto start = std::chrono::steady_clock::now();
  // A short spin catches operations that are about to finish without a sleep/wake round trip.
  while (!test() && std::chrono::steady_clock::now() - start < spin) {
  }
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [this] { return done_.load(std::memory_order_acquire); };
  if (timeout == std::chrono::milliseconds::max()) {
    cv_.wait(lock, ready);
  } else if (!cv_.wait_until(lock, start + timeout, ready)) {
    return deadlineExceeded("Work::wait: the operation did not finish within " +
                            std::to_string(timeout.count()) + " ms (it keeps running)");
  }
  return status_;
}

Status WorkState::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

ProgressEngine::ProgressEngine(std::chrono::microseconds spin) : spin_(spin) {
  thread_ = std::thread([this] { loop(); });
  pthread_setname_np(thread_.native_handle(), "plexus-progress");
}

ProgressEngine::~ProgressEngine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<WorkState> ProgressEngine::submit(Task task) {
  auto work = std::make_shared<WorkState>();
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({std::move(task), work});
    wake = !driving_;  // a driver drains the queue before it lets go
  }
  if (wake) cv_.notify_one();
  return work;
}

bool ProgressEngine::tryBecomeDriver() {
  std::lock_guard<std::mutex> lock(mu_);
  if (driving_ || !queue_.empty()) return false;
  driving_ = true;
  return true;
}

void ProgressEngine::releaseDriver() {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    driving_ = false;
    wake = !queue_.empty();  // something was queued while we drove inline
  }
  if (wake) cv_.notify_one();
}

void ProgressEngine::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return (stop_ || !queue_.empty()) && !driving_; });
    if (queue_.empty()) return;  // stopping, and nothing left to run
    driving_ = true;
    while (!queue_.empty()) {
      Queued item = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      Status s = item.task();
      item.work->finish(std::move(s));
      lock.lock();
    }
    driving_ = false;
  }
}

}  // namespace plexus::internal
