// The real-time path without a network: frames pushed into a stream's input ring as the ingest would, read back
// from the recording files.
#include <gtest/gtest.h>
#include <sndfile.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <mutex>
#include <thread>
#include <vector>

#include "../support/temp_dir.hpp"
#include "core/time.hpp"
#include "live/live.hpp"

namespace fs = std::filesystem;
using namespace fc25;
using namespace std::chrono_literals;

namespace {

using fc25::testing::TempDir;


std::vector<float> read_wav(const fs::path& p) {
  SF_INFO info{};
  SNDFILE* sf = sf_open(p.c_str(), SFM_READ, &info);
  if (!sf) return {};
  std::vector<float> v(static_cast<std::size_t>(info.frames));
  sf_read_float(sf, v.data(), info.frames);
  sf_close(sf);
  return v;
}

// Pushes `frames` 10 ms frames of a 440 Hz tone in real time (as a decoder would deliver them).
void feed(const media::AudioInput& in, int frames, int first = 0, bool paced = true) {
  for (int f = first; f < first + frames; ++f) {
    media::AudioFrame fr;
    for (std::size_t i = 0; i < media::kFrameSamples; ++i) {
      fr.samples[i] = 0.25f * std::sin(2.0 * M_PI * 440.0 * double(f * 480 + int(i)) / 48000.0);
    }
    fr.arrival_ns = core::steady_ns();
    while (!in.push(fr)) std::this_thread::sleep_for(1ms);
    in.pushed();
    if (paced) std::this_thread::sleep_for(10ms);
  }
}

live::Config config(const fs::path& dir, denoise::Backend backend = denoise::Backend::passthrough) {
  live::Config c;
  c.recordings_dir = dir;
  c.backend = backend;
  c.workers = 1;
  c.realtime_priority = 0;
  c.record_raw = true;
  return c;
}

}  // namespace

fs::path shared_dir() { return fs::path(FC25_SOURCE_DIR) / ".." / "shared"; }
fs::path model_dir() {
  if (const char* env = std::getenv("FC25_MODEL_DIR"); env && *env) return env;
  return shared_dir() / "models" / "DeepFilterNet3";
}

// Real speech through DeepFilterNet3: the clean file must line up with the raw one sample for sample (the
// denoiser's 30 ms latency removed) and be as long.
TEST(LiveMedia, CleanRecordingIsAlignedWithTheRawInput) {
  TempDir d;
  auto c = config(d.path, denoise::Backend::dfn3);
  c.model = denoise::Model::load(model_dir());
  live::LiveMedia lm(c, {});
  auto speech = read_wav(shared_dir() / "audio" / "libdf" / "clean_freesound_33711.wav");
  ASSERT_GE(speech.size(), 96000u);
  lm.open(7, "alice", core::now_ms(), {});
  auto ring = lm.input(7);
  ASSERT_TRUE(ring);
  for (std::size_t f = 0; f < 200; ++f) {
    media::AudioFrame fr;
    std::copy_n(speech.begin() + static_cast<std::ptrdiff_t>(f * 480), 480, fr.samples.begin());
    fr.arrival_ns = core::steady_ns();
    while (!ring->push(fr)) std::this_thread::sleep_for(1ms);
    ring->pushed();
    if (f % 4 == 3) std::this_thread::sleep_for(30ms);
  }
  auto f = lm.close(7);
  ASSERT_TRUE(f && f->clean && f->raw);
  EXPECT_EQ(f->denoiser, "dfn3");
  EXPECT_EQ(f->stats.frames, 200u);
  EXPECT_EQ(f->clean->path, d.path / "alice_7.wav");
  EXPECT_EQ(f->raw->path, d.path / "alice_7_raw.wav");
  auto clean = read_wav(f->clean->path), raw = read_wav(f->raw->path);
  ASSERT_EQ(clean.size(), raw.size());
  EXPECT_EQ(static_cast<std::int64_t>(clean.size()), f->clean->samples);
  EXPECT_GE(raw.size(), 96000u);
  EXPECT_LT(raw.size(), 96000u + 4800u) << "at most ~100 ms of silence before the first frame";
  // The lag of best correlation is 0.
  auto corr = [&](int lag) {
    double dot = 0, rr = 0, cc = 0;
    for (std::size_t i = 2000; i + 2000 < raw.size(); ++i) {
      double x = raw[i], y = clean[static_cast<std::size_t>(static_cast<long>(i) + lag)];
      dot += x * y, rr += x * x, cc += y * y;
    }
    return dot / std::sqrt(rr * cc);
  };
  int best = 0;
  for (int lag = -1500; lag <= 1500; ++lag)
    if (corr(lag) > corr(best)) best = lag;
  EXPECT_EQ(best, 0);
  EXPECT_GT(corr(0), 0.8);
}

