#pragma once
// The layers of DeepFilterNet3 on one time frame: plain data, kernels vectorised with GCC vector types and compiled
// for AVX2/FMA as well as baseline x86-64 (chosen at run time); nothing allocates. Each is tested against its
// definition (tests/unit/denoise/layers_test.cpp). Layouts follow the ONNX export per frame: feature maps are
// [channel][frequency].
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace fc25::denoise::nn {

// A 2-D convolution over (time, frequency) whose time extent is served from the caller's history of frames.
struct Conv2d {
  int out_ch = 0, in_ch = 0, groups = 1, kt = 1, kf = 1, stride_f = 1, pad_f = 0;
  std::vector<float> w;   // [out_ch][in_ch / groups][kt][kf]
  std::vector<float> b;   // [out_ch] or empty
  int out_freqs(int in_freqs) const { return (in_freqs + 2 * pad_f - kf) / stride_f + 1; }
  // frames[dt] points at the input frame for time offset dt (0 = oldest of kt), each [in_ch][in_f]; null = zeros.
  void run(const float* const* frames, int in_f, float* out) const;
  // For kernels one frame long.
  void run_frame(const float* frame, int in_f, float* out) const { run(&frame, in_f, out); }
  // This convolution followed by a pointwise one (no activation between), as one convolution with every input
  // channel: cheaper where there are few inputs (the DF path's first layer: 2 inputs, 64 outputs).
  Conv2d then_pointwise(const Conv2d& pw) const;
  // Kernels three bins wide copy each input row with its padding first, whole blocks of kBlock outputs plus the
  // taps' reach (stride 2: odd bins, then even ones, each half a row): floats per row, and the most held.
  static constexpr int kBlock = 32;   // four vectors of eight
  static constexpr int kf3_row(int in_f) { return 2 * (((in_f + 1) / 2 + kBlock - 1) / kBlock * kBlock + kBlock); }
  static constexpr int kMaxPadded = 64 * 192;
  static constexpr int kMaxTerms = 256;   // input rows of a group x time taps summed into each output
};

// A depthwise transposed convolution along frequency (kernel 1 x kf, stride 2, padding 1, output padding 1):
// [ch][f] -> [ch][2f]. No bias.
struct ConvTranspose1x3 {
  int ch = 0, kf = 3, stride_f = 2, pad_f = 1, out_pad = 1;
  std::vector<float> w;   // [ch][kf]
  void run(const float* in, int in_f, float* out) const;
};

// A grouped (kt x 1) convolution over time, run as each input frame arrives: the frame is tap dt of the output
// dt frames before the newest one that uses it, so it is added to kt partial sums that the caller keeps (five
// sums of [out_ch][f] rather than five frames of [in_ch][f]).
struct TimeConv {
  int out_ch = 0, in_ch = 0, groups = 1, kt = 1;
  std::vector<float> w;   // [kt][out_ch][in_ch / groups]
  static TimeConv from(const Conv2d& c);   // a Conv2d with kf 1, no bias
  // frame: [in_ch][f]; acc[dt]: [out_ch][f], receives tap dt of this frame.
  void accumulate(const float* frame, int f, float* const* acc) const;
};

// y[g][h] = sum_i x[g][i] W[g][i][h]: groups of inputs mapped independently (DeepFilterNet's GroupedLinear).
struct GroupedLinear {
  int groups = 0, in = 0, out = 0;   // per group
  std::vector<float> w;              // [groups][in][out]
  // The same weights in bfloat16 instead of w after to_bf16(): each widened to float in registers and multiplied
  // by the float inputs as they are.
  std::vector<std::uint16_t> w_bf16;
  void to_bf16();
  void run(const float* x, float* y) const;
  // The same for n inputs at once, reading each weight row once.
  void run_batch(const float* const* x, float* const* y, int n) const;
};

// bfloat16: a float's upper 16 bits (sign, 8-bit exponent, 7-bit mantissa). Rounded to nearest, ties to even;
// widening back is exact.
inline std::uint16_t to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float from_bf16(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// to_bf16 with the values below the smallest normal float made zero (keeping the sign), as AVX512-BF16's
// products take them.
inline std::uint16_t bf16_flushed(float f) {
  const std::uint16_t b = to_bf16(f);
  return (b & 0x7f80u) == 0 ? static_cast<std::uint16_t>(b & 0x8000u) : b;
}

// One GRU layer as ONNX defines it with linear_before_reset = 1; gates in the order z, r, h.
struct Gru {
  int in = 0, hidden = 0;
  // The input weights row by row, ONNX's [3H][in] transposed to [in][3H]: one stream reads only the rows whose
  // input is not zero (a GRU fed by a ReLU skips a quarter to a half of them), each row front to back.
  std::vector<float> wi;
  // The recurrent weights, ONNX's [3H][H] transposed into panels of kPanel gates, [3H / kPanel][H][kPanel]: a
  // step is a sum of rows within each panel and reads them front to back.
  static constexpr int kPanel = 64;
  static constexpr int kMaxInputs = 1024;   // the most inputs one stream's step lists (more: read every row)
  std::vector<float> wr;
  // The same weights in bfloat16 instead of wi and wr after to_bf16(): half the bytes a step reads, laid out as
  // wi and wr. A step rounds its inputs (the input and the previous state) to bfloat16 as well (bf16_flushed), and
  // each gate's sum takes the rows' products in order, each rounded once as a fused multiply-add: the product of
  // two bfloat16 values is exact in float, so AVX512-BF16's vdpbf16ps, which adds two such products in one
  // instruction (the one in a word's upper half first), gives the same bits for a pair of consecutive rows as
  // every other path gives for the two. Sums only ever near the smallest normal float (1e-38) could differ, where
  // vdpbf16ps flushes them to zero.
  std::vector<std::uint16_t> wi_bf16, wr_bf16;
  void to_bf16();
  std::vector<float> bw;   // [3 * hidden]
  std::vector<float> br;   // [3 * hidden]
  // h is updated in place; scratch holds 6 * hidden floats.
  void step(const float* x, float* h, float* scratch) const;
  // n independent steps (x[k], h[k], scratch[k] each as in step()), reading each weight row once for all.
  void step_batch(const float* const* x, float* const* h, float* const* scratch, int n) const;
  // n consecutive steps of one GRU: h[t] receives the state after input x[t], from h0 (the state before x[0],
  // updated to the last). The input weights are read once for all n; equal to n step() calls, bit for bit.
  void sequence(const float* const* x, float* h0, float* const* h, float* const* scratch, int n) const;

 private:
  // scratch[k][off .. off + 3 hidden) += the input (matrix 0, x[k] of `in`) or recurrent (matrix 1, of `hidden`)
  // weights' products, for n inputs.
  void products(int matrix, const float* const* x, float* const* scratch, std::size_t off, int n) const;
  // The same once the inputs are as the weights take them (in bfloat16: rounded).
  void products_of(int matrix, const float* const* x, float* const* scratch, std::size_t off, int n) const;

 public:
};

// On this thread, how many input rows one stream's GRU steps had and how many of them they read (the others'
// inputs were zero): for the benchmarks' account of the bytes a hop reads.
struct GruRowsRead {
  std::uint64_t rows = 0, read = 0;
};
GruRowsRead& gru_rows_read();

// On this thread, the multiply-adds the layers have done: the GRUs' (their weights are most of what a hop reads)
// and every other layer's (convolutions, grouped linears), as each layer is defined (a convolution's every tap
// at every output, padding included). For the benchmarks' account of the arithmetic a hop does.
struct MultiplyAdds {
  std::uint64_t gru = 0, other = 0;
};
MultiplyAdds& multiply_adds();

// x[i] = tanh(x[i]), vectorised where the processor allows.
void tanh_inplace(float* x, int n);

inline float relu(float x) { return x > 0.0f ? x : 0.0f; }
float sigmoid(float x);

}  // namespace fc25::denoise::nn
