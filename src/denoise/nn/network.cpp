#include "denoise/nn/network.hpp"

#include <algorithm>
#include <cmath>

namespace fc25::denoise::nn {

namespace {

using model::Graph;
using S = std::vector<std::int64_t>;

std::vector<float> data(const Graph& g, const std::string& node, std::size_t input, const S& shape) {
  return g.weight(node, input, shape).data;
}

Conv2d conv(const Graph& g, const std::string& node, int out, int in, int groups, int kt, int kf, int stride_f,
            int pad_f, bool bias) {
  Conv2d c;
  c.out_ch = out;
  c.in_ch = in;
  c.groups = groups;
  c.kt = kt;
  c.kf = kf;
  c.stride_f = stride_f;
  c.pad_f = pad_f;
  c.w = data(g, node, 1, {out, in / groups, kt, kf});
  if (bias) c.b = data(g, node, 2, {out});
  return c;
}

Conv2d pointwise(const Graph& g, const std::string& node, int out, int in) { return conv(g, node, out, in, 1, 1, 1, 1, 0, true); }
Conv2d depthwise(const Graph& g, const std::string& node, int stride) { return conv(g, node, kCh, kCh, kCh, 1, 3, stride, 1, false); }

GroupedLinear grouped(const Graph& g, const std::string& node, int groups, int in, int out) {
  GroupedLinear l;
  l.groups = groups;
  l.in = in;
  l.out = out;
  l.w = data(g, node, 1, {groups, in, out});
  return l;
}

Gru gru(const Graph& g, const std::string& node, int in) {
  Gru r;
  r.in = in;
  r.hidden = kHidden;
  // Stored transposed: [in][3H] and [H][3H].
  auto transpose = [](const std::vector<float>& m, int rows, int cols) {
    std::vector<float> t(m.size());
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) t[static_cast<std::size_t>(j) * rows + i] = m[static_cast<std::size_t>(i) * cols + j];
    return t;
  };
  r.w = transpose(data(g, node, 1, {1, 3 * kHidden, in}), 3 * kHidden, in);
  r.r = transpose(data(g, node, 2, {1, 3 * kHidden, kHidden}), 3 * kHidden, kHidden);
  auto b = data(g, node, 3, {1, 6 * kHidden});
  r.bw.assign(b.begin(), b.begin() + 3 * kHidden);
  r.br.assign(b.begin() + 3 * kHidden, b.end());
  return r;
}

float scalar(const Graph& g, const std::string& node, std::size_t input) {
  const auto& t = g.tensor(g.node(node).inputs[input]);
  if (t.data.size() != 1) {
    throw ModelLoadError(g.file.string() + ": input " + std::to_string(input) + " of " + node + " is not a scalar");
  }
  return t.data[0];
}

float dot(const float* a, const float* b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void relu_inplace(float* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] = relu(x[i]);
}

}  // namespace

