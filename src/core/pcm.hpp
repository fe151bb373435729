#pragma once
// Float audio in [-1, 1] to 16-bit PCM, the one conversion for everything that leaves as 16-bit (recordings, the
// listeners' Opus encoder): scaled by 32767, clipped, rounded to nearest with ties away from zero (the same in
// every floating-point rounding mode); NaN is silence. No allocation, no throw: it runs per sample.
#include <cstdint>

namespace fc25::core {

constexpr std::int16_t to_pcm16(float x) noexcept {
  if (!(x == x)) return 0;  // NaN
  if (x >= 1.0f) return 32767;
  if (x <= -1.0f) return -32767;
  float v = x * 32767.0f;
  return static_cast<std::int16_t>(v < 0.0f ? v - 0.5f : v + 0.5f);
}

}  // namespace fc25::core
