// The float -> 16-bit conversion shared by recordings and the listeners' encoder, at its edges.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/pcm.hpp"

using fc25::core::to_pcm16;

TEST(Pcm16, FullScaleClipsAndIsSymmetric) {
  EXPECT_EQ(to_pcm16(1.0f), 32767);
  EXPECT_EQ(to_pcm16(-1.0f), -32767);
  EXPECT_EQ(to_pcm16(1.5f), 32767);
  EXPECT_EQ(to_pcm16(-1.5f), -32767);
  EXPECT_EQ(to_pcm16(std::numeric_limits<float>::infinity()), 32767);
  EXPECT_EQ(to_pcm16(-std::numeric_limits<float>::infinity()), -32767);
  EXPECT_EQ(to_pcm16(std::numeric_limits<float>::max()), 32767);
  EXPECT_EQ(to_pcm16(std::nextafter(1.0f, 0.0f)), 32767);
  EXPECT_EQ(to_pcm16(std::nextafter(-1.0f, 0.0f)), -32767);
  for (int i = 0; i <= 100000; ++i) {
    float x = static_cast<float>(i) / 100000.0f;
    ASSERT_EQ(to_pcm16(-x), -to_pcm16(x)) << x;
  }
}

TEST(Pcm16, ZeroTinyAndNaNAreSilence) {
  EXPECT_EQ(to_pcm16(0.0f), 0);
  EXPECT_EQ(to_pcm16(-0.0f), 0);
  EXPECT_EQ(to_pcm16(1e-9f), 0);
  EXPECT_EQ(to_pcm16(-1e-9f), 0);
  EXPECT_EQ(to_pcm16(std::numeric_limits<float>::denorm_min()), 0);
  EXPECT_EQ(to_pcm16(std::numeric_limits<float>::quiet_NaN()), 0);
  EXPECT_EQ(to_pcm16(-std::numeric_limits<float>::quiet_NaN()), 0);
}

// Nearest, ties away from zero: the same in any rounding mode (lrintf would round ties to even, so 2.5 -> 2).
TEST(Pcm16, RoundsToNearestWithTiesAwayFromZero) {
  int ties = 0;
  for (int k = 0; k < 32767; ++k) {
    float x = (static_cast<float>(k) + 0.5f) / 32767.0f;
    if (x * 32767.0f != static_cast<float>(k) + 0.5f) continue;  // not an exact tie in float
    ++ties;
    ASSERT_EQ(to_pcm16(x), k + 1) << "tie " << k << ".5";
    ASSERT_EQ(to_pcm16(-x), -(k + 1)) << "tie -" << k << ".5";
  }
  EXPECT_GT(ties, 1000) << "exact ties found";
  for (int i = -20000; i <= 20000; ++i) {
    float x = static_cast<float>(i) / 20000.0f;
    ASSERT_EQ(to_pcm16(x), static_cast<int>(std::round(x * 32767.0f))) << x;
  }
}