// Steady noise through DeepFilterNet3, its strength turned to Off while live: the meter readings the page gets
// say the noise is removed, then that nothing is; the recording follows; the row's mean is the readings' mean.
TEST(LiveMedia, TheStrengthChangesWhileLiveAndTheMeterSaysWhatWasRemoved) {
  TempDir d;
  auto c = config(d.path, denoise::Backend::dfn3);
  c.model = denoise::Model::load(model_dir());
  std::mutex mu;
  std::vector<denoise::MeterReading> readings;
  live::Callbacks cb;
  cb.meter = [&](std::int64_t session, const denoise::MeterReading& r) {
    EXPECT_EQ(session, 12);
    std::lock_guard lock(mu);
    readings.push_back(r);
  };
  live::LiveMedia lm(c, cb);
  std::mt19937 rng(12);
  std::normal_distribution<float> gauss(0.0f, 0.03f);  // -30 dBFS: a noisy room
  std::vector<float> noise(400 * 480);
  for (auto& v : noise) v = gauss(rng);
  lm.open(12, "carol", core::now_ms(), {});
  auto ring = lm.input(12);
  auto push = [&](std::size_t from, std::size_t to) {
    for (std::size_t f = from; f < to; ++f) {
      media::AudioFrame fr;
      std::copy_n(noise.begin() + static_cast<std::ptrdiff_t>(f * 480), 480, fr.samples.begin());
      fr.arrival_ns = core::steady_ns();
      while (!ring->push(fr)) std::this_thread::sleep_for(1ms);
      ring->pushed();
    }
  };
  auto count = [&] {
    std::lock_guard lock(mu);
    return readings.size();
  };
  push(0, 200);
  // 200 frames: 8 readings. The wait is long only for sanitizer builds, where the model runs many times slower.
  for (int i = 0; i < 2000 && count() < 8; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(count(), 8u);
  lm.set_atten_lim_db(12, 0.0f);
  EXPECT_THROW(lm.set_atten_lim_db(12, 101.0f), std::invalid_argument);
  EXPECT_THROW(lm.set_atten_lim_db(99, 0.0f), live::NotOpen);
  push(200, 400);
  for (int i = 0; i < 2000 && count() < 16; ++i) std::this_thread::sleep_for(10ms);
  auto f = lm.close(12);
  ASSERT_TRUE(f && f->clean && f->raw);
  std::lock_guard lock(mu);
  ASSERT_EQ(readings.size(), 16u);
  double sum = 0;
  int n = 0;
  for (std::size_t i = 0; i < readings.size(); ++i) {
    const auto& r = readings[i];
    std::cout << "reading " << i << ": input " << r.input_dbfs << " dBFS, noise " << r.noise_dbfs << " dBFS, removed "
              << (r.removed_db ? std::to_string(*r.removed_db) : "-") << " dB, lsnr " << r.lsnr_db.value_or(0) << "\n";
    EXPECT_EQ(r.hops, 25u);
    // The first second is the model settling (its feature normalisation adapts over ~1 s).
    if (i >= 4) {
      EXPECT_NE(r.level, denoise::NoiseLevel::quiet) << "reading " << i << ": " << r.noise_dbfs << " dBFS";
      ASSERT_TRUE(r.removed_db) << "reading " << i;
      if (i < 8) {
        EXPECT_GT(*r.removed_db, 15.0f) << "reading " << i << " (Full)";
      }
      if (i >= 9) {
        EXPECT_LT(*r.removed_db, 0.5f) << "reading " << i << " (Off)";
      }
    }
    if (r.removed_db) sum += *r.removed_db, ++n;
  }
  ASSERT_TRUE(f->noise_removed_db);
  // The mean also takes the part-window left at close (the denoiser's delay): within a few tenths of the readings'.
  EXPECT_NEAR(*f->noise_removed_db, sum / n, 2.0);
  auto clean = read_wav(f->clean->path), raw = read_wav(f->raw->path);
  ASSERT_EQ(clean.size(), raw.size());
  double worst = 0;
  for (std::size_t i = raw.size() - 150 * 480; i < raw.size() - 2 * 480; ++i) {
    worst = std::max(worst, std::abs(double(clean[i]) - raw[i]));
  }
  EXPECT_LT(worst, 2.0 / 32768) << "Off: the recording is the input (to 16-bit rounding)";
}

TEST(LiveMedia, PassthroughRecordsTheInputSampleForSample) {
  TempDir d;
  live::LiveMedia lm(config(d.path), {});
  lm.open(1, "bob", core::now_ms(), {false, std::nullopt});
  feed(*lm.input(1), 50, 0, false);  // a burst: the scheduler catches up
  auto f = lm.close(1);
  ASSERT_TRUE(f && f->clean);
  EXPECT_EQ(f->denoiser, "passthrough");
  auto clean = read_wav(f->clean->path), raw = read_wav(f->raw->path);
  ASSERT_EQ(clean, raw);
  EXPECT_EQ(f->stats.frames, 50u);
}

// A decoder hands over a 20 ms packet as two frames and rings: both are taken at once, neither waits for a clock
// (a scheduler on a 10 ms tick kept every packet's second frame 10 ms and its first 0-10 ms: a median near 10 ms).
TEST(LiveMedia, APacketsFramesAreProcessedAsSoonAsTheyAreHandedOver) {
  TempDir d;
  live::LiveMedia lm(config(d.path), {});
  lm.open(3, "carol", core::now_ms(), {false, std::nullopt});
  auto in = lm.input(3);
  ASSERT_TRUE(in);
  for (int packet = 0; packet < 50; ++packet) {
    for (int k = 0; k < 2; ++k) {
      media::AudioFrame fr{};
      fr.arrival_ns = core::steady_ns();
      ASSERT_TRUE(in->push(fr));
    }
    in->pushed();
    std::this_thread::sleep_for(20ms);
  }
  auto f = lm.close(3);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->stats.frames, 100u);
  EXPECT_LT(f->stats.latency_p50_ms, 2.5) << "p99 " << f->stats.latency_p99_ms << " ms";
  EXPECT_EQ(f->stats.late, 0u);
}

