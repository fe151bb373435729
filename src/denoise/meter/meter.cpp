#include "denoise/meter/meter.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "denoise/denoise.hpp"

namespace fc25::denoise {
namespace {

// A hop whose local SNR is below this is mostly background: what the denoiser did to it is what it did to the
// noise.
constexpr float kBackgroundLsnrDb = 0.0f;
// Below this level (dBFS) there is nothing to measure: a removal figure would be a ratio of two silences.
constexpr double kSilenceDbfs = -75.0;
constexpr float kMaxRemovedDb = 60.0f;
// The word for the page is taken from the background's power over about this long, and leaves a level only this
// far past its threshold.
constexpr double kWordSeconds = 2.0;
constexpr float kHysteresisDb = 3.0f;

double dbfs(double energy, double samples) {
  if (samples <= 0 || energy <= 0) return -100.0;
  return std::max(-100.0, 10.0 * std::log10(energy / samples));
}

}  // namespace

std::string_view to_string(NoiseLevel level) {
  switch (level) {
    case NoiseLevel::quiet:
      return "quiet";
    case NoiseLevel::moderate:
      return "moderate";
    case NoiseLevel::loud:
      return "loud";
  }
  return "quiet";
}

NoiseLevel classify_noise(float noise_dbfs) {
  if (noise_dbfs >= -40.0f) return NoiseLevel::loud;
  if (noise_dbfs >= -58.0f) return NoiseLevel::moderate;
  return NoiseLevel::quiet;
}

NoiseLevel classify_noise(float noise_dbfs, NoiseLevel shown) {
  const NoiseLevel up = classify_noise(noise_dbfs - kHysteresisDb);
  const NoiseLevel down = classify_noise(noise_dbfs + kHysteresisDb);
  if (up > shown) return up;
  if (down < shown) return down;
  return shown;
}

NoiseMeter::NoiseMeter(std::size_t delay_samples, bool has_lsnr)
    : delay_(delay_samples), has_lsnr_(has_lsnr), history_(delay_samples, 0.0f) {}

void NoiseMeter::add(std::span<const float> in, std::span<const float> out, float lsnr_db) {
  if (in.size() != out.size()) throw std::invalid_argument("NoiseMeter::add: input and output differ in length");
  // The output's samples against the input they came from (delay_ samples earlier).
  double e_in = 0, e_out = 0, e_diff = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    float x = in[i];
    if (delay_ > 0) {
      float aligned = history_[pos_];
      history_[pos_] = x;
      pos_ = pos_ + 1 == delay_ ? 0 : pos_ + 1;
      x = aligned;
    }
    const double y = out[i];
    e_in += static_cast<double>(x) * x;
    e_out += y * y;
    e_diff += (x - y) * (x - y);
  }
  const double n = static_cast<double>(in.size());
  // Without an estimate of its own, the background is what was removed, and it dominates where more was removed
  // than kept.
  double noise = e_diff;
  bool background = e_diff > e_out;
  if (has_lsnr_) {
    // The engine's estimate splits the input's power: noise = P / (1 + 10^(snr/10)).
    noise = e_in / (1.0 + std::pow(10.0, lsnr_db / 10.0));
    background = lsnr_db < kBackgroundLsnrDb;
    lsnr_sum_ += lsnr_db;
  }
  ++hops_;
  samples_ += n;
  in_energy_ += e_in;
  noise_energy_ += noise;
  if (background && dbfs(e_in, n) > kSilenceDbfs) {
    bg_in_ += e_in;
    bg_out_ += e_out;
    ++bg_hops_;
  }
}

MeterReading NoiseMeter::take() {
  MeterReading r;
  r.hops = hops_;
  r.input_dbfs = static_cast<float>(dbfs(in_energy_, samples_));
  r.noise_dbfs = static_cast<float>(dbfs(noise_energy_, samples_));
  if (samples_ > 0) {
    const bool first = recent_.empty();
    recent_.push_back({noise_energy_, samples_});
    recent_energy_ += noise_energy_;
    recent_samples_ += samples_;
    while (recent_samples_ - recent_.front().second >= kWordSeconds * kSampleRate) {
      recent_energy_ -= recent_.front().first;
      recent_samples_ -= recent_.front().second;
      recent_.pop_front();
    }
    const auto db = static_cast<float>(dbfs(recent_energy_, recent_samples_));
    shown_ = first ? classify_noise(db) : classify_noise(db, shown_);
  }
  r.level = shown_;
  if (has_lsnr_ && hops_ > 0) r.lsnr_db = static_cast<float>(lsnr_sum_ / static_cast<double>(hops_));
  if (bg_hops_ > 0) {
    const double ratio = bg_out_ > 0 ? bg_in_ / bg_out_ : 1e6;
    r.removed_db = std::clamp(static_cast<float>(10.0 * std::log10(ratio)), 0.0f, kMaxRemovedDb);
    removed_sum_ += *r.removed_db;
    ++removed_windows_;
  }
  hops_ = bg_hops_ = 0;
  samples_ = in_energy_ = noise_energy_ = lsnr_sum_ = bg_in_ = bg_out_ = 0;
  return r;
}

std::optional<float> NoiseMeter::mean_removed_db() const {
  if (removed_windows_ == 0) return std::nullopt;
  return static_cast<float>(removed_sum_ / static_cast<double>(removed_windows_));
}

}  // namespace fc25::denoise
