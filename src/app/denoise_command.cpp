// `fc25 denoise`: the engine over files, each run as a live stream would hear it (the same output as hop-by-hop
// streaming) but block by block, with the latency removed so the output lines up with the input. One file uses
// two cores; several files, or directories of them, are spread over the cores, one file per thread, under one
// progress bar.
#include "app/denoise_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "app/audio_file.hpp"
#include "denoise/denoise.hpp"

namespace fc25::app {

namespace {

const char* kUsage = R"(usage: fc25 denoise IN OUT [options]
       fc25 denoise IN... --out-dir DIR [options]

Removes background noise from audio files (WAV, FLAC, OGG, ... anything libsndfile reads). Stereo is mixed to
mono; other sample rates are resampled to 48 kHz for the engine and back. Each output has its input's length and
lines up with it. With --out-dir, every IN (a file, or a directory: the audio files directly in it) is written to
DIR under its own name as .wav, several files at once, one per core.

  --model DIR            DeepFilterNet3 model directory (default: $FC25_MODEL_DIR, else ./models/DeepFilterNet3)
  --denoiser NAME        dfn3 (default) | classic | passthrough
  --atten-lim DB         limit the noise attenuation to DB decibels (default: no limit)
  --post-filter BETA     DeepFilterNet post-filter strength, e.g. 0.02 (default: off)
  --no-keep-rate         write 48 kHz instead of the input's rate
  --float                write 32-bit float WAV instead of 16-bit PCM
  --out-dir DIR          write each input to DIR/NAME.wav (several inputs, or directories of them)
  --jobs N               files denoised at once (default: one per core)
  --threads-per-file N   1 or 2 (default: 2 where the cores are at least twice the files at once, else 1)
  --progress / --quiet   force the progress bar on / print nothing but errors
  --isa NAME             the engine's vector code: avx512 | avx2 | portable (default: the best this processor has)
  --prefetch M           ask for a GRU's weights ahead in software: auto (default: off on AMD, on elsewhere) | on | off
  --bf16-dot M           with bf16, the GRUs' products for blocks of frames two rows per AVX512-BF16 vdpbf16ps:
                         auto (default: where the processor has it) | on | off; the audio is the same
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

int whole(const std::string& flag, const std::string& v, int lo, int hi) {
  try {
    std::size_t used = 0;
    const long n = std::stol(v, &used);
    if (used != v.size() || n < lo || n > hi) throw std::invalid_argument(v);
    return static_cast<int>(n);
  } catch (const std::exception&) {
    throw std::invalid_argument(flag + ": '" + v + "' is not a whole number from " + std::to_string(lo) + " to " +
                                std::to_string(hi));
  }
}

struct Job {
  std::filesystem::path in, out;
  double seconds = 0;
};

// What libsndfile reads, by extension: a directory's other files are left alone.
bool audio_extension(const std::filesystem::path& p) {
  auto ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* e : {".wav", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".au", ".caf", ".w64", ".mp3"}) {
    if (ext == e) return true;
  }
  return false;
}

std::vector<Job> jobs_for(const std::vector<std::string>& inputs, const std::filesystem::path& out_dir) {
  std::vector<Job> jobs;
  // A file that cannot be read is still a job: it fails alone, named, and the others go on.
  auto add = [&](const std::filesystem::path& in) {
    double seconds = 0;
    try {
      seconds = audio_seconds(in);
    } catch (const AudioError&) {
    }
    jobs.push_back({in, out_dir / in.filename().replace_extension(".wav"), seconds});
  };
  for (const auto& name : inputs) {
    std::error_code ec;
    if (std::filesystem::is_directory(name, ec)) {
      std::vector<std::filesystem::path> found;
      for (const auto& e : std::filesystem::directory_iterator(name)) {
        if (e.is_regular_file() && audio_extension(e.path())) found.push_back(e.path());
      }
      if (found.empty()) throw AudioError(name + ": a directory with no audio files in it");
      std::sort(found.begin(), found.end());
      for (const auto& p : found) add(p);
    } else {
      add(name);
    }
  }
  for (std::size_t i = 0; i < jobs.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (jobs[i].out == jobs[j].out) {
        throw std::invalid_argument(jobs[j].in.string() + " and " + jobs[i].in.string() + " would both be written to " +
                                    jobs[i].out.string());
      }
  return jobs;
}

struct Settings {
  denoise::Backend backend = denoise::Backend::dfn3;
  std::shared_ptr<const denoise::Model> model;
  denoise::Options options;
  bool keep_rate = true, float32 = false;
  bool two_threads = false;   // each file on two threads: where the cores outnumber the files at once two to one
};

// One progress bar for every file, by seconds of audio done.
class Progress {
 public:
  Progress(bool shown, double total) : shown_(shown), total_(total) {}
  void add(double seconds) {
    if (!shown_ || total_ <= 0) return;
    std::lock_guard lock(mu_);
    done_ += seconds;
    const int pct = static_cast<int>(100 * std::min(1.0, done_ / total_));
    if (pct == last_) return;
    last_ = pct;
    std::fprintf(stderr, "\r[%-40s] %3d%%", std::string(static_cast<std::size_t>(pct * 40 / 100), '#').c_str(), pct);
  }
  void finish() {
    if (shown_ && last_ >= 0) std::fprintf(stderr, "\n");
  }

 private:
  bool shown_;
  double total_, done_ = 0;
  int last_ = -1;
  std::mutex mu_;
};

// One file: read, resample to 48 kHz, denoise (block by block, on two threads where there are cores to spare),
// remove the latency, resample back, write.
void denoise_file(const Job& job, const Settings& s, Progress& progress) {
  auto input = read_audio(job.in);
  std::unique_ptr<denoise::Denoiser> denoiser;
  if (s.backend == denoise::Backend::dfn3) denoiser = denoise::make_dfn3(s.model, s.options);
  else if (s.backend == denoise::Backend::classic) denoiser = denoise::make_classic(s.options);
  else denoiser = denoise::make_passthrough();
  auto x = resample(input.samples, input.rate, denoise::kSampleRate);
  const std::size_t n = x.size(), hop = denoise::kHopSize, latency = denoiser->latency_samples();
  x.resize(((n + latency + hop - 1) / hop) * hop, 0.0f);  // room to flush the latency
  std::vector<float> y(x.size());
  std::size_t shown = 0;   // hops
  const double total_hops = static_cast<double>(x.size() / hop);
  denoiser->process_file(x, y, s.two_threads, [&](std::size_t hops) {
    progress.add(job.seconds * static_cast<double>(hops - shown) / total_hops);
    shown = hops;
  });
  std::vector<float> aligned(y.begin() + static_cast<std::ptrdiff_t>(latency),
                             y.begin() + static_cast<std::ptrdiff_t>(latency + n));
  const int out_rate = s.keep_rate ? input.rate : denoise::kSampleRate;
  auto out = resample(aligned, denoise::kSampleRate, out_rate);
  if (s.keep_rate) out.resize(input.samples.size(), 0.0f);
  write_audio(job.out, out, out_rate, s.float32);
}

}  // namespace

int run_denoise_command(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> files;
  std::string model_dir, backend_name = "dfn3", out_dir;
  Settings settings;
  bool quiet = false, progress = isatty(STDERR_FILENO);
  int jobs_at_once = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int threads_per_file = 0;   // 0: chosen from the cores
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
      else if (a == "--atten-lim") settings.options.atten_lim_db = number(a, value());
      else if (a == "--post-filter") settings.options.post_filter_beta = number(a, value());
      else if (a == "--keep-rate") settings.keep_rate = true;
      else if (a == "--no-keep-rate") settings.keep_rate = false;
      else if (a == "--float") settings.float32 = true;
      else if (a == "--out-dir") out_dir = value();
      else if (a == "--jobs") jobs_at_once = whole(a, value(), 1, 1024);
      else if (a == "--threads-per-file") threads_per_file = whole(a, value(), 1, 2);
      else if (a == "--quiet") quiet = true, progress = false;
      else if (a == "--progress") progress = true;
      else if (a == "--isa") denoise::use_kernel_path(value());
      else if (a == "--prefetch") denoise::use_prefetch(value());
      else if (a == "--bf16-dot") denoise::use_bf16_dot(value());
      else if (a == "--precision") precision = denoise::parse_precision(value());
      else if (a.rfind("--", 0) == 0) throw std::invalid_argument("unknown option '" + a + "'");
      else files.push_back(a);
    }
    if (out_dir.empty() && files.size() != 2) {
      throw std::invalid_argument("give an input and an output file, or inputs and --out-dir DIR");
    }
    if (!out_dir.empty() && files.empty()) throw std::invalid_argument("give at least one input with --out-dir");
    if (settings.options.atten_lim_db < 0) throw std::invalid_argument("--atten-lim: give a positive number of dB");
    settings.backend = denoise::parse_backend(backend_name);

