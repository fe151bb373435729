#pragma once
// The weights of DeepFilterNet3's networks, read once from the model and shared read-only by every stream.
#include <array>
#include <cstddef>
#include <vector>

#include "denoise/nn/layers.hpp"

namespace fc25::denoise::nn {

// Sizes of DeepFilterNet3 (Model::load refuses a config.ini that names others).
inline constexpr int kErb = 32, kDf = 96, kCh = 64, kEmb = 512, kHidden = 256, kOrder = 5;

struct Dfn3Weights {
  // encoder
  Conv2d erb_conv0, erb_conv1_dw, erb_conv1_pw, erb_conv2_dw, erb_conv2_pw, erb_conv3_dw, erb_conv3_pw;
  Conv2d df_conv0;   // the grouped 3x3 convolution and its pointwise one, as one
  Conv2d df_conv1_dw, df_conv1_pw;
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
  TimeConv df_convp;
  Conv2d df_convp_pw;
  std::vector<float> df_fc_a_w;  // [256]
  float df_fc_a_b = 0;
};

// Bytes of weights the networks hold (every layer's weights and biases): what a hop streams from memory or cache
// when none of the GRUs' inputs is zero (one stream skips the input rows of those that are: gru_rows_read()).
std::size_t weight_bytes(const Dfn3Weights& w);

}  // namespace fc25::denoise::nn
