#pragma once
// A bounded single-producer single-consumer ring. Neither side ever blocks or allocates after construction: a full
// ring refuses the push (the producer counts the drop), an empty ring refuses the pop. Used where a thread we do not
// own (GStreamer's streaming threads) hands audio to ours.
#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <optional>

namespace fc25::core {

template <typename T>
class SpscRing {
 public:
  // Holds up to `capacity` items (rounded up to a power of two).
  explicit SpscRing(std::size_t capacity) {
    std::size_t n = 2;
    while (n < capacity) n <<= 1;
    mask_ = n - 1;
    slots_ = std::make_unique<T[]>(n);
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  std::size_t capacity() const { return mask_ + 1; }

  // Producer side. False when full (the item is not taken).
  bool push(const T& item) {
    auto head = head_.load(std::memory_order_relaxed);
    if (head - tail_cache_ > mask_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head - tail_cache_ > mask_) return false;
    }
    slots_[head & mask_] = item;
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

  // Consumer side. False when empty.
  bool pop(T& out) {
    auto tail = tail_.load(std::memory_order_relaxed);
    if (tail == head_cache_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail == head_cache_) return false;
    }
    out = slots_[tail & mask_];
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Consumer side: items ready to pop (a lower bound while the producer runs).
  std::size_t size() const {
    return head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_relaxed);
  }

 private:
  static constexpr std::size_t kLine = 64;
  std::unique_ptr<T[]> slots_;
  std::size_t mask_ = 0;
  alignas(kLine) std::atomic<std::size_t> head_{0};  // written by the producer
  std::size_t tail_cache_ = 0;                       // producer's view of tail
  alignas(kLine) std::atomic<std::size_t> tail_{0};  // written by the consumer
  std::size_t head_cache_ = 0;                       // consumer's view of head
};

}  // namespace fc25::core
