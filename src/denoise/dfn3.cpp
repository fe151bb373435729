// The streaming DeepFilterNet3 denoiser: STFT -> features -> networks -> ERB gains and deep filtering -> ISTFT.
//
// Alignment (as the model was trained, from its config.ini): the networks see features conv_lookahead frames
// ahead, so their outputs at step t belong to frame tau = t - conv_lookahead; deep filtering for tau combines the
// noisy frames tau - (df_order - 1 - df_lookahead) .. tau + df_lookahead with the coefficients of tau. Everything
// is known at step t, so the output is frame tau: a latency of conv_lookahead hops plus the STFT's
// fft_size - hop_size samples. DeepFilterNet3's export (conv_lookahead 2, df_lookahead 2, df_order 5, fft_size
// 960): 2 * 480 + 480 = 1440 samples (30 ms).
#include <xmmintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "denoise/denoise.hpp"
#include "denoise/dsp/dsp.hpp"
#include "denoise/model/model.hpp"
#include "denoise/nn/network.hpp"

namespace fc25::denoise {

namespace {

using dsp::cf32;

// libDF's post-filter on the ERB gains: sharpens gains below 1 (beta 0.02 in the official command line).
void post_filter(std::span<float> gains, float beta) {
  constexpr float eps = 1e-12f;
  for (auto& g : gains) {
    const float g_sin = std::max(g * std::sin(g * static_cast<float>(M_PI) / 2.0f), eps);
    const float q = g / g_sin;
    g = (1.0f + beta) * g / (1.0f + beta * q * q);
  }
}

// process_block()'s frames, made on first use (~2.7 MB each; process_file() on two threads uses two).
constexpr int kBlock = 32;
struct Block {
  explicit Block(std::size_t freqs) : spec(kBlock, std::vector<cf32>(freqs)) {}
  int n = 0, m = 0;                       // hops in the block; of them, frames the network runs on
  std::array<bool, kBlock> network{};     // per hop: whether the network ran for it
  std::vector<std::vector<cf32>> spec;
  std::array<std::array<float, nn::kErb>, kBlock> erb{};
  std::array<std::array<float, 2 * nn::kDf>, kBlock> feat{};
  std::array<nn::FrameOutputs, kBlock> y{};
  std::array<nn::Dfn3Network::Scratch, kBlock> scratch_store{};
  std::array<const float*, kBlock> erb_in{}, feat_in{};
  std::array<nn::FrameOutputs*, kBlock> outs{};
  std::array<nn::Dfn3Network::Scratch*, kBlock> scratch{};
};

class Dfn3Denoiser final : public Denoiser {
 public:
  Dfn3Denoiser(std::shared_ptr<const model::Dfn3Model> model, const Options& options)
      : model_(std::move(model)),
        options_(options),
        lookahead_(model_->config.conv_lookahead),
        stft_(model_->dsp),
        features_(model_->dsp),
        net_(model_->weights),
        // frames t - (lookahead + df_order - 1 - df_lookahead) .. t
        hist_(lookahead_ + nn::kOrder - model_->config.df_lookahead,
              std::vector<cf32>(model_->dsp.freq_size())),
        enh_(model_->dsp.freq_size()) {
    set_atten_lim_db(std::abs(options.atten_lim_db));
    reset();
  }

  void set_atten_lim_db(float db) override {
    check_atten_lim_db(db);
    options_.atten_lim_db = db;
    atten_lim_ = db >= 100.0f ? 0.0f : std::pow(10.0f, -db / 20.0f);
  }

  std::size_t latency_samples() const override {
    return static_cast<std::size_t>(model_->dsp.fft_size - model_->dsp.hop_size) + lookahead_ * kHopSize;
  }

  void reset() override {
    stft_.reset();
    features_.reset();
    net_.reset();
    for (auto& f : hist_) std::fill(f.begin(), f.end(), cf32(0.0f, 0.0f));
    hops_ = 0;
  }

  float process(std::span<const float> in, std::span<float> out) override {
    FlushDenormals guard;
    analyse(in);
    if (needs_network()) net_.step(erb_.data(), feat_spec_.data(), y_);
    return finish(out, y_, needs_network());
  }

