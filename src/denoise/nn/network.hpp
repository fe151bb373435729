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



// Reads every layer's weights from the three graphs, the GRUs' and grouped linears' in bfloat16 for
// Precision::bf16; throws ModelLoadError naming a missing or misshapen tensor.
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
  // What one frame's pass keeps from one layer to a later one that runs for every frame of the batch in between:
  // the vectors of the grouped linears and GRUs (v), the DF path's flattened convolution output, and, for
  // sequence(), the GRUs' states after the frame. ~33 KB. (What a frame's convolutions pass only among
  // themselves is the thread's own, ~44 KB, whatever the batch.)
  struct Scratch {
    std::array<float, 4096> v{};
    std::array<float, kCh * kDf / 2> flat{};
    std::array<std::array<float, kHidden>, 5> h{};
  };
  // Advances this network by n consecutive frames (feat_erb[t], feat_spec[t] -> outs[t], scratch[t] for each) layer
  // by layer: every layer's weights are read once for the n frames, except the GRUs' recurrent ones, read once per
  // frame while one GRU runs through all n (so they can stay in a core's second-level cache). Results equal n calls
  // of step(), bit for bit. n <= kMaxBatch.
  // The networks fall in two parts that share no state: the encoder with the ERB decoder (e0..e3, emb, c0, lsnr, m)
  // and the deep-filter decoder (coefs, alpha; it reads emb and c0). `parts` runs either or both; the second part
  // of frames may run on another thread, with other scratch, while the first part runs on later frames.
  enum Part { kEncoderAndErb = 1, kDeepFilter = 2, kAll = 3 };
  void sequence(const float* const* feat_erb, const float* const* feat_spec, FrameOutputs* const* outs,
                Scratch* const* scratch, int n, int parts = kAll);
  void reset();

 private:
  static void run(Dfn3Network* const* nets, Scratch* const* scratch, const float* const* feat_erb,
                  const float* const* feat_spec, FrameOutputs* const* outs, int n, bool sequence, int parts = kAll);
  enum Hidden { kEncH, kErb0H, kErb1H, kDf0H, kDf1H };
  std::shared_ptr<const Dfn3Weights> w_;
  // histories, newest last
  std::array<std::array<float, kErb>, 3> erb_hist_{};
  std::array<std::array<float, 2 * kDf>, 3> spec_hist_{};
  // The (5, 1) time convolution of the DF path keeps partial sums for the next five outputs instead of five frames
  // of c0 (19 KB instead of 123 KB per stream).
  std::array<std::array<float, 2 * kOrder * kDf>, 5> convp_acc_{};
  int convp_slot_ = 0;
  int frames_ = 0;
  std::array<std::array<float, kHidden>, 5> h_{};   // the GRUs' states, by Hidden
  Scratch scratch_;
};

}  // namespace fc25::denoise::nn
