#pragma once
// A doorbell between threads: producers ring it after handing work over (through lock-free rings), one consumer
// sleeps on it between passes. Ringing costs an atomic increment, and a system call only while the consumer sleeps;
// a ring that comes while the consumer works makes its next wait return at once, so nothing handed over waits for
// a clock. Linux futex underneath.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>

namespace fc25::core {

class Doorbell {
 public:
  // Read before taking work; pass to wait() after the pass.
  std::uint32_t rung() const { return seq_.load(std::memory_order_seq_cst); }

  void ring() {
    seq_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) futex(FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
  }

  // Returns once the bell was rung after rung() returned `seen` (at once when it already was), or after `timeout`.
  void wait(std::uint32_t seen, std::chrono::nanoseconds timeout) {
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    if (seq_.load(std::memory_order_seq_cst) == seen) {
      auto ns = timeout.count() > 0 ? timeout.count() : 0;
      timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      futex(FUTEX_WAIT_PRIVATE, seen, &ts);  // returns at once when the value is no longer `seen`
    }
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
  }

 private:
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                std::atomic<std::uint32_t>::is_always_lock_free);
  long futex(int op, std::uint32_t value, const timespec* timeout) {
    return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&seq_), op, value, timeout, nullptr, 0);
  }
  std::atomic<std::uint32_t> seq_{0};
  std::atomic<int> sleepers_{0};
};

}  // namespace fc25::core
