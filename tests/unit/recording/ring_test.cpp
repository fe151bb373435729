#include <gtest/gtest.h>

#include <thread>

#include "core/spsc_ring.hpp"

using fc25::core::SpscRing;

TEST(SpscRing, RefusesWhenFullAndWhenEmpty) {
  SpscRing<int> r(3);  // rounds up to 4
  EXPECT_EQ(r.capacity(), 4u);
  int v;
  EXPECT_FALSE(r.pop(v));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(r.push(i));
  EXPECT_FALSE(r.push(99));
  EXPECT_EQ(r.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(r.pop(v));
    EXPECT_EQ(v, i);
  }
  EXPECT_FALSE(r.pop(v));
}

TEST(SpscRing, TwoThreadsPassEveryItemInOrder) {
  SpscRing<long> r(64);
  constexpr long kN = 2'000'000;
  std::thread producer([&] {
    for (long i = 0; i < kN; ++i)
      while (!r.push(i)) std::this_thread::yield();
  });
  long expect = 0, v = 0;
  while (expect < kN) {
    if (r.pop(v)) {
      ASSERT_EQ(v, expect);
      ++expect;
    }
  }
  producer.join();
  EXPECT_FALSE(r.pop(v));
}
