// WAV writing with libsndfile on a descriptor we own (so that fsync reaches the same file); repair by walking the
// RIFF chunks ourselves, because a file whose header a crash left stale is exactly what a reader refuses.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include <sndfile.h>

#include "core/pcm.hpp"
#include "recording/recording.hpp"

namespace fc25::recording {
namespace {

std::string errno_text() { return std::strerror(errno); }

class SndfileWriter final : public WavWriter {
 public:
  SndfileWriter(std::filesystem::path path, int fd, SNDFILE* sf) : path_(std::move(path)), fd_(fd), sf_(sf) {}
  ~SndfileWriter() override {
    try {
      finish();
    } catch (...) {
    }
  }

  void write(std::span<const float> samples) override {
    if (!sf_) throw RecordingError("recording " + path_.string() + " is already finished");
    if (failed_) throw RecordingError("recording " + path_.string() + " failed earlier", failed_);
    buf_.resize(samples.size());
    for (std::size_t i = 0; i < samples.size(); ++i) buf_[i] = core::to_pcm16(samples[i]);
    put(buf_.data(), static_cast<sf_count_t>(buf_.size()));
  }

  void write_silence(std::int64_t n) override {
    if (!sf_) throw RecordingError("recording " + path_.string() + " is already finished");
    if (failed_) throw RecordingError("recording " + path_.string() + " failed earlier", failed_);
    buf_.assign(4800, 0);
    while (n > 0) {
      auto k = std::min<std::int64_t>(n, static_cast<std::int64_t>(buf_.size()));
      put(buf_.data(), k);
      n -= k;
    }
  }

  void checkpoint() override {
    if (!sf_) return;
    if (failed_) throw RecordingError("recording " + path_.string() + " failed earlier", failed_);
    sf_command(sf_, SFC_UPDATE_HEADER_NOW, nullptr, 0);
    if (::fsync(fd_) != 0) {
      failed_ = errno ? errno : EIO;
      throw RecordingError("cannot fsync " + path_.string() + ": " + errno_text(), failed_);
    }
  }

  Summary finish() override {
    if (sf_) {
      sf_command(sf_, SFC_UPDATE_HEADER_NOW, nullptr, 0);
      int rc = sf_close(sf_);  // does not close fd_ (opened with close_desc = false)
      sf_ = nullptr;
      bool synced = ::fsync(fd_) == 0;
      struct stat st {};
      ::fstat(fd_, &st);
      bytes_ = st.st_size;
      ::close(fd_);
      fd_ = -1;
      if (failed_ || bytes_ > 0xffffffff) {
        // libsndfile's header counts what it meant to write; what reached the disk decides (a torn sample cut).
        // Past 4 GiB its 32-bit sizes wrap: repair writes "to the end of the file" instead.
        auto fixed = repair(path_);
        if (!fixed) throw RecordingError("recording " + path_.string() + " is gone", failed_);
        samples_ = fixed->samples;
        bytes_ = fixed->bytes;
        if (!failed_ && rc != 0) throw RecordingError("cannot finish " + path_.string() + ": " + sf_error_number(rc));
        return Summary{path_, samples_, bytes_};
      }
      if (rc != 0) throw RecordingError("cannot finish " + path_.string() + ": " + sf_error_number(rc));
      if (!synced) throw RecordingError("cannot fsync " + path_.string() + ": " + errno_text());
    }
    return Summary{path_, samples_, bytes_};
  }

  std::int64_t samples() const override { return samples_; }
  const std::filesystem::path& path() const override { return path_; }

 private:
  void put(const short* data, sf_count_t n) {
    errno = 0;
    if (sf_write_short(sf_, data, n) != n) {
      failed_ = errno ? errno : EIO;
      throw RecordingError("cannot write " + path_.string() + ": " + std::strerror(failed_), failed_);
    }
    samples_ += n;
  }