  // kBlock hops at a time: every frame's analysis and features, then the network through all of them layer by layer
  // (Dfn3Network::sequence), then every frame's filtering and synthesis. The analysis and the synthesis keep separate
  // state, and each frame's spectrum is kept for the deep filter, so this is process() reordered.
  void process_block(std::span<const float> in, std::span<float> out) override {
    require_whole_hops(in, out);
    FlushDenormals guard;
    Block& b = block(0);
    for (std::size_t h0 = 0; h0 < in.size() / kHopSize; h0 += kBlock) {
      analyse_block(in, h0, b);
      net_.sequence(b.erb_in.data(), b.feat_in.data(), b.outs.data(), b.scratch.data(), b.m);
      finish_block(out, h0, b);
    }
  }

  // Two threads: this one analyses block k and runs its encoder and ERB decoder while the other runs block k - 1's
  // deep-filter decoder, filtering and synthesis. Two sets of block buffers take turns.
  void process_file(std::span<const float> in, std::span<float> out, bool two_threads,
                    const std::function<void(std::size_t)>& progress) override {
    if (!two_threads) {
      Denoiser::process_file(in, out, false, progress);
      return;
    }
    require_whole_hops(in, out);
    const std::size_t hops = in.size() / kHopSize, blocks = (hops + kBlock - 1) / kBlock;
    std::mutex mu;
    std::condition_variable cv;
    std::size_t analysed = 0, finished = 0;
    bool failed = false;
    std::exception_ptr error;
    auto fail = [&](std::exception_ptr e) {
      std::lock_guard lock(mu);
      if (!error) error = e;
      failed = true;
      cv.notify_all();
    };
    std::thread second([&] {
      try {
        FlushDenormals guard;
        for (std::size_t k = 0; k < blocks; ++k) {
          {
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return analysed > k || failed; });
            if (failed) return;
          }
          Block& b = block(k % 2);
          net_.sequence(b.erb_in.data(), b.feat_in.data(), b.outs.data(), b.scratch.data(), b.m,
                        nn::Dfn3Network::kDeepFilter);
          finish_block(out, k * kBlock, b);
          {
            std::lock_guard lock(mu);
            finished = k + 1;
          }
          cv.notify_all();
          if (progress) progress(std::min(hops, (k + 1) * kBlock));
        }
      } catch (...) {
        fail(std::current_exception());
      }
    });
    try {
      FlushDenormals guard;
      for (std::size_t k = 0; k < blocks; ++k) {
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return finished + 2 > k || failed; });   // block k - 2's buffers are free
          if (failed) break;
        }
        Block& b = block(k % 2);
        analyse_block(in, k * kBlock, b);
        net_.sequence(b.erb_in.data(), b.feat_in.data(), b.outs.data(), b.scratch.data(), b.m,
                      nn::Dfn3Network::kEncoderAndErb);
        {
          std::lock_guard lock(mu);
          analysed = k + 1;
        }
        cv.notify_all();
      }
    } catch (...) {
      fail(std::current_exception());
    }
    second.join();
    if (error) std::rethrow_exception(error);
  }

  const void* weights() const { return model_->weights.get(); }

  // Batched: analyse every stream, run all networks in one pass, then finish each.
  static void batch(Dfn3Denoiser* const* ds, const float* const* in, float* const* out, float* lsnr, int n) {
    std::array<nn::Dfn3Network*, nn::Dfn3Network::kMaxBatch> nets;
    std::array<const float*, nn::Dfn3Network::kMaxBatch> erb, spec;
    std::array<nn::FrameOutputs*, nn::Dfn3Network::kMaxBatch> ys;
    int m = 0;
    for (int k = 0; k < n; ++k) {
      ds[k]->analyse(std::span<const float>(in[k], kHopSize));
      if (!ds[k]->needs_network()) continue;
      nets[m] = &ds[k]->net_;
      erb[m] = ds[k]->erb_.data();
      spec[m] = ds[k]->feat_spec_.data();
      ys[m] = &ds[k]->y_;
      ++m;
    }
    if (m > 0) nn::Dfn3Network::step_batch(nets.data(), erb.data(), spec.data(), ys.data(), m);
    for (int k = 0; k < n; ++k) {
      float l = ds[k]->finish(std::span<float>(out[k], kHopSize), ds[k]->y_, ds[k]->needs_network());
      if (lsnr) lsnr[k] = l;
    }
  }

  // Denormal numbers (decaying recurrent states, silent input) are flushed to zero while a hop runs: they cost
  // ~100 times a normal operation and change nothing audible.
  struct FlushDenormals {
    unsigned int csr = _mm_getcsr();
    FlushDenormals() { _mm_setcsr(csr | 0x8040); }  // FTZ | DAZ
    ~FlushDenormals() { _mm_setcsr(csr); }
  };

 private:
  // Up to kBlock hops from hop h0 on: analysis and features of each frame into b, and the frames the network runs
  // on (all but a stream's first conv_lookahead: a suffix of these) listed.
  void analyse_block(std::span<const float> in, std::size_t h0, Block& b) {
    b.n = static_cast<int>(std::min<std::size_t>(kBlock, in.size() / kHopSize - h0));
    b.m = 0;
    for (int t = 0; t < b.n; ++t) {
      analyse_frame(in.subspan((h0 + t) * kHopSize, kHopSize), b.spec[t], b.erb[t], b.feat[t]);
      b.network[t] = needs_network();
      if (!b.network[t]) continue;
      b.erb_in[b.m] = b.erb[t].data();
      b.feat_in[b.m] = b.feat[t].data();
      b.outs[b.m] = &b.y[t];
      b.scratch[b.m] = &b.scratch_store[b.m];
      ++b.m;
    }
  }

  // The block's frames through the deep filter and the synthesis, in order.
  void finish_block(std::span<float> out, std::size_t h0, Block& b) {
    for (int t = 0; t < b.n; ++t) {
      std::rotate(hist_.begin(), hist_.begin() + 1, hist_.end());
      std::copy(b.spec[t].begin(), b.spec[t].end(), hist_.back().begin());
      finish(out.subspan((h0 + t) * kHopSize, kHopSize), b.y[t], b.network[t]);
    }
  }

  // The first conv_lookahead frames only serve as lookahead: the model (trained with its features shifted that
  // many frames ahead) never sees them as input, and no output frame belongs to them.
  bool needs_network() const { return hops_ > static_cast<std::uint64_t>(lookahead_); }

  void analyse(std::span<const float> in) {
    // The newest frame t (the rotation swaps buffers, it copies no samples).
    std::rotate(hist_.begin(), hist_.begin() + 1, hist_.end());
    analyse_frame(in, hist_.back(), erb_, feat_spec_);
  }

  // One hop in: its spectrum, ERB features and complex features (real parts, then imaginary parts).
  void analyse_frame(std::span<const float> in, std::span<cf32> spec, std::span<float, nn::kErb> erb,
                     std::span<float, 2 * nn::kDf> feat) {
    ++hops_;
    stft_.analysis(in, spec);
    features_.erb(spec, erb);
    features_.complex(spec, cplx_);
    for (int i = 0; i < nn::kDf; ++i) {
      feat[i] = cplx_[i].real();
      feat[nn::kDf + i] = cplx_[i].imag();
    }
  }

  // Applies the network's outputs (y) for frame tau = t - conv_lookahead and synthesises the output hop.
  float finish(std::span<float> out, nn::FrameOutputs& y, bool network) {
    if (!network) {
      std::fill(enh_.begin(), enh_.end(), cf32(0.0f, 0.0f));  // frames before the start of the stream
      stft_.synthesis(enh_, out);
      return options_.min_db_thresh;
    }
    // Frame tau: lookahead_ frames before the newest; decide the stages by its local SNR.
    const auto& noisy = hist_[hist_.size() - 1 - lookahead_];
    const float lsnr = y.lsnr;
    bool apply_erb = true, zero = false, apply_df = true;
    if (lsnr < options_.min_db_thresh) {
      apply_erb = false;
      zero = true;
      apply_df = false;
    } else if (lsnr > options_.max_db_erb_thresh) {
      apply_erb = false;
      apply_df = false;
    } else if (lsnr > options_.max_db_df_thresh) {
      apply_df = false;
    }

    std::copy(noisy.begin(), noisy.end(), enh_.begin());
    if (zero) {
      std::fill(enh_.begin(), enh_.end(), cf32(0.0f, 0.0f));
    } else if (apply_erb) {
      if (options_.post_filter_beta > 0.0f) post_filter(y.m, options_.post_filter_beta);
      dsp::apply_erb_gains(enh_, y.m, features_.erb_widths());
    }
    if (apply_df) {
      for (int f = 0; f < nn::kDf; ++f) {
        cf32 acc(0.0f, 0.0f);
        for (int o = 0; o < nn::kOrder; ++o) {
          const float* c = &y.coefs[(f * nn::kOrder + o) * 2];
          acc += hist_[o][f] * cf32(c[0], c[1]);
        }
        enh_[f] = acc;
      }
    }
    if (atten_lim_ > 0.0f) {
      for (std::size_t f = 0; f < enh_.size(); ++f) enh_[f] = enh_[f] * (1.0f - atten_lim_) + noisy[f] * atten_lim_;
    }
    stft_.synthesis(enh_, out);
    return lsnr;
  }

  std::shared_ptr<const model::Dfn3Model> model_;
  Options options_;
  int lookahead_;  // conv_lookahead, frames
  float atten_lim_ = 0.0f;
  std::uint64_t hops_ = 0;
  dsp::Stft stft_;
  dsp::Features features_;
  nn::Dfn3Network net_;
  nn::FrameOutputs y_{};
  std::vector<std::vector<cf32>> hist_;  // noisy spectra, oldest first; deep-filter tap o reads hist_[o]
  std::vector<cf32> enh_;
  std::array<float, nn::kErb> erb_{};
  std::array<cf32, nn::kDf> cplx_{};
  std::array<float, 2 * nn::kDf> feat_spec_{};
  std::array<std::unique_ptr<Block>, 2> blocks_;
  Block& block(std::size_t i) {
    if (!blocks_[i]) blocks_[i] = std::make_unique<Block>(model_->dsp.freq_size());
    return *blocks_[i];
  }
};

}  // namespace

