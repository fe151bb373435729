#include "denoise/nn/layers.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace fc25::denoise::nn {

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

__attribute__((target_clones("fma", "default"))) void axpy(float a, const float* __restrict x,
                                                                      float* __restrict y, int n) {
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

void Conv2d::run(const float* const* frames, int in_f, float* out) const {
  const int of = out_freqs(in_f);
  const int in_per_group = in_ch / groups, out_per_group = out_ch / groups;
  if (kf == 1 && stride_f == 1 && pad_f == 0) {
    // Pointwise along frequency (1x1, and the (5,1) time kernel): rows of the input scaled and summed.
    for (int co = 0; co < out_ch; ++co) {
      const int g = co / out_per_group;
      float* o = out + static_cast<std::size_t>(co) * of;
      const float bias = b.empty() ? 0.0f : b[co];
      for (int f = 0; f < of; ++f) o[f] = bias;
      for (int cl = 0; cl < in_per_group; ++cl) {
        const int ci = g * in_per_group + cl;
        for (int dt = 0; dt < kt; ++dt) {
          const float k = w[(static_cast<std::size_t>(co) * in_per_group + cl) * kt + dt];
          axpy(k, frames[dt] + static_cast<std::size_t>(ci) * in_f, o, of);
        }
      }
    }
    return;
  }
  for (int co = 0; co < out_ch; ++co) {
    const int g = co / out_per_group;
    const float bias = b.empty() ? 0.0f : b[co];
    float* o = out + static_cast<std::size_t>(co) * of;
    for (int f = 0; f < of; ++f) o[f] = bias;
    for (int cl = 0; cl < in_per_group; ++cl) {
      const int ci = g * in_per_group + cl;
      for (int dt = 0; dt < kt; ++dt) {
        const float* frame = frames[dt];
        if (!frame) continue;
        const float* x = frame + static_cast<std::size_t>(ci) * in_f;
        const float* k = w.data() + ((static_cast<std::size_t>(co) * in_per_group + cl) * kt + dt) * kf;
        for (int f = 0; f < of; ++f) {
          float acc = 0.0f;
          const int base = f * stride_f - pad_f;
          for (int df = 0; df < kf; ++df) {
            const int fi = base + df;
            if (fi >= 0 && fi < in_f) acc += k[df] * x[fi];
          }
          o[f] += acc;
        }
      }
    }
  }
}

void ConvTranspose1x3::run(const float* in, int in_f, float* out) const {
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

// y[k][yoff + j] += sum_i x[k][xoff + i] * w[i * ldw + j] for j < width, every stream k: one tile of a
// matrix product. The tile's outputs for all streams stay in L1 while each weight row is read once.
__attribute__((target_clones("fma", "default"))) static void gemm_tile(
    const float* __restrict w, std::size_t ldw, int rows, const float* const* x, std::size_t xoff,
    float* const* y, std::size_t yoff, int n, int width) {
  for (int i = 0; i < rows; ++i) {
    const float* __restrict row = w + static_cast<std::size_t>(i) * ldw;
    for (int k = 0; k < n; ++k) {
      const float a = x[k][xoff + i];
      float* __restrict yk = y[k] + yoff;
      for (int j = 0; j < width; ++j) yk[j] += a * row[j];
    }
  }
}

// All columns of a [rows][cols] matrix, in tiles of 64 columns.
static void gemm(const float* w, int rows, int cols, const float* const* x, float* const* y, int n) {
  constexpr int kTile = 64;
  for (int j = 0; j < cols; j += kTile) {
    gemm_tile(w + j, static_cast<std::size_t>(cols), rows, x, 0, y, static_cast<std::size_t>(j), n,
              std::min(kTile, cols - j));
  }
}

void GroupedLinear::run_batch(const float* const* x, float* const* y, int n) const {
  for (int k = 0; k < n; ++k) std::fill(y[k], y[k] + static_cast<std::size_t>(groups) * out, 0.0f);
  for (int g = 0; g < groups; ++g) {
    gemm_tile(w.data() + static_cast<std::size_t>(g) * in * out, static_cast<std::size_t>(out), in, x,
              static_cast<std::size_t>(g) * in, y, static_cast<std::size_t>(g) * out, n, out);
  }
}

void Gru::step_batch(const float* const* x, float* const* h, float* const* scratch, int n) const {
  const int H = hidden, H3 = 3 * hidden;
  for (int k = 0; k < n; ++k) {
    std::copy(bw.begin(), bw.end(), scratch[k]);
    std::copy(br.begin(), br.end(), scratch[k] + H3);
  }
  gemm(w.data(), in, H3, x, scratch, n);
  std::array<float*, 256> gh;
  std::array<const float*, 256> hc;
  for (int k = 0; k < n; ++k) {
    gh[k] = scratch[k] + H3;
    hc[k] = h[k];
  }
  gemm(r.data(), H, H3, hc.data(), gh.data(), n);
  for (int k = 0; k < n; ++k) {
    const float* gx = scratch[k];
    const float* gh = scratch[k] + H3;
    for (int j = 0; j < H; ++j) {
      const float z = sigmoid(gx[j] + gh[j]);
      const float rg = sigmoid(gx[H + j] + gh[H + j]);
      const float nn = std::tanh(gx[2 * H + j] + rg * gh[2 * H + j]);
      h[k][j] = (1.0f - z) * nn + z * h[k][j];
    }
  }
}

void Gru::step(const float* x, float* h, float* scratch) const { step_batch(&x, &h, &scratch, 1); }

}  // namespace fc25::denoise::nn
