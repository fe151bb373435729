// The layers' kernels (kernels.hpp). Each path's table is at the end of this file.
#include "denoise/nn/kernels.hpp"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

// 32-byte vector values (V8) are passed only between always-inlined functions, so how a baseline build would pass
// them in registers never matters; GCC warns about that ABI at every such call in the portable instantiations.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace fc25::denoise::nn {
namespace {

// The convolutions' bodies are written once and compiled twice, for AVX2/FMA and for any x86-64, so their loops
// vectorise eight lanes wide where the processor allows.
#define FC25_INLINE inline __attribute__((always_inline))

// Eight floats as one value (GCC's vector extension): a register where the processor has them, any address.
// Always inlined into the kernels that use it, so how a baseline build would pass it in registers never matters.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
using V8 = float __attribute__((vector_size(32), may_alias, aligned(4)));
FC25_INLINE V8 load8(const float* p) { return *reinterpret_cast<const V8*>(p); }
#pragma GCC diagnostic pop

// Kernels one frame wide along frequency: a scale (and bias) per channel, or the (kt, 1) time convolution.
FC25_INLINE void conv_kf1(const Conv2d& c, const float* const* frames, int in_f, float* out) {
  const int in_per_group = c.in_ch / c.groups, out_per_group = c.out_ch / c.groups;
  for (int co = 0; co < c.out_ch; ++co) {
    const int g = co / out_per_group;
    float* __restrict o = out + static_cast<std::size_t>(co) * in_f;
    const float bias = c.b.empty() ? 0.0f : c.b[co];
    for (int f = 0; f < in_f; ++f) o[f] = bias;
    for (int cl = 0; cl < in_per_group; ++cl) {
      const int ci = g * in_per_group + cl;
      for (int dt = 0; dt < c.kt; ++dt) {
        if (!frames[dt]) continue;
        const float k = c.w[(static_cast<std::size_t>(co) * in_per_group + cl) * c.kt + dt];
        const float* __restrict x = frames[dt] + static_cast<std::size_t>(ci) * in_f;
        for (int f = 0; f < in_f; ++f) o[f] += k * x[f];
      }
    }
  }
}

// Kernels three bins wide with one bin of padding, stride 1 or 2. Each input row is first copied with its padding
// (stride 2: split into odd and even bins), so that every tap reads consecutive memory without bounds checks:
//   stride 1: p = [0, x0 .. x(n-1), 0];              out[f] = k0 p[f] + k1 p[f+1] + k2 p[f+2]
//   stride 2: odd = [0, x1, x3, ..], even = [x0, x2, ..]; out[f] = k0 odd[f] + k1 even[f] + k2 odd[f+1]
// Outputs are summed kBlock bins at a time over every input row and tap, in registers, and stored once. Rows are
// padded with zeros to whole blocks, so a block's reads past the last output stay inside its row.
FC25_INLINE void conv_kf3(const Conv2d& c, const float* const* frames, int in_f, float* out, float* buf) {
  constexpr int B = Conv2d::kBlock;
  const int of = c.out_freqs(in_f);
  const int in_per_group = c.in_ch / c.groups, out_per_group = c.out_ch / c.groups;
  const int row = Conv2d::kf3_row(in_f);
  const int half = row / 2;   // stride 2: odd bins in [0, half), even bins in [half, row)
  for (int ci = 0; ci < c.in_ch; ++ci)
    for (int dt = 0; dt < c.kt; ++dt) {
      float* p = buf + (static_cast<std::size_t>(ci) * c.kt + dt) * row;
      std::fill(p, p + row, 0.0f);
      if (!frames[dt]) continue;
      const float* x = frames[dt] + static_cast<std::size_t>(ci) * in_f;
      if (c.stride_f == 1) {
        std::copy(x, x + in_f, p + 1);
      } else {
        for (int i = 1; 2 * i - 1 < in_f; ++i) p[i] = x[2 * i - 1];
        for (int i = 0; 2 * i < in_f; ++i) p[half + i] = x[2 * i];
      }
    }
  // The (input row, time tap) pairs that have a frame, in the order they are summed: their kernels' and padded
  // rows' offsets within a group, worked out once rather than for every output block.
  const int mid = c.stride_f == 1 ? 1 : half, right = c.stride_f == 1 ? 2 : 1;
  std::array<std::size_t, 2 * Conv2d::kMaxTerms> terms;   // kernel offset, row offset
  int nterms = 0;
  for (int cl = 0; cl < in_per_group && nterms < Conv2d::kMaxTerms; ++cl)
    for (int dt = 0; dt < c.kt; ++dt) {
      if (!frames[dt]) continue;
      terms[2 * static_cast<std::size_t>(nterms)] = (static_cast<std::size_t>(cl) * c.kt + dt) * 3;
      terms[2 * static_cast<std::size_t>(nterms) + 1] = (static_cast<std::size_t>(cl) * c.kt + dt) * row;
      ++nterms;
    }
  for (int co = 0; co < c.out_ch; ++co) {
    const int g = co / out_per_group;
    float* o = out + static_cast<std::size_t>(co) * of;
    const float bias = c.b.empty() ? 0.0f : c.b[co];
    const float* kco = c.w.data() + static_cast<std::size_t>(co) * in_per_group * c.kt * 3;
    const float* bg = buf + static_cast<std::size_t>(g) * in_per_group * c.kt * row;
    for (int f0 = 0; f0 < of; f0 += B) {
      V8 a[B / 8];
      for (auto& v : a) v = V8{} + bias;
      for (int t = 0; t < nterms; ++t) {
        const float* k = kco + terms[2 * static_cast<std::size_t>(t)];
        const float k0 = k[0], k1 = k[1], k2 = k[2];
        const float* p = bg + terms[2 * static_cast<std::size_t>(t) + 1] + f0;
        for (int v = 0; v < B / 8; ++v)
          a[v] += k0 * load8(p + 8 * v) + k1 * load8(p + mid + 8 * v) + k2 * load8(p + right + 8 * v);
      }
      alignas(32) float acc[B];
      std::memcpy(acc, a, sizeof a);
      std::copy(acc, acc + std::min(B, of - f0), o + f0);
    }
  }
}

// Any other shape: direct loops with bounds checks.
void conv_any(const Conv2d& c, const float* const* frames, int in_f, float* out) {
  const int of = c.out_freqs(in_f);
  const int in_per_group = c.in_ch / c.groups, out_per_group = c.out_ch / c.groups;
  for (int co = 0; co < c.out_ch; ++co) {
    const int g = co / out_per_group;
    float* o = out + static_cast<std::size_t>(co) * of;
    for (int f = 0; f < of; ++f) o[f] = c.b.empty() ? 0.0f : c.b[co];
    for (int cl = 0; cl < in_per_group; ++cl) {
      const int ci = g * in_per_group + cl;
      for (int dt = 0; dt < c.kt; ++dt) {
        if (!frames[dt]) continue;
        const float* x = frames[dt] + static_cast<std::size_t>(ci) * in_f;
        const float* k = c.w.data() + ((static_cast<std::size_t>(co) * in_per_group + cl) * c.kt + dt) * c.kf;
        for (int f = 0; f < of; ++f) {
          float acc = 0.0f;
          for (int df = 0; df < c.kf; ++df) {
            const int fi = f * c.stride_f - c.pad_f + df;
            if (fi >= 0 && fi < in_f) acc += k[df] * x[fi];
          }
          o[f] += acc;
        }
      }
    }
  }
}

// Depthwise, one frame, three bins with one of padding: each channel alone, the bins inside directly and the two
// edges with their missing neighbour as zero.
FC25_INLINE void conv_depthwise3(const Conv2d& c, const float* frame, int in_f, float* out) {
  const int of = c.out_freqs(in_f), s = c.stride_f;
  for (int ch = 0; ch < c.out_ch; ++ch) {
    const float* __restrict x = frame + static_cast<std::size_t>(ch) * in_f;
    float* __restrict o = out + static_cast<std::size_t>(ch) * of;
    const float k0 = c.w[ch * 3], k1 = c.w[ch * 3 + 1], k2 = c.w[ch * 3 + 2];
    const float bias = c.b.empty() ? 0.0f : c.b[ch];
    const int last = (in_f - 2) / s;   // the last output whose right neighbour exists
    o[0] = bias + k1 * x[0] + (in_f > 1 ? k2 * x[1] : 0.0f);
    if (s == 2) {
      for (int f = 1; f <= last; ++f) o[f] = bias + k0 * x[2 * f - 1] + k1 * x[2 * f] + k2 * x[2 * f + 1];
    } else {
      for (int f = 1; f <= last; ++f) o[f] = bias + k0 * x[f - 1] + k1 * x[f] + k2 * x[f + 1];
    }
    for (int f = std::max(1, last + 1); f < of; ++f) {
      const int i = f * s;
      o[f] = bias + k0 * x[i - 1] + (i < in_f ? k1 * x[i] : 0.0f) + (i + 1 < in_f ? k2 * x[i + 1] : 0.0f);
    }
  }
}

FC25_INLINE void conv_run(const Conv2d& c, const float* const* frames, int in_f, float* out) {
  if (c.kt == 1 && c.kf == 3 && c.pad_f == 1 && c.groups == c.in_ch && c.in_ch == c.out_ch && c.stride_f <= 2 &&
      frames[0]) {
    conv_depthwise3(c, frames[0], in_f, out);
    return;
  }
  if (c.kf == 1 && c.stride_f == 1 && c.pad_f == 0) {
    conv_kf1(c, frames, in_f, out);
    return;
  }
  if (c.kf == 3 && c.pad_f == 1 && (c.stride_f == 1 || c.stride_f == 2) &&
      c.in_ch * c.kt * Conv2d::kf3_row(in_f) <= Conv2d::kMaxPadded &&
      c.in_ch / c.groups * c.kt <= Conv2d::kMaxTerms) {
    alignas(32) std::array<float, Conv2d::kMaxPadded> buf;
    conv_kf3(c, frames, in_f, out, buf.data());
    return;
  }
  conv_any(c, frames, in_f, out);
}

__attribute__((target("avx2,fma"))) static void conv_run_avx2(const Conv2d& c, const float* const* frames, int in_f,
                                                             float* out) {
  conv_run(c, frames, in_f, out);
}

void conv_run_portable(const Conv2d& c, const float* const* frames, int in_f, float* out) {
  conv_run(c, frames, in_f, out);
}

// The shape DeepFilterNet3 uses (kernel 3, stride 2, padding 1, output padding 1), written out:
// out[2m] = k1 x[m], out[2m + 1] = k2 x[m] + k0 x[m + 1] (x[in_f] = 0).
FC25_INLINE void convt_s2(const ConvTranspose1x3& c, const float* in, int in_f, float* out) {
  for (int ch = 0; ch < c.ch; ++ch) {
    const float* __restrict x = in + static_cast<std::size_t>(ch) * in_f;
    float* __restrict o = out + static_cast<std::size_t>(ch) * 2 * in_f;
    const float k0 = c.w[ch * 3], k1 = c.w[ch * 3 + 1], k2 = c.w[ch * 3 + 2];
    for (int m = 0; m + 1 < in_f; ++m) {
      o[2 * m] = k1 * x[m];
      o[2 * m + 1] = k2 * x[m] + k0 * x[m + 1];
    }
    o[2 * in_f - 2] = k1 * x[in_f - 1];
    o[2 * in_f - 1] = k2 * x[in_f - 1];
  }
}

__attribute__((target("avx2,fma"))) static void convt_s2_avx2(const ConvTranspose1x3& c, const float* in, int in_f,
                                                             float* out) {
  convt_s2(c, in, in_f, out);
}

// y[k][yoff + j] += sum_i x[k][xoff + i] * w[i * ldw + j] for j < width, every stream k: one tile of a
// matrix product. Portable version; the AVX/FMA one below holds 4 streams x 16 outputs in registers.
// The weights are float or bfloat16 (W), widened as they are read.
FC25_INLINE float widen(float w) { return w; }
FC25_INLINE float widen(std::uint16_t w) { return from_bf16(w); }

template <class W>
void gemm_tile_portable(const W* __restrict w, std::size_t ldw, int rows, const float* const* x, std::size_t xoff,
                        float* const* y, std::size_t yoff, int n, int width) {
  for (int i = 0; i < rows; ++i) {
    const W* __restrict row = w + static_cast<std::size_t>(i) * ldw;
    for (int k = 0; k < n; ++k) {
      const float a = x[k][xoff + i];
      float* __restrict yk = y[k] + yoff;
      for (int j = 0; j < width; ++j) yk[j] += a * widen(row[j]);
    }
  }
}

template <class W>
void rows_one_portable(const W* __restrict w, int cols, const int* rows, int count, const float* __restrict x,
                       float* __restrict y) {
  for (int k = 0; k < count; ++k) {
    const W* __restrict row = w + static_cast<std::size_t>(rows[k]) * cols;
    const float a = x[rows[k]];
    for (int j = 0; j < cols; ++j) y[j] += a * widen(row[j]);
  }
}

// Eight weights as eight floats: loaded as they are, or (bfloat16) widened by moving each into a float's upper half.
#define FC25_AVX2_INLINE static inline __attribute__((target("avx2,fma"), always_inline))
FC25_AVX2_INLINE __m256 wload(const float* p) { return _mm256_loadu_ps(p); }
FC25_AVX2_INLINE __m256 wload(const std::uint16_t* p) {
  const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}
// The first `tail` (1..8) of eight, the others zero and not read.
FC25_AVX2_INLINE __m256 wload_first(const float* p, __m256i mask, int) { return _mm256_maskload_ps(p, mask); }
FC25_AVX2_INLINE __m256 wload_first(const std::uint16_t* p, __m256i, int tail) {
  alignas(16) std::uint16_t t[8] = {};
  std::memcpy(t, p, static_cast<std::size_t>(tail) * sizeof *p);
  return wload(t);
}

// bfloat16, sixteen at a time without a shuffle (as wload32_split on the AVX-512 path): one 32-byte load, the even
// columns by a shift, the odd ones by a mask; sums kept split so, put back in column order once per output.
FC25_AVX2_INLINE void wload16_split(const std::uint16_t* p, __m256& even, __m256& odd) {
  __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  asm("" : "+x"(v));  // one load for both halves (the compiler would fold it into each)
  even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  odd = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
}
FC25_AVX2_INLINE void split16(const float* y, __m256& even, __m256& odd) {
  const __m256 lo = _mm256_loadu_ps(y), hi = _mm256_loadu_ps(y + 8);
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xd8));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xdd)), 0xd8));
}
FC25_AVX2_INLINE void merge16(float* y, __m256 even, __m256 odd) {
  const __m256 l = _mm256_unpacklo_ps(even, odd), h = _mm256_unpackhi_ps(even, odd);
  _mm256_storeu_ps(y, _mm256_permute2f128_ps(l, h, 0x20));
  _mm256_storeu_ps(y + 8, _mm256_permute2f128_ps(l, h, 0x31));
}

