// The noise meter on real recordings (noise alone, speech in noise, clean speech) through the engine, and the
// attenuation limit changed between hops: what the broadcaster's page reads while live.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

#include <gtest/gtest.h>

#include "denoise/denoise.hpp"
#include "denoise/meter/meter.hpp"
#include "test_support.hpp"

namespace fc25::denoise {
namespace {

using testing::model_dir;

// A 16-bit PCM WAV of ../shared/audio (48 kHz mono), as floats, cut to whole hops.
std::vector<float> read_shared_wav(const std::string& name) {
  auto path = model_dir() / ".." / ".." / "audio" / name;
  std::ifstream f(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), {});
  if (bytes.size() < 44) throw std::runtime_error("cannot read " + path.string());
  std::size_t pos = 12;
  while (pos + 8 <= bytes.size()) {
    std::uint32_t len;
    std::memcpy(&len, &bytes[pos + 4], 4);
    if (std::memcmp(&bytes[pos], "data", 4) == 0) {
      std::size_t n = std::min<std::size_t>(len, bytes.size() - pos - 8) / 2;
      n -= n % kHopSize;
      std::vector<float> x(n);
      for (std::size_t i = 0; i < n; ++i) {
        std::int16_t v;
        std::memcpy(&v, &bytes[pos + 8 + 2 * i], 2);
        x[i] = static_cast<float>(v) / 32768.0f;
      }
      return x;
    }
    pos += 8 + len + (len & 1);
  }
  throw std::runtime_error("no data chunk in " + path.string());
}

struct Metered {
  std::vector<MeterReading> readings;  // one per second
  std::optional<float> mean_removed;
};

// Runs `x` through `d`, a reading every second (after the first, which holds the engine's warm-up).
Metered meter(Denoiser& d, const std::vector<float>& x, bool has_lsnr, float gain = 1.0f) {
  NoiseMeter m(d.latency_samples(), has_lsnr);
  Metered out;
  std::vector<float> in(kHopSize), y(kHopSize);
  for (std::size_t i = 0, hop = 1; i + kHopSize <= x.size(); i += kHopSize, ++hop) {
    for (std::size_t k = 0; k < kHopSize; ++k) in[k] = x[i + k] * gain;
    float lsnr = d.process(in, y);
    m.add(in, y, lsnr);
    if (hop % 100 == 0) {
      auto r = m.take();
      if (hop > 100) out.readings.push_back(r);
    }
  }
  out.mean_removed = m.mean_removed_db();
  return out;
}

class MeterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = Model::load(model_dir()); }
  static std::shared_ptr<const Model> model_;
};
std::shared_ptr<const Model> MeterTest::model_;

TEST_F(MeterTest, NoiseAloneIsMeasuredAndMostlyRemoved) {
  auto noise = read_shared_wav("libdf/noise_freesound_573577.wav");
  auto d = make_dfn3(model_);
  auto m = meter(*d, noise, true);
  ASSERT_FALSE(m.readings.empty());
  for (auto& r : m.readings) {
    std::cout << "noise alone: input " << r.input_dbfs << " dBFS, noise " << r.noise_dbfs << " dBFS, removed "
              << r.removed_db.value_or(-1) << " dB, " << to_string(r.level) << "\n";
    // All of it is background: the meter puts the background at the input's level.
    EXPECT_NEAR(r.noise_dbfs, r.input_dbfs, 3.0);
    ASSERT_TRUE(r.removed_db.has_value());
    EXPECT_GT(*r.removed_db, 15.0f) << "the unlimited engine removes most of a noise recording";
  }
  ASSERT_TRUE(m.mean_removed.has_value());
  EXPECT_GT(*m.mean_removed, 15.0f);
}

