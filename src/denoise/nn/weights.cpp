#include "denoise/nn/weights.hpp"

namespace fc25::denoise::nn {
namespace {

template <class T>
std::size_t bytes(const std::vector<T>& v) {
  return v.size() * sizeof(T);
}
std::size_t bytes(const Conv2d& c) { return bytes(c.w) + bytes(c.b); }
std::size_t bytes(const ConvTranspose1x3& c) { return bytes(c.w); }
std::size_t bytes(const TimeConv& c) { return bytes(c.w); }
std::size_t bytes(const GroupedLinear& l) { return bytes(l.w) + bytes(l.w_bf16); }
std::size_t bytes(const Gru& g) {
  return bytes(g.wi) + bytes(g.wi_bf16) + bytes(g.wr) + bytes(g.wr_bf16) + bytes(g.bw) + bytes(g.br);
}

template <class... Layers>
std::size_t sum(const Layers&... layers) {
  return (bytes(layers) + ...);
}

}  // namespace

std::size_t weight_bytes(const Dfn3Weights& w) {
  return sum(w.erb_conv0, w.erb_conv1_dw, w.erb_conv1_pw, w.erb_conv2_dw, w.erb_conv2_pw, w.erb_conv3_dw,
             w.erb_conv3_pw, w.df_conv0, w.df_conv1_dw, w.df_conv1_pw, w.df_fc_emb, w.enc_lin_in, w.enc_lin_out,
             w.enc_gru, w.lsnr_w, w.erb_lin_in, w.erb_lin_out, w.erb_gru[0], w.erb_gru[1], w.conv3p, w.convt3_dw,
             w.convt3_pw, w.conv2p, w.convt2_pw, w.conv1p, w.convt1_pw, w.conv0p, w.conv0_out, w.convt2_dw,
             w.convt1_dw, w.df_lin_in, w.df_skip, w.df_out, w.df_gru[0], w.df_gru[1], w.df_convp, w.df_convp_pw,
             w.df_fc_a_w);
}

}  // namespace fc25::denoise::nn
