// The Denoiser contract on arrays: fixed latency, no hidden state beyond reset(), one model shared by streams.
#include <cmath>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "denoise/denoise.hpp"
#include "test_support.hpp"

namespace fc25::denoise {
namespace {

using testing::model_dir;
using testing::speechlike;

std::vector<float> run(Denoiser& d, const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (std::size_t i = 0; i < x.size(); i += kHopSize) {
    d.process(std::span<const float>(x).subspan(i, kHopSize), std::span<float>(y).subspan(i, kHopSize));
  }
  return y;
}

class Dfn3Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = Model::load(model_dir());
    bf16_ = Model::load(model_dir(), Precision::bf16);
  }
  static std::shared_ptr<const Model> model_, bf16_;
};
std::shared_ptr<const Model> Dfn3Test::model_, Dfn3Test::bf16_;

// SNR of `y` against `ref`, in dB.
double snr_db(const std::vector<float>& ref, const std::vector<float>& y) {
  double signal = 0, diff = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    signal += static_cast<double>(ref[i]) * ref[i];
    diff += (static_cast<double>(y[i]) - ref[i]) * (static_cast<double>(y[i]) - ref[i]);
  }
  return 10 * std::log10(signal / std::max(diff, 1e-30));
}

TEST_F(Dfn3Test, ReportsThirtyMillisecondsOfLatency) {
  EXPECT_EQ(make_dfn3(model_)->latency_samples(), 1440u);  // STFT overlap 480 + two hops of lookahead
}

TEST_F(Dfn3Test, StreamsSharingOneModelDoNotDisturbEachOther) {
  auto x1 = speechlike(200, 1), x2 = speechlike(200, 2);
  auto a = make_dfn3(model_), b = make_dfn3(model_), c = make_dfn3(model_);
  // a and b interleaved hop by hop; c alone: a's output must equal c's, bit for bit.
  std::vector<float> ya(x1.size()), yb(x2.size());
  for (std::size_t i = 0; i < x1.size(); i += kHopSize) {
    a->process(std::span<const float>(x1).subspan(i, kHopSize), std::span<float>(ya).subspan(i, kHopSize));
    b->process(std::span<const float>(x2).subspan(i, kHopSize), std::span<float>(yb).subspan(i, kHopSize));
  }
  EXPECT_EQ(ya, run(*c, x1));
}

TEST_F(Dfn3Test, ResetForgetsEverything) {
  auto x = speechlike(150, 3);
  auto d = make_dfn3(model_);
  auto first = run(*d, x);
  d->reset();
  EXPECT_EQ(run(*d, x), first);
  auto fresh = make_dfn3(model_);
  EXPECT_EQ(run(*fresh, x), first);
}

TEST_F(Dfn3Test, AttenuationLimitKeepsSomeNoise) {
  auto x = speechlike(300, 4);
  auto energy = [](const std::vector<float>& v) {
    double e = 0;
    for (std::size_t i = v.size() / 2; i < v.size(); ++i) e += v[i] * v[i];
    return e;
  };
  auto full = make_dfn3(model_);
  Options limited;
  limited.atten_lim_db = 6;
  auto lim = make_dfn3(model_, limited);
  const double e_in = energy(x), e_full = energy(run(*full, x)), e_lim = energy(run(*lim, x));
  EXPECT_LT(e_full, e_in);
  EXPECT_GT(e_lim, e_full) << "a limit of 6 dB must remove less than the unlimited engine";
  EXPECT_GE(10 * std::log10(e_lim / e_in), -6.5) << "never more than 6 dB below the input";
}

TEST(Backends, PassthroughIsIdentityAndNamesParse) {
  auto x = speechlike(20, 5);
  auto p = make_passthrough();
  EXPECT_EQ(p->latency_samples(), 0u);
  EXPECT_EQ(run(*p, x), x);
  EXPECT_EQ(parse_backend("classic"), Backend::classic);
  EXPECT_EQ(to_string(Backend::dfn3), "dfn3");
  EXPECT_THROW(parse_backend("magic"), std::invalid_argument);
}

TEST(Backends, ClassicSuppressesSteadyNoise) {
  auto x = testing::white_noise(500, 6);
  auto c = make_classic();
  auto y = run(*c, x);
  double ein = 0, eout = 0;
  for (std::size_t i = x.size() / 2; i < x.size(); ++i) ein += x[i] * x[i], eout += y[i] * y[i];
  EXPECT_GT(10 * std::log10(ein / eout), 10.0);
}

