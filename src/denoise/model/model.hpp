#pragma once
// The loaded DeepFilterNet3 model: its config and the network weights built from the three graphs, which were
// checked against the config and are not kept (the weights are all the engine reads; 8.7 MB rather than twice that).
#include "denoise/denoise.hpp"
#include "denoise/dsp/dsp.hpp"
#include "denoise/model/config.hpp"
#include "denoise/nn/weights.hpp"

namespace fc25::denoise::model {

// The most frames of lookahead (conv_lookahead) a model may ask for: each adds a hop (10 ms) of latency.
inline constexpr int kMaxLookahead = 8;

// The signal processing config.ini describes (sr, fft_size, hop_size, nb_erb, nb_df, min_nb_erb_freqs, norm_tau).
dsp::DspConfig dsp_config(const Dfn3Config& config);

class Dfn3Model final : public Model {
 public:
  Dfn3Model(Dfn3Config config, std::shared_ptr<const nn::Dfn3Weights> weights, Precision precision)
      : config(std::move(config)), dsp(dsp_config(this->config)), weights(std::move(weights)), held(precision) {}
  Dfn3Config config;
  dsp::DspConfig dsp;
  std::shared_ptr<const nn::Dfn3Weights> weights;
  Precision held;
  std::size_t weight_bytes() const override { return nn::weight_bytes(*weights); }
  Precision precision() const override { return held; }
};

}  // namespace fc25::denoise::model
