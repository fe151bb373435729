#include <gtest/gtest.h>
#include <sndfile.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "../support/temp_dir.hpp"
#include "recording/recording.hpp"

namespace fs = std::filesystem;
using namespace fc25::recording;

namespace {

using fc25::testing::TempDir;

std::vector<float> tone(std::size_t n, std::size_t offset = 0) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = 0.5f * std::sin(2 * M_PI * 440.0 * double(i + offset) / 48000.0);
  return v;
}

// Reads a WAV with libsndfile, as any player would.
std::vector<short> read_wav(const fs::path& p, SF_INFO& info) {
  info = {};
  SNDFILE* sf = sf_open(p.c_str(), SFM_READ, &info);
  if (!sf) return {};
  std::vector<short> v(static_cast<std::size_t>(info.frames));
  sf_read_short(sf, v.data(), info.frames);
  sf_close(sf);
  return v;
}
}  // namespace

TEST(Recording, FileNameFollowsTheSessionScheme) {
  EXPECT_EQ(file_name("alice", 42), "alice_42.wav");
  EXPECT_EQ(raw_twin(fs::path("/data/streamed_audios") / file_name("alice", 42)), "/data/streamed_audios/alice_42_raw.wav");
}

TEST(Recording, WritesPcm16MonoAt48kThatReadsBack) {
  TempDir d;
  auto w = WavWriter::create(d.path / "a.wav");
  auto t = tone(48000);
  w->write(t);
  w->write_silence(4800);
  auto s = w->finish();
  EXPECT_EQ(s.samples, 52800);
  EXPECT_EQ(s.bytes, static_cast<std::int64_t>(fs::file_size(d.path / "a.wav")));
  EXPECT_NEAR(s.seconds(), 1.1, 1e-9);
  SF_INFO info;
  auto back = read_wav(d.path / "a.wav", info);
  EXPECT_EQ(info.samplerate, 48000);
  EXPECT_EQ(info.channels, 1);
  EXPECT_EQ(info.format, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  ASSERT_EQ(back.size(), 52800u);
  for (std::size_t i = 0; i < 48000; i += 997) EXPECT_NEAR(back[i], t[i] * 32767.0, 1.0);
  EXPECT_EQ(back[50000], 0);
}

TEST(Recording, ClipsOutOfRangeSamples) {
  TempDir d;
  auto w = WavWriter::create(d.path / "c.wav");
  std::vector<float> v{2.0f, -3.0f, 0.0f};
  w->write(v);
  w->finish();
  SF_INFO info;
  auto back = read_wav(d.path / "c.wav", info);
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[0], 32767);
  EXPECT_EQ(back[1], -32767);
}

// The one float -> 16-bit conversion (core::to_pcm16): ties away from zero, NaN is silence.
TEST(Recording, RoundsTiesAwayFromZeroAndWritesNaNAsSilence) {
  TempDir d;
  auto w = WavWriter::create(d.path / "r.wav");
  float tie = 0;
  for (int k = 2; k < 1000 && tie == 0; k += 2) {  // an even k: ties to even would give k, not k + 1
    float x = (static_cast<float>(k) + 0.5f) / 32767.0f;
    if (x * 32767.0f == static_cast<float>(k) + 0.5f) tie = x;
  }
  ASSERT_NE(tie, 0.0f);
  std::vector<float> v{tie, -tie, std::nanf(""), 1.0f, -1.0f};
  w->write(v);
  w->finish();
  SF_INFO info;
  auto back = read_wav(d.path / "r.wav", info);
  ASSERT_EQ(back.size(), 5u);
  auto expect = static_cast<short>(std::lround(tie * 32767.0f));
  EXPECT_EQ(expect % 2, 1);
  EXPECT_EQ(back[0], expect);
  EXPECT_EQ(back[1], -expect);
  EXPECT_EQ(back[2], 0);
  EXPECT_EQ(back[3], 32767);
  EXPECT_EQ(back[4], -32767);
}

