// A blocking queue shared by a pool of worker threads. Items with a smaller
// priority come out first, equal priorities in arrival order. Close() wakes
// every waiting worker; Pop() then returns nothing and the worker ends.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <queue>
#include <tuple>
#include <vector>

namespace kbrun::batch {

template <typename T>
class WorkQueue {
 public:
  // False when the queue is closed: the item was not taken.
  bool Push(T item, long priority = 0) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return false;
      items_.push(Entry{priority, seq_++, std::move(item)});
    }
    cv_.notify_one();
    return true;
  }

  // Blocks until an item arrives or the queue is closed.
  std::optional<T> Pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return closed_ || !items_.empty(); });
    if (closed_) return std::nullopt;  // closing drops what is left: the batch is stopping
    T item = std::move(const_cast<Entry&>(items_.top()).item);
    items_.pop();
    return item;
  }

  // The next item if one is waiting and the queue is open, without blocking.
  std::optional<T> TryPop() {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || items_.empty()) return std::nullopt;
    T item = std::move(const_cast<Entry&>(items_.top()).item);
    items_.pop();
    return item;
  }

  bool Closed() {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

  // Stops the queue and returns what was still waiting, for the caller to clean up.
  std::vector<T> Close() {
    std::vector<T> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      while (!items_.empty()) {
        left.push_back(std::move(const_cast<Entry&>(items_.top()).item));
        items_.pop();
      }
    }
    cv_.notify_all();
    return left;
  }

 private:
  struct Entry {
    long priority;
    unsigned long long seq;
    T item;
    // std::priority_queue pops the largest: invert so that the smallest key wins.
    bool operator<(const Entry& o) const { return std::tie(priority, seq) > std::tie(o.priority, o.seq); }
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Entry> items_;
  unsigned long long seq_ = 0;
  bool closed_ = false;
};

}  // namespace kbrun::batch