// 16 outputs in two registers (as take32, put32 and madd32 on the AVX-512 path): in column order for float weights;
// for bfloat16 weights split into even and odd columns (split16), as wload16_split reads them.
FC25_AVX2_INLINE void take16(const float* y, __m256& a, __m256& b, const float*) {
  a = _mm256_loadu_ps(y);
  b = _mm256_loadu_ps(y + 8);
}
FC25_AVX2_INLINE void take16(const float* y, __m256& a, __m256& b, const std::uint16_t*) { split16(y, a, b); }
FC25_AVX2_INLINE void put16(float* y, __m256 a, __m256 b, const float*) {
  _mm256_storeu_ps(y, a);
  _mm256_storeu_ps(y + 8, b);
}
FC25_AVX2_INLINE void put16(float* y, __m256 a, __m256 b, const std::uint16_t*) { merge16(y, a, b); }
FC25_AVX2_INLINE void madd16(__m256 s, const float* r, __m256& a, __m256& b) {
  a = _mm256_fmadd_ps(s, _mm256_loadu_ps(r), a);
  b = _mm256_fmadd_ps(s, _mm256_loadu_ps(r + 8), b);
}
FC25_AVX2_INLINE void madd16(__m256 s, const std::uint16_t* r, __m256& a, __m256& b) {
  __m256 e, o;
  wload16_split(r, e, o);
  a = _mm256_fmadd_ps(s, e, a);
  b = _mm256_fmadd_ps(s, o, b);
}

