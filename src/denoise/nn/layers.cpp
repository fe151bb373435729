#include "denoise/nn/layers.hpp"

#include <cmath>

namespace fc25::denoise::nn {

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

void Conv2d::run(const float* const* frames, int in_f, float* out) const {
  const int of = out_freqs(in_f);
  const int in_per_group = in_ch / groups, out_per_group = out_ch / groups;
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
    for (int i = 0; i < in; ++i) {
      const float xi = xg[i];
      const float* wr = wg + static_cast<std::size_t>(i) * out;
      for (int h = 0; h < out; ++h) yo[h] += xi * wr[h];
    }
  }
}

void Gru::step(const float* x, float* h, float* scratch) const {
  const int H = hidden;
  float* gx = scratch;          // W x + bw, [3H]
  float* gh = scratch + 3 * H;  // R h + br, [3H]
  for (int j = 0; j < 3 * H; ++j) {
    const float* wr = w.data() + static_cast<std::size_t>(j) * in;
    float acc = bw[j];
    for (int i = 0; i < in; ++i) acc += wr[i] * x[i];
    gx[j] = acc;
    const float* rr = r.data() + static_cast<std::size_t>(j) * H;
    float acc2 = br[j];
    for (int i = 0; i < H; ++i) acc2 += rr[i] * h[i];
    gh[j] = acc2;
  }
  for (int j = 0; j < H; ++j) {
    const float z = sigmoid(gx[j] + gh[j]);
    const float rg = sigmoid(gx[H + j] + gh[H + j]);
    const float n = std::tanh(gx[2 * H + j] + rg * gh[2 * H + j]);
    h[j] = (1.0f - z) * n + z * h[j];
  }
}

}  // namespace fc25::denoise::nn
