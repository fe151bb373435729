#pragma once
// DeepFilterNet3's three networks (encoder, ERB decoder, DF decoder) run one frame at a time: the convolutions
// over time read the frames kept in the state, and the GRUs carry their hidden state, so feeding frames one by one
// gives what the offline graphs give for the whole sequence.
#include <array>
#include <memory>
#include <vector>

#include "denoise/denoise.hpp"
#include "denoise/model/onnx_graph.hpp"
#include "denoise/nn/weights.hpp"

namespace fc25::denoise::nn {



// Reads every layer's weights from the three graphs, the GRUs' in bfloat16 for Precision::bf16; throws
// ModelLoadError naming a missing or misshapen tensor.
Dfn3Weights build_weights(const model::Graph& enc, const model::Graph& erb_dec, const model::Graph& df_dec,
                          Precision precision = Precision::fp32);

// What one frame produces, in the ONNX outputs' per-frame layouts.
struct FrameOutputs {
  std::array<float, kCh * kErb> e0;
  std::array<float, kCh * kErb / 2> e1;
  std::array<float, kCh * kErb / 4> e2, e3;
  std::array<float, kEmb> emb;
  std::array<float, kCh * kDf> c0;
  float lsnr = 0;
  std::array<float, kErb> m;                 // ERB gains
  std::array<float, kDf * kOrder * 2> coefs;  // [bin][order * 2]
  float alpha = 0;
};

// Per-stream state of the networks: frame histories for the time kernels and the GRUs' hidden states.
class Dfn3Network {
 public:
  explicit Dfn3Network(std::shared_ptr<const Dfn3Weights> weights);
  // feat_erb: [32]; feat_spec: [2][96] (real parts, then imaginary parts).
  void step(const float* feat_erb, const float* feat_spec, FrameOutputs& out);
  // Advances several networks (sharing one set of weights) by one frame together: every weight row of the GRUs
  // and grouped linears is read once for all of them. Results equal step() on each. At most kMaxBatch.
  static void step_batch(Dfn3Network* const* nets, const float* const* feat_erb, const float* const* feat_spec,
                         FrameOutputs* const* outs, int n);
  static constexpr int kMaxBatch = 256;
  void reset();

 private:
  std::shared_ptr<const Dfn3Weights> w_;
  // histories, newest last
  std::array<std::array<float, kErb>, 3> erb_hist_{};
  std::array<std::array<float, 2 * kDf>, 3> spec_hist_{};
  // The (5, 1) time convolution of the DF path keeps partial sums for the next five outputs instead of five frames
  // of c0 (19 KB instead of 123 KB per stream).
  std::array<std::array<float, 2 * kOrder * kDf>, 5> convp_acc_{};
  int convp_slot_ = 0;
  int frames_ = 0;
  std::array<float, kHidden> h_enc_{}, h_erb0_{}, h_erb1_{}, h_df0_{}, h_df1_{};
  // scratch
  std::array<float, kCh * kErb> t0_{}, t1_{};
  std::array<float, kCh * kDf> s0_{};
  std::array<float, kCh * kDf / 2> s1_{};
  std::array<float, 4096> v_{};
  std::array<float, kDf * kOrder * 2> p0_{};
};

}  // namespace fc25::denoise::nn
