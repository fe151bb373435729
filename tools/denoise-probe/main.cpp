// fc25-denoise-probe: runs parts of the denoise engine on files, for parity checks against the ONNX Runtime
// reference runner (tools/reference).
//   fc25-denoise-probe features --model DIR IN.wav OUTDIR   the engine's features (feat_erb.npy, feat_spec.npy)
//   fc25-denoise-probe stages --model DIR --in DIR --out DIR every network output, frame by frame, from features
#include <iostream>
#include <map>

#include <sndfile.h>

#include "denoise/dsp/dsp.hpp"
#include "denoise/model/model.hpp"
#include "denoise/nn/network.hpp"
#include "npy.hpp"

namespace fs = std::filesystem;
using namespace fc25::denoise;
using fc25::probe::Array;

namespace {

std::vector<float> read_mono_48k(const fs::path& file) {
  SF_INFO info{};
  SNDFILE* f = sf_open(file.c_str(), SFM_READ, &info);
  if (!f) throw std::runtime_error(file.string() + ": " + sf_strerror(nullptr));
  if (info.samplerate != 48000) throw std::runtime_error(file.string() + ": sample rate " + std::to_string(info.samplerate) + ", expected 48000");
  std::vector<float> interleaved(static_cast<std::size_t>(info.frames) * info.channels);
  sf_readf_float(f, interleaved.data(), info.frames);
  sf_close(f);
  std::vector<float> mono(info.frames);
  for (sf_count_t i = 0; i < info.frames; ++i) {
    float s = 0;
    for (int c = 0; c < info.channels; ++c) s += interleaved[i * info.channels + c];
    mono[i] = s / info.channels;
  }
  return mono;
}

int features(const fs::path& wav, const fs::path& out) {
  auto x = read_mono_48k(wav);
  dsp::DspConfig cfg;
  dsp::Stft stft(cfg);
  dsp::Features feat(cfg);
  const std::int64_t T = static_cast<std::int64_t>(x.size() / kHopSize);
  Array erb{{1, 1, T, 32}, std::vector<float>(T * 32)};
  Array spec{{1, 2, T, 96}, std::vector<float>(2 * T * 96)};
  std::vector<dsp::cf32> s(cfg.freq_size()), c(cfg.nb_df);
  for (std::int64_t t = 0; t < T; ++t) {
    stft.analysis(std::span<const float>(x).subspan(t * kHopSize, kHopSize), s);
    feat.erb(s, std::span(erb.data).subspan(t * 32, 32));
    feat.complex(s, c);
    for (int f = 0; f < 96; ++f) {
      spec.data[t * 96 + f] = c[f].real();
      spec.data[T * 96 + t * 96 + f] = c[f].imag();
    }
  }
  fs::create_directories(out);
  fc25::probe::write_npy(out / "feat_erb.npy", erb);
  fc25::probe::write_npy(out / "feat_spec.npy", spec);
  return 0;
}

int stages(const fs::path& model_dir, const fs::path& in, const fs::path& out) {
  auto model = std::dynamic_pointer_cast<const model::Dfn3Model>(Model::load(model_dir));
  nn::Dfn3Network net(model->weights);
  auto erb = fc25::probe::read_npy(in / "feat_erb.npy");
  auto spec = fc25::probe::read_npy(in / "feat_spec.npy");
  const std::int64_t T = erb.shape.at(2);
  // ONNX output layouts: [1, C, T, F] for feature maps, [1, T, N] for vectors.
  std::map<std::string, Array> o;
  auto map4 = [&](const char* name, std::int64_t c, std::int64_t f) { o[name] = {{1, c, T, f}, std::vector<float>(c * T * f)}; };
  map4("e0", 64, 32); map4("e1", 64, 16); map4("e2", 64, 8); map4("e3", 64, 8); map4("c0", 64, 96); map4("m", 1, 32);
  o["emb"] = {{1, T, 512}, std::vector<float>(T * 512)};
  o["lsnr"] = {{1, T, 1}, std::vector<float>(T)};
  o["coefs"] = {{1, T, 96, 10}, std::vector<float>(T * 960)};
  o["alpha"] = {{1, T, 1}, std::vector<float>(T)};
  nn::FrameOutputs f;
  std::vector<float> fs_(192);
  for (std::int64_t t = 0; t < T; ++t) {
    for (int i = 0; i < 96; ++i) {
      fs_[i] = spec.data[t * 96 + i];
      fs_[96 + i] = spec.data[T * 96 + t * 96 + i];
    }
    net.step(&erb.data[t * 32], fs_.data(), f);
    auto put4 = [&](const char* name, const float* src, std::int64_t c, std::int64_t fr) {
      for (std::int64_t ci = 0; ci < c; ++ci)
        for (std::int64_t fi = 0; fi < fr; ++fi) o[name].data[(ci * T + t) * fr + fi] = src[ci * fr + fi];
    };
    put4("e0", f.e0.data(), 64, 32); put4("e1", f.e1.data(), 64, 16); put4("e2", f.e2.data(), 64, 8);
    put4("e3", f.e3.data(), 64, 8); put4("c0", f.c0.data(), 64, 96); put4("m", f.m.data(), 1, 32);
    std::copy(f.emb.begin(), f.emb.end(), o["emb"].data.begin() + t * 512);
    o["lsnr"].data[t] = f.lsnr;
    o["alpha"].data[t] = f.alpha;
    std::copy(f.coefs.begin(), f.coefs.end(), o["coefs"].data.begin() + t * 960);
  }
  fs::create_directories(out);
  for (auto& [name, a] : o) fc25::probe::write_npy(out / (name + ".npy"), a);
  return 0;
}

// The whole streaming pipeline over a file, hop by hop; the output is aligned with the input (latency removed)
// and as long as it, written as float32 WAV.
int wav(const fs::path& model_dir, const fs::path& in, const fs::path& out, float atten_lim, float pf_beta) {
  auto x = read_mono_48k(in);
  Options o;
  o.atten_lim_db = atten_lim;
  o.post_filter_beta = pf_beta;
  auto d = make_dfn3(Model::load(model_dir), o);
  const std::size_t lat = d->latency_samples();
  const std::size_t n = x.size();
  std::vector<float> padded(x);
  padded.resize(((n + lat + kHopSize - 1) / kHopSize) * kHopSize, 0.0f);
  std::vector<float> y(padded.size());
  for (std::size_t i = 0; i < padded.size(); i += kHopSize) {
    d->process(std::span<const float>(padded).subspan(i, kHopSize), std::span<float>(y).subspan(i, kHopSize));
  }
  SF_INFO info{};
  info.samplerate = 48000;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE* f = sf_open(out.c_str(), SFM_WRITE, &info);
  if (!f) throw std::runtime_error(out.string() + ": " + sf_strerror(nullptr));
  sf_writef_float(f, y.data() + lat, static_cast<sf_count_t>(n));
  sf_close(f);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  try {
    std::map<std::string, std::string> opt;
    std::vector<std::string> pos;
    for (std::size_t i = 1; i < a.size(); ++i) {
      if (a[i].rfind("--", 0) == 0 && i + 1 < a.size()) opt[a[i]] = a[i + 1], ++i;
      else pos.push_back(a[i]);
    }
    if (!a.empty() && a[0] == "features" && pos.size() == 2) return features(pos[0], pos[1]);
    if (!a.empty() && a[0] == "stages" && opt.count("--model") && opt.count("--in") && opt.count("--out"))
      return stages(opt["--model"], opt["--in"], opt["--out"]);
    if (!a.empty() && a[0] == "wav" && opt.count("--model") && pos.size() == 2)
      return wav(opt["--model"], pos[0], pos[1], opt.count("--atten-lim") ? std::stof(opt["--atten-lim"]) : 100.0f,
                 opt.count("--post-filter") ? std::stof(opt["--post-filter"]) : 0.0f);
    std::cerr << "usage: fc25-denoise-probe features IN.wav OUTDIR\n"
                 "       fc25-denoise-probe wav --model DIR IN.wav OUT.wav [--atten-lim DB] [--post-filter BETA]\n"
                 "       fc25-denoise-probe stages --model DIR --in FEATDIR --out OUTDIR\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "fc25-denoise-probe: " << e.what() << "\n";
    return 1;
  }
}
