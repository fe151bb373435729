#pragma once
// The signal processing around DeepFilterNet, as libDF defines it: a Vorbis-windowed STFT (analysis normalised by
// wnorm, synthesis by overlap-add), ERB band features with running mean normalisation, and complex features with
// running unit normalisation. Plain structs and loops; nothing allocates after construction.
#include <complex>
#include <cstddef>
#include <memory>
#include <span>
#include <vector>

namespace fc25::denoise::dsp {

using cf32 = std::complex<float>;

struct DspConfig {
  int sample_rate = 48000;
  int fft_size = 960;
  int hop_size = 480;
  int nb_erb = 32;
  int nb_df = 96;
  int min_nb_erb_freqs = 2;
  float norm_tau = 1.0f;
  int freq_size() const { return fft_size / 2 + 1; }
};

// w[i] = sin(pi/2 * sin^2(pi * (i + 0.5) / (N/2))): power-complementary at 50 % overlap.
std::vector<float> vorbis_window(int fft_size);
// libDF's analysis normalisation: 1 / sum(w^2) * hop / fft_size.
float window_norm(std::span<const float> window, int hop_size);
// Number of FFT bins in each ERB band (libDF erb_fb): bands equally spaced on the ERB scale, each at least
// min_nb_freqs wide, summing to fft_size / 2 + 1.
std::vector<int> erb_band_widths(int sample_rate, int fft_size, int nb_bands, int min_nb_freqs);
// libDF calc_norm_alpha: exp(-hop / (sr * tau)) rounded to the fewest decimals (at least 3) that keep it below 1.
float norm_alpha(int sample_rate, int hop_size, float tau);

class RealFft;

// Streaming STFT of one channel.
class Stft {
 public:
  explicit Stft(const DspConfig& config);
  ~Stft();
  Stft(const Stft&) = delete;
  Stft& operator=(const Stft&) = delete;

  // hop_size samples in -> freq_size bins out (multiplied by wnorm, as part of the window).
  void analysis(std::span<const float> in, std::span<cf32> spec);
  // freq_size bins in -> hop_size samples out (inverse FFT, window, overlap-add).
  void synthesis(std::span<const cf32> spec, std::span<float> out);
  void reset();

  const std::vector<float>& window() const { return window_; }
  float wnorm() const { return wnorm_; }

 private:
  DspConfig config_;
  std::vector<float> window_;
  float wnorm_;
  std::vector<float> analysis_window_;   // window_ * wnorm_
  std::unique_ptr<RealFft> fft_;         // forward for the analysis, inverse for the synthesis
  // The analysis and the synthesis share nothing they write, so one thread may analyse later frames while another
  // synthesises earlier ones.
  std::vector<float> analysis_mem_, synthesis_mem_, buf_, synthesis_buf_;
};

// Feature extraction state of one stream: the running normalisations.
class Features {
 public:
  explicit Features(const DspConfig& config);
  // ERB features of a spectrum: 10*log10(band power + 1e-10), minus the running mean, / 40.
  void erb(std::span<const cf32> spec, std::span<float> out);
  // The first nb_df bins divided by the square root of their running mean magnitude.
  void complex(std::span<const cf32> spec, std::span<cf32> out);
  void reset();

  const std::vector<int>& erb_widths() const { return erb_widths_; }
  float alpha() const { return alpha_; }

 private:
  DspConfig config_;
  std::vector<int> erb_widths_;
  float alpha_;
  std::vector<float> mean_state_, unit_state_;
};

// Multiplies every bin of each ERB band by that band's gain.
void apply_erb_gains(std::span<cf32> spec, std::span<const float> gains, std::span<const int> erb_widths);

}  // namespace fc25::denoise::dsp
