// The waveform picture of a recording: the loudest sample in each of N equal stretches, read in blocks.
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "recording/recording.hpp"

namespace fc25::recording {

Peaks peaks(const std::filesystem::path& path, std::size_t buckets) {
  if (buckets == 0) throw std::invalid_argument("peaks: at least one bucket");
  SF_INFO info{};
  SNDFILE* sf = sf_open(path.c_str(), SFM_READ, &info);
  if (!sf) throw RecordingError(path.string() + ": cannot read: " + sf_strerror(nullptr));
  Peaks p;
  p.samples = info.frames;
  p.sample_rate = info.samplerate;
  p.peaks.assign(buckets, 0.0F);
  const int ch = std::max(1, info.channels);
  std::vector<short> block(static_cast<std::size_t>(8192 * ch));
  std::int64_t at = 0;
  const auto total = std::max<std::int64_t>(1, info.frames);
  for (sf_count_t got; (got = sf_readf_short(sf, block.data(), 8192)) > 0;) {
    for (sf_count_t i = 0; i < got; ++i, ++at) {
      auto b = static_cast<std::size_t>(at * static_cast<std::int64_t>(buckets) / total);
      if (b >= buckets) b = buckets - 1;
      int loudest = 0;
      for (int c = 0; c < ch; ++c) loudest = std::max(loudest, std::abs(static_cast<int>(block[i * ch + c])));
      p.peaks[b] = std::max(p.peaks[b], static_cast<float>(loudest) / 32768.0F);
    }
  }
  sf_close(sf);
  return p;
}

}  // namespace fc25::recording