// A file already there (a recording in progress, or one kept) is never truncated or overwritten.
TEST(Recording, CreateNeverTruncatesAnExistingFile) {
  TempDir d;
  auto path = d.path / "kept.wav";
  {
    auto w = WavWriter::create(path);
    w->write(tone(4800));
    w->finish();
  }
  auto size = fs::file_size(path);
  try {
    WavWriter::create(path);
    FAIL() << "created over an existing file";
  } catch (const RecordingError& e) {
    EXPECT_EQ(e.error_number(), EEXIST);
    EXPECT_NE(std::string(e.what()).find("kept.wav"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs::file_size(path), size);
  SF_INFO info;
  EXPECT_EQ(read_wav(path, info).size(), 4800u);
}

TEST(Recording, FinishIsIdempotentAndWriteAfterwardsIsAnError) {
  TempDir d;
  auto w = WavWriter::create(d.path / "i.wav");
  w->write(tone(480));
  auto a = w->finish();
  auto b = w->finish();
  EXPECT_EQ(a.samples, b.samples);
  EXPECT_EQ(a.bytes, b.bytes);
  EXPECT_THROW(w->write(tone(480)), RecordingError);
}

// A disk that fills up while recording, made real with a file size limit (the kernel refuses the write past it as
// it would on a full disk, EFBIG instead of ENOSPC): the failing write throws with the errno, nothing more is
// written, and finish() leaves a valid WAV of exactly the audio that reached the disk.
TEST(Recording, AWriteThatFailsLeavesAValidWavOfWhatReachedTheDisk) {
  TempDir dir;
  auto path = dir.path / "full.wav";
  auto w = WavWriter::create(path);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit small = saved;
  small.rlim_cur = 100001;  // odd: the last write is torn in the middle of a sample
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  int err = 0, writes = 0;
  try {
    for (; writes < 1000; ++writes) w->write(tone(480, static_cast<std::size_t>(writes) * 480));
  } catch (const RecordingError& e) {
    err = e.error_number();
  }
  bool later_write_threw = false, checkpoint_threw = false;
  try { w->write(tone(480)); } catch (const RecordingError&) { later_write_threw = true; }
  try { w->checkpoint(); } catch (const RecordingError&) { checkpoint_threw = true; }
  Summary s;
  bool finished = false;
  try {
    s = w->finish();  // still under the limit: the disk is still full
    finished = true;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "finish: " << e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  ASSERT_TRUE(finished);
  EXPECT_EQ(err, EFBIG);
  EXPECT_LT(writes, 1000);
  EXPECT_TRUE(later_write_threw) << "nothing is written after a failure";
  EXPECT_TRUE(checkpoint_threw);
  EXPECT_EQ(static_cast<std::int64_t>(fs::file_size(path)), s.bytes);
  EXPECT_EQ(s.bytes, 44 + 2 * s.samples) << "header and data sizes match the bytes on disk, no torn sample";
  EXPECT_GE(s.bytes, 100000 - 2);
  SF_INFO info;
  auto v = read_wav(path, info);
  ASSERT_EQ(info.frames, s.samples);
  auto ref = tone(static_cast<std::size_t>(s.samples));
  for (std::size_t i = 0; i < v.size(); i += 97) {
    ASSERT_NEAR(v[i] / 32767.0, ref[i], 1.0 / 16000) << "sample " << i;
  }
}

TEST(Recording, CreateInAMissingDirectoryNamesThePath) {
  TempDir d;
  try {
    WavWriter::create(d.path / "no" / "such" / "x.wav");
    FAIL() << "expected an error";
  } catch (const RecordingError& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/x.wav"), std::string::npos) << e.what();
  }
}

// What a kill -9 leaves: the header says what was there at the last checkpoint, more audio follows it.
TEST(Recording, RepairRecoversEverythingOnDiskAfterACrash) {
  TempDir d;
  auto live = d.path / "live.wav";
  auto crashed = d.path / "crashed.wav";
  auto w = WavWriter::create(live);
  w->write(tone(48000));
  w->checkpoint();
  w->write(tone(24000, 48000));          // after the checkpoint: header is stale
  fs::copy_file(live, crashed);          // the file as the crash leaves it
  SF_INFO info;
  auto stale = read_wav(crashed, info);
  EXPECT_EQ(stale.size(), 48000u) << "a reader trusts the stale header";
  auto r = repair(crashed);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->samples, 72000);
  EXPECT_EQ(r->bytes, static_cast<std::int64_t>(fs::file_size(crashed)));
  auto back = read_wav(crashed, info);
  ASSERT_EQ(back.size(), 72000u);
  auto t = tone(72000);
  for (std::size_t i = 0; i < 72000; i += 1009) EXPECT_NEAR(back[i], t[i] * 32767.0, 1.0);
}

TEST(Recording, RepairCutsATornSampleAndLeavesAGoodFileAsItIs) {
  TempDir d;
  auto p = d.path / "t.wav";
  auto w = WavWriter::create(p);
  w->write(tone(1000));
  auto s = w->finish();
  auto again = repair(p);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->samples, s.samples);
  EXPECT_EQ(again->bytes, s.bytes);
  {
    std::FILE* f = std::fopen(p.c_str(), "ab");
    std::fputc(7, f);  // half a sample
    std::fclose(f);
  }
  auto r = repair(p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->samples, 1000);
  EXPECT_EQ(static_cast<std::int64_t>(fs::file_size(p)), s.bytes);
}

TEST(Recording, RepairRefusesWhatIsNotOurWav) {
  TempDir d;
  EXPECT_FALSE(repair(d.path / "missing.wav").has_value());
  auto junk = d.path / "junk.wav";
  {
    std::FILE* f = std::fopen(junk.c_str(), "wb");
    for (int i = 0; i < 100; ++i) std::fputc('x', f);
    std::fclose(f);
  }
  EXPECT_THROW(repair(junk), RecordingError);
  // A stereo WAV is not one of ours.
  auto stereo = d.path / "stereo.wav";
  SF_INFO info{};
  info.samplerate = 48000;
  info.channels = 2;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* sf = sf_open(stereo.c_str(), SFM_WRITE, &info);
  short z[8] = {};
  sf_write_short(sf, z, 8);
  sf_close(sf);
  EXPECT_THROW(repair(stereo), RecordingError);
}

// A chunk of odd length 0xfffffff7: with its header and padding it ends 2^32 bytes on, past the file. The walk over
// the chunks must step there (and refuse the file), not add a step that wrapped to 0 and read that chunk for ever.
TEST(Recording, RepairStepsOverAChunkThatEndsAt4GiB) {
  TempDir d;
  auto p = d.path / "odd.wav";
  {
    std::FILE* f = std::fopen(p.c_str(), "wb");
    const unsigned char head[] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'A', 'V', 'E', 'J', 'U', 'N', 'K', 0xf7, 0xff, 0xff, 0xff};
    std::fwrite(head, 1, sizeof head, f);
    for (int i = 0; i < 64; ++i) std::fputc(0, f);
    std::fclose(f);
  }
  // In a child process, so that a repair that never returns fails this test instead of hanging it.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 1;
    try {
      repair(p);
    } catch (const RecordingError&) {
      code = 0;
    } catch (...) {
    }
    ::_exit(code);
  }
  int status = 0;
  for (int i = 0; i < 500 && ::waitpid(child, &status, WNOHANG) == 0; ++i) ::usleep(10000);
  if (::waitpid(child, &status, WNOHANG) == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    FAIL() << "repair did not return within 5 s";
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "repair should refuse the file with RecordingError";
}

