#pragma once
// DeepFilterNet3's three networks (encoder, ERB decoder, DF decoder) run one frame at a time: the convolutions
// over time read the frames kept in the state, and the GRUs carry their hidden state, so feeding frames one by one
// gives what the offline graphs give for the whole sequence.
#include <array>
#include <memory>
#include <vector>

#include "denoise/model/model.hpp"
#include "denoise/nn/layers.hpp"

namespace fc25::denoise::nn {

// Sizes of DeepFilterNet3 (checked against config.ini when the weights are built).
inline constexpr int kErb = 32, kDf = 96, kCh = 64, kEmb = 512, kHidden = 256, kOrder = 5;

struct Dfn3Weights {
  // encoder
  Conv2d erb_conv0, erb_conv1_dw, erb_conv1_pw, erb_conv2_dw, erb_conv2_pw, erb_conv3_dw, erb_conv3_pw;
  Conv2d df_conv0, df_conv0_pw, df_conv1_dw, df_conv1_pw;
  GroupedLinear df_fc_emb, enc_lin_in, enc_lin_out;
  Gru enc_gru;
  std::vector<float> lsnr_w;  // [512]
  float lsnr_b = 0, lsnr_scale = 0, lsnr_offset = 0;
  // ERB decoder
  GroupedLinear erb_lin_in, erb_lin_out;
  std::array<Gru, 2> erb_gru;
  Conv2d conv3p, convt3_dw, convt3_pw, conv2p, convt2_pw, conv1p, convt1_pw, conv0p, conv0_out;
  ConvTranspose1x3 convt2_dw, convt1_dw;
  // DF decoder
  GroupedLinear df_lin_in, df_skip, df_out;
  std::array<Gru, 2> df_gru;
  Conv2d df_convp, df_convp_pw;
  std::vector<float> df_fc_a_w;  // [256]
  float df_fc_a_b = 0;
};

// Reads every layer's weights from the loaded graphs; throws ModelLoadError naming a missing or misshapen tensor.
Dfn3Weights build_weights(const model::Dfn3Model& model);

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
  void reset();

 private:
  std::shared_ptr<const Dfn3Weights> w_;
  // histories, newest last
  std::array<std::array<float, kErb>, 3> erb_hist_{};
  std::array<std::array<float, 2 * kDf>, 3> spec_hist_{};
  std::array<std::array<float, kCh * kDf>, 5> c0_hist_{};
  int frames_ = 0;
  std::array<float, kHidden> h_enc_{}, h_erb0_{}, h_erb1_{}, h_df0_{}, h_df1_{};
  // scratch
  std::array<float, kCh * kErb> t0_{}, t1_{};
  std::array<float, kCh * kDf> s0_{}, s1_{};
  std::array<float, 4096> v_{};
  std::array<float, kDf * kOrder * 2> p0_{};
};

}  // namespace fc25::denoise::nn