void process_batch(std::span<Denoiser* const> streams, std::span<const float* const> in,
                   std::span<float* const> out, std::span<float> lsnr) {
  if (in.size() != streams.size() || out.size() != streams.size() || (!lsnr.empty() && lsnr.size() != streams.size())) {
    throw std::invalid_argument("process_batch: one input and one output per stream");
  }
  Dfn3Denoiser::FlushDenormals guard;
  std::array<Dfn3Denoiser*, nn::Dfn3Network::kMaxBatch> group;
  std::array<const float*, nn::Dfn3Network::kMaxBatch> gin;
  std::array<float*, nn::Dfn3Network::kMaxBatch> gout;
  std::array<float, nn::Dfn3Network::kMaxBatch> glsnr;
  std::array<std::size_t, nn::Dfn3Network::kMaxBatch> gidx;
  int n = 0;
  const void* weights = nullptr;
  auto flush = [&] {
    if (n == 0) return;
    Dfn3Denoiser::batch(group.data(), gin.data(), gout.data(), glsnr.data(), n);
    if (!lsnr.empty())
      for (int k = 0; k < n; ++k) lsnr[gidx[k]] = glsnr[k];
    n = 0;
  };
  for (std::size_t i = 0; i < streams.size(); ++i) {
    auto* d = dynamic_cast<Dfn3Denoiser*>(streams[i]);
    if (!d) {
      float l = streams[i]->process(std::span<const float>(in[i], kHopSize), std::span<float>(out[i], kHopSize));
      if (!lsnr.empty()) lsnr[i] = l;
      continue;
    }
    if (n == nn::Dfn3Network::kMaxBatch || (n > 0 && d->weights() != weights)) flush();
    weights = d->weights();
    group[n] = d;
    gin[n] = in[i];
    gout[n] = out[i];
    gidx[n] = i;
    ++n;
  }
  flush();
}

std::unique_ptr<Denoiser> make_dfn3(std::shared_ptr<const Model> model, const Options& options) {
  auto dfn3 = std::dynamic_pointer_cast<const model::Dfn3Model>(model);
  if (!dfn3) throw std::invalid_argument("make_dfn3 needs a model loaded by Model::load");
  return std::make_unique<Dfn3Denoiser>(std::move(dfn3), options);
}

}  // namespace fc25::denoise
