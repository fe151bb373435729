// The fan-out encoder's settings side by side: what each adds to mouth-to-ear (the encoder's lookahead and a packet's
// length), what it costs (encoding time per stream; packets and bytes per listener, which is what the per-listener
// send path pays for), and what a listener hears when packets are lost (log-spectral distance of the decoded audio
// from the speech that went in, with random loss of 0, 5 and 10 % of packets, concealed by the decoder or rebuilt
// from the next packet's redundancy where the setting sends any).
//
//   build/bench/fanout/opus_modes [speech.wav]      (default: ../shared/audio/libdf/clean_freesound_33711.wav)
//
// The settings are those of `FC25_LISTENER_OPUS` (voice-20, voice-10, lowdelay-20, lowdelay-10), plus voice-20 with
// in-band FEC actually coded (the encoder told to expect 10 % loss), for what redundancy buys and costs.
#include <opus.h>
#include <sndfile.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cpuinfo.hpp"
#include "denoise/dsp/dsp.hpp"

namespace fs = std::filesystem;

namespace {

constexpr int kRate = 48000;

struct Setting {
  const char* name;
  int application;
  int frame_ms;
  int expect_loss_pct;  // > 0: in-band FEC coded for that loss
};

std::vector<float> read_wav(const fs::path& f) {
  SF_INFO info{};
  SNDFILE* s = sf_open(f.c_str(), SFM_READ, &info);
  if (!s) throw std::runtime_error("cannot read " + f.string());
  if (info.samplerate != kRate || info.channels != 1) {
    sf_close(s);
    throw std::runtime_error(f.string() + ": 48 kHz mono expected");
  }
  std::vector<float> v(static_cast<std::size_t>(info.frames));
  sf_readf_float(s, v.data(), info.frames);
  sf_close(s);
  return v;
}

struct Encoded {
  std::vector<std::vector<unsigned char>> packets;
  int lookahead = 0;         // samples
  double encode_s = 0;       // best of the passes, for the whole input
};

Encoded encode(const Setting& st, const std::vector<float>& x, int passes) {
  const int n = kRate * st.frame_ms / 1000;
  Encoded e;
  e.encode_s = 1e9;
  for (int pass = 0; pass < passes; ++pass) {
    int err = 0;
    OpusEncoder* enc = opus_encoder_create(kRate, 1, st.application, &err);
    if (err != OPUS_OK) throw std::runtime_error(opus_strerror(err));
    // As the fan-out sets it: 64 kb/s, voice, complexity 10 (GStreamer's default).
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(64000));
    opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(10));
    if (st.application != OPUS_APPLICATION_RESTRICTED_LOWDELAY) opus_encoder_ctl(enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
    opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(st.expect_loss_pct > 0 ? 1 : 0));
    opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(st.expect_loss_pct));
    opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&e.lookahead));
    std::vector<std::vector<unsigned char>> packets;
    std::vector<unsigned char> buf(1500);
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t at = 0; at + n <= x.size(); at += n) {
      int len = opus_encode_float(enc, x.data() + at, n, buf.data(), static_cast<opus_int32>(buf.size()));
      if (len < 0) throw std::runtime_error(opus_strerror(len));
      packets.emplace_back(buf.begin(), buf.begin() + len);
    }
    e.encode_s = std::min(e.encode_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    opus_encoder_destroy(enc);
    e.packets = std::move(packets);
  }
  return e;
}

// Decodes with packets lost at random (the same pattern for every setting of one packet length): a lost packet is
// rebuilt from the next one's redundancy when `fec`, else concealed.
std::vector<float> decode(const Setting& st, const Encoded& e, double loss, unsigned seed, bool fec) {
  const int n = kRate * st.frame_ms / 1000;
  int err = 0;
  OpusDecoder* dec = opus_decoder_create(kRate, 1, &err);
  if (err != OPUS_OK) throw std::runtime_error(opus_strerror(err));
  std::mt19937 rng(seed);
  std::bernoulli_distribution lost(loss);
  std::vector<bool> gone(e.packets.size());
  for (std::size_t i = 0; i < gone.size(); ++i) gone[i] = lost(rng);
  std::vector<float> out(e.packets.size() * static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < e.packets.size(); ++i) {
    float* o = out.data() + i * static_cast<std::size_t>(n);
    int got;
    if (!gone[i]) {
      got = opus_decode_float(dec, e.packets[i].data(), static_cast<opus_int32>(e.packets[i].size()), o, n, 0);
    } else if (fec && i + 1 < e.packets.size() && !gone[i + 1]) {
      got = opus_decode_float(dec, e.packets[i + 1].data(), static_cast<opus_int32>(e.packets[i + 1].size()), o, n, 1);
    } else {
      got = opus_decode_float(dec, nullptr, 0, o, n, 0);
    }
    if (got != n) throw std::runtime_error("decode: " + std::to_string(got));
  }
  opus_decoder_destroy(dec);
  return out;
}