// A GRU's weights stream from the last-level cache: a one-stream loop over 64 columns asks for the same columns
// of the row 4 KB ahead while this one is summed (isa.hpp, use_prefetch: only where the hardware's prefetchers lag).
template <class W>
FC25_INLINE void ask_ahead(const W* r, std::size_t ldw) {
  const char* ahead = reinterpret_cast<const char*>(r + 4096 / (64 * sizeof(W)) * ldw);
  for (unsigned c = 0; c < 64 * sizeof(W); c += 64) _mm_prefetch(ahead + c, _MM_HINT_T0);
}

// The last columns of one stream, fewer than 64: NV vectors side by side over all rows, the last one masked to the
// columns that remain (tail, 1..8).
template <int NV, class W>
__attribute__((target("avx2,fma"))) static void gemm_rest_fma(const W* __restrict w, std::size_t ldw, int rows,
                                                             const float* __restrict x0, float* __restrict y, int tail) {
  alignas(32) static constexpr int kLanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  const __m256i mask = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLanes + 8 - tail));
  constexpr int L = NV - 1;
  __m256 a[NV];
  for (int q = 0; q < L; ++q) a[q] = _mm256_loadu_ps(y + 8 * q);
  a[L] = _mm256_maskload_ps(y + 8 * L, mask);
  for (int i = 0; i < rows; ++i) {
    const W* r = w + static_cast<std::size_t>(i) * ldw;
    const __m256 s = _mm256_broadcast_ss(x0 + i);
    for (int q = 0; q < L; ++q) a[q] = _mm256_fmadd_ps(s, wload(r + 8 * q), a[q]);
    a[L] = _mm256_fmadd_ps(s, wload_first(r + 8 * L, mask, tail), a[L]);
  }
  for (int q = 0; q < L; ++q) _mm256_storeu_ps(y + 8 * q, a[q]);
  _mm256_maskstore_ps(y + 8 * L, mask, a[L]);
}

// One stream, columns [j0, width): 64 columns at a time in 8 registers (eight independent chains of fused
// multiply-adds hide their latency), then what remains in one pass, up to eight vectors side by side.
// Ahead: the rows 4 KB ahead asked for in software (isa.hpp, use_prefetch); in every kernel with that parameter.
template <class W, bool Ahead = true>
__attribute__((target("avx2,fma"))) static void gemm_one_fma(const W* __restrict w, std::size_t ldw, int rows,
                                                            const float* __restrict x0, float* __restrict y0, int j0,
                                                            int width) {
  int j = j0;
  for (; j + 64 <= width; j += 64) {
    float* yj = y0 + j;
    __m256 a[8];
    for (int q = 0; q < 4; ++q) take16(yj + 16 * q, a[2 * q], a[2 * q + 1], w);
    for (int i = 0; i < rows; ++i) {
      const W* r = w + static_cast<std::size_t>(i) * ldw + j;
      if constexpr (Ahead) ask_ahead(r, ldw);
      const __m256 s = _mm256_broadcast_ss(x0 + i);
      for (int q = 0; q < 4; ++q) madd16(s, r + 16 * q, a[2 * q], a[2 * q + 1]);
    }
    for (int q = 0; q < 4; ++q) put16(yj + 16 * q, a[2 * q], a[2 * q + 1], w);
  }
  const int rest = width - j;
  if (rest <= 0) return;
  const int tail = rest % 8 ? rest % 8 : 8;
  const W* wj = w + j;
  float* yj = y0 + j;
  switch ((rest + 7) / 8) {
    case 1: gemm_rest_fma<1, W>(wj, ldw, rows, x0, yj, tail); break;
    case 2: gemm_rest_fma<2, W>(wj, ldw, rows, x0, yj, tail); break;
    case 3: gemm_rest_fma<3, W>(wj, ldw, rows, x0, yj, tail); break;
    case 4: gemm_rest_fma<4, W>(wj, ldw, rows, x0, yj, tail); break;
    case 5: gemm_rest_fma<5, W>(wj, ldw, rows, x0, yj, tail); break;
    case 6: gemm_rest_fma<6, W>(wj, ldw, rows, x0, yj, tail); break;
    case 7: gemm_rest_fma<7, W>(wj, ldw, rows, x0, yj, tail); break;
    default: gemm_rest_fma<8, W>(wj, ldw, rows, x0, yj, tail); break;
  }
}

// Four streams x 16 columns from the strip at w (rows ldw apart): 8 accumulators over all rows, each weight loaded
// once for the four.
template <class W>
FC25_AVX2_INLINE void tile4x16(const W* __restrict w, std::size_t ldw, int rows, const float* const* x,
                               std::size_t xoff, float* const* y, std::size_t yoff) {
  const float* x0 = x[0] + xoff;
  const float* x1 = x[1] + xoff;
  const float* x2 = x[2] + xoff;
  const float* x3 = x[3] + xoff;
  float* y0 = y[0] + yoff;
  float* y1 = y[1] + yoff;
  float* y2 = y[2] + yoff;
  float* y3 = y[3] + yoff;
  __m256 a0 = _mm256_loadu_ps(y0), b0 = _mm256_loadu_ps(y0 + 8);
  __m256 a1 = _mm256_loadu_ps(y1), b1 = _mm256_loadu_ps(y1 + 8);
  __m256 a2 = _mm256_loadu_ps(y2), b2 = _mm256_loadu_ps(y2 + 8);
  __m256 a3 = _mm256_loadu_ps(y3), b3 = _mm256_loadu_ps(y3 + 8);
  for (int i = 0; i < rows; ++i) {
    const W* r = w + static_cast<std::size_t>(i) * ldw;
    const __m256 w0 = wload(r), w1 = wload(r + 8);
    __m256 s = _mm256_broadcast_ss(x0 + i);
    a0 = _mm256_fmadd_ps(s, w0, a0);
    b0 = _mm256_fmadd_ps(s, w1, b0);
    s = _mm256_broadcast_ss(x1 + i);
    a1 = _mm256_fmadd_ps(s, w0, a1);
    b1 = _mm256_fmadd_ps(s, w1, b1);
    s = _mm256_broadcast_ss(x2 + i);
    a2 = _mm256_fmadd_ps(s, w0, a2);
    b2 = _mm256_fmadd_ps(s, w1, b2);
    s = _mm256_broadcast_ss(x3 + i);
    a3 = _mm256_fmadd_ps(s, w0, a3);
    b3 = _mm256_fmadd_ps(s, w1, b3);
  }
  _mm256_storeu_ps(y0, a0); _mm256_storeu_ps(y0 + 8, b0);
  _mm256_storeu_ps(y1, a1); _mm256_storeu_ps(y1 + 8, b1);
  _mm256_storeu_ps(y2, a2); _mm256_storeu_ps(y2 + 8, b2);
  _mm256_storeu_ps(y3, a3); _mm256_storeu_ps(y3 + 8, b3);
}

