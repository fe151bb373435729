#include "denoise/nn/layers.hpp"

#include <algorithm>
#include <cmath>

namespace fc25::denoise::nn {

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

__attribute__((target_clones("arch=haswell", "default"))) void axpy(float a, const float* __restrict x,
                                                                      float* __restrict y, int n) {
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

__attribute__((target_clones("arch=haswell", "default"))) void gemv_rows(const float* a, int count,
                                                                           const float* rows, std::size_t stride,
                                                                           float* __restrict y, int n) {
  int i = 0;
  for (; i + 4 <= count; i += 4) {
    const float a0 = a[i], a1 = a[i + 1], a2 = a[i + 2], a3 = a[i + 3];
    const float* __restrict r0 = rows + static_cast<std::size_t>(i) * stride;
    const float* __restrict r1 = r0 + stride;
    const float* __restrict r2 = r1 + stride;
    const float* __restrict r3 = r2 + stride;
    for (int j = 0; j < n; ++j) y[j] += a0 * r0[j] + a1 * r1[j] + a2 * r2[j] + a3 * r3[j];
  }
  for (; i < count; ++i) {
    const float ai = a[i];
    const float* __restrict r = rows + static_cast<std::size_t>(i) * stride;
    for (int j = 0; j < n; ++j) y[j] += ai * r[j];
  }
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

void GroupedLinear::run(const float* x, float* y) const {
  for (int g = 0; g < groups; ++g) {
    float* yo = y + static_cast<std::size_t>(g) * out;
    for (int h = 0; h < out; ++h) yo[h] = 0.0f;
    const float* xg = x + static_cast<std::size_t>(g) * in;
    const float* wg = w.data() + static_cast<std::size_t>(g) * in * out;
    gemv_rows(xg, in, wg, static_cast<std::size_t>(out), yo, out);
  }
}

void Gru::step(const float* x, float* h, float* scratch) const {
  const int H = hidden, H3 = 3 * hidden;
  float* gx = scratch;       // W x + bw, [3H]
  float* gh = scratch + H3;  // R h + br, [3H]
  std::copy(bw.begin(), bw.end(), gx);
  std::copy(br.begin(), br.end(), gh);
  gemv_rows(x, in, w.data(), static_cast<std::size_t>(H3), gx, H3);
  gemv_rows(h, H, r.data(), static_cast<std::size_t>(H3), gh, H3);
  for (int j = 0; j < H; ++j) {
    const float z = sigmoid(gx[j] + gh[j]);
    const float rg = sigmoid(gx[H + j] + gh[H + j]);
    const float n = std::tanh(gx[2 * H + j] + rg * gh[2 * H + j]);
    h[j] = (1.0f - z) * n + z * h[j];
  }
}

}  // namespace fc25::denoise::nn
