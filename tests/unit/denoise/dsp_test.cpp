// The DSP around the network, checked against libDF's definitions computed here independently.
#include <cmath>
#include <complex>
#include <cstring>
#include <numeric>
#include <random>

#include <gtest/gtest.h>

#include "denoise/dsp/dsp.hpp"
#include "denoise/dsp/fft.hpp"

namespace fc25::denoise::dsp {
namespace {

TEST(Dsp, VorbisWindowFollowsItsFormulaAndIsPowerComplementary) {
  auto w = vorbis_window(960);
  ASSERT_EQ(w.size(), 960u);
  for (int i = 0; i < 960; ++i) {
    double s = std::sin(M_PI * (i + 0.5) / 960.0);  // libDF: sin(pi/2 * (i + 0.5) / (N / 2))
    EXPECT_NEAR(w[i], std::sin(M_PI / 2 * s * s), 1e-6) << i;
  }
  for (int i = 0; i < 480; ++i) EXPECT_NEAR(w[i] * w[i] + w[i + 480] * w[i + 480], 1.0, 1e-6) << i;
  // sum(w^2) = 480, so libDF's 1/sum(w^2) * hop/fft = 1/960.
  EXPECT_NEAR(window_norm(w, 480), 1.0 / 960.0, 1e-9);
}

TEST(Dsp, NormAlphaIsLibDfsRoundedDecay) {
  // exp(-480/48000) = 0.99005; three decimals keep it below 1.
  EXPECT_FLOAT_EQ(norm_alpha(48000, 480, 1.0f), 0.99f);
  // exp(-1/48000 / 1) = 0.99998: needs five decimals to stay below 1.
  EXPECT_FLOAT_EQ(norm_alpha(48000, 1, 1.0f), 0.99998f);
}

TEST(Dsp, ErbBandsFollowLibDfsFilterbank) {
  auto widths = erb_band_widths(48000, 960, 32, 2);
  ASSERT_EQ(widths.size(), 32u);
  EXPECT_EQ(std::accumulate(widths.begin(), widths.end(), 0), 481);
  for (int w : widths) EXPECT_GE(w, 2);
  // The filterbank again from its definition: bands equally spaced on the ERB-rate scale
  // erb(f) = 9.265 ln(1 + f / (24.7 * 9.265)), edges rounded to bins of 50 Hz, at least two bins per band.
  auto to_erb = [](double f) { return 9.265 * std::log1p(f / (24.7 * 9.265)); };
  auto to_hz = [](double e) { return 24.7 * 9.265 * (std::exp(e / 9.265) - 1.0); };
  double step = to_erb(24000.0) / 32;
  int prev = 0, over = 0;
  std::vector<int> expected;
  for (int i = 1; i <= 32; ++i) {
    int edge = static_cast<int>(std::lround(to_hz(i * step) / 50.0));
    int n = edge - prev - over;
    over = n < 2 ? 2 - n : 0;
    expected.push_back(std::max(n, 2));
    prev = edge;
  }
  expected.back() += 481 - std::accumulate(expected.begin(), expected.end(), 0);
  EXPECT_EQ(widths, expected);
  // Low bands are narrow (speech detail), the top band is wide.
  EXPECT_EQ(widths.front(), 2);
  EXPECT_GT(widths.back(), 50);
}

TEST(Dsp, StftThenIstftReconstructsTheSignalAfterOneHop) {
  DspConfig cfg;
  Stft stft(cfg);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int hops = 50;
  std::vector<float> in(hops * 480), out(hops * 480);
  for (auto& x : in) x = u(rng);
  std::vector<cf32> spec(cfg.freq_size());
  for (int h = 0; h < hops; ++h) {
    stft.analysis(std::span(in).subspan(h * 480, 480), spec);
    stft.synthesis(spec, std::span(out).subspan(h * 480, 480));
  }
  float max_err = 0.0f;
  for (int i = 480; i < hops * 480; ++i) max_err = std::max(max_err, std::abs(out[i] - in[i - 480]));
  EXPECT_LE(max_err, 1e-5f);
  // reset() forgets the past: the same input gives the same first output again.
  stft.reset();
  std::vector<float> again(480);
  stft.analysis(std::span(in).subspan(0, 480), spec);
  stft.synthesis(spec, again);
  for (int i = 0; i < 480; ++i) EXPECT_FLOAT_EQ(again[i], out[i]);
}

TEST(Dsp, FeaturesStartFromLibDfsInitialStates) {
  DspConfig cfg;
  Features f(cfg);
  std::vector<cf32> spec(cfg.freq_size(), cf32(0.0f, 0.0f));
  spec[0] = cf32(1.0f, 0.0f);
  spec[1] = cf32(0.0f, 1.0f);
  std::vector<float> erb(cfg.nb_erb);
  f.erb(spec, erb);
  // Band 0 holds bins 0 and 1: power (1 + 1) / 2 = 1 -> 0 dB; state = 0 * 0.01 + (-60) * 0.99.
  EXPECT_NEAR(erb[0], (0.0 - (-60.0 * 0.99)) / 40.0, 1e-5);
  // Band 31 is silent: -100 dB against a state starting at -90.
  EXPECT_NEAR(erb[31], (-100.0 - (-100.0 * 0.01 + -90.0 * 0.99)) / 40.0, 1e-4);
  std::vector<cf32> c(cfg.nb_df);
  f.complex(spec, c);
  EXPECT_NEAR(c[0].real(), 1.0 / std::sqrt(1.0 * 0.01 + 0.001 * 0.99), 1e-3);
  EXPECT_NEAR(c[1].imag(), 1.0 / std::sqrt(1.0 * 0.01 + (0.001 - 0.0009 / 95) * 0.99), 1e-3);
  EXPECT_EQ(c[2], cf32(0.0f, 0.0f));
}

TEST(Dsp, ErbGainsScaleWholeBands) {
  std::vector<int> widths{2, 3};
  std::vector<cf32> spec(5, cf32(1.0f, 1.0f));
  std::vector<float> gains{0.5f, 2.0f};
  apply_erb_gains(spec, gains, widths);
  EXPECT_EQ(spec[1], cf32(0.5f, 0.5f));
  EXPECT_EQ(spec[2], cf32(2.0f, 2.0f));
  EXPECT_EQ(spec[4], cf32(2.0f, 2.0f));
}

// The real FFT against the DFT's definition summed in double precision: every length the split takes a different
// way (960: 16 x 30 in whole vectors, radices 4, 2, 3, 5; 120 and 1000: rows padded; 98: radix 7 by its
// definition; 2: no split at all), forward and inverse, on the baseline build and the AVX2 build, which must agree
// bit for bit.
TEST(Dsp, RealFftIsTheDftByDefinitionOnEveryBuild) {
  std::vector<bool> builds{false};
  if (RealFft::avx2_available()) builds.push_back(true);
  for (int n : {960, 120, 1000, 98, 64, 14, 2}) {
    std::mt19937 rng(n);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> x(n);
    for (auto& v : x) v = u(rng);
    std::vector<std::complex<double>> want(n / 2 + 1);
    double peak = 0.0;
    for (int k = 0; k <= n / 2; ++k) {
      for (int t = 0; t < n; ++t) want[k] += static_cast<double>(x[t]) * std::polar(1.0, -2.0 * M_PI * k * t / n);
      peak = std::max(peak, std::abs(want[k]));
    }
    std::vector<std::vector<cf32>> specs;
    std::vector<std::vector<float>> backs;
    for (bool avx2 : builds) {
      RealFft fft(n, avx2);
      std::vector<cf32> spec(n / 2 + 1);
      fft.forward(x.data(), spec.data());
      double err = 0.0;
      for (int k = 0; k <= n / 2; ++k) err = std::max(err, std::abs(want[k] - std::complex<double>(spec[k])));
      EXPECT_LE(err, 2e-7 * peak * std::log2(n)) << "n " << n << ", avx2 " << avx2;
      EXPECT_EQ(spec[0].imag(), 0.0f);
      EXPECT_EQ(spec[n / 2].imag(), 0.0f);
      // Back: n times the signal. Imaginary parts put into the first and last bins are ignored.
      std::vector<cf32> with_imag = spec;
      with_imag[0] = {spec[0].real(), 0.5f};
      with_imag[n / 2] = {spec[n / 2].real(), -0.25f};
      std::vector<float> back(n);
      fft.inverse(with_imag.data(), back.data());
      double back_err = 0.0;
      for (int t = 0; t < n; ++t) back_err = std::max(back_err, std::abs(back[t] / n - static_cast<double>(x[t])));
      EXPECT_LE(back_err, 1e-6) << "n " << n << ", avx2 " << avx2;
      specs.push_back(spec);
      backs.push_back(back);
    }
    if (specs.size() == 2) {
      EXPECT_EQ(std::memcmp(specs[0].data(), specs[1].data(), specs[0].size() * sizeof(cf32)), 0) << "n " << n;
      EXPECT_EQ(std::memcmp(backs[0].data(), backs[1].data(), backs[0].size() * sizeof(float)), 0) << "n " << n;
    }
  }
  EXPECT_THROW(RealFft(961), std::invalid_argument);
  EXPECT_THROW(RealFft(0), std::invalid_argument);
}

// The analysis is the windowed DFT of the last fft_size samples, times wnorm; the synthesis windows the inverse
// DFT and adds its first half to the previous frame's second half.
TEST(Dsp, StftAnalysisIsTheWindowedDftOfTheLastFrame) {
  DspConfig cfg;
  Stft stft(cfg);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> in(3 * 480);
  for (auto& v : in) v = u(rng);
  std::vector<cf32> spec(cfg.freq_size());
  for (int h = 0; h < 3; ++h) stft.analysis(std::span(in).subspan(h * 480, 480), spec);
  const auto& w = stft.window();
  double err = 0.0, peak = 0.0;
  for (int k = 0; k < cfg.freq_size(); ++k) {
    std::complex<double> want = 0.0;
    for (int t = 0; t < 960; ++t)
      want += static_cast<double>(in[480 + t]) * w[t] * std::polar(1.0, -2.0 * M_PI * k * t / 960);
    want *= stft.wnorm();
    err = std::max(err, std::abs(want - std::complex<double>(spec[k])));
    peak = std::max(peak, std::abs(want));
  }
  EXPECT_LE(err, 1e-5 * peak);
}

}  // namespace
}  // namespace fc25::denoise::dsp
