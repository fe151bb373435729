#pragma once
// Audio files for the command line: anything libsndfile reads, mixed to mono; resampling with libsoxr.
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace fc25::app {

struct Audio {
  int rate = 0;
  int channels = 0;             // of the file; `samples` is mono
  std::vector<float> samples;
};

class AudioError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

Audio read_audio(const std::filesystem::path& file);   // throws AudioError naming the file and the reason
// The length of an audio file in seconds, from its header; throws AudioError as read_audio does.
double audio_seconds(const std::filesystem::path& file);
// Writes mono audio; the container from the extension (.wav, .flac, .ogg); PCM16 unless `float32` (WAV only).
void write_audio(const std::filesystem::path& file, const std::vector<float>& samples, int rate, bool float32);
// High-quality resampling of a whole signal (linear phase, delay removed): output length in * out/in.
std::vector<float> resample(const std::vector<float>& in, int in_rate, int out_rate);

}  // namespace fc25::app
