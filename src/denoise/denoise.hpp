#pragma once
// fc25 denoise engine: streaming speech enhancement at 48 kHz in 480-sample (10 ms) hops.
// No I/O, no server, no GStreamer: a Model (weights, loaded once, shared read-only by every stream) and a Denoiser
// per stream. process() never allocates, locks or logs.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fc25::denoise {

inline constexpr int kSampleRate = 48000;
inline constexpr std::size_t kHopSize = 480;

// Per-stream options. Defaults are those of DeepFilterNet's `deep-filter` command line.
struct Options {
  float atten_lim_db = 100.0f;      // maximum attenuation in dB; 100 = unlimited
  float post_filter_beta = 0.0f;    // DeepFilterNet post-filter strength; 0 = off
  float min_db_thresh = -15.0f;     // local SNR below this: frame is noise only, output silenced
  float max_db_erb_thresh = 35.0f;  // local SNR above this: the ERB stage is skipped
  float max_db_df_thresh = 35.0f;   // local SNR above this: the deep-filtering stage is skipped
};

// A model directory that cannot be used: the message names the file and what was expected.
class ModelLoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How the network's weights are held. fp32 as published; bf16 rounds the GRUs' and the grouped linears' weights
// (8.3 of the 8.5 MB) to bfloat16, so a hop reads 4.3 MB instead of 8.5, with the arithmetic still in float. Its
// output differs from fp32's by 39 dB or more below the audio on every test recording (docs/quality.md).
enum class Precision { fp32, bf16 };
Precision parse_precision(std::string_view name);  // throws std::invalid_argument naming the value
std::string_view to_string(Precision precision);

// DeepFilterNet3 weights read from the official export (enc.onnx, erb_dec.onnx, df_dec.onnx, config.ini).
class Model {
 public:
  // Throws ModelLoadError.
  static std::shared_ptr<const Model> load(const std::filesystem::path& dir, Precision precision = Precision::fp32);
  virtual ~Model() = default;
  // Bytes of network weights one hop reads (the speed limit of a single stream is reading them once per hop).
  virtual std::size_t weight_bytes() const = 0;
  virtual Precision precision() const = 0;
};

enum class Backend { dfn3, classic, passthrough };
Backend parse_backend(std::string_view name);  // throws std::invalid_argument naming the value
std::string_view to_string(Backend backend);

// One stream's denoiser.
class Denoiser {
 public:
  virtual ~Denoiser() = default;
  // Samples of delay between an input sample and the same sample in the output.
  virtual std::size_t latency_samples() const = 0;
  // Takes exactly kHopSize input samples (float, nominally [-1, 1]) and writes kHopSize output samples.
  // Returns the local SNR estimate of this hop in dB where the backend has one, else 0.
  virtual float process(std::span<const float> in, std::span<float> out) = 0;
  // A recording, or a long stretch of one, at once: in.size() == out.size(), a multiple of kHopSize. The same output
  // as process() hop by hop (dfn3: bit for bit), faster where the backend can run layer by layer (dfn3: 32 hops at a
  // time, each layer's weights read once for them). May allocate: for files, not for real-time threads.
  virtual void process_block(std::span<const float> in, std::span<float> out);
  // A whole recording as process_block, on two threads where `two_threads` and the backend can use them (dfn3: the
  // encoder and ERB decoder of one block of hops while the deep-filter decoder, filtering and synthesis finish the
  // block before). The same output. `progress`, when given, hears the hops done after each block.
  virtual void process_file(std::span<const float> in, std::span<float> out, bool two_threads,
                            const std::function<void(std::size_t hops_done)>& progress);

 protected:
  // Throws std::invalid_argument unless in and out are the same whole number of hops.
  static void require_whole_hops(std::span<const float> in, std::span<float> out);

 public:
  // Forgets all history, as if newly made.
  virtual void reset() = 0;

  // Changes Options::atten_lim_db from the next hop on (0: the input passes unchanged, delayed; 100 or more: no
  // limit). Between hops, from the thread that calls process(). Throws std::invalid_argument for a negative value
  // or NaN.
  virtual void set_atten_lim_db(float db) = 0;

 protected:
  static void check_atten_lim_db(float db);
};

// Advances several streams by one hop together (in[k], out[k]: kHopSize samples each). dfn3 streams sharing a
// model run their networks as one batch, reading each weight once per hop for all of them; others run one by one.
// The result equals calling process() on each stream. Local SNRs go to lsnr[k] when given.
void process_batch(std::span<Denoiser* const> streams, std::span<const float* const> in,
                   std::span<float* const> out, std::span<float> lsnr = {});

// The vector code the dfn3 engine's kernels run: "avx512" (AVX-512 F/BW/DQ/VL: the matrix products 16 lanes wide,
// the same results as avx2 bit for bit), "avx2" (AVX2 and FMA) or "portable" (any x86-64). The best this processor
// has unless another is chosen; choose before streams run.
std::string kernel_path();
std::vector<std::string> kernel_paths();  // what this processor can run, portable first
// Throws std::invalid_argument naming the paths this processor has when `name` is not one of them.
void use_kernel_path(std::string_view name);
// Whether those kernels ask for a GRU's next weights in software ("on") or leave it to the processor's own
// prefetchers ("off"). "auto" is this processor's default: off on AMD, on elsewhere (docs/benchmarks/denoise.md).
// The audio is the same either way. Throws std::invalid_argument for anything but auto, on and off.
std::string prefetch_mode();
void use_prefetch(std::string_view mode);
// Whether bfloat16 weights' GRU products (Precision::bf16) for a batch of streams (a file's block of frames
// included) run two rows per AVX512-BF16 vdpbf16ps ("on") or widen each weight to float ("off"). "auto" is on
// where the processor has AVX512-BF16. The audio is the same either way.
// Throws std::invalid_argument for anything but auto, on and off, and for on where the processor lacks it.
std::string bf16_dot_mode();
void use_bf16_dot(std::string_view mode);

std::unique_ptr<Denoiser> make_dfn3(std::shared_ptr<const Model> model, const Options& options = {});
std::unique_ptr<Denoiser> make_classic(const Options& options = {});
std::unique_ptr<Denoiser> make_passthrough();

}  // namespace fc25::denoise
