// `fc25 denoise IN OUT`: the streaming engine over a file, the way a live stream would run it, with the latency
// removed so the output lines up with the input.
#include "app/denoise_command.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "app/audio_file.hpp"
#include "denoise/denoise.hpp"

namespace fc25::app {

namespace {

const char* kUsage = R"(usage: fc25 denoise IN OUT [options]

Removes background noise from an audio file (WAV, FLAC, OGG, ... anything libsndfile reads). Stereo is mixed to
mono; other sample rates are resampled to 48 kHz for the engine and back. The output has the input's length and
lines up with it.

  --model DIR            DeepFilterNet3 model directory (default: $FC25_MODEL_DIR, else ./models/DeepFilterNet3)
  --denoiser NAME        dfn3 (default) | classic | passthrough
  --atten-lim DB         limit the noise attenuation to DB decibels (default: no limit)
  --post-filter BETA     DeepFilterNet post-filter strength, e.g. 0.02 (default: off)
  --no-keep-rate         write 48 kHz instead of the input's rate
  --float                write 32-bit float WAV instead of 16-bit PCM
  --progress / --quiet   force the progress bar on / print nothing but errors
  --isa NAME             the engine's vector code: avx512 | avx2 | portable (default: the best this processor has)
  --precision P          the engine's weights: fp32 (default) | bf16 (faster; the output differs from fp32's by
                         40 dB or more below the audio on every test recording)

The model is the official DeepFilterNet3 ONNX release (DeepFilterNet3_onnx.tar.gz from the DeepFilterNet
project's GitHub releases; scripts/fetch-model.sh downloads it).
)";

float number(const std::string& flag, const std::string& v) {
  try {
    std::size_t used = 0;
    float f = std::stof(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return f;
  } catch (const std::exception&) {
    throw std::invalid_argument(flag + ": '" + v + "' is not a number");
  }
}

}  // namespace

int run_denoise_command(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> files;
  std::string model_dir, backend_name = "dfn3";
  denoise::Options options;
  bool keep_rate = true, float32 = false, quiet = false, progress = isatty(STDERR_FILENO);
  auto precision = denoise::Precision::fp32;
  try {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const auto& a = args[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
        return args[++i];
      };
      if (a == "--help" || a == "-h") { std::cout << kUsage; return 0; }
      else if (a == "--model") model_dir = value();
      else if (a == "--denoiser") backend_name = value();
      else if (a == "--atten-lim") options.atten_lim_db = number(a, value());
      else if (a == "--post-filter") options.post_filter_beta = number(a, value());
      else if (a == "--keep-rate") keep_rate = true;
      else if (a == "--no-keep-rate") keep_rate = false;
      else if (a == "--float") float32 = true;
      else if (a == "--quiet") quiet = true, progress = false;
      else if (a == "--progress") progress = true;
      else if (a == "--isa") denoise::use_kernel_path(value());
      else if (a == "--precision") precision = denoise::parse_precision(value());
      else if (a.rfind("--", 0) == 0) throw std::invalid_argument("unknown option '" + a + "'");
      else files.push_back(a);
    }
    if (files.size() != 2) throw std::invalid_argument("give an input and an output file");
    if (options.atten_lim_db < 0) throw std::invalid_argument("--atten-lim: give a positive number of dB");
    auto backend = denoise::parse_backend(backend_name);

    auto input = read_audio(files[0]);
    {
      // Refuse an output that cannot be written before spending the time to denoise.
      auto parent = std::filesystem::path(files[1]).parent_path();
      std::error_code ec;
      if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
        throw AudioError(files[1] + ": cannot be written (no directory " + parent.string() + ")");
      }
    }
    std::unique_ptr<denoise::Denoiser> denoiser;
    if (backend == denoise::Backend::dfn3) {
      if (model_dir.empty()) {
        const char* env = std::getenv("FC25_MODEL_DIR");
        model_dir = env && *env ? env : "models/DeepFilterNet3";
      }
      denoiser = denoise::make_dfn3(denoise::Model::load(model_dir, precision), options);
    } else if (backend == denoise::Backend::classic) {
      denoiser = denoise::make_classic(options);
    } else {
      denoiser = denoise::make_passthrough();
    }

    const auto started = std::chrono::steady_clock::now();
    auto x = resample(input.samples, input.rate, denoise::kSampleRate);
    const std::size_t n = x.size(), hop = denoise::kHopSize, latency = denoiser->latency_samples();
    x.resize(((n + latency + hop - 1) / hop) * hop, 0.0f);  // room to flush the latency
    std::vector<float> y(x.size());
    const double seconds = static_cast<double>(input.samples.size()) / input.rate;
    const bool bar = progress && !quiet && seconds > 10.0;
    int shown = -1;
    for (std::size_t i = 0; i < x.size(); i += hop) {
      denoiser->process(std::span<const float>(x).subspan(i, hop), std::span<float>(y).subspan(i, hop));
      if (bar) {
        int pct = static_cast<int>(100 * (i + hop) / x.size());
        if (pct != shown) {
          shown = pct;
          std::fprintf(stderr, "\r[%-40s] %3d%%", std::string(static_cast<std::size_t>(pct * 40 / 100), '#').c_str(), pct);
        }
      }
    }
    if (bar) std::fprintf(stderr, "\n");
    std::vector<float> aligned(y.begin() + static_cast<std::ptrdiff_t>(latency),
                               y.begin() + static_cast<std::ptrdiff_t>(latency + n));
    const int out_rate = keep_rate ? input.rate : denoise::kSampleRate;
    auto out = resample(aligned, denoise::kSampleRate, out_rate);
    if (keep_rate) out.resize(input.samples.size(), 0.0f);
    write_audio(files[1], out, out_rate, float32);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (!quiet) {
      auto engine = std::string(denoise::to_string(backend));
      if (backend == denoise::Backend::dfn3) engine += " (" + denoise::kernel_path() + " kernels, " + std::string(denoise::to_string(precision)) + " weights)";
      std::fprintf(stderr, "%s -> %s: %.2f s of audio, %s, %.2f s (real-time factor %.3f)\n", files[0].c_str(),
                   files[1].c_str(), seconds, engine.c_str(), took, seconds > 0 ? took / seconds : 0.0);
    }
    return 0;
  } catch (const denoise::ModelLoadError& e) {
    std::cerr << "fc25 denoise: " << e.what()
              << "\n  Get the official model (DeepFilterNet3_onnx.tar.gz from the DeepFilterNet GitHub releases, or "
                 "scripts/fetch-model.sh) and pass its directory with --model or FC25_MODEL_DIR.\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "fc25 denoise: " << e.what() << "\n";
    if (dynamic_cast<const std::invalid_argument*>(&e)) std::cerr << "(fc25 denoise --help for usage)\n";
    return 2;
  }
}

}  // namespace fc25::app