// A recording past 4 GiB (over 12 hours): its sizes cannot be written in 32 bits. They are written as 0xffffffff
// ("to the end of the file"), nothing is cut, and the summary counts every sample; a size that wrapped around
// (the file's length modulo 2^32) would have made the file read as a few seconds.
TEST(Recording, RepairOfAFilePast4GiBSaysToTheEndAndKeepsEverything) {
  TempDir d;
  auto p = d.path / "long.wav";
  auto w = WavWriter::create(p);
  w->write(tone(4800));
  auto header_bytes = w->finish().bytes - 4800 * 2;
  const std::int64_t size = (std::int64_t{1} << 32) + 96000;  // sparse: no disk is used for the zeros
  fs::resize_file(p, static_cast<std::uintmax_t>(size));
  auto r = repair(p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->bytes, size);
  EXPECT_EQ(r->samples, (size - header_bytes) / 2);
  EXPECT_EQ(static_cast<std::int64_t>(fs::file_size(p)), size);
  std::ifstream in(p, std::ios::binary);
  std::vector<unsigned char> head(static_cast<std::size_t>(header_bytes));
  in.read(reinterpret_cast<char*>(head.data()), header_bytes);
  auto le32 = [&](std::size_t at) {
    return std::uint32_t{head[at]} | std::uint32_t{head[at + 1]} << 8 | std::uint32_t{head[at + 2]} << 16 |
           std::uint32_t{head[at + 3]} << 24;
  };
  EXPECT_EQ(le32(4), 0xffffffffu) << "RIFF size";
  ASSERT_EQ(std::memcmp(head.data() + header_bytes - 8, "data", 4), 0);
  EXPECT_EQ(le32(static_cast<std::size_t>(header_bytes) - 4), 0xffffffffu) << "data size";
}

TEST(Recording, PeaksFollowTheLoudnessOfEachStretch) {
  TempDir d;
  auto w = WavWriter::create(d.path / "p.wav");
  // 1 s of a 0.5 tone, 1 s of silence, 1 s of a 0.25 tone, then one full-scale click at the very end.
  auto t = tone(48000);
  w->write(t);
  w->write_silence(48000);
  for (auto& x : t) x *= 0.5f;
  w->write(t);
  std::vector<float> click{1.0f};
  w->write(click);
  w->finish();
  auto p = peaks(d.path / "p.wav", 3);
  EXPECT_EQ(p.samples, 144001);
  EXPECT_EQ(p.sample_rate, 48000);
  ASSERT_EQ(p.peaks.size(), 3u);
  EXPECT_NEAR(p.peaks[0], 0.5, 0.001);
  EXPECT_NEAR(p.peaks[1], 0.0, 1e-6);
  EXPECT_NEAR(p.peaks[2], 1.0, 0.001);  // the click is in the last stretch
  auto fine = peaks(d.path / "p.wav", 300);
  EXPECT_NEAR(fine.peaks[250], 0.25, 0.002);
  EXPECT_THROW(peaks(d.path / "missing.wav", 10), RecordingError);
}
