#include "denoise/nn/network.hpp"

#include <algorithm>
#include <cmath>

#include "denoise/denoise.hpp"

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

static_assert(3 * kHidden % Gru::kPanel == 0, "GRU gates fill whole panels");
static_assert(kHidden <= Gru::kMaxInputs, "a GRU's inputs fit its list of non-zero inputs");
static_assert(kEmb == kErb / 4 * kCh, "the embedding is e3 flattened");

Gru gru(const Graph& g, const std::string& node, int in) {
  Gru r;
  r.in = in;
  r.hidden = kHidden;
  // ONNX's [3H][H] becomes panels of Gru::kPanel gates, each [H][kPanel]: a step streams through memory.
  auto pack = [](const std::vector<float>& m, int gates, int inputs) {
    std::vector<float> t(m.size());
    for (int j = 0; j < gates; ++j)
      for (int i = 0; i < inputs; ++i) {
        const std::size_t panel = static_cast<std::size_t>(j / Gru::kPanel);
        t[(panel * inputs + i) * Gru::kPanel + j % Gru::kPanel] = m[static_cast<std::size_t>(j) * inputs + i];
      }
    return t;
  };
  const auto input = data(g, node, 1, {1, 3 * kHidden, in});
  r.wi.resize(input.size());
  for (int j = 0; j < 3 * kHidden; ++j)
    for (int i = 0; i < in; ++i)
      r.wi[static_cast<std::size_t>(i) * 3 * kHidden + j] = input[static_cast<std::size_t>(j) * in + i];
  r.wr = pack(data(g, node, 2, {1, 3 * kHidden, kHidden}), 3 * kHidden, kHidden);
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

Dfn3Weights build_weights(const Graph& enc, const Graph& erb, const Graph& df, Precision precision) {
  Dfn3Weights w;
  w.erb_conv0 = conv(enc, "/erb_conv0/1/Conv", kCh, 1, 1, 3, 3, 1, 1, true);
  w.erb_conv1_dw = depthwise(enc, "/erb_conv1/0/Conv", 2);
  w.erb_conv1_pw = pointwise(enc, "/erb_conv1/1/Conv", kCh, kCh);
  w.erb_conv2_dw = depthwise(enc, "/erb_conv2/Conv", 2);
  w.erb_conv2_pw = pointwise(enc, "/erb_conv2/Conv_1", kCh, kCh);
  w.erb_conv3_dw = depthwise(enc, "/erb_conv3/0/Conv", 1);
  w.erb_conv3_pw = pointwise(enc, "/erb_conv3/1/Conv", kCh, kCh);
  w.df_conv0 = conv(enc, "/df_conv0/1/Conv", kCh, 2, 2, 3, 3, 1, 1, false)
                   .then_pointwise(pointwise(enc, "/df_conv0/2/Conv", kCh, kCh));
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
  w.df_convp = TimeConv::from(conv(df, "/df_convp/df_convp.1/Conv", 2 * kOrder, kCh, 2, 5, 1, 1, 0, false));
  w.df_convp_pw = pointwise(df, "/df_convp/df_convp.2/Conv", 2 * kOrder, 2 * kOrder);
  w.df_fc_a_w = data(df, "/df_fc_a/df_fc_a.0/MatMul", 1, {kHidden, 1});
  w.df_fc_a_b = scalar(df, "/df_fc_a/df_fc_a.0/Add", 0);
  if (precision == Precision::bf16) {
    for (Gru* g : {&w.enc_gru, &w.erb_gru[0], &w.erb_gru[1], &w.df_gru[0], &w.df_gru[1]}) g->to_bf16();
    for (GroupedLinear* l : {&w.df_fc_emb, &w.enc_lin_in, &w.enc_lin_out, &w.erb_lin_in, &w.erb_lin_out,
                             &w.df_lin_in, &w.df_skip, &w.df_out})
      l->to_bf16();
  }
  return w;
}

Dfn3Network::Dfn3Network(std::shared_ptr<const Dfn3Weights> weights) : w_(std::move(weights)) { reset(); }

void Dfn3Network::reset() {
  for (auto& f : erb_hist_) f.fill(0.0f);
  for (auto& f : spec_hist_) f.fill(0.0f);
  for (auto& f : convp_acc_) f.fill(0.0f);
  convp_slot_ = 0;
  for (auto& h : h_) h.fill(0.0f);
  frames_ = 0;
}

void Dfn3Network::step(const float* feat_erb, const float* feat_spec, FrameOutputs& out) {
  Dfn3Network* self = this;
  Scratch* scratch = &scratch_;
  FrameOutputs* o = &out;
  run(&self, &scratch, &feat_erb, &feat_spec, &o, 1, false);
}

void Dfn3Network::step_batch(Dfn3Network* const* nets, const float* const* feat_erb, const float* const* feat_spec,
                             FrameOutputs* const* outs, int n) {
  std::array<Scratch*, kMaxBatch> scratch;
  for (int k = 0; k < n; ++k) scratch[k] = &nets[k]->scratch_;
  run(nets, scratch.data(), feat_erb, feat_spec, outs, n, false);
}

void Dfn3Network::sequence(const float* const* feat_erb, const float* const* feat_spec, FrameOutputs* const* outs,
                           Scratch* const* scratch, int n, int parts) {
  std::array<Dfn3Network*, kMaxBatch> nets;
  nets.fill(this);
  run(nets.data(), scratch, feat_erb, feat_spec, outs, n, true, parts);
}

// Per-frame work (convolutions, small vectors) runs frame by frame, in order; the GRUs and grouped linears, which
// hold most of the weights, run for all n at once. n frames are n streams' (each its own network: the GRUs step
// independently) or, in a sequence, one network's consecutive frames (the GRUs run through them in order, and the
// frame-by-frame parts, run in order, carry the network's histories from frame to frame). Scratch layout per
// frame (v, 4096 floats): [0, 512) wide vectors, [512, 1472) x256 / df_out, [2048, 3584) GRU gates.
namespace {
// A frame's convolutions' intermediate results, used within one frame's step and not across the batch: one set per
// thread, so that a batch of n frames touches n times less of them.
struct ConvTemp {
  std::array<float, kCh * kErb> t0, t1;
  std::array<float, kCh * kDf / 2> s0, s1;
  std::array<float, kDf * kOrder * 2> p0;
};
ConvTemp& conv_temp() {
  thread_local ConvTemp t;
  return t;
}
}  // namespace

void Dfn3Network::run(Dfn3Network* const* nets, Scratch* const* scratch, const float* const* feat_erb,
                      const float* const* feat_spec, FrameOutputs* const* outs, int n, bool sequence, int parts) {
  const auto& w = *nets[0]->w_;
  ConvTemp& tmp = conv_temp();
  std::array<const float*, kMaxBatch> xin{};
  std::array<float*, kMaxBatch> xout{}, hs{}, scr{};
  auto each = [&](auto&& fn) {
    for (int k = 0; k < n; ++k) fn(*nets[k], *scratch[k], *outs[k], k);
  };
  // A GRU's state after frame k: the stream's own, or in a sequence the frame's copy.
  auto hidden = [&](int k, Hidden which) {
    return sequence ? scratch[k]->h[which].data() : nets[k]->h_[which].data();
  };
  for (int k = 0; k < n; ++k) scr[k] = scratch[k]->v.data() + 2048;   // the GRUs' gates
  auto gru = [&](const Gru& g, Hidden which) {
    for (int k = 0; k < n; ++k) hs[k] = hidden(k, which);
    if (sequence) g.sequence(xin.data(), nets[0]->h_[which].data(), hs.data(), scr.data(), n);
    else g.step_batch(xin.data(), hs.data(), scr.data(), n);
  };
  // Each decoder's start: xin -> grouped linear (into xout) -> ReLU -> GRU -> GRU.
  auto decoder_grus = [&](const GroupedLinear& lin, const std::array<Gru, 2>& g, Hidden first, Hidden second) {
    lin.run_batch(xin.data(), xout.data(), n);
    each([&](Dfn3Network&, Scratch&, FrameOutputs&, int k) {
      relu_inplace(xout[k], kHidden);
      xin[k] = xout[k];
    });
    gru(g[0], first);
    each([&](Dfn3Network&, Scratch&, FrameOutputs&, int k) { xin[k] = hidden(k, first); });
    gru(g[1], second);
  };

  if (parts & kEncoderAndErb) {
    // Encoder convolutions, per stream.
    each([&](Dfn3Network& s, Scratch& c, FrameOutputs& out, int k) {
      std::rotate(s.erb_hist_.begin(), s.erb_hist_.begin() + 1, s.erb_hist_.end());
      std::copy(feat_erb[k], feat_erb[k] + kErb, s.erb_hist_.back().begin());
      std::rotate(s.spec_hist_.begin(), s.spec_hist_.begin() + 1, s.spec_hist_.end());
      std::copy(feat_spec[k], feat_spec[k] + 2 * kDf, s.spec_hist_.back().begin());
      ++s.frames_;
      float* t0 = tmp.t0.data();
      float* s0 = tmp.s0.data();
      float* s1 = tmp.s1.data();
      const float* erb_frames[3] = {s.erb_hist_[0].data(), s.erb_hist_[1].data(), s.erb_hist_[2].data()};
      w.erb_conv0.run(erb_frames, kErb, out.e0.data());
      relu_inplace(out.e0.data(), out.e0.size());
      w.erb_conv1_dw.run_frame(out.e0.data(), kErb, t0);
      w.erb_conv1_pw.run_frame(t0, kErb / 2, out.e1.data());
      relu_inplace(out.e1.data(), out.e1.size());
      w.erb_conv2_dw.run_frame(out.e1.data(), kErb / 2, t0);
      w.erb_conv2_pw.run_frame(t0, kErb / 4, out.e2.data());
      relu_inplace(out.e2.data(), out.e2.size());
      w.erb_conv3_dw.run_frame(out.e2.data(), kErb / 4, t0);
      w.erb_conv3_pw.run_frame(t0, kErb / 4, out.e3.data());
      relu_inplace(out.e3.data(), out.e3.size());
      const float* spec_frames[3] = {s.spec_hist_[0].data(), s.spec_hist_[1].data(), s.spec_hist_[2].data()};
      w.df_conv0.run(spec_frames, kDf, out.c0.data());
      relu_inplace(out.c0.data(), out.c0.size());
      w.df_conv1_dw.run_frame(out.c0.data(), kDf, s0);
      w.df_conv1_pw.run_frame(s0, kDf / 2, s1);
      relu_inplace(s1, kCh * kDf / 2);
      // Flatten as [freq][channel] for the grouped linear, which runs for the whole batch.
      float* flat = c.flat.data();
      for (int c = 0; c < kCh; ++c)
        for (int f = 0; f < kDf / 2; ++f) flat[f * kCh + c] = s1[c * (kDf / 2) + f];
      xin[k] = flat;
      xout[k] = c.v.data();
    });
    w.df_fc_emb.run_batch(xin.data(), xout.data(), n);

    // Embedding: combine with e3, then the encoder's GRU.
    each([&](Dfn3Network&, Scratch& c, FrameOutputs& out, int k) {
      float* emb_df = c.v.data();
      // ReLU over the whole vector first (it vectorises; inside the transposing loop it becomes a branch on each
      // value's sign).
      relu_inplace(emb_df, kEmb);
      for (int f = 0; f < kErb / 4; ++f)   // e3 is [channel][freq]; the embedding [freq][channel]
        for (int c = 0; c < kCh; ++c) emb_df[f * kCh + c] += out.e3[c * (kErb / 4) + f];
      xin[k] = emb_df;
      xout[k] = c.v.data() + kEmb;
    });
    w.enc_lin_in.run_batch(xin.data(), xout.data(), n);
    each([&](Dfn3Network&, Scratch&, FrameOutputs&, int k) {
      relu_inplace(xout[k], kHidden);
      xin[k] = xout[k];
    });
    gru(w.enc_gru, kEncH);
    each([&](Dfn3Network&, Scratch&, FrameOutputs& out, int k) {
      xin[k] = hidden(k, kEncH);
      xout[k] = out.emb.data();
    });
    w.enc_lin_out.run_batch(xin.data(), xout.data(), n);
    each([&](Dfn3Network&, Scratch& c, FrameOutputs& out, int k) {
      relu_inplace(out.emb.data(), kEmb);
      out.lsnr = sigmoid(dot(out.emb.data(), w.lsnr_w.data(), kEmb) + w.lsnr_b) * w.lsnr_scale + w.lsnr_offset;
      xin[k] = out.emb.data();
      xout[k] = c.v.data() + kEmb;
    });

    // ERB decoder: GRUs for all, then the convolutions per stream.
    decoder_grus(w.erb_lin_in, w.erb_gru, kErb0H, kErb1H);
    each([&](Dfn3Network&, Scratch& c, FrameOutputs&, int k) {
      xin[k] = hidden(k, kErb1H);
      xout[k] = c.v.data();
    });
    w.erb_lin_out.run_batch(xin.data(), xout.data(), n);
    each([&](Dfn3Network&, Scratch& c, FrameOutputs& out, int) {
      float* e512 = c.v.data();
      relu_inplace(e512, kEmb);
      float* a = tmp.t0.data();  // [64][8]
      float* y = tmp.t1.data();
      float* s0 = tmp.s0.data();
      w.conv3p.run_frame(out.e3.data(), kErb / 4, a);
      relu_inplace(a, kCh * 8);
      for (int c = 0; c < kCh; ++c)
        for (int f = 0; f < kErb / 4; ++f) a[c * 8 + f] += e512[f * kCh + c];
      w.convt3_dw.run_frame(a, kErb / 4, s0);
      w.convt3_pw.run_frame(s0, kErb / 4, y);
      relu_inplace(y, kCh * 8);
      w.conv2p.run_frame(out.e2.data(), kErb / 4, a);
      for (int i = 0; i < kCh * 8; ++i) a[i] = relu(a[i]) + y[i];
      w.convt2_dw.run(a, kErb / 4, s0);
      w.convt2_pw.run_frame(s0, kErb / 2, y);
      relu_inplace(y, kCh * 16);
      w.conv1p.run_frame(out.e1.data(), kErb / 2, a);
      for (int i = 0; i < kCh * 16; ++i) a[i] = relu(a[i]) + y[i];
      w.convt1_dw.run(a, kErb / 2, s0);
      w.convt1_pw.run_frame(s0, kErb, y);
      relu_inplace(y, kCh * kErb);
      w.conv0p.run_frame(out.e0.data(), kErb, a);
      for (int i = 0; i < kCh * kErb; ++i) a[i] = relu(a[i]) + y[i];
      w.conv0_out.run_frame(a, kErb, out.m.data());
      for (auto& g : out.m) g = sigmoid(g);
    });
  }
  if (parts & kDeepFilter) {
    // DF decoder.
    each([&](Dfn3Network&, Scratch& c, FrameOutputs& out, int k) {
      xin[k] = out.emb.data();
      xout[k] = c.v.data() + kEmb;
    });
    decoder_grus(w.df_lin_in, w.df_gru, kDf0H, kDf1H);
    each([&](Dfn3Network&, Scratch& c, FrameOutputs& out, int k) {
      xin[k] = out.emb.data();
      xout[k] = c.v.data();
    });
    w.df_skip.run_batch(xin.data(), xout.data(), n);
    each([&](Dfn3Network&, Scratch& c, FrameOutputs& out, int k) {
      float* cdf = c.v.data();  // [256]
      const float* h = hidden(k, kDf1H);
      for (int i = 0; i < kHidden; ++i) cdf[i] += h[i];
      out.alpha = sigmoid(dot(cdf, w.df_fc_a_w.data(), kHidden) + w.df_fc_a_b);
      xin[k] = cdf;
      xout[k] = c.v.data() + kEmb;
    });
    w.df_out.run_batch(xin.data(), xout.data(), n);
    each([&](Dfn3Network& s, Scratch& c, FrameOutputs& out, int) {
      const float* o = c.v.data() + kEmb;  // [960]
      // This frame is tap dt of the output dt frames before the last one that uses it: add its share to each.
      const auto& cv = w.df_convp;
      std::array<float*, 5> acc;
      for (int dt = 0; dt < cv.kt; ++dt) acc[dt] = s.convp_acc_[(s.convp_slot_ + (cv.kt - 1 - dt)) % cv.kt].data();
      cv.accumulate(out.c0.data(), kDf, acc.data());
      float* cp = tmp.p0.data();  // [10][96]
      float* s0 = s.convp_acc_[s.convp_slot_].data();  // complete: frames t-4 .. t
      w.df_convp_pw.run_frame(s0, kDf, cp);
      std::fill(s0, s0 + 2 * kOrder * kDf, 0.0f);
      s.convp_slot_ = (s.convp_slot_ + 1) % cv.kt;
      std::copy(o, o + kDf * 2 * kOrder, out.coefs.begin());
      tanh_inplace(out.coefs.data(), kDf * 2 * kOrder);
      for (int bin = 0; bin < kDf; ++bin)
        for (int kk = 0; kk < 2 * kOrder; ++kk) out.coefs[bin * 2 * kOrder + kk] += relu(cp[kk * kDf + bin]);
    });
  }
}

}  // namespace fc25::denoise::nn
