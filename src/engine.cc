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
    queued_.fetch_add(1, std::memory_order_seq_cst);
    // An inline driver that lets go after this sees queued_ and wakes the thread itself; the
    // thread, when it drives, drains the queue before it lets go.
    wake = !driving_.load(std::memory_order_seq_cst);
  }
  if (wake) cv_.notify_one();
  return work;
}

bool ProgressEngine::tryBecomeDriver() {
  if (queued_.load(std::memory_order_seq_cst) != 0) return false;  // keep the order of calls
  bool idle = false;
  return driving_.compare_exchange_strong(idle, true, std::memory_order_seq_cst);
}

void ProgressEngine::releaseDriver() {
  driving_.store(false, std::memory_order_seq_cst);
  if (queued_.load(std::memory_order_seq_cst) != 0) {
    // Something was queued while we drove inline. Taking the mutex orders this wake-up after
    // the thread's check of driving_ (or before it), so it cannot be lost.
    { std::lock_guard<std::mutex> lock(mu_); }
    cv_.notify_one();
  }
}

void ProgressEngine::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] {
      return (stop_ || !queue_.empty()) && !driving_.load(std::memory_order_seq_cst);
    });
    if (queue_.empty()) return;  // stopping, and nothing left to run
    bool idle = false;
    if (!driving_.compare_exchange_strong(idle, true, std::memory_order_seq_cst)) {
      continue;  // an inline call got in first; it wakes us when it lets go
    }
    while (!queue_.empty()) {
      Queued item = std::move(queue_.front());
      queue_.pop_front();
      queued_.fetch_sub(1, std::memory_order_seq_cst);
      lock.unlock();
      Status s = item.task();
      item.work->finish(std::move(s));
      lock.lock();
    }
    driving_.store(false, std::memory_order_seq_cst);
  }
}

}  // namespace plexus::internal