// On every kernel path this processor has.
TEST_F(Dfn3Test, BatchEqualsEachStreamAloneBitForBit) {
  for (const auto& model : {model_, bf16_})
  for (const auto& path : kernel_paths())
  for (int n : {1, 3, 5, 6, 8}) {
    const std::string weights(to_string(model->precision()));
    if (model == bf16_ && n != 5 && n != 6) continue;   // bfloat16: four streams through the tile, then one or two
    use_kernel_path(path);
    std::vector<std::vector<float>> xs, ys_batch, ys_alone;
    std::vector<std::unique_ptr<Denoiser>> batched, alone;
    for (int k = 0; k < n; ++k) {
      xs.push_back(speechlike(120, 10 + k));
      ys_batch.emplace_back(xs.back().size());
      batched.push_back(make_dfn3(model));
      alone.push_back(make_dfn3(model));
      ys_alone.push_back(run(*alone.back(), xs.back()));
    }
    std::vector<Denoiser*> ptrs;
    for (auto& d : batched) ptrs.push_back(d.get());
    std::vector<const float*> in(n);
    std::vector<float*> out(n);
    std::vector<float> lsnr(n);
    for (std::size_t i = 0; i < xs[0].size(); i += kHopSize) {
      for (int k = 0; k < n; ++k) {
        in[k] = xs[k].data() + i;
        out[k] = ys_batch[k].data() + i;
      }
      process_batch(ptrs, in, out, lsnr);
    }
    for (int k = 0; k < n; ++k) EXPECT_EQ(ys_batch[k], ys_alone[k]) << weights << ", " << path << ", batch of " << n << ", stream " << k;
  }
  use_kernel_path(kernel_paths().back());
}

// Asking for the weights ahead in software or leaving it to the processor changes when they arrive, not what is
// computed: one stream, fp32 and bf16 weights, on every vector path, gives the same audio bit for bit.
TEST_F(Dfn3Test, PrefetchOnOrOffGivesTheSameAudio) {
  const auto x = speechlike(200, 78);
  for (const auto& model : {model_, bf16_}) {
    for (const auto& path : kernel_paths()) {
      if (path == "portable") continue;
      use_kernel_path(path);
      use_prefetch("on");
      auto on = make_dfn3(model);
      const auto a = run(*on, x);
      use_prefetch("off");
      EXPECT_EQ(prefetch_mode(), "off");
      auto off = make_dfn3(model);
      EXPECT_EQ(run(*off, x), a) << path << ", " << to_string(model->precision());
    }
  }
  use_kernel_path(kernel_paths().back());
  use_prefetch("auto");
  EXPECT_THROW(use_prefetch("sometimes"), std::invalid_argument);
}

// bfloat16 weights' GRU products two rows per vdpbf16ps, or each weight widened: the same audio bit for bit, one
// stream and a batch (where the processor has AVX512-BF16; elsewhere asking for it is refused by name).
TEST_F(Dfn3Test, Bf16ProductsByVdpbf16psGiveTheSameAudio) {
  EXPECT_THROW(use_bf16_dot("sometimes"), std::invalid_argument);
  const auto x = speechlike(200, 79);
  use_kernel_path(kernel_paths().back());   // vdpbf16ps is the avx512 path's, the best where it exists
  use_bf16_dot("off");
  EXPECT_EQ(bf16_dot_mode(), "off");
  auto widened = make_dfn3(bf16_);
  const auto a = run(*widened, x);
  try {
    use_bf16_dot("on");
  } catch (const std::invalid_argument& e) {   // no AVX512-BF16 here: refused, saying why
    EXPECT_NE(std::string(e.what()).find("AVX512-BF16"), std::string::npos) << e.what();
    return;
  }
  EXPECT_EQ(bf16_dot_mode(), "on");
  auto dot = make_dfn3(bf16_);
  EXPECT_EQ(run(*dot, x), a) << "one stream";
  constexpr int kStreams = 6;
  std::vector<std::unique_ptr<Denoiser>> batched;
  std::vector<Denoiser*> ptrs;
  std::vector<std::vector<float>> ys(kStreams, std::vector<float>(x.size()));
  for (int k = 0; k < kStreams; ++k) batched.push_back(make_dfn3(bf16_)), ptrs.push_back(batched.back().get());
  std::vector<const float*> in(kStreams);
  std::vector<float*> out(kStreams);
  std::vector<float> lsnr(kStreams);
  for (std::size_t i = 0; i < x.size(); i += kHopSize) {
    for (int k = 0; k < kStreams; ++k) in[k] = x.data() + i, out[k] = ys[k].data() + i;
    process_batch(ptrs, in, out, lsnr);
  }
  for (int k = 0; k < kStreams; ++k) EXPECT_EQ(ys[k], a) << "stream " << k << " of a batch of " << kStreams;
  use_bf16_dot("auto");
}