    std::vector<Job> jobs;
    if (out_dir.empty()) {
      jobs.push_back({files[0], files[1], audio_seconds(files[0])});
    } else {
      std::error_code ec;
      if (!std::filesystem::is_directory(out_dir, ec)) throw AudioError(out_dir + ": no such directory (--out-dir)");
      jobs = jobs_for(files, out_dir);
    }
    // Refuse an output that cannot be written before spending the time to denoise.
    for (const auto& job : jobs) {
      auto parent = job.out.parent_path();
      std::error_code ec;
      if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
        throw AudioError(job.out.string() + ": cannot be written (no directory " + parent.string() + ")");
      }
    }
    if (settings.backend == denoise::Backend::dfn3) {
      if (model_dir.empty()) {
        const char* env = std::getenv("FC25_MODEL_DIR");
        model_dir = env && *env ? env : "models/DeepFilterNet3";
      }
      settings.model = denoise::Model::load(model_dir, precision);
    }

    double total = 0;
    for (const auto& job : jobs) total += job.seconds;
    const auto started = std::chrono::steady_clock::now();
    Progress bar(progress && !quiet && total > 10.0, total);
    const int threads = std::min<int>(jobs_at_once, static_cast<int>(jobs.size()));
    settings.two_threads = threads_per_file == 0
                               ? static_cast<int>(std::thread::hardware_concurrency()) >= 2 * threads
                               : threads_per_file == 2;
    std::atomic<std::size_t> next{0};
    std::mutex err_mu;
    std::vector<std::string> errors;
    auto worker = [&] {
      for (std::size_t i = next++; i < jobs.size(); i = next++) {
        try {
          denoise_file(jobs[i], settings, bar);
        } catch (const std::exception& e) {
          std::lock_guard lock(err_mu);
          errors.push_back(e.what());
        }
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
    bar.finish();
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (jobs.size() == 1 && !errors.empty()) throw AudioError(errors.front());
    for (const auto& e : errors) std::cerr << "fc25 denoise: " << e << "\n";
    if (!quiet) {
      auto engine = std::string(denoise::to_string(settings.backend));
      if (settings.backend == denoise::Backend::dfn3) {
        engine += " (" + denoise::kernel_path() + " kernels, prefetch " + denoise::prefetch_mode() + ", " +
                  std::string(denoise::to_string(precision)) + " weights" +
                  (precision == denoise::Precision::bf16 ? ", vdpbf16ps " + denoise::bf16_dot_mode() : "") + ")";
      }
      const std::string what = jobs.size() == 1
                                   ? jobs[0].in.string() + " -> " + jobs[0].out.string()
                                   : std::to_string(jobs.size() - errors.size()) + " of " + std::to_string(jobs.size()) +
                                         " files -> " + out_dir + " (" + std::to_string(threads) + " at once)";
      std::fprintf(stderr, "%s: %.2f s of audio, %s, %.2f s (real-time factor %.4f)\n", what.c_str(), total,
                   engine.c_str(), took, total > 0 ? took / total : 0.0);
    }
    return errors.empty() ? 0 : 1;
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
