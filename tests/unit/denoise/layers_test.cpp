// The layer kernels against the definitions they implement, written out directly in double precision, on random
// weights and inputs: every shape the fast paths take (stride 1 and 2, odd widths, time taps, groups, missing
// frames) and one they do not. Every test runs on every kernel path this processor has (nn/isa.hpp), the
// portable one included.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "denoise/nn/isa.hpp"
#include "denoise/nn/layers.hpp"

namespace fc25::denoise::nn {
namespace {

// Runs the test on the kernel path it is given, with the weights asked for ahead in software or not (the vector
// paths' streaming kernels come in both kinds) and, on the avx512 path where the processor has AVX512-BF16, with
// the bfloat16 pairs multiplied by vdpbf16ps or widened; and leaves the defaults behind.
using KernelsParam = std::tuple<Isa, bool, bool>;
class Kernels : public ::testing::TestWithParam<KernelsParam> {
 protected:
  void SetUp() override {
    use_isa(std::get<0>(GetParam()));
    use_prefetch(std::get<1>(GetParam()));
    use_bf16_dot(std::get<2>(GetParam()));
  }
  void TearDown() override {
    use_isa(best_isa());
    use_prefetch(prefetch_default());
    use_bf16_dot(bf16_dot_default());
  }
};

std::vector<KernelsParam> every_kernel_path() {
  std::vector<KernelsParam> all;
  for (Isa isa : supported_isas())
    for (bool prefetch : {false, true}) {
      all.emplace_back(isa, prefetch, false);
      if (isa == Isa::avx512 && bf16_dot_supported()) all.emplace_back(isa, prefetch, true);
    }
  return all;
}

std::string kernels_param_name(const ::testing::TestParamInfo<KernelsParam>& info) {
  return std::string(isa_name(std::get<0>(info.param))) + (std::get<1>(info.param) ? "_prefetch" : "_no_prefetch") +
         (std::get<2>(info.param) ? "_vdpbf16ps" : "");
}

std::vector<float> random_vector(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// out[co][f] = b[co] + sum_{cl, dt, df} w[co][cl][dt][df] * frame_dt[g * in/groups + cl][f * stride - pad + df]
std::vector<double> conv_by_definition(const Conv2d& c, const std::vector<const float*>& frames, int in_f) {
  const int of = c.out_freqs(in_f), ipg = c.in_ch / c.groups, opg = c.out_ch / c.groups;
  std::vector<double> out(static_cast<std::size_t>(c.out_ch) * of);
  for (int co = 0; co < c.out_ch; ++co)
    for (int f = 0; f < of; ++f) {
      double acc = c.b.empty() ? 0.0 : c.b[co];
      for (int cl = 0; cl < ipg; ++cl)
        for (int dt = 0; dt < c.kt; ++dt)
          for (int df = 0; df < c.kf; ++df) {
            const int fi = f * c.stride_f - c.pad_f + df;
            if (!frames[dt] || fi < 0 || fi >= in_f) continue;
            const int ci = co / opg * ipg + cl;
            acc += static_cast<double>(c.w[((static_cast<std::size_t>(co) * ipg + cl) * c.kt + dt) * c.kf + df]) *
                   frames[dt][ci * in_f + fi];
          }
      out[static_cast<std::size_t>(co) * of + f] = acc;
    }
  return out;
}

struct Shape {
  const char* name;
  int out_ch, in_ch, groups, kt, kf, stride, pad, in_f;
  bool bias, missing_oldest;
};

void PrintTo(const Shape& s, std::ostream* os) { *os << s.name; }

class Conv2dShapes : public ::testing::TestWithParam<std::tuple<Shape, Isa>> {
 protected:
  void SetUp() override { use_isa(std::get<1>(GetParam())); }
  void TearDown() override { use_isa(best_isa()); }
};

TEST_P(Conv2dShapes, EqualsTheDefinition) {
  const Shape s = std::get<0>(GetParam());
  std::mt19937 rng(s.out_ch * 131 + s.in_f * 7 + s.stride);
  Conv2d c;
  c.out_ch = s.out_ch, c.in_ch = s.in_ch, c.groups = s.groups, c.kt = s.kt, c.kf = s.kf, c.stride_f = s.stride,
  c.pad_f = s.pad;
  c.w = random_vector(static_cast<std::size_t>(s.out_ch) * (s.in_ch / s.groups) * s.kt * s.kf, rng);
  if (s.bias) c.b = random_vector(s.out_ch, rng);
  std::vector<std::vector<float>> data;
  std::vector<const float*> frames;
  for (int dt = 0; dt < s.kt; ++dt) {
    data.push_back(random_vector(static_cast<std::size_t>(s.in_ch) * s.in_f, rng));
    frames.push_back(dt == 0 && s.missing_oldest ? nullptr : data.back().data());
  }
  const auto expected = conv_by_definition(c, frames, s.in_f);
  std::vector<float> out(expected.size(), 1e9f);
  c.run(frames.data(), s.in_f, out.data());
  double worst = 0;
  for (std::size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::abs(out[i] - expected[i]));
  EXPECT_LT(worst, 1e-5) << "largest difference over " << out.size() << " outputs";
}

INSTANTIATE_TEST_SUITE_P(
    Layers, Conv2dShapes,
    ::testing::Combine(::testing::Values(Shape{"erb_conv0", 64, 1, 1, 3, 3, 1, 1, 32, true, false},    // erb_conv0
                      Shape{"df_conv0_first_frames", 64, 2, 2, 3, 3, 1, 1, 96, false, true},    // df_conv0, first frames still missing
                      Shape{"depthwise_stride2", 64, 64, 64, 1, 3, 2, 1, 32, false, false},  // depthwise, stride 2
                      Shape{"stride2_odd_width", 64, 64, 64, 1, 3, 2, 1, 15, false, false},  // stride 2 over an odd width
                      Shape{"depthwise_stride1", 64, 64, 64, 1, 3, 1, 1, 8, false, false},   // depthwise, stride 1
                      Shape{"depthwise_bias_narrow", 4, 4, 4, 1, 3, 2, 1, 2, true, false},  // two bins, stride 2
                      Shape{"depthwise_one_bin", 4, 4, 4, 1, 3, 1, 1, 1, true, false},  // one bin
                      Shape{"conv0_out", 1, 64, 1, 1, 3, 1, 1, 32, true, false},     // conv0_out
                      Shape{"grouped_pairs", 8, 4, 2, 2, 3, 2, 1, 21, true, false},  // 3 wide, groups of 4 outputs
                      Shape{"grouped_odd", 6, 4, 2, 3, 3, 1, 1, 40, true, true},     // 3 wide, groups of 3, a frame missing
                      Shape{"per_channel_scale", 64, 64, 64, 1, 1, 1, 0, 16, true, false},   // per-channel scale (conv*p)
                      Shape{"pointwise_8_bins", 64, 64, 1, 1, 1, 1, 0, 8, true, false},     // pointwise, 8 bins
                      Shape{"pointwise_ragged", 48, 40, 1, 1, 1, 1, 0, 27, true, false},    // pointwise, ragged sizes
                      Shape{"pointwise_48_bins", 64, 64, 1, 1, 1, 1, 0, 48, true, false},   // pointwise, 48 bins (df_conv1)
                      Shape{"pointwise_41_bins", 13, 24, 1, 1, 1, 1, 0, 41, true, false},   // 33-48 bins, 8 + 4 + 1 outputs
                      Shape{"pointwise_80_bins", 12, 16, 1, 1, 1, 1, 0, 80, false, false},  // a strip of 32, then one of 48
                      Shape{"time_5x1", 10, 64, 2, 5, 1, 1, 0, 96, false, false},   // (5, 1) over time
                      Shape{"general", 8, 4, 2, 2, 5, 2, 2, 21, true, false}),  // none of the fast paths
                       ::testing::ValuesIn(supported_isas())),
    [](const ::testing::TestParamInfo<std::tuple<Shape, Isa>>& info) {
      return std::string(std::get<0>(info.param).name) + "_" + std::string(isa_name(std::get<1>(info.param)));
    });

TEST_P(Kernels, Conv2dAGroupedConvolutionThenAPointwiseOneEqualsTheirFusion) {
  std::mt19937 rng(3);
  Conv2d a;
  a.out_ch = 64, a.in_ch = 2, a.groups = 2, a.kt = 3, a.kf = 3, a.pad_f = 1;
  a.w = random_vector(static_cast<std::size_t>(64) * 1 * 9, rng);
  a.b = random_vector(64, rng);
  Conv2d pw;
  pw.out_ch = 48, pw.in_ch = 64;
  pw.w = random_vector(static_cast<std::size_t>(48) * 64, rng);
  pw.b = random_vector(48, rng);
  const Conv2d fused = a.then_pointwise(pw);
  const int f = 96;
  std::vector<std::vector<float>> data;
  std::vector<const float*> frames;
  for (int dt = 0; dt < 3; ++dt) {
    data.push_back(random_vector(2 * f, rng));
    frames.push_back(data.back().data());
  }
  std::vector<float> mid(static_cast<std::size_t>(64) * f), two_steps(static_cast<std::size_t>(48) * f), one(two_steps.size());
  a.run(frames.data(), f, mid.data());
  pw.run_frame(mid.data(), f, two_steps.data());
  fused.run(frames.data(), f, one.data());
  for (std::size_t i = 0; i < one.size(); ++i) ASSERT_NEAR(one[i], two_steps[i], 1e-4) << "output " << i;
}

TEST_P(Kernels, ConvTranspose1x3EqualsTheDefinition) {
  // out[t] = sum over i, j with t = 2 i + j - 1 of x[i] k[j], for t < 2 in_f.
  std::mt19937 rng(11);
  for (int in_f : {1, 2, 8, 16}) {
    ConvTranspose1x3 c;
    c.ch = 4;
    c.w = random_vector(12, rng);
    const auto x = random_vector(static_cast<std::size_t>(4) * in_f, rng);
    std::vector<float> out(static_cast<std::size_t>(4) * 2 * in_f, 1e9f);
    c.run(x.data(), in_f, out.data());
    for (int ch = 0; ch < 4; ++ch)
      for (int t = 0; t < 2 * in_f; ++t) {
        double acc = 0;
        for (int i = 0; i < in_f; ++i)
          for (int j = 0; j < 3; ++j)
            if (2 * i + j - 1 == t) acc += static_cast<double>(x[ch * in_f + i]) * c.w[ch * 3 + j];
        ASSERT_NEAR(out[ch * 2 * in_f + t], acc, 1e-6) << "width " << in_f << ", channel " << ch << ", bin " << t;
      }
  }
}

// Run frame by frame through kt partial sums, the output at t equals the (kt, 1) convolution over frames
// t - kt + 1 .. t.
void expect_time_conv_matches_definition(int out_ch, int in_ch, int groups, int kt, int f, int frames, unsigned seed) {
  std::mt19937 rng(seed);
  Conv2d c;
  c.out_ch = out_ch, c.in_ch = in_ch, c.groups = groups, c.kt = kt, c.kf = 1;
  c.w = random_vector(static_cast<std::size_t>(out_ch) * (in_ch / groups) * kt, rng);
  const TimeConv t = TimeConv::from(c);
  std::vector<std::vector<float>> in;
  for (int i = 0; i < frames; ++i) in.push_back(random_vector(static_cast<std::size_t>(in_ch) * f, rng));
  std::vector<std::vector<float>> acc(kt, std::vector<float>(static_cast<std::size_t>(out_ch) * f, 0.0f));
  int slot = 0;
  for (int i = 0; i < frames; ++i) {
    std::vector<float*> taps(kt);
    for (int dt = 0; dt < kt; ++dt) taps[dt] = acc[(slot + kt - 1 - dt) % kt].data();
    t.accumulate(in[i].data(), f, taps.data());
    std::vector<const float*> window;
    for (int dt = 0; dt < kt; ++dt) window.push_back(i - (kt - 1) + dt >= 0 ? in[i - (kt - 1) + dt].data() : nullptr);
    const auto expected = conv_by_definition(c, window, f);
    double worst = 0;
    for (std::size_t k = 0; k < expected.size(); ++k) worst = std::max(worst, std::abs(acc[slot][k] - expected[k]));
    EXPECT_LT(worst, 1e-5) << "frame " << i << " of a (" << kt << ", 1) convolution, " << out_ch << " outputs";
    std::fill(acc[slot].begin(), acc[slot].end(), 0.0f);
    slot = (slot + 1) % kt;
  }
}

TEST_P(Kernels, TimeConvFramesAddTheirTapsToTheOutputsTheyBelongTo) {
  expect_time_conv_matches_definition(10, 64, 2, 5, 96, 12, 5);   // DeepFilterNet3's df_convp
  // More taps of a group's outputs than one matrix product takes (256): run in parts.
  expect_time_conv_matches_definition(100, 8, 1, 3, 21, 5, 6);
}

// A grouped linear of 7 groups of 24 inputs and `out` outputs, random weights; five random inputs for it.
GroupedLinear random_grouped_linear(int out, std::mt19937& rng) {
  GroupedLinear l;
  l.groups = 7, l.in = 24, l.out = out;
  l.w = random_vector(static_cast<std::size_t>(7) * 24 * out, rng);
  return l;
}
std::vector<std::vector<float>> five_inputs(std::mt19937& rng) {
  std::vector<std::vector<float>> xs;
  for (int k = 0; k < 5; ++k) xs.push_back(random_vector(7 * 24, rng));
  return xs;
}
// run_batch over all of xs at once (streams 0-3 through the four-wide tile, stream 4 alone).
std::vector<std::vector<float>> run_batch(const GroupedLinear& l, const std::vector<std::vector<float>>& xs) {
  std::vector<std::vector<float>> ys(xs.size(), std::vector<float>(static_cast<std::size_t>(l.groups) * l.out, 1e9f));
  std::vector<const float*> xp;
  std::vector<float*> yp;
  for (std::size_t k = 0; k < xs.size(); ++k) xp.push_back(xs[k].data()), yp.push_back(ys[k].data());
  l.run_batch(xp.data(), yp.data(), static_cast<int>(xs.size()));
  return ys;
}

TEST_P(Kernels, GroupedLinearOneStreamAndFourTogetherEqualTheDefinition) {
  std::mt19937 rng(9);
  for (int out : {8, 16, 32, 60}) {
    const GroupedLinear l = random_grouped_linear(out, rng);
    const auto xs = five_inputs(rng);
    const auto ys = run_batch(l, xs);
    for (int k = 0; k < 4; ++k) {           // a tiled stream gets what it would get on its own
      std::vector<float> alone(static_cast<std::size_t>(7) * out);
      l.run(xs[k].data(), alone.data());
      EXPECT_EQ(alone, ys[k]) << "out " << out << " stream " << k;
    }
    for (int k = 0; k < 5; ++k)
      for (int g = 0; g < 7; ++g)
        for (int h = 0; h < out; ++h) {
          double acc = 0;
          for (int i = 0; i < 24; ++i) acc += static_cast<double>(xs[k][g * 24 + i]) * l.w[(g * 24 + i) * out + h];
          ASSERT_NEAR(ys[k][g * out + h], acc, 1e-5) << "out " << out << ", stream " << k << ", group " << g;
        }
  }
}

// With its weights in bfloat16 (GroupedLinear::to_bf16), a grouped linear gives, bit for bit, what the float one
// gives on the widened weights: alone and four streams at once.
TEST_P(Kernels, GroupedLinearInBfloat16EqualsFloatOnTheWidenedWeights) {
  std::mt19937 rng(10);
  for (int out : {8, 16, 32, 60}) {
    GroupedLinear bf = random_grouped_linear(out, rng);
    bf.to_bf16();
    ASSERT_TRUE(bf.w.empty());
    GroupedLinear fl = bf;
    fl.w.resize(bf.w_bf16.size());
    std::transform(bf.w_bf16.begin(), bf.w_bf16.end(), fl.w.begin(), [](std::uint16_t b) { return from_bf16(b); });
    fl.w_bf16.clear();
    const auto xs = five_inputs(rng);
    const auto a = run_batch(bf, xs), b = run_batch(fl, xs);
    for (int k = 0; k < 5; ++k) EXPECT_EQ(a[k], b[k]) << "out " << out << " stream " << k;
    std::vector<float> alone(static_cast<std::size_t>(7) * out);
    bf.run(xs[0].data(), alone.data());
    EXPECT_EQ(alone, b[0]) << "out " << out << ", one stream";
  }
}

// ONNX's GRU (linear_before_reset = 1, gates z, r, h), from W [3H][in], R [3H][H] and the biases Wb, Rb:
//   z = sigmoid(Wz x + Wbz + Rz h + Rbz), r = sigmoid(Wr x + Wbr + Rr h + Rbr),
//   n = tanh(Wh x + Wbh + r * (Rh h + Rbh)), h' = (1 - z) * n + z * h
// hr: the state as the recurrent products take it (rounded, in bfloat16), h where empty.
std::vector<double> gru_by_definition(const std::vector<float>& W, const std::vector<float>& R,
                                      const std::vector<float>& Wb, const std::vector<float>& Rb,
                                      const std::vector<float>& x, const std::vector<double>& h,
                                      const std::vector<double>& hr = {}) {
  const int H = static_cast<int>(h.size()), in = static_cast<int>(x.size());
  const std::vector<double>& hp = hr.empty() ? h : hr;
  auto row = [&](const std::vector<float>& m, int j, int n, auto&& v) {
    double s = 0;
    for (int i = 0; i < n; ++i) s += static_cast<double>(m[static_cast<std::size_t>(j) * n + i]) * v[i];
    return s;
  };
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  std::vector<double> out(H);
  for (int j = 0; j < H; ++j) {
    const double z = sig(row(W, j, in, x) + Wb[j] + row(R, j, H, hp) + Rb[j]);
    const double r = sig(row(W, H + j, in, x) + Wb[H + j] + row(R, H + j, H, hp) + Rb[H + j]);
    const double n = std::tanh(row(W, 2 * H + j, in, x) + Wb[2 * H + j] + r * (row(R, 2 * H + j, H, hp) + Rb[2 * H + j]));
    out[j] = (1.0 - z) * n + z * h[j];
  }
  return out;
}

// ONNX's [gates][inputs] as Gru keeps its input weights: row by row, [inputs][gates].
std::vector<float> by_rows(const std::vector<float>& m, int gates, int inputs) {
  std::vector<float> t(m.size());
  for (int j = 0; j < gates; ++j)
    for (int i = 0; i < inputs; ++i)
      t[static_cast<std::size_t>(i) * gates + j] = m[static_cast<std::size_t>(j) * inputs + i];
  return t;
}

// ONNX's [gates][inputs] as Gru keeps its recurrent weights: panels of Gru::kPanel gates, each [inputs][kPanel].
std::vector<float> panels(const std::vector<float>& m, int gates, int inputs) {
  std::vector<float> t(m.size());
  for (int j = 0; j < gates; ++j)
    for (int i = 0; i < inputs; ++i)
      t[(static_cast<std::size_t>(j / Gru::kPanel) * inputs + i) * Gru::kPanel + j % Gru::kPanel] =
          m[static_cast<std::size_t>(j) * inputs + i];
  return t;
}

// A GRU with its weights in float, or in bfloat16 (Gru::to_bf16): then the definition is taken with the weights
// and the inputs (the input and the previous state) rounded as the products take them, and must be met as closely.
// The inputs are as a ReLU leaves them (a third to a half zero, one step all zero) or with none zero: one stream
// alone skips the zero ones' weights (in bfloat16, the pairs of rows whose inputs are both zero).
TEST_P(Kernels, GruStepsEqualTheDefinitionAndABatchEqualsEachStreamAlone) {
  std::mt19937 rng(11);
  auto rounded = [](const std::vector<float>& v) {
    std::vector<float> r(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) r[i] = from_bf16(bf16_flushed(v[i]));
    return r;
  };
  for (auto [in, H, bf16] : {std::tuple{24, 64, false}, std::tuple{256, 256, false}, std::tuple{24, 64, true},
                             std::tuple{25, 64, true}, std::tuple{256, 256, true}}) {
    auto scaled = [&](std::size_t n, float k) {
      auto v = random_vector(n, rng);
      for (auto& x : v) x *= k;
      return v;
    };
    // Weights small enough that the gates are neither saturated nor linear.
    const float k = 2.0f / std::sqrt(static_cast<float>(in + H));
    auto W = scaled(static_cast<std::size_t>(3) * H * in, k), R = scaled(static_cast<std::size_t>(3) * H * H, k);
    const auto Wb = scaled(3 * H, 0.5f), Rb = scaled(3 * H, 0.5f);
    Gru g;
    g.in = in, g.hidden = H;
    g.wi = by_rows(W, 3 * H, in);
    g.wr = panels(R, 3 * H, H);
    g.bw = Wb, g.br = Rb;
    if (bf16) {
      g.to_bf16();
      ASSERT_TRUE(g.wi.empty() && g.wr.empty());
      ASSERT_EQ(g.wi_bf16.size(), static_cast<std::size_t>(3) * H * in);
      ASSERT_EQ(g.wr_bf16.size(), static_cast<std::size_t>(3) * H * H);
      W = rounded(W), R = rounded(R);
      EXPECT_EQ(from_bf16(g.wi_bf16[1]), W[static_cast<std::size_t>(1) * in]) << "laid out as the float rows are";
      EXPECT_EQ(from_bf16(g.wr_bf16[1]), R[static_cast<std::size_t>(1) * H]) << "packed as the float panels are";
    }

    // Nineteen: groups of eight (AVX-512) or four (AVX2, four groups and more over a strip copied out first) over
    // each strip of weights, and three left over (run together on AVX-512, one by one on AVX2).
    constexpr int kStreams = 19;
    std::vector<std::vector<float>> h(kStreams, std::vector<float>(H, 0.0f)), scratch(kStreams, std::vector<float>(6 * H));
    std::vector<std::vector<double>> ref(kStreams, std::vector<double>(H, 0.0));
    std::vector<float> alone_h(H, 0.0f), alone_scratch(6 * H);
    std::vector<std::vector<float>> inputs_of_stream1;
    for (int t = 0; t < 6; ++t) {   // the hidden state carries from step to step
      const std::vector<std::vector<float>> before = h;
      std::vector<std::vector<float>> x;
      std::vector<const float*> xp;
      std::vector<float*> hp, sp;
      for (int s = 0; s < kStreams; ++s) {
        x.push_back(random_vector(in, rng));
        // Steps 1 to 4 as after a ReLU: every input below 0.2 is zero (about 60 %); step 3 all zero.
        if (t >= 1 && t <= 4)
          for (auto& v : x.back()) v = t == 3 || v < 0.2f ? 0.0f : v;
      }
      for (int s = 0; s < kStreams; ++s) xp.push_back(x[s].data()), hp.push_back(h[s].data()), sp.push_back(scratch[s].data());
      g.step_batch(xp.data(), hp.data(), sp.data(), kStreams);
      g.step(x[1].data(), alone_h.data(), alone_scratch.data());
      EXPECT_EQ(alone_h, h[1]) << "in " << in << ", step " << t << (bf16 ? ", bf16" : "");
      inputs_of_stream1.push_back(x[1]);
      for (int s = 0; s < kStreams; ++s) {
        if (bf16) {   // from the state the engine had, as the products round it
          const std::vector<double> prev(before[s].begin(), before[s].end());
          const auto r = rounded(before[s]);
          ref[s] = gru_by_definition(W, R, Wb, Rb, rounded(x[s]), prev, std::vector<double>(r.begin(), r.end()));
        } else {
          ref[s] = gru_by_definition(W, R, Wb, Rb, x[s], ref[s]);
        }
        double worst = 0;
        for (int j = 0; j < H; ++j) worst = std::max(worst, std::abs(ref[s][j] - h[s][j]));
        EXPECT_LT(worst, 1e-5) << "in " << in << ", step " << t << ", stream " << s << (bf16 ? ", bf16" : "");
      }
    }
    // The same six inputs as one sequence: every state along the way, and the last, as step by step.
    std::vector<float> h0(H, 0.0f);
    std::vector<std::vector<float>> hseq(6, std::vector<float>(H)), sseq(6, std::vector<float>(6 * H));
    std::vector<const float*> xs;
    std::vector<float*> hsp, ssp;
    for (int t = 0; t < 6; ++t) xs.push_back(inputs_of_stream1[t].data()), hsp.push_back(hseq[t].data()), ssp.push_back(sseq[t].data());
    g.sequence(xs.data(), h0.data(), hsp.data(), ssp.data(), 6);
    EXPECT_EQ(hseq[5], alone_h) << "in " << in << (bf16 ? ", bf16" : "");
    EXPECT_EQ(h0, alone_h) << "the state is left after the last input";
    std::vector<float> again(H, 0.0f), scratch1(6 * H);
    for (int t = 0; t < 3; ++t) g.step(inputs_of_stream1[t].data(), again.data(), scratch1.data());
    EXPECT_EQ(hseq[2], again) << "the state after the third input";
  }
}

// The account of multiply-adds the benchmarks report: a GRU step does (inputs read + hidden) x 3 hidden, one stream
// leaving out its zero inputs' rows and a batch reading every row for all; a convolution every tap at every
// output; a grouped linear groups x in x out per stream.
TEST(Work, MultiplyAddsCountWhatEachLayerDoes) {
  std::mt19937 rng(5);
  const int in = 24, H = 64;
  Gru g;
  g.in = in, g.hidden = H;
  g.wi = random_vector(static_cast<std::size_t>(3) * H * in, rng);
  g.wr = random_vector(static_cast<std::size_t>(3) * H * H, rng);
  g.bw = random_vector(3 * H, rng), g.br = random_vector(3 * H, rng);
  auto x = random_vector(in, rng);
  for (int i = 0; i < in; i += 3) x[i] = 0.0f;   // 8 of 24 zero
  std::vector<float> h(H, 0.0f), scratch(6 * H);
  multiply_adds() = {};
  g.step(x.data(), h.data(), scratch.data());
  EXPECT_EQ(multiply_adds().gru, static_cast<std::uint64_t>(16 + H) * 3 * H);
  std::vector<std::vector<float>> hs(3, std::vector<float>(H)), ss(3, std::vector<float>(6 * H));
  const float* xp[3] = {x.data(), x.data(), x.data()};
  float* hp[3] = {hs[0].data(), hs[1].data(), hs[2].data()};
  float* sp[3] = {ss[0].data(), ss[1].data(), ss[2].data()};
  multiply_adds() = {};
  g.step_batch(xp, hp, sp, 3);
  EXPECT_EQ(multiply_adds().gru, static_cast<std::uint64_t>(3) * (in + H) * 3 * H);
  EXPECT_EQ(multiply_adds().other, 0u);

  Conv2d c;
  c.out_ch = 8, c.in_ch = 4, c.groups = 2, c.kt = 2, c.kf = 3, c.stride_f = 2, c.pad_f = 1;
  c.w = random_vector(static_cast<std::size_t>(8) * 2 * 2 * 3, rng);
  const auto f0 = random_vector(4 * 10, rng), f1 = random_vector(4 * 10, rng);
  const float* frames[2] = {f0.data(), f1.data()};
  std::vector<float> out(8 * 5);
  multiply_adds() = {};
  c.run(frames, 10, out.data());
  EXPECT_EQ(multiply_adds().other, 8u * 2 * 2 * 3 * 5);   // out x in per group x taps x output bins

  GroupedLinear lin;
  lin.groups = 4, lin.in = 6, lin.out = 8;
  lin.w = random_vector(4 * 6 * 8, rng);
  const auto lx = random_vector(24, rng);
  std::vector<float> ly(32);
  multiply_adds() = {};
  lin.run(lx.data(), ly.data());
  EXPECT_EQ(multiply_adds().other, 4u * 6 * 8);
  EXPECT_EQ(multiply_adds().gru, 0u);
}

// bfloat16 keeps a float's upper half, rounded to nearest with ties to even.
TEST(Bf16, RoundsToNearestTiesToEvenAndWidensExactly) {
  EXPECT_EQ(to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(from_bf16(0x3f80), 1.0f);
  EXPECT_EQ(from_bf16(to_bf16(-2.5f)), -2.5f);
  const float ulp = std::ldexp(1.0f, -7);                         // bfloat16's step at 1.0
  EXPECT_EQ(from_bf16(to_bf16(1.0f + ulp * 0.49f)), 1.0f);          // below half: down
  EXPECT_EQ(from_bf16(to_bf16(1.0f + ulp * 0.51f)), 1.0f + ulp);    // above half: up
  EXPECT_EQ(from_bf16(to_bf16(1.0f + ulp * 0.5f)), 1.0f);           // a tie: to the even 1.0
  EXPECT_EQ(from_bf16(to_bf16(1.0f + ulp * 1.5f)), 1.0f + 2 * ulp); // a tie: to the even 1 + 2 ulp
  for (float v : {3.14159f, -1e-3f, 65504.0f, 1e-30f}) {
    EXPECT_LE(std::abs(from_bf16(to_bf16(v)) - v), std::abs(v) * std::ldexp(1.0f, -8)) << v;
  }
}

TEST_P(Kernels, ActivationsTanhAndSigmoidEqualTheirDefinitions) {
  std::vector<float> x;
  for (int i = -4000; i <= 4000; ++i) x.push_back(i * 0.005f);   // -20 .. 20, saturation included
  x.push_back(0.0f);                                               // an odd count: a tail after the vectors
  auto t = x;
  tanh_inplace(t.data(), static_cast<int>(t.size()));
  double worst_tanh = 0, worst_sigmoid = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    worst_tanh = std::max(worst_tanh, std::abs(t[i] - std::tanh(static_cast<double>(x[i]))));
    worst_sigmoid = std::max(worst_sigmoid, std::abs(sigmoid(x[i]) - 1.0 / (1.0 + std::exp(-static_cast<double>(x[i])))));
  }
  EXPECT_LT(worst_tanh, 1e-6);
  EXPECT_LT(worst_sigmoid, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Layers, Kernels, ::testing::ValuesIn(every_kernel_path()), kernels_param_name);

TEST(Isa, NamesAreReadBackAndTheDefaultIsTheBestThisProcessorHas) {
  for (Isa isa : supported_isas()) EXPECT_EQ(parse_isa(isa_name(isa)), isa);
  EXPECT_FALSE(parse_isa("neon"));
  EXPECT_FALSE(parse_isa("AVX2"));
  EXPECT_EQ(supported_isas().front(), Isa::portable);
  EXPECT_EQ(active_isa(), best_isa());
  EXPECT_EQ(prefetch_active(), prefetch_default());
}

// Choosing a path changes the code that runs: the vector paths' fused multiply-adds round differently from the
// portable loops, so over many outputs some differ in their last bits (while both equal the definition above).
// The AVX-512 path sums every output in the same order as the AVX2 one, and gives its results bit for bit.
TEST(Isa, EachPathRunsItsOwnCode) {
  std::mt19937 rng(21);
  GroupedLinear l;
  l.groups = 4, l.in = 64, l.out = 16;
  l.w = random_vector(static_cast<std::size_t>(4) * 64 * 16, rng);
  const auto x = random_vector(4 * 64, rng);
  std::vector<std::vector<float>> by_path;
  for (Isa isa : supported_isas()) {
    use_isa(isa);
    by_path.emplace_back(static_cast<std::size_t>(4) * 16);
    l.run(x.data(), by_path.back().data());
  }
  use_isa(best_isa());
  ASSERT_GE(by_path.size(), 2u) << "the machines fc25 runs on have AVX2 and FMA";
  EXPECT_NE(by_path[0], by_path[1]);
  for (std::size_t p = 2; p < by_path.size(); ++p) EXPECT_EQ(by_path[p], by_path[1]) << isa_name(supported_isas()[p]);
}

// A GRU's products in bfloat16 are the same bits on every path, widened or by vdpbf16ps (two rows at a time), one
// stream or a batch: each product is exact and each is rounded once, in row order, wherever they are computed. (Sums near the
// smallest normal float, which vdpbf16ps flushes to zero, do not arise here.) The gate sums a step leaves in its
// scratch are compared: the gates' own sigmoid and tanh differ between the portable and the vector paths.
TEST(Isa, BfloatGruProductsAreTheSameOnEveryPath) {
  std::mt19937 rng(31);
  const int in = 257, H = 128;   // an odd number of inputs: the last input row has no partner
  Gru g;
  g.in = in, g.hidden = H;
  g.wi = random_vector(static_cast<std::size_t>(3) * H * in, rng);
  g.wr = random_vector(static_cast<std::size_t>(3) * H * H, rng);
  g.bw = random_vector(3 * H, rng), g.br = random_vector(3 * H, rng);
  g.to_bf16();
  auto x = random_vector(in, rng);
  for (auto& v : x) v = v < 0.1f ? 0.0f : v;   // a ReLU's output: about half zero
  const auto h0 = random_vector(H, rng);
  auto sums = [&](int streams) {
    std::vector<std::vector<float>> h(streams, h0), scratch(streams, std::vector<float>(6 * H));
    std::vector<const float*> xp(streams, x.data());
    std::vector<float*> hp, sp;
    for (int s = 0; s < streams; ++s) hp.push_back(h[s].data()), sp.push_back(scratch[s].data());
    g.step_batch(xp.data(), hp.data(), sp.data(), streams);
    return scratch;
  };
  use_isa(Isa::portable);
  use_bf16_dot(false);
  const auto reference = sums(1)[0];
  for (const auto& [isa, prefetch, dot] : every_kernel_path()) {
    use_isa(isa);
    use_prefetch(prefetch);
    use_bf16_dot(dot);
    const std::string name = std::string(isa_name(isa)) + (prefetch ? ", prefetch" : "") + (dot ? " (vdpbf16ps)" : "");
    EXPECT_EQ(sums(1)[0], reference) << name << ", one stream";
    for (const auto& sc : sums(19)) {
      EXPECT_EQ(sc, reference) << name << ", a batch of 19";
    }
  }
  use_isa(best_isa());
  use_prefetch(prefetch_default());
  use_bf16_dot(bf16_dot_default());
  if (!bf16_dot_supported()) {
    EXPECT_THROW(use_bf16_dot(true), std::invalid_argument);
  }
}

}  // namespace
}  // namespace fc25::denoise::nn