TEST(LiveMedia, TheTimelineStartsWhenTheStreamWentLive) {
  TempDir d;
  live::LiveMedia lm(config(d.path), {});
  lm.open(2, "carol", core::now_ms() - 1500, {});  // live for 1.5 s before the first audio
  feed(*lm.input(2), 20);
  auto f = lm.close(2);
  ASSERT_TRUE(f && f->clean);
  auto clean = read_wav(f->clean->path);
  EXPECT_NEAR(static_cast<double>(clean.size()) / 48000.0, 1.5 + 0.2, 0.08);
  EXPECT_EQ(clean[1000], 0.0f) << "silence before the audio arrived";
}

TEST(LiveMedia, NoAudioLeavesNoFile) {
  TempDir d;
  live::LiveMedia lm(config(d.path), {});
  lm.open(3, "dave", core::now_ms(), {});
  auto f = lm.close(3);
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->clean.has_value());
  EXPECT_FALSE(fs::exists(d.path / "dave_3.wav"));
  EXPECT_FALSE(fs::exists(d.path / "dave_3_raw.wav"));
}

TEST(LiveMedia, CloseIsOnceAndUnknownStreamsAreNotOpen) {
  TempDir d;
  live::LiveMedia lm(config(d.path), {});
  lm.open(4, "erin", core::now_ms(), {});
  EXPECT_TRUE(lm.is_open(4));
  EXPECT_EQ(lm.open_streams(), 1u);
  EXPECT_TRUE(lm.close(4).has_value());
  EXPECT_FALSE(lm.close(4).has_value());
  EXPECT_FALSE(lm.is_open(4));
  EXPECT_FALSE(lm.input(4).has_value());
  // Not open is its own error, raised before the offer is even looked at (a bad offer would be media::OfferError).
  EXPECT_THROW(lm.offer(4, "v=0\r\n", {}), live::NotOpen);
  EXPECT_THROW(lm.listen(4, "l1", "v=0\r\n", {}, {}), live::NotOpen);
}