// The calling thread's block for one strip of rows x 16 floats, grown as needed.
static float* strip_buffer(int rows) {
  thread_local std::vector<float> buf;
  const std::size_t need = static_cast<std::size_t>(rows) * 16;
  if (buf.size() < need) buf.resize(need);
  return buf.data();
}

// Register-blocked: 4 streams x 16 output columns accumulate in 8 registers over all rows, so each weight is
// loaded once per 4 streams and the outputs are read and written once; streams left over, and columns past the
// last 16, go through gemm_one_fma. Every output is the same chain of fused multiply-adds over the rows in the
// same order however it is blocked, so a batch gives exactly what each stream alone would.
template <class W, bool Ahead>
__attribute__((target("avx2,fma"))) static void gemm_tile_fma(const W* __restrict w, std::size_t ldw, int rows,
                                                             const float* const* x, std::size_t xoff,
                                                             float* const* y, std::size_t yoff, int n, int width) {
  const int wide = width / 16 * 16;
  int k = 0;
  if (width == 8) {
    // One block of eight columns (an 8-bin pointwise convolution): eight streams at a time keep eight chains.
    for (; k + 8 <= n; k += 8) {
      __m256 a[8];
      for (int q = 0; q < 8; ++q) a[q] = _mm256_loadu_ps(y[k + q] + yoff);
      for (int i = 0; i < rows; ++i) {
        const __m256 w0 = wload(w + static_cast<std::size_t>(i) * ldw);
        for (int q = 0; q < 8; ++q) a[q] = _mm256_fmadd_ps(_mm256_broadcast_ss(x[k + q] + xoff + i), w0, a[q]);
      }
      for (int q = 0; q < 8; ++q) _mm256_storeu_ps(y[k + q] + yoff, a[q]);
    }
  }
  // Column strips outside, streams inside: a strip of the weights (rows x 16 columns) is read from memory once
  // per hop and summed by every group of four streams. Its rows lie a whole row of the matrix apart (a multiple of
  // 128 or 256 bytes), so they fall into a few of the first-level cache's sets and evict each other before the next
  // group comes back to them; where the matrix is larger than half that cache and four groups or more share the
  // strip (fewer measured no faster), it is first copied, widened to float, into one contiguous block of the
  // thread's (16 KB for 256 rows), which stays there. Widening is exact, so the sums are the same either way.
  const int k4 = k + (n - k) / 4 * 4;
  const bool spread = static_cast<std::size_t>(rows) * ldw * sizeof(W) > 16384;
  float* packed = spread && k4 - k >= 16 ? strip_buffer(rows) : nullptr;
  for (int j = 0; j < wide; j += 16) {
    if (packed) {
      for (int i = 0; i < rows; ++i) {
        const W* r = w + static_cast<std::size_t>(i) * ldw + j;
        _mm256_storeu_ps(packed + 16 * i, wload(r));
        _mm256_storeu_ps(packed + 16 * i + 8, wload(r + 8));
      }
      for (int kk = k; kk < k4; kk += 4) tile4x16(packed, 16, rows, x + kk, xoff, y + kk, yoff + j);
    } else {
      for (int kk = k; kk < k4; kk += 4) tile4x16(w + j, ldw, rows, x + kk, xoff, y + kk, yoff + j);
    }
  }
  for (; k < k4; k += 4) {
    const float* x0 = x[k] + xoff;
    const float* x1 = x[k + 1] + xoff;
    const float* x2 = x[k + 2] + xoff;
    const float* x3 = x[k + 3] + xoff;
    int j = wide;
    if (width - j >= 8) {
      // Eight columns left (an 8-bin pointwise convolution): the four streams still give four chains.
      float* y0 = y[k] + yoff + j;
      float* y1 = y[k + 1] + yoff + j;
      float* y2 = y[k + 2] + yoff + j;
      float* y3 = y[k + 3] + yoff + j;
      __m256 a0 = _mm256_loadu_ps(y0), a1 = _mm256_loadu_ps(y1), a2 = _mm256_loadu_ps(y2), a3 = _mm256_loadu_ps(y3);
      for (int i = 0; i < rows; ++i) {
        const __m256 w0 = wload(w + static_cast<std::size_t>(i) * ldw + j);
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(x0 + i), w0, a0);
        a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(x1 + i), w0, a1);
        a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(x2 + i), w0, a2);
        a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(x3 + i), w0, a3);
      }
      _mm256_storeu_ps(y0, a0); _mm256_storeu_ps(y1, a1); _mm256_storeu_ps(y2, a2); _mm256_storeu_ps(y3, a3);
      j += 8;
    }
    for (int q = 0; q < 4; ++q) gemm_one_fma<W, Ahead>(w, ldw, rows, x[k + q] + xoff, y[k + q] + yoff, j, width);
  }
  for (; k < n; ++k) gemm_one_fma<W, Ahead>(w, ldw, rows, x[k] + xoff, y[k] + yoff, 0, width);
}

// One stream through a grouped linear whose groups are V vectors (8 V outputs) wide: the groups are independent,
// so 8 / V of them run side by side and eight chains of fused multiply-adds are in flight, where one group alone
// would leave V. Each output is the same chain over the rows as in gemm_tile_fma.
template <int V, class W>
__attribute__((target("avx2,fma"))) static void grouped_one_fma(const W* __restrict w, int groups, int in,
                                                               const float* __restrict x, float* __restrict y) {
  constexpr int G = 8 / V, out = 8 * V;
  int g = 0;
  for (; g + G <= groups; g += G) {
    __m256 a[G][V];
    for (int q = 0; q < G; ++q)
      for (int v = 0; v < V; ++v) a[q][v] = _mm256_loadu_ps(y + (g + q) * out + 8 * v);
    for (int i = 0; i < in; ++i)
      for (int q = 0; q < G; ++q) {
        const __m256 s = _mm256_broadcast_ss(x + (g + q) * in + i);
        const W* r = w + (static_cast<std::size_t>(g + q) * in + i) * out;
        for (int v = 0; v < V; ++v) a[q][v] = _mm256_fmadd_ps(s, wload(r + 8 * v), a[q][v]);
      }
    for (int q = 0; q < G; ++q)
      for (int v = 0; v < V; ++v) _mm256_storeu_ps(y + (g + q) * out + 8 * v, a[q][v]);
  }
  for (; g < groups; ++g)
    gemm_one_fma<W>(w + static_cast<std::size_t>(g) * in * out, out, in, x + g * in, y + g * out, 0, out);
}

