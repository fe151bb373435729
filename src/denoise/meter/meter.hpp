#pragma once
// What noise removal does to a stream, measured on its hops: how loud the background is and how much of it was
// taken out. Arrays in, numbers out; no I/O. The live plane feeds every hop it denoises and reads a window a few
// times a second for the broadcaster's page; the window means go to the recording's row.
#include <cstddef>
#include <deque>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace fc25::denoise {

// How loud the background is, in words for the page.
enum class NoiseLevel { quiet, moderate, loud };
std::string_view to_string(NoiseLevel level);
// Thresholds on the background's level (dBFS, a full-scale sine is -3): loud from -40, moderate from -58.
NoiseLevel classify_noise(float noise_dbfs);

struct MeterReading {
  std::size_t hops = 0;                  // hops measured in this window
  float input_dbfs = -100.0f;            // level of what came in
  float noise_dbfs = -100.0f;            // level of the background in what came in
  std::optional<float> removed_db;       // how much lower the background is after noise removal; nullopt when the
                                         // window held no background to measure (silence, or speech throughout)
  std::optional<float> lsnr_db;          // the engine's own speech-to-noise estimate, mean over the window
  NoiseLevel level = NoiseLevel::quiet;  // the word for the page: from the background's level over the last two
                                         // seconds, moved only 3 dB past a threshold (a room near one, or a
                                         // beeping source, does not flip it several times a second)
};

// The word for a background level, given the word shown now: louder only from 3 dB past the next threshold up,
// quieter only from 3 dB under the next one down.
NoiseLevel classify_noise(float noise_dbfs, NoiseLevel shown);

class NoiseMeter {
 public:
  // `delay_samples`: the denoiser's delay (an output sample is the input this many samples before). `has_lsnr`:
  // the denoiser reports a local SNR per hop (DeepFilterNet does); otherwise the background is taken as what it
  // removed.
  NoiseMeter(std::size_t delay_samples, bool has_lsnr);

  // One hop: what went in, what came out, and the denoiser's local SNR of it. in.size() == out.size().
  void add(std::span<const float> in, std::span<const float> out, float lsnr_db);

  // The window since the last take (then a new one starts).
  MeterReading take();

  // Over every window taken so far that had background to measure: the mean of their removed_db.
  std::optional<float> mean_removed_db() const;

 private:
  std::size_t delay_;
  bool has_lsnr_;
  std::vector<float> history_;   // the last delay_ input samples, a ring
  std::size_t pos_ = 0;
  // The window.
  std::size_t hops_ = 0;
  double samples_ = 0, in_energy_ = 0, noise_energy_ = 0, lsnr_sum_ = 0;
  double bg_in_ = 0, bg_out_ = 0;  // energy in and out over the hops where background dominates
  std::size_t bg_hops_ = 0;
  // The session.
  double removed_sum_ = 0;
  std::size_t removed_windows_ = 0;
  // The word: the background's energy and samples of the last windows (about two seconds), and the word last
  // given.
  std::deque<std::pair<double, double>> recent_;
  double recent_energy_ = 0, recent_samples_ = 0;
  NoiseLevel shown_ = NoiseLevel::quiet;
};

}  // namespace fc25::denoise
