// Bytes left on disk as a recording when a process died, through the repair the server runs on them
// (recording::repair), then the waveform reader the recordings page uses (recording::peaks) on what repair kept.
// repair refuses a file that is not a 16-bit mono WAV with RecordingError; what it accepts must come out
// consistent: the file as long as the summary says, RIFF and data sizes matching it, a whole number of samples.
//
// A crash is: any other exception, or a repaired file that breaks those rules.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

#include "core/text.hpp"
#include "fuzz_support.hpp"
#include "recording/recording.hpp"

namespace {

std::uint32_t le32(const std::string& s, std::size_t at) {
  auto p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fc25;
  auto path = fuzz::scratch_dir() / "crashed.wav";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  std::optional<recording::Summary> s;
  try {
    s = recording::repair(path);
  } catch (const recording::RecordingError&) {
    return 0;
  }
  if (!s) fuzz::fail("repair found no file where one was written");
  std::ifstream in(path, std::ios::binary);
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (static_cast<std::int64_t>(file.size()) != s->bytes) {
    fuzz::fail("repair says " + std::to_string(s->bytes) + " bytes, the file has " + std::to_string(file.size()));
  }
  if (s->samples < 0 || s->samples * 2 > s->bytes) fuzz::fail("repair counts " + std::to_string(s->samples) + " samples");
  if (file.size() < 44 || le32(file, 4) != file.size() - 8) fuzz::fail("the RIFF size does not match the file");
  auto data_at = static_cast<std::size_t>(s->bytes - s->samples * 2);
  if (data_at < 8 || std::memcmp(file.data() + data_at - 8, "data", 4) != 0) {
    fuzz::fail("the data chunk is not where repair says the samples start");
  }
  if (le32(file, data_at - 4) != s->samples * 2) fuzz::fail("the data size does not match the samples");
  // A second repair leaves it as it is.
  auto again = recording::repair(path);
  if (!again || again->bytes != s->bytes || again->samples != s->samples) fuzz::fail("a second repair changed the file");
  try {
    auto p = recording::peaks(path, 16);
    for (float x : p.peaks)
      if (!(x >= 0.0F && x <= 1.0F)) fuzz::fail("a peak outside 0..1");
  } catch (const recording::RecordingError&) {
    // libsndfile may still refuse what repair accepts (e.g. a sample rate of 0): the page gets 410, not a crash.
  }
  return 0;
}