Dfn3Weights build_weights(const model::Dfn3Model& m) {
  const auto& c = m.config;
  if (c.nb_erb != kErb || c.nb_df != kDf || c.conv_ch != kCh || c.emb_hidden_dim != kHidden ||
      c.df_hidden_dim != kHidden || c.df_order != kOrder) {
    throw ModelLoadError("config.ini describes a model of other sizes than DeepFilterNet3 (nb_erb 32, nb_df 96, "
                         "conv_ch 64, hidden 256, df_order 5)");
  }
  const auto& enc = m.enc;
  const auto& erb = m.erb_dec;
  const auto& df = m.df_dec;
  Dfn3Weights w;
  w.erb_conv0 = conv(enc, "/erb_conv0/1/Conv", kCh, 1, 1, 3, 3, 1, 1, true);
  w.erb_conv1_dw = depthwise(enc, "/erb_conv1/0/Conv", 2);
  w.erb_conv1_pw = pointwise(enc, "/erb_conv1/1/Conv", kCh, kCh);
  w.erb_conv2_dw = depthwise(enc, "/erb_conv2/Conv", 2);
  w.erb_conv2_pw = pointwise(enc, "/erb_conv2/Conv_1", kCh, kCh);
  w.erb_conv3_dw = depthwise(enc, "/erb_conv3/0/Conv", 1);
  w.erb_conv3_pw = pointwise(enc, "/erb_conv3/1/Conv", kCh, kCh);
  w.df_conv0 = conv(enc, "/df_conv0/1/Conv", kCh, 2, 2, 3, 3, 1, 1, false);
  w.df_conv0_pw = pointwise(enc, "/df_conv0/2/Conv", kCh, kCh);
  w.df_conv1_dw = depthwise(enc, "/df_conv1/Conv", 2);
  w.df_conv1_pw = pointwise(enc, "/df_conv1/Conv_1", kCh, kCh);
  w.df_fc_emb = grouped(enc, "/df_fc_emb/0/Einsum", 32, 96, 16);
  w.enc_lin_in = grouped(enc, "/emb_gru/linear_in/0/Einsum", 16, 32, 16);
  w.enc_gru = gru(enc, "/emb_gru/GRU", kHidden);
  w.enc_lin_out = grouped(enc, "/emb_gru/linear_out/0/Einsum", 16, 16, 32);
  w.lsnr_w = data(enc, "/lsnr_fc/0/MatMul", 1, {kEmb, 1});
  w.lsnr_b = scalar(enc, "/lsnr_fc/0/Add", 0);
  w.lsnr_scale = scalar(enc, "/Mul", 1);
  w.lsnr_offset = scalar(enc, "/Add", 1);

  w.erb_lin_in = grouped(erb, "/emb_gru/linear_in/Einsum", 16, 32, 16);
  w.erb_gru[0] = gru(erb, "/emb_gru/GRU", kHidden);
  w.erb_gru[1] = gru(erb, "/emb_gru/GRU_1", kHidden);
  w.erb_lin_out = grouped(erb, "/emb_gru/linear_out/Einsum", 16, 16, 32);
  w.conv3p = conv(erb, "/conv3p/0/Conv", kCh, kCh, kCh, 1, 1, 1, 0, true);
  w.convt3_dw = depthwise(erb, "/convt3/Conv", 1);
  w.convt3_pw = pointwise(erb, "/convt3/Conv_1", kCh, kCh);
  w.conv2p = conv(erb, "/conv2p/Conv", kCh, kCh, kCh, 1, 1, 1, 0, true);
  w.convt2_dw.ch = kCh;
  w.convt2_dw.w = data(erb, "/convt2/0/ConvTranspose", 1, {kCh, 1, 1, 3});
  w.convt2_pw = pointwise(erb, "/convt2/1/Conv", kCh, kCh);
  w.conv1p = conv(erb, "/conv1p/Conv", kCh, kCh, kCh, 1, 1, 1, 0, true);
  w.convt1_dw.ch = kCh;
  w.convt1_dw.w = data(erb, "/convt1/ConvTranspose", 1, {kCh, 1, 1, 3});
  w.convt1_pw = pointwise(erb, "/convt1/Conv", kCh, kCh);
  w.conv0p = conv(erb, "/conv0p/Conv", kCh, kCh, kCh, 1, 1, 1, 0, true);
  w.conv0_out = conv(erb, "/conv0_out/0/Conv", 1, kCh, 1, 1, 3, 1, 1, true);

  w.df_lin_in = grouped(df, "/df_gru/linear_in/linear_in.0/Einsum", 8, 64, 32);
  w.df_gru[0] = gru(df, "/df_gru/gru/GRU", kHidden);
  w.df_gru[1] = gru(df, "/df_gru/gru/GRU_1", kHidden);
  w.df_skip = grouped(df, "/df_skip/Einsum", 16, 32, 16);
  w.df_out = grouped(df, "/df_out/df_out.0/Einsum", 16, 16, 60);
  w.df_convp = conv(df, "/df_convp/df_convp.1/Conv", 2 * kOrder, kCh, 2, 5, 1, 1, 0, false);
  w.df_convp_pw = pointwise(df, "/df_convp/df_convp.2/Conv", 2 * kOrder, 2 * kOrder);
  w.df_fc_a_w = data(df, "/df_fc_a/df_fc_a.0/MatMul", 1, {kHidden, 1});
  w.df_fc_a_b = scalar(df, "/df_fc_a/df_fc_a.0/Add", 0);
  return w;
}

