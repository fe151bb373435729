// The classic backend: WebRTC's noise suppressor (statistical, no model), used when no DeepFilterNet3 model is
// installed. It works natively on 10 ms frames at 48 kHz, our hop, in place: no added latency.
#include <memory>
#include <stdexcept>

#include <webrtc/modules/audio_processing/include/audio_processing.h>

#include "denoise/denoise.hpp"

namespace fc25::denoise {
namespace {

class ClassicDenoiser final : public Denoiser {
 public:
  explicit ClassicDenoiser(const Options& options) : config_(kSampleRate, 1, false) {
    set_atten_lim_db(options.atten_lim_db);
    reset();
  }

  std::size_t latency_samples() const override { return 0; }

  void reset() override {
    apm_.reset(webrtc::AudioProcessing::Create());
    if (!apm_) throw std::runtime_error("WebRTC audio processing could not be created");
    apm_->noise_suppression()->set_level(level_);
    apm_->noise_suppression()->Enable(true);
    apm_->high_pass_filter()->Enable(false);
  }

  // The suppressor has four strengths (about 6, 10, 15 and 20 dB): the strongest within the limit.
  void set_atten_lim_db(float db) override {
    check_atten_lim_db(db);
    bypass_ = db < 1.0f;
    level_ = db <= 8.0f    ? webrtc::NoiseSuppression::kLow
             : db <= 12.0f ? webrtc::NoiseSuppression::kModerate
             : db <= 18.0f ? webrtc::NoiseSuppression::kHigh
                           : webrtc::NoiseSuppression::kVeryHigh;
    if (apm_) apm_->noise_suppression()->set_level(level_);
  }

  float process(std::span<const float> in, std::span<float> out) override {
    std::copy(in.begin(), in.end(), out.begin());
    float* channels[1] = {out.data()};
    apm_->ProcessStream(channels, config_, config_, channels);  // its state follows the input even when bypassed
    if (bypass_) std::copy(in.begin(), in.end(), out.begin());
    return 0.0f;
  }

 private:
  webrtc::NoiseSuppression::Level level_ = webrtc::NoiseSuppression::kVeryHigh;
  bool bypass_ = false;
  webrtc::StreamConfig config_;
  std::unique_ptr<webrtc::AudioProcessing> apm_;
};

class Passthrough final : public Denoiser {
 public:
  std::size_t latency_samples() const override { return 0; }
  void reset() override {}
  void set_atten_lim_db(float db) override { check_atten_lim_db(db); }
  float process(std::span<const float> in, std::span<float> out) override {
    std::copy(in.begin(), in.end(), out.begin());
    return 0.0f;
  }
};

}  // namespace

std::unique_ptr<Denoiser> make_classic(const Options& options) { return std::make_unique<ClassicDenoiser>(options); }
std::unique_ptr<Denoiser> make_passthrough() { return std::make_unique<Passthrough>(); }

}  // namespace fc25::denoise