template <class W>
void grouped_one_avx2(const W* w, int groups, int in, int out, const float* x, float* y) {
  if (out == 8) grouped_one_fma<1>(w, groups, in, x, y);
  else if (out == 16) grouped_one_fma<2>(w, groups, in, x, y);
  else grouped_one_fma<4>(w, groups, in, x, y);
}

// glibc's vector math (libmvec), AVX2 variants: 8 lanes of expf / tanhf, within 4 ulp.
extern "C" __m256 _ZGVdN8v_expf(__m256);
extern "C" __m256 _ZGVdN8v_tanhf(__m256);

// The GRU's gates for one stream: h = (1 - z) * n + z * h, z = sigmoid(gx_z + gh_z), r = sigmoid(gx_r + gh_r),
// n = tanh(gx_n + r * gh_n). Eight lanes at a time where the processor has AVX2.
__attribute__((target("avx2,fma"))) static void gru_gates_avx2(const float* gx, const float* gh, float* h, int H) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  for (int j = 0; j < H; j += 8) {
    const __m256 xz = _mm256_add_ps(_mm256_loadu_ps(gx + j), _mm256_loadu_ps(gh + j));
    const __m256 xr = _mm256_add_ps(_mm256_loadu_ps(gx + H + j), _mm256_loadu_ps(gh + H + j));
    const __m256 z = _mm256_div_ps(one, _mm256_add_ps(one, _ZGVdN8v_expf(_mm256_sub_ps(zero, xz))));
    const __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, _ZGVdN8v_expf(_mm256_sub_ps(zero, xr))));
    const __m256 nn = _ZGVdN8v_tanhf(
        _mm256_fmadd_ps(r, _mm256_loadu_ps(gh + 2 * H + j), _mm256_loadu_ps(gx + 2 * H + j)));
    const __m256 hv = _mm256_loadu_ps(h + j);
    _mm256_storeu_ps(h + j, _mm256_fmadd_ps(z, _mm256_sub_ps(hv, nn), nn));  // (1 - z) n + z h
  }
}

__attribute__((target("avx2,fma"))) static void tanh_avx2(float* x, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _ZGVdN8v_tanhf(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) x[i] = std::tanh(x[i]);
}

void tanh_portable(float* x, int n) {
  for (int i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
}

void gru_gates_portable(const float* gx, const float* gh, float* h, int H) {
  for (int j = 0; j < H; ++j) {
    const float z = sigmoid(gx[j] + gh[j]);
    const float rg = sigmoid(gx[H + j] + gh[H + j]);
    const float nn = std::tanh(gx[2 * H + j] + rg * gh[2 * H + j]);
    h[j] = (1.0f - z) * nn + z * h[j];
  }
}

void gru_gates_vector(const float* gx, const float* gh, float* h, int H) {
  if (H % 8 == 0) gru_gates_avx2(gx, gh, h, H);
  else gru_gates_portable(gx, gh, h, H);
}

void convt_s2_portable(const ConvTranspose1x3& c, const float* in, int in_f, float* out) { convt_s2(c, in, in_f, out); }

// The listed rows four at a time: each output is loaded, takes the four rows' multiply-adds in order, and is
// stored (the outputs, 3 KB for a GRU, stay in the first-level cache); the next four rows are asked for meanwhile.
// Step is the vector width's part: Step::kCols columns of `y` given N rows' multiply-adds, one call per step. Only
// pointers and floats cross into it, so the walk itself needs no vector instructions; the kernels below that run
// it are flattened, which inlines every step.
template <class Step, bool Ahead, class W>
FC25_INLINE void walk_rows(const W* __restrict w, int cols, const int* rows, int count, const float* __restrict x,
                           float* __restrict y) {
  const auto row = [&](int k) { return w + static_cast<std::size_t>(rows[k]) * cols; };
  int k = 0;
  for (; k + 4 <= count; k += 4) {
    const W* r[4] = {row(k), row(k + 1), row(k + 2), row(k + 3)};
    const float b[4] = {x[rows[k]], x[rows[k + 1]], x[rows[k + 2]], x[rows[k + 3]]};
    const W* next[4] = {row(std::min(k + 4, count - 1)), row(std::min(k + 5, count - 1)),
                        row(std::min(k + 6, count - 1)), row(std::min(k + 7, count - 1))};
    for (int c = 0; c < cols; c += Step::kCols) {
      if (Ahead && c % (64 / sizeof(W)) == 0)
        for (const W* n : next) _mm_prefetch(reinterpret_cast<const char*>(n + c), _MM_HINT_T0);
      Step::template add<4>(y + c, r, b, c);
    }
  }
  for (; k < count; ++k) {
    const W* r[1] = {row(k)};
    const float b[1] = {x[rows[k]]};
    for (int c = 0; c < cols; c += Step::kCols) Step::template add<1>(y + c, r, b, c);
  }
}

// Eight outputs in column order, any weights.
template <class W>
struct Rows8 {
  static constexpr int kCols = 8;
  template <int N>
  __attribute__((target("avx2,fma"))) static void add(float* y, const W* const* r, const float* b, int c) {
    __m256 a = _mm256_loadu_ps(y);
    for (int q = 0; q < N; ++q) a = _mm256_fmadd_ps(_mm256_set1_ps(b[q]), wload(r[q] + c), a);
    _mm256_storeu_ps(y, a);
  }
};
// Sixteen bfloat16 columns held split (split16): the even outputs, then the odd ones.
struct RowsSplit16 {
  static constexpr int kCols = 16;
  template <int N>
  __attribute__((target("avx2,fma"))) static void add(float* y, const std::uint16_t* const* r, const float* b, int c) {
    __m256 ae = _mm256_load_ps(y), ao = _mm256_load_ps(y + 8);
    for (int q = 0; q < N; ++q) madd16(_mm256_set1_ps(b[q]), r[q] + c, ae, ao);
    _mm256_store_ps(y, ae);
    _mm256_store_ps(y + 8, ao);
  }
  __attribute__((target("avx2,fma"))) static void take(const float* y, float* sp) {
    split16(y, *reinterpret_cast<__m256*>(sp), *reinterpret_cast<__m256*>(sp + 8));
  }
  __attribute__((target("avx2,fma"))) static void put(float* y, const float* sp) {
    merge16(y, _mm256_load_ps(sp), _mm256_load_ps(sp + 8));
  }
};

// The rows' products for one stream: walk_rows with Plain's steps over the outputs in column order, or, for
// bfloat16 weights whose outputs are whole Split steps wide, over a copy of the outputs split into even and odd
// columns (Split::take), put back in order at the end (Split::put).
template <class Plain, class Split, bool Ahead, class W>
FC25_INLINE void rows_one_vector(const W* __restrict w, int cols, const int* rows, int count,
                                 const float* __restrict x, float* __restrict y) {
  constexpr int kMaxSplitCols = 4096;
  if constexpr (std::is_same_v<W, std::uint16_t>) {
    if (cols % Split::kCols == 0 && cols <= kMaxSplitCols) {
      alignas(64) float sp[kMaxSplitCols];
      for (int c = 0; c < cols; c += Split::kCols) Split::take(y + c, sp + c);
      walk_rows<Split, Ahead>(w, cols, rows, count, x, sp);
      for (int c = 0; c < cols; c += Split::kCols) Split::put(y + c, sp + c);
      return;
    }
  }
  walk_rows<Plain, Ahead>(w, cols, rows, count, x, y);
}

template <class W, bool Ahead>
__attribute__((target("avx2,fma"), flatten)) static void rows_one_fma(const W* __restrict w, int cols,
                                                                       const int* rows, int count,
                                                                       const float* __restrict x, float* __restrict y) {
  rows_one_vector<Rows8<W>, RowsSplit16, Ahead>(w, cols, rows, count, x, y);
}

// ---- AVX-512: the matrix products in 16-lane registers. Every output is still one chain of fused multiply-adds
// over the rows in order, so this path gives, bit for bit, what the AVX2 path gives. ----
// GCC 12's AVX-512 headers start some intrinsics from an "undefined" register and then warn about it when inlined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define FC25_512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
#define FC25_512_INLINE static inline __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"), always_inline))

// Sixteen weights as sixteen floats, those outside `m` zero and not read.
FC25_512_INLINE __m512 wload16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
FC25_512_INLINE __m512 wload16(const std::uint16_t* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}
FC25_512_INLINE __m512 wload16(const float* p) { return _mm512_loadu_ps(p); }
FC25_512_INLINE __m512 wload16(const std::uint16_t* p) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}
FC25_512_INLINE __mmask16 lanes(int n) { return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1); }