TEST_F(MeterTest, LoudnessOfTheBackgroundFollowsItsLevel) {
  auto noise = read_shared_wav("libdf/noise_freesound_573577.wav");
  auto level = [&](float gain) {
    auto d = make_dfn3(model_);
    auto m = meter(*d, noise, true, gain);
    double sum = 0;
    for (auto& r : m.readings) sum += r.noise_dbfs;
    return std::pair{sum / static_cast<double>(m.readings.size()), m.readings.back().level};
  };
  auto [loud_db, loud] = level(1.0f);
  auto [moderate_db, moderate] = level(0.1f);    // 20 dB lower
  auto [quiet_db, quiet] = level(0.002f);        // 54 dB lower
  std::cout << "background at gains 1, 0.1, 0.002: " << loud_db << ", " << moderate_db << ", " << quiet_db << " dBFS\n";
  EXPECT_NEAR(loud_db - moderate_db, 20.0, 3.0);
  EXPECT_EQ(loud, NoiseLevel::loud);
  EXPECT_EQ(moderate, NoiseLevel::moderate);
  EXPECT_EQ(quiet, NoiseLevel::quiet);
}

TEST_F(MeterTest, CleanSpeechHasAQuietBackground) {
  auto speech = read_shared_wav("libdf/clean_freesound_33711.wav");
  auto d = make_dfn3(model_);
  auto m = meter(*d, speech, true);
  int quiet = 0;
  for (auto& r : m.readings) quiet += r.level == NoiseLevel::quiet;
  EXPECT_GE(quiet, static_cast<int>(m.readings.size()) * 3 / 4) << "clean speech is not heard as a noisy room";
}

TEST_F(MeterTest, TheLimitBoundsWhatIsRemoved) {
  auto noise = read_shared_wav("libdf/noise_freesound_573577.wav");
  Options light;
  light.atten_lim_db = 12;
  auto d = make_dfn3(model_, light);
  auto m = meter(*d, noise, true);
  ASSERT_TRUE(m.mean_removed.has_value());
  EXPECT_NEAR(*m.mean_removed, 12.0f, 1.5f);
  Options off;
  off.atten_lim_db = 0;
  auto o = make_dfn3(model_, off);
  auto n = meter(*o, noise, true);
  ASSERT_TRUE(n.mean_removed.has_value());
  EXPECT_LT(*n.mean_removed, 0.5f);
}

TEST_F(MeterTest, ALimitSetWhileRunningTakesEffectAtOnce) {
  auto noisy = read_shared_wav("libdf/noisy_snr0.wav");
  auto d = make_dfn3(model_);
  const std::size_t lat = d->latency_samples();
  std::vector<float> y(noisy.size());
  const std::size_t switch_hop = 300;
  for (std::size_t h = 0; h * kHopSize < noisy.size(); ++h) {
    if (h == switch_hop) d->set_atten_lim_db(0.0f);
    d->process(std::span<const float>(noisy).subspan(h * kHopSize, kHopSize),
               std::span<float>(y).subspan(h * kHopSize, kHopSize));
  }
  // Before: the noise is being removed. From a few hops after the change (the window's overlap): the input itself.
  double before = 0, before_in = 0;
  for (std::size_t i = 200 * kHopSize; i < 290 * kHopSize; ++i) {
    before += std::abs(y[i] - noisy[i - lat]);
    before_in += std::abs(noisy[i - lat]);
  }
  EXPECT_GT(before / before_in, 0.1) << "with no limit the output is not the input";
  double worst = 0;
  for (std::size_t i = (switch_hop + 3) * kHopSize; i < y.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::abs(y[i] - noisy[i - lat])));
  }
  EXPECT_LT(worst, 1e-4) << "a 0 dB limit passes the input, from the hops after it is set";
  EXPECT_THROW(d->set_atten_lim_db(-1.0f), std::invalid_argument);
  EXPECT_THROW(d->set_atten_lim_db(std::nanf("")), std::invalid_argument);
}

TEST(Meter, PassthroughRemovesNothingAndClassicRemovesSteadyNoise) {
  auto x = testing::white_noise(300, 3);
  auto p = make_passthrough();
  auto pm = meter(*p, x, false);
  for (auto& r : pm.readings) EXPECT_FALSE(r.removed_db.has_value()) << "nothing was removed: no figure";
  auto c = make_classic();
  auto cm = meter(*c, x, false);
  ASSERT_TRUE(cm.mean_removed.has_value());
  EXPECT_GT(*cm.mean_removed, 6.0f);
  Options off;
  off.atten_lim_db = 0;
  auto bypass = make_classic(off);
  std::vector<float> y(kHopSize);
  bypass->process(std::span<const float>(x).first(kHopSize), y);
  EXPECT_EQ(std::vector<float>(x.begin(), x.begin() + kHopSize), y) << "classic at 0 dB passes the input";
}