// The portable engine and the vectorised one hear the same thing: their outputs differ only by rounding, far
// below anything audible (SNR of one against the other).
TEST_F(Dfn3Test, EveryKernelPathGivesTheSameAudio) {
  const auto x = speechlike(300, 77);
  std::vector<std::vector<float>> outs;
  for (const auto& path : kernel_paths()) {
    use_kernel_path(path);
    auto d = make_dfn3(model_);
    outs.push_back(run(*d, x));
  }
  use_kernel_path(kernel_paths().back());
  ASSERT_GE(outs.size(), 2u) << "the machines fc25 runs on have AVX2 and FMA";
  for (std::size_t p = 2; p < outs.size(); ++p) {
    EXPECT_EQ(outs[p], outs[1]) << kernel_paths()[p] << " sums in the order avx2 does: the same audio, bit for bit";
  }
  double signal = 0, diff = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    signal += static_cast<double>(outs[1][i]) * outs[1][i];
    diff += (static_cast<double>(outs[0][i]) - outs[1][i]) * (static_cast<double>(outs[0][i]) - outs[1][i]);
  }
  ASSERT_GT(signal, 0.0);
  const double snr = 10 * std::log10(signal / std::max(diff, 1e-30));
  RecordProperty("snr_db", std::to_string(snr));
  std::cout << "portable vs " << kernel_paths()[1] << ": " << snr << " dB\n";
  EXPECT_GT(snr, 80.0);
  EXPECT_GT(diff, 0.0) << "two paths, two sets of code: some rounding differs";
}

// bfloat16 weights (half the bytes a hop reads) change what is heard only far below the audio: on every kernel path,
// the output is within 35 dB SNR of the float weights' (docs/quality.md has every recording).
TEST_F(Dfn3Test, Bf16WeightsSoundAsFp32WeightsDo) {
  EXPECT_EQ(model_->precision(), Precision::fp32);
  EXPECT_EQ(bf16_->precision(), Precision::bf16);
  EXPECT_LT(bf16_->weight_bytes(), model_->weight_bytes() * 6 / 10) << "the GRUs' and grouped linears' 8.3 of 8.5 MB are halved";
  const auto x = speechlike(300, 78);
  for (const auto& path : kernel_paths()) {
    use_kernel_path(path);
    auto fp32 = make_dfn3(model_), bf16 = make_dfn3(bf16_);
    const auto ref = run(*fp32, x), y = run(*bf16, x);
    const double snr = snr_db(ref, y);
    std::cout << path << ": bf16 vs fp32 " << snr << " dB\n";
    EXPECT_GT(snr, 35.0) << path;
    EXPECT_LT(snr, 100.0) << path << ": the weights are rounded, the output must move a little";
  }
  use_kernel_path(kernel_paths().back());
}

// A file runs block by block (process_block: 32 hops at a time, layer by layer): the same audio as hop by hop, bit
// for bit, on every kernel path and with both kinds of weights; from a new stream (whose first hops are lookahead
// only), mid-stream after single hops, and for a length that is no whole number of blocks.
TEST_F(Dfn3Test, BlocksGiveWhatHopByHopGivesBitForBit) {
  const auto x = speechlike(150, 79);
  for (const auto& model : {model_, bf16_})
    for (const auto& path : kernel_paths()) {
      use_kernel_path(path);
      const std::string what = std::string(to_string(model->precision())) + ", " + path;
      auto hop_by_hop = make_dfn3(model);
      const auto ref = run(*hop_by_hop, x);
      auto blocks = make_dfn3(model);
      std::vector<float> y(x.size());
      blocks->process_block(x, y);
      EXPECT_EQ(y, ref) << what;
      auto mixed = make_dfn3(model);
      std::fill(y.begin(), y.end(), 0.0f);
      const std::size_t first = 7 * kHopSize;
      for (std::size_t i = 0; i < first; i += kHopSize) {
        mixed->process(std::span<const float>(x).subspan(i, kHopSize), std::span<float>(y).subspan(i, kHopSize));
      }
      mixed->process_block(std::span<const float>(x).subspan(first), std::span<float>(y).subspan(first));
      EXPECT_EQ(y, ref) << what << ", after 7 single hops";
    }
  use_kernel_path(kernel_paths().back());
  auto d = make_dfn3(model_);
  std::vector<float> odd(kHopSize + 1), out(kHopSize + 1);
  EXPECT_THROW(d->process_block(odd, out), std::invalid_argument);
}

}  // namespace
}  // namespace fc25::denoise