constexpr int kStripAhead = 96;
// S streams x V vectors of outputs (columns [j, j + 16 V), those past `width` masked) in S V registers over all rows.
template <class W, int S, int V>
FC25_512 static void strip512(const W* __restrict w, std::size_t ldw, int rows, const float* const* x,
                              std::size_t xoff, float* const* y, std::size_t yoff, int j, int width) {
  __mmask16 m[V];
  #pragma GCC unroll 16
  for (int v = 0; v < V; ++v) m[v] = lanes(width - j - 16 * v);
  __m512 a[S][V];
  #pragma GCC unroll 16
  for (int s = 0; s < S; ++s)
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) a[s][v] = _mm512_maskz_loadu_ps(m[v], y[s] + yoff + j + 16 * v);
  // The strip's part of the row kStripAhead rows on is asked for (in the strip's last rows, the next strip's first
  // ones): in a server the weights leave the caches between passes, and read back from memory a strip at a time,
  // rows 256 B (a GRU's recurrent panels) or 3 KB (its input matrix) apart, they reach the core late by the
  // processor's own prefetchers alone. Asking past the matrix's end is harmless (a prefetch never faults).
  for (int i = 0; i < rows; ++i) {
    const W* r = w + static_cast<std::size_t>(i) * ldw + j;
    const W* ahead = i + kStripAhead < rows ? r + kStripAhead * ldw
                                            : w + static_cast<std::size_t>(i + kStripAhead - rows) * ldw + j + 16 * V;
    for (unsigned c = 0; c < 16 * V * sizeof(W); c += 64) _mm_prefetch(reinterpret_cast<const char*>(ahead) + c, _MM_HINT_T0);
    __m512 wv[V];
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) wv[v] = wload16(r + 16 * v, m[v]);
    #pragma GCC unroll 16
    for (int s = 0; s < S; ++s) {
      const __m512 b = _mm512_set1_ps(x[s][xoff + i]);
      #pragma GCC unroll 16
      for (int v = 0; v < V; ++v) a[s][v] = _mm512_fmadd_ps(b, wv[v], a[s][v]);
    }
  }
  #pragma GCC unroll 16
  for (int s = 0; s < S; ++s)
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) _mm512_mask_storeu_ps(y[s] + yoff + j + 16 * v, m[v], a[s][v]);
}

// One stream: 64 columns (four registers) at a time, with the rows 4 KB ahead asked for, then what remains masked.
template <class W, bool Ahead = true>
FC25_512 static void gemm_one512(const W* __restrict w, std::size_t ldw, int rows, const float* __restrict x0,
                                 float* __restrict y0, int width) {
  int j = 0;
  for (; j + 64 <= width; j += 64) {
    __m512 a[4];
    #pragma GCC unroll 16
    for (int q = 0; q < 4; ++q) a[q] = _mm512_loadu_ps(y0 + j + 16 * q);
    for (int i = 0; i < rows; ++i) {
      const W* r = w + static_cast<std::size_t>(i) * ldw + j;
      if constexpr (Ahead) ask_ahead(r, ldw);
      const __m512 b = _mm512_set1_ps(x0[i]);
      #pragma GCC unroll 16
      for (int q = 0; q < 4; ++q) a[q] = _mm512_fmadd_ps(b, wload16(r + 16 * q), a[q]);
    }
    #pragma GCC unroll 16
    for (int q = 0; q < 4; ++q) _mm512_storeu_ps(y0 + j + 16 * q, a[q]);
  }
  const float* xs[1] = {x0};
  float* ys[1] = {y0};
  for (; j < width; j += 64) strip512<W, 1, 4>(w, ldw, rows, xs, 0, ys, 0, j, width);
}

// Streams in eights and fours over strips of 32 columns (48 for the last ones where that leaves none), or eights over
// strips of 16 where a strip is no wider (the 8- and 16-bin pointwise convolutions); a strip of the weights stays in
// the first-level cache while every group of streams runs over it. Streams left over run together or alone.
template <class W, bool Ahead>
FC25_512 static void gemm_tile512(const W* __restrict w, std::size_t ldw, int rows, const float* const* x,
                                  std::size_t xoff, float* const* y, std::size_t yoff, int n, int width) {
  if (width <= 16) {
    const int k8 = n / 8 * 8;
    for (int k = 0; k < k8; k += 8) strip512<W, 8, 1>(w, ldw, rows, x + k, xoff, y + k, yoff, 0, width);
    for (int k = k8; k < n; ++k) strip512<W, 1, 1>(w, ldw, rows, x + k, xoff, y + k, yoff, 0, width);
    return;
  }
  const int k8 = n / 8 * 8, k4 = n / 4 * 4;
  for (int j = 0; j < width;) {
    if (width - j > 32 && width - j <= 48) {
      // The last 33-48 columns in one strip of three registers (a 48-bin convolution), not a full strip and one
      // that is mostly masked lanes.
      for (int k = 0; k < k8; k += 8) strip512<W, 8, 3>(w, ldw, rows, x + k, xoff, y + k, yoff, j, width);
      for (int k = k8; k < k4; k += 4) strip512<W, 4, 3>(w, ldw, rows, x + k, xoff, y + k, yoff, j, width);
      j += 48;
      continue;
    }
    for (int k = 0; k < k8; k += 8) strip512<W, 8, 2>(w, ldw, rows, x + k, xoff, y + k, yoff, j, width);
    for (int k = k8; k < k4; k += 4) strip512<W, 4, 2>(w, ldw, rows, x + k, xoff, y + k, yoff, j, width);
    j += 32;
  }
  // Two or three streams left (or a batch that small): together over strips of 64 columns, each weight read once
  // for them; one alone takes gemm_one512.
  if (n - k4 >= 2) {
    for (int j = 0; j < width; j += 64) {
      if (n - k4 == 2) strip512<W, 2, 4>(w, ldw, rows, x + k4, xoff, y + k4, yoff, j, width);
      else strip512<W, 3, 4>(w, ldw, rows, x + k4, xoff, y + k4, yoff, j, width);
    }
  } else if (n - k4 == 1) {
    gemm_one512<W, Ahead>(w, ldw, rows, x[k4] + xoff, y[k4] + yoff, width);
  }
}

