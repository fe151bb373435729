#include "denoise/dsp/dsp.hpp"

#include <cmath>
#include <numeric>
#include <stdexcept>

#include "denoise/dsp/fft.hpp"

namespace fc25::denoise::dsp {

std::vector<float> vorbis_window(int fft_size) {
  std::vector<float> w(fft_size);
  const double half = fft_size / 2;
  for (int i = 0; i < fft_size; ++i) {
    double s = std::sin(0.5 * M_PI * (i + 0.5) / half);
    w[i] = static_cast<float>(std::sin(0.5 * M_PI * s * s));
  }
  return w;
}

float window_norm(std::span<const float> window, int hop_size) {
  float sum = 0.0f;
  for (float x : window) sum += x * x;
  return 1.0f / sum * static_cast<float>(hop_size) / static_cast<float>(window.size());
}

static float freq2erb(float f) { return 9.265f * std::log1p(f / (24.7f * 9.265f)); }
static float erb2freq(float e) { return 24.7f * 9.265f * (std::exp(e / 9.265f) - 1.0f); }

std::vector<int> erb_band_widths(int sample_rate, int fft_size, int nb_bands, int min_nb_freqs) {
  const float freq_width = static_cast<float>(sample_rate) / fft_size;
  const float erb_low = freq2erb(0.0f), erb_high = freq2erb(static_cast<float>(sample_rate / 2));
  const float step = (erb_high - erb_low) / nb_bands;
  std::vector<int> widths(nb_bands);
  int prev = 0, over = 0;
  for (int i = 1; i <= nb_bands; ++i) {
    int fb = static_cast<int>(std::round(erb2freq(erb_low + i * step) / freq_width));
    int n = fb - prev - over;
    if (n < min_nb_freqs) {
      over = min_nb_freqs - n;
      n = min_nb_freqs;
    } else {
      over = 0;
    }
    widths[i - 1] = n;
    prev = fb;
  }
  widths.back() += 1;  // fft_size / 2 + 1 bins
  int excess = std::accumulate(widths.begin(), widths.end(), 0) - (fft_size / 2 + 1);
  if (excess > 0) widths.back() -= excess;
  return widths;
}

float norm_alpha(int sample_rate, int hop_size, float tau) {
  const float dt = static_cast<float>(hop_size) / static_cast<float>(sample_rate);
  const float alpha = std::exp(-dt / tau);
  float a = 1.0f;
  for (int precision = 3; a >= 1.0f; ++precision) {
    const float scale = std::pow(10.0f, static_cast<float>(precision));
    a = std::round(alpha * scale) / scale;
  }
  return a;
}

Stft::Stft(const DspConfig& config)
    : config_(config),
      window_(vorbis_window(config.fft_size)),
      wnorm_(window_norm(window_, config.hop_size)),
      analysis_window_(window_),
      analysis_mem_(config.fft_size - config.hop_size),
      synthesis_mem_(config.fft_size - config.hop_size),
      buf_(config.fft_size),
      synthesis_buf_(config.fft_size) {
  if (config.fft_size <= 0 || config.fft_size % 2 != 0 || config.hop_size * 2 > config.fft_size) {
    throw std::invalid_argument("STFT needs an even fft_size and hop_size <= fft_size / 2");
  }
  for (float& w : analysis_window_) w *= wnorm_;
  fft_ = std::make_unique<RealFft>(config.fft_size);
}

Stft::~Stft() = default;

void Stft::reset() {
  std::fill(analysis_mem_.begin(), analysis_mem_.end(), 0.0f);
  std::fill(synthesis_mem_.begin(), synthesis_mem_.end(), 0.0f);
}

void Stft::analysis(std::span<const float> in, std::span<cf32> spec) {
  const int n = config_.fft_size, hop = config_.hop_size, mem = n - hop;
  for (int i = 0; i < mem; ++i) buf_[i] = analysis_mem_[i] * analysis_window_[i];
  for (int i = 0; i < hop; ++i) buf_[mem + i] = in[i] * analysis_window_[mem + i];
  // The newest fft_size - hop samples are the next frame's first part.
  if (mem > hop) std::copy(analysis_mem_.begin() + hop, analysis_mem_.end(), analysis_mem_.begin());
  std::copy(in.begin(), in.end(), analysis_mem_.end() - hop);
  fft_->forward(buf_.data(), spec.data());
}

void Stft::synthesis(std::span<const cf32> spec, std::span<float> out) {
  const int n = config_.fft_size, hop = config_.hop_size, mem = n - hop;
  fft_->inverse(spec.data(), synthesis_buf_.data());
  for (int i = 0; i < n; ++i) synthesis_buf_[i] *= window_[i];
  for (int i = 0; i < hop; ++i) out[i] = synthesis_buf_[i] + synthesis_mem_[i];
  // Shift the overlap memory and add this frame's tail.
  const int split = mem - hop;
  if (split > 0) std::copy(synthesis_mem_.begin() + hop, synthesis_mem_.end(), synthesis_mem_.begin());
  for (int i = 0; i < split; ++i) synthesis_mem_[i] += synthesis_buf_[hop + i];
  for (int i = split; i < mem; ++i) synthesis_mem_[i] = synthesis_buf_[hop + i];
}

Features::Features(const DspConfig& config)
    : config_(config),
      erb_widths_(erb_band_widths(config.sample_rate, config.fft_size, config.nb_erb, config.min_nb_erb_freqs)),
      alpha_(norm_alpha(config.sample_rate, config.hop_size, config.norm_tau)),
      mean_state_(config.nb_erb),
      unit_state_(config.nb_df) {
  reset();
}

void Features::reset() {
  // libDF's initial states: linear from -60 to -90 dB, and from 0.001 to 0.0001.
  for (int i = 0; i < config_.nb_erb; ++i) mean_state_[i] = -60.0f + i * ((-90.0f + 60.0f) / (config_.nb_erb - 1));
  for (int i = 0; i < config_.nb_df; ++i) unit_state_[i] = 0.001f + i * ((0.0001f - 0.001f) / (config_.nb_df - 1));
}

void Features::erb(std::span<const cf32> spec, std::span<float> out) {
  int bin = 0;
  for (int b = 0; b < config_.nb_erb; ++b) {
    const float k = 1.0f / erb_widths_[b];
    float power = 0.0f;
    for (int j = 0; j < erb_widths_[b]; ++j, ++bin) {
      const auto x = spec[bin];
      power += (x.real() * x.real() + x.imag() * x.imag()) * k;
    }
    float db = std::log10(power + 1e-10f) * 10.0f;
    float& s = mean_state_[b];
    s = db * (1.0f - alpha_) + s * alpha_;
    out[b] = (db - s) / 40.0f;
  }
}

void Features::complex(std::span<const cf32> spec, std::span<cf32> out) {
  for (int i = 0; i < config_.nb_df; ++i) {
    float& s = unit_state_[i];
    s = std::abs(spec[i]) * (1.0f - alpha_) + s * alpha_;
    out[i] = spec[i] / std::sqrt(s);
  }
}

void apply_erb_gains(std::span<cf32> spec, std::span<const float> gains, std::span<const int> erb_widths) {
  int bin = 0;
  for (std::size_t b = 0; b < erb_widths.size(); ++b)
    for (int j = 0; j < erb_widths[b]; ++j, ++bin) spec[bin] *= gains[b];
}

}  // namespace fc25::denoise::dsp