// A browser's offer that sends Opus: its ingest starts (answering needs no network).
const char* kOffer =
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:Abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08"
    "\r\na=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n";

// The page reconnecting offers again for the same stream: the new ingest replaces the old one, whose pipeline is
// torn down; the stream stays open.
TEST(LiveMedia, ASecondOfferReplacesTheStreamsIngest) {
  TempDir d;
  live::LiveMedia lm(config(d.path), {});
  lm.open(7, "hank", core::now_ms(), {});
  // As a page does: the second offer comes once the first was answered.
  std::atomic<int> answers{0};
  live::SignalSink sink;
  sink.answer = [&](const std::string&) { ++answers; };
  lm.offer(7, kOffer, sink);
  for (int i = 0; i < 500 && answers == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(answers, 1);
  lm.offer(7, kOffer, sink);
  for (int i = 0; i < 500 && answers == 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(answers, 2);
  EXPECT_TRUE(lm.is_open(7));
  for (int i = 0; i < 500 && media::live_pipelines() > 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(media::live_pipelines(), 1u) << "the replaced ingest's pipeline is torn down";
  EXPECT_THROW(lm.offer(7, "v=0\r\n", {}), media::OfferError) << "a bad offer keeps the ingest there is";
  EXPECT_EQ(media::live_pipelines(), 1u);
  EXPECT_TRUE(lm.close(7).has_value());
  EXPECT_THROW(lm.offer(7, kOffer, {}), live::NotOpen);
  // Closing tears the ingest's pipeline down (on the media thread, soon after).
  for (int i = 0; i < 500 && media::live_pipelines() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(media::live_pipelines(), 0u);
}

// What a stream's Callbacks::audio reported for one session (flowing again: true, stopped: false), in order.
class FlowReports {
 public:
  explicit FlowReports(std::int64_t session) : session_(session) {}
  live::Callbacks callbacks() {
    live::Callbacks cb;
    cb.audio = [this](std::int64_t id, bool on) {
      std::lock_guard lock(mu_);
      if (id == session_) seen_.push_back(on);
    };
    return cb;
  }
  std::vector<bool> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  std::int64_t session_;
  std::mutex mu_;
  std::vector<bool> seen_;
};

// Audio that stops for a while (the page's network dropped) is reported, and again when it flows; the recording
// keeps the wall clock's time: what was queued on the way arrives in a burst and is kept, the rest of the stretch
// is silence, noted as a gap.
TEST(LiveMedia, AudioThatStopsIsReportedAndTheGapKeptAsSilence) {
  TempDir d;
  auto c = config(d.path);
  c.stall_after = 400ms;
  c.gap_after = 300ms;
  FlowReports flow(6);
  live::LiveMedia lm(c, flow.callbacks());
  auto opened = core::now_ms();
  lm.open(6, "gina", opened, {});
  feed(*lm.input(6), 50);                   // 0.5 s of tone
  std::this_thread::sleep_for(1200ms);      // nothing arrives
  feed(*lm.input(6), 40, 50, false);        // then 0.4 s of it at once (queued on the way)
  feed(*lm.input(6), 50, 90);               // and the live audio
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(flow.seen(), (std::vector<bool>{false, true}));
  auto f = lm.close(6);
  auto wall_ms = core::now_ms() - opened;
  ASSERT_TRUE(f && f->clean);
  ASSERT_EQ(f->gaps.size(), 1u);
  EXPECT_NEAR(static_cast<double>(f->gaps[0].at_ms), 500.0, 150.0);
  EXPECT_NEAR(static_cast<double>(f->gaps[0].ms), 800.0, 150.0) << "1.2 s without audio, 0.4 s of it came late";
  // The file ends with the last audio; the time from going live to it is all there.
  EXPECT_NEAR(f->clean->seconds() * 1000.0, static_cast<double>(wall_ms - 100), 200.0);
  auto pcm = read_wav(f->clean->path);
  auto rms = [&](double from_s, double to_s) {
    double e = 0;
    auto a = static_cast<std::size_t>(from_s * 48000), b = static_cast<std::size_t>(to_s * 48000);
    for (auto i = a; i < b && i < pcm.size(); ++i) e += pcm[i] * pcm[i];
    return std::sqrt(e / static_cast<double>(b - a));
  };
  double gap_from = f->gaps[0].at_ms / 1000.0 + 0.05, gap_to = (f->gaps[0].at_ms + f->gaps[0].ms) / 1000.0 - 0.05;
  EXPECT_LT(rms(gap_from, gap_to), 1e-4) << "the lost stretch is silence";
  EXPECT_GT(rms(gap_to + 0.1, gap_to + 0.4), 0.1) << "the audio after it is the tone";
}

// After a stall, a burst of late packets (a cut connection's, let through when the link comes back) and then
// nothing again does not report the audio flowing: friends would see the stream live while its page is still
// reconnecting. Audio that keeps coming is reported, once.
TEST(LiveMedia, ABurstAfterAStallIsNotAudioFlowingAgain) {
  TempDir d;
  auto c = config(d.path);
  c.stall_after = 400ms;
  FlowReports flow(8);
  live::LiveMedia lm(c, flow.callbacks());
  lm.open(8, "hana", core::now_ms(), {});
  feed(*lm.input(8), 30);                   // 0.3 s of tone
  std::this_thread::sleep_for(900ms);       // nothing arrives: stalled
  ASSERT_EQ(flow.seen(), (std::vector<bool>{false}));
  feed(*lm.input(8), 8, 30, false);         // 80 ms of audio at once, then nothing again
  std::this_thread::sleep_for(900ms);
  EXPECT_EQ(flow.seen(), (std::vector<bool>{false})) << "a burst is not the audio back";
  feed(*lm.input(8), 60, 38);               // 0.6 s of live audio
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(flow.seen(), (std::vector<bool>{false, true}));
  lm.close(8);
}

// A listener removed (unfriended, gone) while its offer is still being taken: its pipeline is either never built
// or torn down once built; none is left running, and nothing is touched after it is freed (the sanitizer builds).
TEST(LiveMedia, AListenerRemovedWhileItStartsLeavesNoPipelineBehind) {
  TempDir d;
  live::LiveMedia lm(config(d.path), {});
  lm.open(9, "ivy", core::now_ms(), {});
  std::string offer = kOffer;
  offer.replace(offer.find("a=sendonly"), 10, "a=recvonly");
  int taken = 0;
  for (int i = 0; i < 40; ++i) {
    const std::string id = "l" + std::to_string(i);
    std::thread remover([&] {
      while (!lm.unlisten(9, id)) std::this_thread::yield();
    });
    try {
      lm.listen(9, id, offer, {}, {});
      ++taken;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "listen threw: " << e.what();
    }
    remover.join();
  }
  EXPECT_EQ(taken, 40);
  EXPECT_TRUE(lm.close(9).has_value());
  for (int i = 0; i < 500 && media::live_pipelines() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(media::live_pipelines(), 0u);
}

TEST(LiveMedia, WatchdogReportsSilenceOnce) {
  TempDir d;
  auto c = config(d.path);
  c.media_timeout = 300ms;
  c.stall_timeout = 300ms;
  std::mutex mu;
  std::vector<std::pair<std::int64_t, live::MediaEnd>> ended;
  live::Callbacks cb;
  cb.ended = [&](std::int64_t id, live::MediaEnd why, const std::string&) {
    std::lock_guard lock(mu);
    ended.emplace_back(id, why);
  };
  live::LiveMedia lm(c, cb);
  lm.open(5, "frank", core::now_ms(), {});
  feed(*lm.input(5), 10);
  std::this_thread::sleep_for(800ms);
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].first, 5);
    EXPECT_EQ(ended[0].second, live::MediaEnd::media_timeout);
  }
  auto f = lm.close(5);
  ASSERT_TRUE(f && f->clean);
  EXPECT_GE(f->clean->samples, 4800);
}

TEST(LiveMedia, BadOptionsAndUnwritableRecordingsAreErrors) {
  TempDir d;
  live::LiveMedia lm(config(d.path / "missing"), {});
  EXPECT_THROW(lm.open(6, "gina", core::now_ms(), {true, 150.0f}), std::invalid_argument);
  EXPECT_THROW(lm.open(6, "gina", core::now_ms(), {}), recording::RecordingError);
  EXPECT_FALSE(lm.is_open(6));
}

namespace {
std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}
void put(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }
}  // namespace

// A file already on disk under a stream's name is never truncated: the open fails naming it and leaves it as it
// was (a clean file made before the raw one was refused goes again); opening an open stream again touches nothing.
TEST(LiveMedia, AnExistingRecordingIsNeverTruncated) {
  TempDir d;
  live::LiveMedia lm(config(d.path), {});
  const std::string kept(10000, 'k');
  put(d.path / "ivy_8.wav", kept);
  try {
    lm.open(8, "ivy", core::now_ms(), {});
    FAIL() << "opened over an existing recording";
  } catch (const recording::RecordingError& e) {
    EXPECT_EQ(e.error_number(), EEXIST);
    EXPECT_NE(std::string(e.what()).find("ivy_8.wav"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(lm.is_open(8));
  EXPECT_EQ(slurp(d.path / "ivy_8.wav"), kept);

  put(d.path / "ivy_9_raw.wav", kept);
  EXPECT_THROW(lm.open(9, "ivy", core::now_ms(), {}), recording::RecordingError);
  EXPECT_FALSE(lm.is_open(9));
  EXPECT_FALSE(fs::exists(d.path / "ivy_9.wav"));
  EXPECT_EQ(slurp(d.path / "ivy_9_raw.wav"), kept);

  lm.open(10, "ivy", core::now_ms(), {false, std::nullopt});
  feed(*lm.input(10), 30, 0, false);
  std::this_thread::sleep_for(300ms);
  lm.open(10, "ivy", core::now_ms(), {false, std::nullopt});
  feed(*lm.input(10), 30, 30, false);
  auto f = lm.close(10);
  ASSERT_TRUE(f && f->clean);
  EXPECT_GE(f->clean->samples, 60 * 480);
  EXPECT_EQ(static_cast<std::int64_t>(read_wav(f->clean->path).size()), f->clean->samples);
}

TEST(LiveMedia, ManyStreamsAtOnceAllRecorded) {
  TempDir d;
  auto c = config(d.path);
  c.workers = 2;
  live::LiveMedia lm(c, {});
  for (int i = 0; i < 8; ++i) lm.open(100 + i, "s" + std::to_string(i), core::now_ms(), {});
  std::vector<std::thread> feeders;
  for (int i = 0; i < 8; ++i) feeders.emplace_back([&, i] { feed(*lm.input(100 + i), 30); });
  for (auto& t : feeders) t.join();
  for (int i = 0; i < 8; ++i) {
    auto f = lm.close(100 + i);
    ASSERT_TRUE(f && f->clean);
    EXPECT_EQ(f->stats.frames, 30u);
    EXPECT_EQ(f->stats.dropped, 0u);
  }
  EXPECT_EQ(lm.open_streams(), 0u);
}
