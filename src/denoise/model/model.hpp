#pragma once
// The loaded DeepFilterNet3 model: config and the three graphs, checked against each other.
#include "denoise/denoise.hpp"
#include "denoise/model/config.hpp"
#include "denoise/model/onnx_graph.hpp"
#include "denoise/nn/weights.hpp"

namespace fc25::denoise::model {

class Dfn3Model final : public Model {
 public:
  Dfn3Model(Dfn3Config config, Graph enc, Graph erb_dec, Graph df_dec)
      : config(std::move(config)), enc(std::move(enc)), erb_dec(std::move(erb_dec)), df_dec(std::move(df_dec)) {}
  Dfn3Config config;
  Graph enc, erb_dec, df_dec;
  std::shared_ptr<const nn::Dfn3Weights> weights;  // built from the graphs at load time
};

}  // namespace fc25::denoise::model
