#pragma once
// Recordings of live streams: WAV files (PCM 16-bit, 48 kHz, mono) written while the audio arrives, made durable
// about once a second (header brought up to date, then fsync), so that a crash loses at most the last second; and
// the repair of a file a crash left behind. No threads, no server: the caller decides when to write.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace fc25::recording {

inline constexpr int kSampleRate = 48000;

struct Summary {
  std::filesystem::path path;
  std::int64_t samples = 0;   // audio samples in the file
  std::int64_t bytes = 0;     // size of the whole file
  double seconds() const { return static_cast<double>(samples) / kSampleRate; }
};

class RecordingError : public std::runtime_error {
 public:
  explicit RecordingError(const std::string& what, int error_number = 0)
      : std::runtime_error(what), error_number_(error_number) {}
  // The errno of the failed system call (ENOSPC: the disk is full), 0 when there was none.
  int error_number() const { return error_number_; }

 private:
  int error_number_;
};

// `{username}_{session_id}.wav`, the name of a stream's recording under streamed_audios/.
std::string file_name(const std::string& username, std::int64_t session_id);
// The raw twin of a recording's file (the unprocessed input, kept with FC25_RECORD_RAW): `…_raw.wav` beside it.
// The only place that name is made; library.hpp's parse_file_name reads both.
std::filesystem::path raw_twin(const std::filesystem::path& clean);
// Removes a recording's file and its raw twin (either may already be gone). False when the file was there and
// could not be removed.
bool remove_files(const std::filesystem::path& clean);

class WavWriter {
 public:
  // Creates the file, which must not exist: an existing file is left as it is (RecordingError with error_number()
  // EEXIST). Throws RecordingError naming the path and the reason.
  static std::unique_ptr<WavWriter> create(const std::filesystem::path& path);
  virtual ~WavWriter() = default;

  // Appends float samples in [-1, 1] (clipped), converted to 16-bit. A write that fails (disk full) throws
  // RecordingError, and so does every later write and checkpoint: the file then ends with what reached the disk.
  virtual void write(std::span<const float> samples) = 0;
  // Appends `n` samples of silence.
  virtual void write_silence(std::int64_t n) = 0;
  // Makes everything written so far durable: header sizes updated, data and header flushed with fsync.
  virtual void checkpoint() = 0;
  // Final checkpoint and close. Idempotent; the file is complete afterwards. After a failed write the header is
  // set from the bytes on disk (as repair does), so the file is a valid WAV of the audio that made it there.
  virtual Summary finish() = 0;
  virtual std::int64_t samples() const = 0;
  virtual const std::filesystem::path& path() const = 0;
};

// Makes a WAV file that was being written when its process died valid again: the RIFF and data sizes are set from
// the bytes actually on disk (a torn last sample is cut off). Returns nullopt when the file does not exist; throws
// RecordingError when it is not a 16-bit mono WAV this server writes.
std::optional<Summary> repair(const std::filesystem::path& path);

// Whether a WAV file's header says less than the file holds: it was being written when its process died (a
// finished file's RIFF size is the file's, or 0xffffffff past 4 GiB). Reads 8 bytes; false for what is not a WAV.
bool header_stale(const std::filesystem::path& path);

// A recording's waveform picture: for each of `buckets` equal stretches of the file, its loudest sample as a
// fraction of full scale (0..1). Throws RecordingError when the file cannot be read.
struct Peaks {
  std::int64_t samples = 0;
  int sample_rate = 0;
  std::vector<float> peaks;
};
Peaks peaks(const std::filesystem::path& path, std::size_t buckets);

}  // namespace fc25::recording