// Log-spectral distance (dB) of `y` from `x` over the hops where `x` holds speech (within 40 dB of its loudest hop):
// per hop the RMS over bins of the difference of the two power spectra in dB, then the mean over hops. `y` is
// aligned to `x` by the encoder's lookahead.
double log_spectral_distance(const std::vector<float>& x, const std::vector<float>& y, int lookahead) {
  namespace dsp = fc25::denoise::dsp;
  dsp::DspConfig c;
  dsp::Stft sx(c), sy(c);
  const std::size_t hop = static_cast<std::size_t>(c.hop_size), bins = static_cast<std::size_t>(c.freq_size());
  std::vector<dsp::cf32> fx(bins), fy(bins);
  std::vector<double> dist, energy;
  for (std::size_t at = 0; at + hop <= x.size() && at + lookahead + hop <= y.size(); at += hop) {
    sx.analysis({x.data() + at, hop}, fx);
    sy.analysis({y.data() + at + lookahead, hop}, fy);
    double e = 0, d = 0;
    for (std::size_t k = 0; k < bins; ++k) {
      const double px = std::norm(fx[k]) + 1e-10, py = std::norm(fy[k]) + 1e-10;
      e += px;
      const double diff = 10 * std::log10(px / py);
      d += diff * diff;
    }
    energy.push_back(e);
    dist.push_back(std::sqrt(d / static_cast<double>(bins)));
  }
  const double loudest = *std::max_element(energy.begin(), energy.end());
  double sum = 0;
  std::size_t used = 0;
  for (std::size_t i = 0; i < dist.size(); ++i) {
    if (energy[i] >= loudest * 1e-4) sum += dist[i], ++used;
  }
  return used ? sum / static_cast<double>(used) : 0;
}

}  // namespace

int main(int argc, char** argv) try {
  fs::path wav = argc > 1 ? fs::path(argv[1])
                          : fs::path(std::getenv("FC25_SHARED_DIR") ? std::getenv("FC25_SHARED_DIR") : FC25_SHARED_DIR) /
                                "audio/libdf/clean_freesound_33711.wav";
  const std::vector<float> x = read_wav(wav);
  const double seconds = static_cast<double>(x.size()) / kRate;
  std::printf("cpu: %s\nlibopus: %s\nspeech: %s (%.1f s)\n\n", fc25::bench::cpu_model().c_str(),
              opus_get_version_string(), wav.filename().c_str(), seconds);

  const Setting settings[] = {
      {"voice-20", OPUS_APPLICATION_VOIP, 20, 0},
      {"voice-10", OPUS_APPLICATION_VOIP, 10, 0},
      {"lowdelay-20", OPUS_APPLICATION_RESTRICTED_LOWDELAY, 20, 0},
      {"lowdelay-10", OPUS_APPLICATION_RESTRICTED_LOWDELAY, 10, 0},
      {"voice-20 + FEC for 10 %", OPUS_APPLICATION_VOIP, 20, 10},
  };
  const double losses[] = {0.0, 0.05, 0.10};
  constexpr int kPatterns = 5;  // loss patterns averaged per rate

  std::printf("| setting | adds (lookahead + packet) | encode, µs per s of audio | packets/s | payload kb/s | "
              "on the wire per listener, kb/s | LSD 0 %% loss | LSD 5 %% | LSD 10 %% |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const Setting& st : settings) {
    const Encoded e = encode(st, x, 5);
    std::size_t bytes = 0;
    for (const auto& p : e.packets) bytes += p.size();
    const double pps = 1000.0 / st.frame_ms;
    const double payload_kbps = 8.0 * static_cast<double>(bytes) / (static_cast<double>(e.packets.size()) / pps) / 1000;
    // RTP 12 + SRTP tag 10 + UDP 8 + IPv4 20 bytes a packet.
    const double wire_kbps = payload_kbps + 8.0 * 50 * pps / 1000;
    double lsd[3];
    for (int l = 0; l < 3; ++l) {
      double sum = 0;
      const int patterns = losses[l] > 0 ? kPatterns : 1;
      for (int p = 0; p < patterns; ++p) {
        sum += log_spectral_distance(x, decode(st, e, losses[l], 1000u * st.frame_ms + p, st.expect_loss_pct > 0),
                                     e.lookahead);
      }
      lsd[l] = sum / patterns;
    }
    std::printf("| %s | %.1f + %d ms | %.0f | %.0f | %.1f | %.1f | %.2f dB | %.2f dB | %.2f dB |\n", st.name,
                1000.0 * e.lookahead / kRate, st.frame_ms, 1e6 * e.encode_s / seconds, pps, payload_kbps, wire_kbps,
                lsd[0], lsd[1], lsd[2]);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "opus_modes: %s\n", e.what());
  return 1;
}
