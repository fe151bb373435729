#include "app/audio_file.hpp"

#include <algorithm>
#include <cmath>

#include <sndfile.h>
#include <soxr.h>

namespace fc25::app {

namespace {

// Throws AudioError naming the file and why it cannot be read.
SNDFILE* open_for_reading(const std::filesystem::path& file, SF_INFO& info) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) throw AudioError(file.string() + ": no such file");
  SNDFILE* f = sf_open(file.c_str(), SFM_READ, &info);
  if (!f) throw AudioError(file.string() + ": cannot read it as audio (" + sf_strerror(nullptr) + ")");
  return f;
}

}  // namespace

Audio read_audio(const std::filesystem::path& file) {
  SF_INFO info{};
  SNDFILE* f = open_for_reading(file, info);
  Audio a;
  a.rate = info.samplerate;
  a.channels = info.channels;
  std::vector<float> interleaved(static_cast<std::size_t>(info.frames) * info.channels);
  sf_count_t got = sf_readf_float(f, interleaved.data(), info.frames);
  sf_close(f);
  a.samples.resize(static_cast<std::size_t>(got));
  for (sf_count_t i = 0; i < got; ++i) {
    float s = 0.0f;
    for (int c = 0; c < info.channels; ++c) s += interleaved[static_cast<std::size_t>(i) * info.channels + c];
    a.samples[static_cast<std::size_t>(i)] = s / static_cast<float>(info.channels);
  }
  return a;
}

double audio_seconds(const std::filesystem::path& file) {
  SF_INFO info{};
  sf_close(open_for_reading(file, info));
  return info.samplerate > 0 ? static_cast<double>(info.frames) / info.samplerate : 0.0;
}

void write_audio(const std::filesystem::path& file, const std::vector<float>& samples, int rate, bool float32) {
  auto ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  if (ext == ".wav") info.format = SF_FORMAT_WAV | (float32 ? SF_FORMAT_FLOAT : SF_FORMAT_PCM_16);
  else if (ext == ".flac") info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  else if (ext == ".ogg") info.format = SF_FORMAT_OGG | SF_FORMAT_VORBIS;
  else throw AudioError(file.string() + ": unknown output format '" + ext + "' (use .wav, .flac or .ogg)");
  SNDFILE* f = sf_open(file.c_str(), SFM_WRITE, &info);
  if (!f) throw AudioError(file.string() + ": cannot be written (" + sf_strerror(nullptr) + ")");
  if (!float32) sf_command(f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  sf_count_t wrote = sf_writef_float(f, samples.data(), static_cast<sf_count_t>(samples.size()));
  int err = sf_close(f);
  if (wrote != static_cast<sf_count_t>(samples.size()) || err != 0) {
    throw AudioError(file.string() + ": writing failed (disk full?)");
  }
}

std::vector<float> resample(const std::vector<float>& in, int in_rate, int out_rate) {
  if (in_rate == out_rate) return in;
  const std::size_t out_len =
      static_cast<std::size_t>(std::llround(static_cast<double>(in.size()) * out_rate / in_rate));
  std::vector<float> out(out_len);
  std::size_t done = 0;
  soxr_quality_spec_t q = soxr_quality_spec(SOXR_VHQ, 0);
  soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  soxr_error_t err = soxr_oneshot(in_rate, out_rate, 1, in.data(), in.size(), nullptr, out.data(), out.size(), &done,
                                  &io, &q, nullptr);
  if (err) throw AudioError(std::string("resampling failed: ") + soxr_strerror(err));
  out.resize(out_len);
  return out;
}

}  // namespace fc25::app
