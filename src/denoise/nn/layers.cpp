// The layers: shapes, weights and the order of work; the arithmetic is the active kernel path's (nn/kernels.hpp).
#include "denoise/nn/layers.hpp"

#include "denoise/nn/kernels.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

namespace fc25::denoise::nn {

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

void Conv2d::run(const float* const* frames, int in_f, float* out) const {
  multiply_adds().other += static_cast<std::uint64_t>(out_ch) * (in_ch / groups) * kt * kf * out_freqs(in_f);
  if (kt == 1 && kf == 1 && groups == 1) {
    // Pointwise (1x1): out[co][:] = b[co] + sum_ci w[co][ci] * in[ci][:], a matrix product in which the output
    // channels take the place of streams.
    const int of = out_freqs(in_f);
    std::array<const float*, 256> wr;
    std::array<float*, 256> orow;
    for (int co = 0; co < out_ch; ++co) {
      wr[co] = w.data() + static_cast<std::size_t>(co) * in_ch;
      orow[co] = out + static_cast<std::size_t>(co) * of;
      std::fill(orow[co], orow[co] + of, b.empty() ? 0.0f : b[co]);
    }
    kernels().gemm_tile(frames[0], static_cast<std::size_t>(in_f), in_ch, wr.data(), 0, orow.data(), 0, out_ch, of);
    return;
  }
  kernels().conv(*this, frames, in_f, out);
}

Conv2d Conv2d::then_pointwise(const Conv2d& pw) const {
  Conv2d f = *this;
  f.groups = 1;
  f.out_ch = pw.out_ch;
  const int in_per_group = in_ch / groups, out_per_group = out_ch / groups, taps = kt * kf;
  f.w.assign(static_cast<std::size_t>(pw.out_ch) * in_ch * taps, 0.0f);
  f.b.assign(pw.out_ch, 0.0f);
  for (int co = 0; co < pw.out_ch; ++co) {
    double bias = pw.b.empty() ? 0.0 : pw.b[co];
    for (int c = 0; c < out_ch; ++c) {
      const double m = pw.w[static_cast<std::size_t>(co) * pw.in_ch + c];
      if (!b.empty()) bias += m * b[c];
      const int g = c / out_per_group;
      for (int cl = 0; cl < in_per_group; ++cl)
        for (int t = 0; t < taps; ++t)
          f.w[(static_cast<std::size_t>(co) * in_ch + g * in_per_group + cl) * taps + t] +=
              static_cast<float>(m * w[(static_cast<std::size_t>(c) * in_per_group + cl) * taps + t]);
    }
    f.b[co] = static_cast<float>(bias);
  }
  return f;
}

void ConvTranspose1x3::run(const float* in, int in_f, float* out) const {
  multiply_adds().other += static_cast<std::uint64_t>(ch) * in_f * kf;
  if (kf == 3 && stride_f == 2 && pad_f == 1 && out_pad == 1 && in_f > 0) {
    kernels().convt_s2(*this, in, in_f, out);
    return;
  }
  const int of = (in_f - 1) * stride_f - 2 * pad_f + kf + out_pad;
  for (int c = 0; c < ch; ++c) {
    float* o = out + static_cast<std::size_t>(c) * of;
    const float* x = in + static_cast<std::size_t>(c) * in_f;
    const float* k = w.data() + static_cast<std::size_t>(c) * kf;
    for (int f = 0; f < of; ++f) o[f] = 0.0f;
    for (int i = 0; i < in_f; ++i)
      for (int j = 0; j < kf; ++j) {
        const int t = i * stride_f + j - pad_f;
        if (t >= 0 && t < of) o[t] += x[i] * k[j];
      }
  }
}

void GroupedLinear::run(const float* x, float* y) const { run_batch(&x, &y, 1); }

TimeConv TimeConv::from(const Conv2d& c) {
  TimeConv t;
  t.out_ch = c.out_ch;
  t.in_ch = c.in_ch;
  t.groups = c.groups;
  t.kt = c.kt;
  const int in_per_group = c.in_ch / c.groups;
  t.w.resize(c.w.size());
  for (int co = 0; co < c.out_ch; ++co)
    for (int cl = 0; cl < in_per_group; ++cl)
      for (int dt = 0; dt < c.kt; ++dt)
        t.w[(static_cast<std::size_t>(dt) * c.out_ch + co) * in_per_group + cl] =
            c.w[(static_cast<std::size_t>(co) * in_per_group + cl) * c.kt + dt];
  return t;
}

// Per group, a matrix product in which every tap of every output channel of the group takes the place of a stream:
// the rows are the group's input channels, each weight vector [in_ch / groups] one output channel's tap. All taps
// in one product, so that each input row is loaded once for as many of them as the kernel holds.
void TimeConv::accumulate(const float* frame, int f, float* const* acc) const {
  const int in_per_group = in_ch / groups, out_per_group = out_ch / groups;
  multiply_adds().other += static_cast<std::uint64_t>(kt) * out_ch * in_per_group * f;
  std::array<const float*, 256> taps;
  std::array<float*, 256> rows;
  for (int g = 0; g < groups; ++g) {
    const float* x = frame + static_cast<std::size_t>(g) * in_per_group * f;
    int n = 0;
    for (int dt = 0; dt < kt; ++dt)
      for (int q = 0; q < out_per_group; ++q) {
        const int co = g * out_per_group + q;
        taps[n] = w.data() + (static_cast<std::size_t>(dt) * out_ch + co) * in_per_group;
        rows[n] = acc[dt] + static_cast<std::size_t>(co) * f;
        if (++n == static_cast<int>(taps.size())) {
          kernels().gemm_tile(x, static_cast<std::size_t>(f), in_per_group, taps.data(), 0, rows.data(), 0, n, f);
          n = 0;
        }
      }
    if (n > 0) kernels().gemm_tile(x, static_cast<std::size_t>(f), in_per_group, taps.data(), 0, rows.data(), 0, n, f);
  }
}

void GroupedLinear::run_batch(const float* const* x, float* const* y, int n) const {
  multiply_adds().other += static_cast<std::uint64_t>(n) * groups * in * out;
  for (int k = 0; k < n; ++k) std::fill(y[k], y[k] + static_cast<std::size_t>(groups) * out, 0.0f);
  // Streams in fours share each weight row (gemm_tile); a stream left over runs its groups side by side.
  const Kernels& k = kernels();
  auto run = [&](const auto* wt, auto gemm, auto one) {
    const bool side_by_side = one && (out == 8 || out == 16 || out == 32);
    const int tiled = side_by_side ? n / 4 * 4 : n;
    if (tiled > 0) {
      for (int g = 0; g < groups; ++g) {
        gemm(wt + static_cast<std::size_t>(g) * in * out, static_cast<std::size_t>(out), in, x,
             static_cast<std::size_t>(g) * in, y, static_cast<std::size_t>(g) * out, tiled, out);
      }
    }
    for (int s = tiled; s < n; ++s) one(wt, groups, in, out, x[s], y[s]);
  };
  if (w_bf16.empty()) run(w.data(), k.gemm_tile, k.grouped_one);
  else run(w_bf16.data(), k.gemm_tile_bf16, k.grouped_one_bf16);
}

namespace {
// Moves `from` into `to` as bfloat16 (rounded by `round`); `from` is left empty, its memory freed.
void move_to_bf16(std::vector<float>& from, std::vector<std::uint16_t>& to, std::uint16_t (*round)(float) = to_bf16) {
  to.resize(from.size());
  std::transform(from.begin(), from.end(), to.begin(), round);
  from.clear();
  from.shrink_to_fit();
}
}  // namespace

void GroupedLinear::to_bf16() { move_to_bf16(w, w_bf16); }

GruRowsRead& gru_rows_read() {
  thread_local GruRowsRead stats;
  return stats;
}

MultiplyAdds& multiply_adds() {
  thread_local MultiplyAdds count;
  return count;
}

void tanh_inplace(float* x, int n) { kernels().tanh(x, n); }

namespace {
// A bfloat16 GRU step's inputs rounded (bf16_flushed), up to kRoundedStreams at a time: the calling thread's,
// made on its first such step.
constexpr int kRoundedStreams = 64;
float* rounded_inputs() {
  thread_local std::unique_ptr<float[]> buf(new float[static_cast<std::size_t>(kRoundedStreams) * Gru::kMaxInputs]);
  return buf.get();
}
}  // namespace

void Gru::products(int matrix, const float* const* x, float* const* scratch, std::size_t off, int n) const {
  if (wi_bf16.empty()) {
    products_of(matrix, x, scratch, off, n);
    return;
  }
  const int len = matrix == 0 ? in : hidden;
  const Kernels& kern = kernels();
  float* buf = rounded_inputs();
  std::array<const float*, kRoundedStreams> xr;
  for (int k0 = 0; k0 < n; k0 += kRoundedStreams) {
    const int m = std::min(kRoundedStreams, n - k0);
    for (int k = 0; k < m; ++k) {
      float* v = buf + static_cast<std::size_t>(k) * kMaxInputs;
      kern.round_bf16(x[k0 + k], v, len);
      xr[static_cast<std::size_t>(k)] = v;
    }
    products_of(matrix, xr.data(), scratch + k0, off, m);
  }
}

void Gru::products_of(int matrix, const float* const* x, float* const* scratch, std::size_t off, int n) const {
  const int H3 = 3 * hidden;
  const Kernels& kern = kernels();
  const bool bf16 = !wi_bf16.empty();
  if (matrix == 0) {
    if (n == 1 && in <= kMaxInputs) {
      // One stream: the rows of the inputs that are not zero, in order (what the others add is exactly nothing).
      std::array<int, kMaxInputs> nonzero;
      int count = 0;
      for (int i = 0; i < in; ++i) {   // without a branch: which inputs are zero follows no pattern
        nonzero[static_cast<std::size_t>(count)] = i;
        count += x[0][i] != 0.0f;
      }
      GruRowsRead& stats = gru_rows_read();
      stats.rows += static_cast<std::uint64_t>(in);
      stats.read += static_cast<std::uint64_t>(count);
      multiply_adds().gru += static_cast<std::uint64_t>(count) * H3;
      if (bf16) kern.rows_one_bf16(wi_bf16.data(), H3, nonzero.data(), count, x[0], scratch[0] + off);
      else kern.rows_one(wi.data(), H3, nonzero.data(), count, x[0], scratch[0] + off);
      return;
    }
    // Several: each weight is read once for all of them, a strip of kPanel gates at a time.
    multiply_adds().gru += static_cast<std::uint64_t>(n) * in * H3;
    for (int p = 0; p < H3 / kPanel; ++p) {
      const std::size_t col = static_cast<std::size_t>(p) * kPanel;
      if (bf16) kern.gru_tile_bf16(wi_bf16.data() + col, H3, in, x, 0, scratch, off + col, n, kPanel);
      else kern.gemm_tile(wi.data() + col, H3, in, x, 0, scratch, off + col, n, kPanel);
    }
    return;
  }
  // The recurrent weights panel after panel, read front to back, so that the prefetch at the end of one panel
  // brings in the next; one stream, where the path has a kernel for it, all panels in one call.
  multiply_adds().gru += static_cast<std::uint64_t>(n) * hidden * H3;
  auto run = [&](const auto* w, auto gemm, auto panels_one) {
    if (n == 1 && panels_one) {
      panels_one(w, hidden, H3 / kPanel, x[0], scratch[0] + off);
      return;
    }
    for (int p = 0; p < H3 / kPanel; ++p) {
      const std::size_t col = static_cast<std::size_t>(p) * kPanel;
      gemm(w + col * hidden, kPanel, hidden, x, 0, scratch, off + col, n, kPanel);
    }
  };
  if (bf16) run(wr_bf16.data(), kern.gru_tile_bf16, kern.panels_one_bf16);
  else run(wr.data(), kern.gemm_tile, kern.panels_one);
}

void Gru::step_batch(const float* const* x, float* const* h, float* const* scratch, int n) const {
  const int H3 = 3 * hidden;
  for (int k = 0; k < n; ++k) {
    std::copy(bw.begin(), bw.end(), scratch[k]);
    std::copy(br.begin(), br.end(), scratch[k] + H3);
  }
  products(0, x, scratch, 0, n);
  products(1, h, scratch, H3, n);
  const Kernels& kern = kernels();
  for (int k = 0; k < n; ++k) kern.gru_gates(scratch[k], scratch[k] + H3, h[k], hidden);
}

void Gru::sequence(const float* const* x, float* h0, float* const* h, float* const* scratch, int n) const {
  const int H3 = 3 * hidden;
  for (int k = 0; k < n; ++k) std::copy(bw.begin(), bw.end(), scratch[k]);
  products(0, x, scratch, 0, n);
  const Kernels& kern = kernels();
  for (int t = 0; t < n; ++t) {
    const float* prev = t == 0 ? h0 : h[t - 1];
    std::copy(prev, prev + hidden, h[t]);
    std::copy(br.begin(), br.end(), scratch[t] + H3);
    products(1, &h[t], &scratch[t], H3, 1);
    kern.gru_gates(scratch[t], scratch[t] + H3, h[t], hidden);
  }
  if (n > 0) std::copy(h[n - 1], h[n - 1] + hidden, h0);
}

void Gru::step(const float* x, float* h, float* scratch) const { step_batch(&x, &h, &scratch, 1); }

void Gru::to_bf16() {
  if (in > kMaxInputs || hidden > kMaxInputs)
    throw std::invalid_argument("a GRU in bfloat16 takes at most " + std::to_string(kMaxInputs) + " inputs");
  move_to_bf16(wi, wi_bf16, bf16_flushed);
  move_to_bf16(wr, wr_bf16, bf16_flushed);
}


}  // namespace fc25::denoise::nn