// bfloat16 weights, 32 at a time without a shuffle: one 64-byte load holds 32 consecutive columns, a column pair
// per 32-bit lane; shifted left by 16 the lanes are the even columns as floats, masked to their top half the odd
// ones. The sums are kept split the same way (each 32 columns as an even and an odd register) and put back in
// column order once per output, so every output takes the same multiply-adds in the same order as with wload16.
FC25_512_INLINE void wload32_split(const std::uint16_t* p, __m512& even, __m512& odd) {
  __m512i v = _mm512_loadu_si512(p);
  asm("" : "+v"(v));  // one load for both halves (the compiler would fold it into each)
  even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}
// 32 outputs [y, y + 32) as two registers in another order: a holds the lanes `idx`, b the lanes idx + step; and
// back, y[0, 16) the lanes `idx` of (a, b) and y[16, 32) the lanes idx + 8.
FC25_512_INLINE void gather32(const float* y, __m512i idx, int step, __m512& a, __m512& b) {
  const __m512 lo = _mm512_loadu_ps(y), hi = _mm512_loadu_ps(y + 16);
  a = _mm512_permutex2var_ps(lo, idx, hi);
  b = _mm512_permutex2var_ps(lo, _mm512_add_epi32(idx, _mm512_set1_epi32(step)), hi);
}
FC25_512_INLINE void scatter32(float* y, __m512i idx, __m512 a, __m512 b) {
  _mm512_storeu_ps(y, _mm512_permutex2var_ps(a, idx, b));
  _mm512_storeu_ps(y + 16, _mm512_permutex2var_ps(a, _mm512_add_epi32(idx, _mm512_set1_epi32(8)), b));
}
FC25_512_INLINE void split32(const float* y, __m512& even, __m512& odd) {
  gather32(y, _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0), 1, even, odd);
}
FC25_512_INLINE void merge32(float* y, __m512 even, __m512 odd) {
  scatter32(y, _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0), even, odd);
}

// 32 outputs in two registers, for the loops over 64-gate panels: in column order for float weights; for bfloat16
// weights split into even and odd columns (split32), as wload32_split reads them.
FC25_512_INLINE void take32(const float* y, __m512& a, __m512& b, const float*) {
  a = _mm512_loadu_ps(y);
  b = _mm512_loadu_ps(y + 16);
}
FC25_512_INLINE void take32(const float* y, __m512& a, __m512& b, const std::uint16_t*) { split32(y, a, b); }
FC25_512_INLINE void put32(float* y, __m512 a, __m512 b, const float*) {
  _mm512_storeu_ps(y, a);
  _mm512_storeu_ps(y + 16, b);
}
FC25_512_INLINE void put32(float* y, __m512 a, __m512 b, const std::uint16_t*) { merge32(y, a, b); }
FC25_512_INLINE void madd32(__m512 s, const float* r, __m512& a, __m512& b) {
  a = _mm512_fmadd_ps(s, _mm512_loadu_ps(r), a);
  b = _mm512_fmadd_ps(s, _mm512_loadu_ps(r + 16), b);
}
FC25_512_INLINE void madd32(__m512 s, const std::uint16_t* r, __m512& a, __m512& b) {
  __m512 e, o;
  wload32_split(r, e, o);
  a = _mm512_fmadd_ps(s, e, a);
  b = _mm512_fmadd_ps(s, o, b);
}

// One stream through a GRU's panels (Gru::kPanel = 64 gates each, [rows][64], one after the other): two panels
// side by side, eight chains of fused multiply-adds where one panel gives four.
template <class W, bool Ahead>
FC25_512 static void panels_one512(const W* __restrict w, int rows, int panels, const float* __restrict x,
                                   float* __restrict y) {
  static_assert(Gru::kPanel == 64, "four registers per panel");
  const std::size_t panel = static_cast<std::size_t>(rows) * 64;
  int p = 0;
  for (; p + 2 <= panels; p += 2) {
    const W* w0 = w + p * panel;
    const W* w1 = w0 + panel;
    float* y0 = y + p * 64;
    __m512 a[8];
    #pragma GCC unroll 16
    for (int q = 0; q < 4; ++q) take32(y0 + 32 * q, a[2 * q], a[2 * q + 1], w);
    for (int i = 0; i < rows; ++i) {
      const W* r0 = w0 + static_cast<std::size_t>(i) * 64;
      const W* r1 = w1 + static_cast<std::size_t>(i) * 64;
      if constexpr (Ahead) {
        ask_ahead(r0, 64);
        ask_ahead(r1, 64);
      }
      const __m512 b = _mm512_set1_ps(x[i]);
      #pragma GCC unroll 16
      for (int q = 0; q < 2; ++q) madd32(b, r0 + 32 * q, a[2 * q], a[2 * q + 1]);
      #pragma GCC unroll 16
      for (int q = 0; q < 2; ++q) madd32(b, r1 + 32 * q, a[4 + 2 * q], a[5 + 2 * q]);
    }
    #pragma GCC unroll 16
    for (int q = 0; q < 4; ++q) put32(y0 + 32 * q, a[2 * q], a[2 * q + 1], w);
  }
  if (p < panels) gemm_one512<W, Ahead>(w + p * panel, 64, rows, x, y + p * 64, 64);
}

// walk_rows' steps sixteen lanes wide: sixteen outputs in column order, any weights; 32 bfloat16 columns split.
template <class W>
struct Rows16 {
  static constexpr int kCols = 16;
  template <int N>
  FC25_512 static void add(float* y, const W* const* r, const float* b, int c) {
    __m512 a = _mm512_loadu_ps(y);
    for (int q = 0; q < N; ++q) a = _mm512_fmadd_ps(_mm512_set1_ps(b[q]), wload16(r[q] + c), a);
    _mm512_storeu_ps(y, a);
  }
};
struct RowsSplit32 {
  static constexpr int kCols = 32;
  template <int N>
  FC25_512 static void add(float* y, const std::uint16_t* const* r, const float* b, int c) {
    __m512 ae = _mm512_load_ps(y), ao = _mm512_load_ps(y + 16);
    for (int q = 0; q < N; ++q) madd32(_mm512_set1_ps(b[q]), r[q] + c, ae, ao);
    _mm512_store_ps(y, ae);
    _mm512_store_ps(y + 16, ao);
  }
  FC25_512 static void take(const float* y, float* sp) {
    split32(y, *reinterpret_cast<__m512*>(sp), *reinterpret_cast<__m512*>(sp + 16));
  }
  FC25_512 static void put(float* y, const float* sp) { merge32(y, _mm512_load_ps(sp), _mm512_load_ps(sp + 16)); }
};

// As rows_one_fma, sixteen lanes at a time (bfloat16: 32, split).
template <class W, bool Ahead>
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"), flatten)) static void rows_one512(
    const W* __restrict w, int cols, const int* rows, int count, const float* __restrict x, float* __restrict y) {
  rows_one_vector<Rows16<W>, RowsSplit32, Ahead>(w, cols, rows, count, x, y);
}

// A GRU step's inputs as its bfloat16 products take them (bf16_flushed, and back to float), eight at a time.
using U32x8 = std::uint32_t __attribute__((vector_size(32)));
FC25_INLINE void round_bf16(const float* x, float* out, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    U32x8 u;
    std::memcpy(&u, x + i, sizeof u);
    U32x8 r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;          // to nearest, ties to even
    r &= (U32x8)((r & 0x7f800000u) != 0) | 0x80000000u;                  // below the smallest normal: zero
    std::memcpy(out + i, &r, sizeof r);
  }
  for (; i < n; ++i) out[i] = from_bf16(bf16_flushed(x[i]));
}
void round_bf16_portable(const float* x, float* out, int n) { round_bf16(x, out, n); }
__attribute__((target("avx2,fma"))) static void round_bf16_avx2(const float* x, float* out, int n) { round_bf16(x, out, n); }

