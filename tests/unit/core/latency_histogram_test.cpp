// Percentiles from the histogram against the same percentiles computed from the sorted samples.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <thread>
#include <vector>

#include "core/latency_histogram.hpp"

using fc25::core::LatencyHistogram;

namespace {

double exact(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

TEST(LatencyHistogram, PercentilesWithinOneBucketOfTheSortedSamples) {
  std::mt19937 rng(7);
  std::lognormal_distribution<double> dist(2.5, 0.5);  // around 12 ms with a long tail
  std::vector<double> v(20000);
  LatencyHistogram h;
  for (auto& x : v) {
    x = dist(rng);
    h.add_ms(x);
  }
  auto s = h.summary();
  EXPECT_EQ(s.count, v.size());
  EXPECT_NEAR(s.p50_ms, exact(v, 0.50), LatencyHistogram::kBucketMs);
  EXPECT_NEAR(s.p99_ms, exact(v, 0.99), LatencyHistogram::kBucketMs);
  EXPECT_NEAR(s.max_ms, *std::max_element(v.begin(), v.end()), 0.001);
}

TEST(LatencyHistogram, ValuesPastTheRangeCountInTheLastBucketAndKeepTheirMaximum) {
  LatencyHistogram h;
  for (int i = 0; i < 97; ++i) h.add_ms(1.0);
  h.add_ms(400.0);
  h.add_ms(300.0);
  h.add_ms(-3.0);  // a clock step backwards counts as zero
  auto s = h.summary();
  EXPECT_EQ(s.count, 100u);
  EXPECT_NEAR(s.p50_ms, 1.125, 1e-9);
  EXPECT_NEAR(s.p99_ms, LatencyHistogram::kBuckets * LatencyHistogram::kBucketMs - LatencyHistogram::kBucketMs / 2, 1e-9);
  EXPECT_NEAR(s.max_ms, 400.0, 1e-9);
}

TEST(LatencyHistogram, ResetStartsAWindowAndEmptyGivesZeros) {
  LatencyHistogram h;
  h.add_ms(50.0);
  auto first = h.summary(true);
  EXPECT_EQ(first.count, 1u);
  EXPECT_NEAR(first.max_ms, 50.0, 1e-9);
  auto empty = h.summary();
  EXPECT_EQ(empty.count, 0u);
  EXPECT_EQ(empty.p99_ms, 0.0);
  EXPECT_EQ(empty.max_ms, 0.0);
  h.add_ms(2.0);
  EXPECT_NEAR(h.summary().p50_ms, 2.125, 1e-9);
}

TEST(LatencyHistogram, ConcurrentWritersLoseNoCount) {
  LatencyHistogram h;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&h, t] {
      for (int i = 0; i < 50000; ++i) h.add_ms(static_cast<double>((i + t) % 200));
    });
  for (auto& t : ts) t.join();
  auto s = h.summary();
  EXPECT_EQ(s.count, 200000u);
  EXPECT_NEAR(s.max_ms, 199.0, 1e-9);
}

}  // namespace
