#pragma once
// What the engine's tests share: the model's directory and a test signal.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <vector>

#include "denoise/denoise.hpp"

namespace fc25::denoise::testing {

// $FC25_MODEL_DIR, else ../shared/models/DeepFilterNet3 beside the checkout.
inline std::filesystem::path model_dir() {
  if (const char* env = std::getenv("FC25_MODEL_DIR"); env && *env) return env;
  return std::filesystem::path(FC25_SOURCE_DIR) / ".." / "shared" / "models" / "DeepFilterNet3";
}

// Noise plus a gliding harmonic tone: enough structure for the networks to react to.
inline std::vector<float> speechlike(std::size_t hops, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 0.02f);
  std::vector<float> x(hops * kHopSize);
  double phase = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double f = 150 + 50 * std::sin(i / 24000.0);
    phase += 2 * M_PI * f / kSampleRate;
    x[i] = n(rng) + 0.2f * static_cast<float>(std::sin(phase) + 0.5 * std::sin(2 * phase));
  }
  return x;
}

// Steady white noise of standard deviation `sigma`.
inline std::vector<float> white_noise(std::size_t hops, unsigned seed, float sigma = 0.05f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, sigma);
  std::vector<float> x(hops * kHopSize);
  for (auto& v : x) v = n(rng);
  return x;
}

}  // namespace fc25::denoise::testing