// ---- vdpbf16ps (AVX512-BF16): a GRU's bfloat16 rows two at a time. The inputs are bfloat16 values already
// (Gru::to_bf16), so every product is exact in float and each of vdpbf16ps's two additions rounds once, the word's
// upper half first: with the first of two rows there, a pair of rows gives what two fused multiply-adds in row
// order give on every other path. ----
#define FC25_BF16 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,avx512bf16")))
#define FC25_BF16_INLINE \
  static inline __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,avx512bf16"), always_inline))

FC25_INLINE std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Two inputs as the word a pair of rows is multiplied by: the first's bfloat16 in the upper half.
FC25_BF16_INLINE __m512i input_pair(float first, float second) {
  return _mm512_set1_epi32(static_cast<int>((float_bits(first) & 0xffff0000u) | (float_bits(second) >> 16)));
}

// Two rows' 32 weights as 16 pairs in each of two registers, the first row's in each word's upper half. vpunpck*wd
// interleave within 128-bit lanes: lo holds columns 0-3, 8-11, 16-19 and 24-27, hi the others; the sums are kept in
// that order (split_lohi) and put back in column order once (merge_lohi).
FC25_BF16_INLINE void row_pair(const std::uint16_t* first, const std::uint16_t* second, __m512i& lo, __m512i& hi) {
  const __m512i a = _mm512_loadu_si512(second), b = _mm512_loadu_si512(first);
  lo = _mm512_unpacklo_epi16(a, b);
  hi = _mm512_unpackhi_epi16(a, b);
}
FC25_BF16_INLINE void split_lohi(const float* y, __m512& lo, __m512& hi) {
  gather32(y, _mm512_set_epi32(27, 26, 25, 24, 19, 18, 17, 16, 11, 10, 9, 8, 3, 2, 1, 0), 4, lo, hi);
}
FC25_BF16_INLINE void merge_lohi(float* y, __m512 lo, __m512 hi) {
  scatter32(y, _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0), lo, hi);
}
FC25_BF16_INLINE void dot2(__m512& lo, __m512& hi, __m512i wlo, __m512i whi, __m512i x) {
  lo = _mm512_dpbf16_ps(lo, (__m512bh)wlo, (__m512bh)x);
  hi = _mm512_dpbf16_ps(hi, (__m512bh)whi, (__m512bh)x);
}

// S streams over 32 columns, rows two at a time: each pair of rows interleaved once for all S.
template <int S>
FC25_BF16_INLINE void strip_dot(const std::uint16_t* w, std::size_t ldw, int rows, const float* const* x,
                                std::size_t xoff, float* const* y, std::size_t yoff) {
  __m512 lo[S], hi[S];
  for (int s = 0; s < S; ++s) split_lohi(y[s] + yoff, lo[s], hi[s]);
  const bool far = ldw * sizeof(std::uint16_t) > 1024;
  int i = 0;
  for (; i + 2 <= rows; i += 2) {
    const std::uint16_t* r = w + static_cast<std::size_t>(i) * ldw;
    if (far) {
      _mm_prefetch(reinterpret_cast<const char*>(r + 8 * ldw), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(r + 9 * ldw), _MM_HINT_T0);
    }
    __m512i wl, wh;
    row_pair(r, r + ldw, wl, wh);
    for (int s = 0; s < S; ++s) dot2(lo[s], hi[s], wl, wh, input_pair(x[s][xoff + i], x[s][xoff + i + 1]));
  }
  if (i < rows) {
    const std::uint16_t* r = w + static_cast<std::size_t>(i) * ldw;
    __m512i wl, wh;
    row_pair(r, r, wl, wh);
    for (int s = 0; s < S; ++s) dot2(lo[s], hi[s], wl, wh, input_pair(x[s][xoff + i], 0.0f));
  }
  for (int s = 0; s < S; ++s) merge_lohi(y[s] + yoff, lo[s], hi[s]);
}

// Streams in eights, fours and ones over strips of 32 columns; a width not a multiple of 32 goes (the same bits)
// through gemm_tile512.
template <bool Ahead>
FC25_BF16 static void gru_tile_dot(const std::uint16_t* __restrict w, std::size_t ldw, int rows, const float* const* x,
                                   std::size_t xoff, float* const* y, std::size_t yoff, int n, int width) {
  if (width % 32 != 0) {
    gemm_tile512<std::uint16_t, Ahead>(w, ldw, rows, x, xoff, y, yoff, n, width);
    return;
  }
  for (int j = 0; j < width; j += 32) {
    int k = 0;
    for (; k + 8 <= n; k += 8) strip_dot<8>(w + j, ldw, rows, x + k, xoff, y + k, yoff + j);
    for (; k + 4 <= n; k += 4) strip_dot<4>(w + j, ldw, rows, x + k, xoff, y + k, yoff + j);
    for (; k < n; ++k) strip_dot<1>(w + j, ldw, rows, x + k, xoff, y + k, yoff + j);
  }
}

constexpr Kernels kPortable{gemm_tile_portable<float>, gemm_tile_portable<std::uint16_t>, nullptr, nullptr,
                            conv_run_portable, convt_s2_portable, gru_gates_portable, tanh_portable, nullptr, nullptr,
                            rows_one_portable<float>, rows_one_portable<std::uint16_t>,
                            gemm_tile_portable<std::uint16_t>, round_bf16_portable};
template <bool Ahead>
constexpr Kernels kAvx2{gemm_tile_fma<float, Ahead>, gemm_tile_fma<std::uint16_t, Ahead>, grouped_one_avx2<float>,
                        grouped_one_avx2<std::uint16_t>, conv_run_avx2, convt_s2_avx2, gru_gates_vector, tanh_avx2,
                        nullptr, nullptr, rows_one_fma<float, Ahead>, rows_one_fma<std::uint16_t, Ahead>,
                        gemm_tile_fma<std::uint16_t, Ahead>, round_bf16_avx2};
// The convolutions, grouped linears of one stream and the gates are the AVX2 path's.
// A GRU's bfloat16 products for several streams by vdpbf16ps (Dot) or with each weight widened to float. One
// stream widens either way: it is held by reading the weights, and vdpbf16ps (its rows interleaved in registers)
// measured no faster there (docs/benchmarks/denoise.md).
template <bool Ahead, bool Dot>
constexpr Kernels kAvx512{gemm_tile512<float, Ahead>, gemm_tile512<std::uint16_t, Ahead>, grouped_one_avx2<float>,
                          grouped_one_avx2<std::uint16_t>, conv_run_avx2, convt_s2_avx2, gru_gates_vector, tanh_avx2,
                          panels_one512<float, Ahead>, panels_one512<std::uint16_t, Ahead>, rows_one512<float, Ahead>,
                          rows_one512<std::uint16_t, Ahead>,
                          Dot ? gru_tile_dot<Ahead> : gemm_tile512<std::uint16_t, Ahead>, round_bf16_avx2};

}  // namespace

const Kernels& kernels(Isa isa, bool prefetch, bool bf16_dot) {
  switch (isa) {
    case Isa::avx512:
      if (bf16_dot) return prefetch ? kAvx512<true, true> : kAvx512<false, true>;
      return prefetch ? kAvx512<true, false> : kAvx512<false, false>;
    case Isa::avx2: return prefetch ? kAvx2<true> : kAvx2<false>;
    case Isa::portable: break;
  }
  return kPortable;
}

}  // namespace fc25::denoise::nn