  std::filesystem::path path_;
  int fd_;
  SNDFILE* sf_;
  std::int64_t samples_ = 0;
  std::int64_t bytes_ = 0;
  int failed_ = 0;  // errno of the write that failed; nothing more is written then
  std::vector<short> buf_;
};

std::uint32_t le32(const unsigned char* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
void put_le32(unsigned char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

}  // namespace

std::string file_name(const std::string& username, std::int64_t session_id) {
  return username + "_" + std::to_string(session_id) + ".wav";
}

std::filesystem::path raw_twin(const std::filesystem::path& clean) {
  auto raw = clean;
  raw.replace_filename(clean.stem().string() + "_raw.wav");
  return raw;
}

bool remove_files(const std::filesystem::path& clean) {
  std::error_code ec;
  std::filesystem::remove(raw_twin(clean), ec);
  ec.clear();
  std::filesystem::remove(clean, ec);
  return !ec;
}

std::unique_ptr<WavWriter> WavWriter::create(const std::filesystem::path& path) {
  // O_EXCL: a file already there (a recording in progress or kept) is never truncated.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) {
    throw RecordingError("recording " + path.string() + " already exists (a recording is never overwritten)", EEXIST);
  }
  if (fd < 0) throw RecordingError("cannot create recording " + path.string() + ": " + errno_text(), errno);
  SF_INFO info{};
  info.samplerate = kSampleRate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* sf = sf_open_fd(fd, SFM_WRITE, &info, SF_FALSE);
  if (!sf) {
    std::string why = sf_strerror(nullptr);
    ::close(fd);
    throw RecordingError("cannot create recording " + path.string() + ": " + why);
  }
  return std::make_unique<SndfileWriter>(path, fd, sf);
}

bool header_stale(const std::filesystem::path& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec || size < 44) return false;
  std::ifstream f(path, std::ios::binary);
  unsigned char head[8];
  if (!f.read(reinterpret_cast<char*>(head), 8) || std::memcmp(head, "RIFF", 4) != 0) return false;
  std::uint32_t riff = le32(head + 4);
  if (riff == 0xffffffffu) return false;
  return static_cast<std::uint64_t>(riff) + 8 < size;
}

std::optional<Summary> repair(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  if (!f) throw RecordingError("cannot open " + path.string() + " to repair it");
  auto size = static_cast<std::int64_t>(std::filesystem::file_size(path));
  unsigned char head[12];
  if (size < 44 || !f.read(reinterpret_cast<char*>(head), 12) || std::memcmp(head, "RIFF", 4) != 0 ||
      std::memcmp(head + 8, "WAVE", 4) != 0) {
    throw RecordingError(path.string() + " is not a WAV file (no RIFF/WAVE header)");
  }
  // Walk the chunks up to "data", checking the format on the way.
  std::int64_t pos = 12;
  bool fmt_ok = false;
  while (pos + 8 <= size) {
    unsigned char ch[8];
    f.seekg(pos);
    if (!f.read(reinterpret_cast<char*>(ch), 8)) break;
    std::uint32_t len = le32(ch + 4);
    if (std::memcmp(ch, "fmt ", 4) == 0) {
      unsigned char fmt[16];
      if (len < 16 || !f.read(reinterpret_cast<char*>(fmt), 16)) break;
      int channels = fmt[2] | (fmt[3] << 8);
      int bits = fmt[14] | (fmt[15] << 8);
      int tag = fmt[0] | (fmt[1] << 8);
      if (tag != 1 || channels != 1 || bits != 16) {
        throw RecordingError(path.string() + " is not 16-bit mono PCM (format " + std::to_string(tag) + ", " +
                             std::to_string(channels) + " channels, " + std::to_string(bits) + " bits)");
      }
      fmt_ok = true;
    } else if (std::memcmp(ch, "data", 4) == 0) {
      if (!fmt_ok) break;
      std::int64_t data_start = pos + 8;
      std::int64_t data_bytes = (size - data_start) & ~std::int64_t{1};
      f.clear();
      unsigned char v[4];
      // Past what 32-bit sizes can say (12.4 hours at 48 kHz): 0xffffffff, the streaming convention for "to the
      // end of the file" that readers which stream follow. The audio beyond is kept; a size that wrapped would
      // have hidden all but its remainder.
      constexpr std::int64_t kUnknown = 0xffffffff;
      const bool too_long = data_start + data_bytes - 8 > kUnknown;
      put_le32(v, static_cast<std::uint32_t>(too_long ? kUnknown : data_bytes));
      f.seekp(pos + 4);
      f.write(reinterpret_cast<char*>(v), 4);
      put_le32(v, static_cast<std::uint32_t>(too_long ? kUnknown : data_start + data_bytes - 8));
      f.seekp(4);
      f.write(reinterpret_cast<char*>(v), 4);
      f.flush();
      f.close();
      if (data_start + data_bytes != size) std::filesystem::resize_file(path, data_start + data_bytes);
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
      }
      return Summary{path, data_bytes / 2, data_start + data_bytes};
    }
    pos += 8 + static_cast<std::int64_t>(len) + (len & 1);  // in 64 bits: 8 + 0xfffffff7 + 1 wraps to 0 in 32
  }
  throw RecordingError(path.string() + " has no usable fmt/data chunks");
}

}  // namespace fc25::recording