Dfn3Network::Dfn3Network(std::shared_ptr<const Dfn3Weights> weights) : w_(std::move(weights)) { reset(); }

void Dfn3Network::reset() {
  for (auto& f : erb_hist_) f.fill(0.0f);
  for (auto& f : spec_hist_) f.fill(0.0f);
  for (auto& f : c0_hist_) f.fill(0.0f);
  for (auto* h : {&h_enc_, &h_erb0_, &h_erb1_, &h_df0_, &h_df1_}) h->fill(0.0f);
  frames_ = 0;
}

void Dfn3Network::step(const float* feat_erb, const float* feat_spec, FrameOutputs& out) {
  const auto& w = *w_;
  // Time histories, oldest first; frames before the start are zeros (the graphs pad with zeros).
  std::rotate(erb_hist_.begin(), erb_hist_.begin() + 1, erb_hist_.end());
  std::copy(feat_erb, feat_erb + kErb, erb_hist_.back().begin());
  std::rotate(spec_hist_.begin(), spec_hist_.begin() + 1, spec_hist_.end());
  std::copy(feat_spec, feat_spec + 2 * kDf, spec_hist_.back().begin());
  ++frames_;

  float* t0 = t0_.data();
  float* s0 = s0_.data();
  float* s1 = s1_.data();
  float* v = v_.data();  // 3072 floats of scratch: [0, 2048) wide vectors, [2048, 3072) small ones

  // Encoder, ERB path.
  const float* erb_frames[3] = {erb_hist_[0].data(), erb_hist_[1].data(), erb_hist_[2].data()};
  w.erb_conv0.run(erb_frames, kErb, out.e0.data());
  relu_inplace(out.e0.data(), out.e0.size());
  const float* p[1];
  w.erb_conv1_dw.run((p[0] = out.e0.data(), p), kErb, t0);
  w.erb_conv1_pw.run((p[0] = t0, p), kErb / 2, out.e1.data());
  relu_inplace(out.e1.data(), out.e1.size());
  w.erb_conv2_dw.run((p[0] = out.e1.data(), p), kErb / 2, t0);
  w.erb_conv2_pw.run((p[0] = t0, p), kErb / 4, out.e2.data());
  relu_inplace(out.e2.data(), out.e2.size());
  w.erb_conv3_dw.run((p[0] = out.e2.data(), p), kErb / 4, t0);
  w.erb_conv3_pw.run((p[0] = t0, p), kErb / 4, out.e3.data());
  relu_inplace(out.e3.data(), out.e3.size());

  // Encoder, complex (DF) path.
  const float* spec_frames[3] = {spec_hist_[0].data(), spec_hist_[1].data(), spec_hist_[2].data()};
  w.df_conv0.run(spec_frames, kDf, s0);
  w.df_conv0_pw.run((p[0] = s0, p), kDf, out.c0.data());
  relu_inplace(out.c0.data(), out.c0.size());
  w.df_conv1_dw.run((p[0] = out.c0.data(), p), kDf, s0);
  w.df_conv1_pw.run((p[0] = s0, p), kDf / 2, s1);
  relu_inplace(s1, kCh * kDf / 2);
  // Flatten as [freq][channel], then the grouped linear to the embedding size.
  for (int c = 0; c < kCh; ++c)
    for (int f = 0; f < kDf / 2; ++f) s0[f * kCh + c] = s1[c * (kDf / 2) + f];
  float* emb_df = v;
  w.df_fc_emb.run(s0, emb_df);
  for (int i = 0; i < kEmb; ++i) emb_df[i] = relu(emb_df[i]) + out.e3[(i % kCh) * (kErb / 4) + i / kCh];

  // Embedding GRU.
  float* x256 = v + kEmb;
  float* scratch = v + 2048;
  w.enc_lin_in.run(emb_df, x256);
  relu_inplace(x256, kHidden);
  w.enc_gru.step(x256, h_enc_.data(), scratch);
  w.enc_lin_out.run(h_enc_.data(), out.emb.data());
  relu_inplace(out.emb.data(), kEmb);
  out.lsnr = sigmoid(dot(out.emb.data(), w.lsnr_w.data(), kEmb) + w.lsnr_b) * w.lsnr_scale + w.lsnr_offset;

  // ERB decoder.
  w.erb_lin_in.run(out.emb.data(), x256);
  relu_inplace(x256, kHidden);
  w.erb_gru[0].step(x256, h_erb0_.data(), scratch);
  w.erb_gru[1].step(h_erb0_.data(), h_erb1_.data(), scratch);
  float* e512 = v;
  w.erb_lin_out.run(h_erb1_.data(), e512);
  relu_inplace(e512, kEmb);
  float* a = t0;              // [64][8]
  float* y = t1_.data();
  w.conv3p.run((p[0] = out.e3.data(), p), kErb / 4, a);
  for (int c = 0; c < kCh; ++c)
    for (int f = 0; f < kErb / 4; ++f) a[c * 8 + f] = relu(a[c * 8 + f]) + e512[f * kCh + c];
  w.convt3_dw.run((p[0] = a, p), kErb / 4, s0);
  w.convt3_pw.run((p[0] = s0, p), kErb / 4, y);
  relu_inplace(y, kCh * 8);
  w.conv2p.run((p[0] = out.e2.data(), p), kErb / 4, a);
  for (int i = 0; i < kCh * 8; ++i) a[i] = relu(a[i]) + y[i];
  w.convt2_dw.run(a, kErb / 4, s0);
  w.convt2_pw.run((p[0] = s0, p), kErb / 2, y);
  relu_inplace(y, kCh * 16);
  w.conv1p.run((p[0] = out.e1.data(), p), kErb / 2, a);
  for (int i = 0; i < kCh * 16; ++i) a[i] = relu(a[i]) + y[i];
  w.convt1_dw.run(a, kErb / 2, s0);
  w.convt1_pw.run((p[0] = s0, p), kErb, y);
  relu_inplace(y, kCh * kErb);
  w.conv0p.run((p[0] = out.e0.data(), p), kErb, a);
  for (int i = 0; i < kCh * kErb; ++i) a[i] = relu(a[i]) + y[i];
  w.conv0_out.run((p[0] = a, p), kErb, out.m.data());
  for (auto& g : out.m) g = sigmoid(g);

  // DF decoder.
  w.df_lin_in.run(out.emb.data(), x256);
  relu_inplace(x256, kHidden);
  w.df_gru[0].step(x256, h_df0_.data(), scratch);
  w.df_gru[1].step(h_df0_.data(), h_df1_.data(), scratch);
  float* cdf = v;  // [256]
  w.df_skip.run(out.emb.data(), cdf);
  for (int i = 0; i < kHidden; ++i) cdf[i] += h_df1_[i];
  out.alpha = sigmoid(dot(cdf, w.df_fc_a_w.data(), kHidden) + w.df_fc_a_b);
  float* o = v + kEmb;  // [960]
  w.df_out.run(cdf, o);
  std::rotate(c0_hist_.begin(), c0_hist_.begin() + 1, c0_hist_.end());
  std::copy(out.c0.begin(), out.c0.end(), c0_hist_.back().begin());
  const float* c0_frames[5] = {c0_hist_[0].data(), c0_hist_[1].data(), c0_hist_[2].data(), c0_hist_[3].data(),
                               c0_hist_[4].data()};
  float* cp = p0_.data();  // [10][96]
  w.df_convp.run(c0_frames, kDf, s0);
  w.df_convp_pw.run((p[0] = s0, p), kDf, cp);
  for (int bin = 0; bin < kDf; ++bin)
    for (int k = 0; k < 2 * kOrder; ++k)
      out.coefs[bin * 2 * kOrder + k] = std::tanh(o[bin * 2 * kOrder + k]) + relu(cp[k * kDf + bin]);
}

}  // namespace fc25::denoise::nn
