#pragma once
// Latency percentiles without storing samples: counts in 0.25 ms buckets up to 250 ms (later values land in the
// last bucket; the maximum is kept exactly). Any thread may add; relaxed atomics, no locks.

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace fc25::core {

class LatencyHistogram {
 public:
  static constexpr double kBucketMs = 0.25;
  static constexpr std::size_t kBuckets = 1000;

  struct Summary {
    std::uint64_t count = 0;
    double p50_ms = 0, p99_ms = 0, max_ms = 0;
  };

  void add_ms(double ms) {
    auto b = ms <= 0 ? 0 : std::min<std::size_t>(kBuckets - 1, static_cast<std::size_t>(ms / kBucketMs));
    counts_[b].fetch_add(1, std::memory_order_relaxed);
    auto us = static_cast<std::int64_t>(ms * 1000.0);
    auto m = max_us_.load(std::memory_order_relaxed);
    while (us > m && !max_us_.compare_exchange_weak(m, us, std::memory_order_relaxed)) {
    }
  }

  // Percentiles are bucket centres. `reset` starts over (values added meanwhile land on either side).
  Summary summary(bool reset = false) {
    std::array<std::uint32_t, kBuckets> c;
    Summary s;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      c[i] = reset ? counts_[i].exchange(0, std::memory_order_relaxed) : counts_[i].load(std::memory_order_relaxed);
      s.count += c[i];
    }
    auto pct = [&](double q) {
      if (s.count == 0) return 0.0;
      std::uint64_t want = static_cast<std::uint64_t>(q * static_cast<double>(s.count - 1)) + 1, seen = 0;
      for (std::size_t i = 0; i < kBuckets; ++i) {
        seen += c[i];
        if (seen >= want) return (static_cast<double>(i) + 0.5) * kBucketMs;
      }
      return static_cast<double>(kBuckets) * kBucketMs;
    };
    s.p50_ms = pct(0.50);
    s.p99_ms = pct(0.99);
    s.max_ms = static_cast<double>(reset ? max_us_.exchange(0) : max_us_.load()) / 1000.0;
    return s;
  }

 private:
  std::array<std::atomic<std::uint32_t>, kBuckets> counts_{};
  std::atomic<std::int64_t> max_us_{0};
};

}  // namespace fc25::core