// Windows of 250 ms (25 hops) of background at the given levels (dBFS), as the live plane takes them; the words.
std::vector<NoiseLevel> words_for(const std::vector<float>& window_dbfs) {
  NoiseMeter m(0, true);
  std::vector<NoiseLevel> words;
  std::vector<float> in(kHopSize), out(kHopSize, 0.0f);
  for (float db : window_dbfs) {
    // A square wave of that power (±a has power a²); the engine's local SNR says it is all background.
    const float a = std::pow(10.0f, db / 20.0f);
    for (std::size_t i = 0; i < kHopSize; ++i) in[i] = (i / 24) % 2 ? a : -a;
    for (int h = 0; h < 25; ++h) m.add(in, out, -20.0f);
    words.push_back(m.take().level);
  }
  return words;
}

TEST(Meter, TheWordForTheBackgroundDoesNotFlickerButFollowsARealChange) {
  // A source beeping four times a second across a threshold: every other window loud (-34), the others
  // moderate (-50). Each window alone would flip the word; after the first two seconds it holds.
  std::vector<float> beeping;
  for (int i = 0; i < 40; ++i) beeping.push_back(i % 2 ? -50.0f : -34.0f);
  ASSERT_NE(classify_noise(-34.0f), classify_noise(-50.0f));
  auto words = words_for(beeping);
  int changes = 0;
  for (std::size_t i = 9; i < words.size(); ++i) changes += words[i] != words[i - 1];
  EXPECT_EQ(changes, 0) << "the word changed " << changes << " times in 8 s of beeping";

  // A level 1 dB either side of the loud threshold, window after window: one word.
  std::vector<float> edge;
  for (int i = 0; i < 40; ++i) edge.push_back(i % 2 ? -41.0f : -39.0f);
  words = words_for(edge);
  changes = 0;
  for (std::size_t i = 1; i < words.size(); ++i) changes += words[i] != words[i - 1];
  EXPECT_EQ(changes, 0);

  // A quiet room that becomes loud and stays so: the word says it within two seconds, and back again.
  std::vector<float> step(8, -75.0f);
  step.insert(step.end(), 8, -30.0f);
  step.insert(step.end(), 12, -75.0f);
  words = words_for(step);
  EXPECT_EQ(words[7], NoiseLevel::quiet);
  EXPECT_EQ(words[15], NoiseLevel::loud) << "after 2 s of a loud room";
  EXPECT_EQ(words.back(), NoiseLevel::quiet) << "after 3 s of quiet again";
}

TEST(Meter, NoiseLevelNames) {
  EXPECT_EQ(classify_noise(-30.0f), NoiseLevel::loud);
  EXPECT_EQ(classify_noise(-50.0f), NoiseLevel::moderate);
  EXPECT_EQ(classify_noise(-70.0f), NoiseLevel::quiet);
  EXPECT_EQ(to_string(NoiseLevel::moderate), "moderate");
  // With a word shown: 3 dB past a threshold to leave it.
  EXPECT_EQ(classify_noise(-38.0f, NoiseLevel::moderate), NoiseLevel::moderate);
  EXPECT_EQ(classify_noise(-36.0f, NoiseLevel::moderate), NoiseLevel::loud);
  EXPECT_EQ(classify_noise(-42.0f, NoiseLevel::loud), NoiseLevel::loud);
  EXPECT_EQ(classify_noise(-44.0f, NoiseLevel::loud), NoiseLevel::moderate);
  EXPECT_EQ(classify_noise(-70.0f, NoiseLevel::loud), NoiseLevel::quiet);
  EXPECT_EQ(classify_noise(-30.0f, NoiseLevel::quiet), NoiseLevel::loud);
}

}  // namespace
}  // namespace fc25::denoise
