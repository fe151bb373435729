#include "denoise/dsp/fft.hpp"

#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// 32-byte vector values (V8) pass only between always-inlined functions, so how a baseline build would pass them in
// registers never matters; GCC warns about that ABI at every such call in the baseline instantiation.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace fc25::denoise::dsp {
namespace {

// Eight floats; loads and stores need no alignment. Plain vector arithmetic (no intrinsics), so the same source
// builds for baseline x86-64 and for AVX2.
using V8 = float __attribute__((vector_size(32), may_alias, aligned(4)));
#define FC25_FFT_INLINE static inline __attribute__((always_inline))

FC25_FFT_INLINE V8 ld(const float* p) { return *reinterpret_cast<const V8*>(p); }
FC25_FFT_INLINE void st(float* p, V8 v) { *reinterpret_cast<V8*>(p) = v; }
using I8 = int __attribute__((vector_size(32)));
FC25_FFT_INLINE V8 reversed(V8 v) { return __builtin_shuffle(v, I8{7, 6, 5, 4, 3, 2, 1, 0}); }
// Eight complex values from split parts to (re, im) pairs at p (sixteen floats).
FC25_FFT_INLINE void st_pairs(float* p, V8 re, V8 im) {
  st(p, __builtin_shuffle(re, im, I8{0, 8, 1, 9, 2, 10, 3, 11}));
  st(p + 8, __builtin_shuffle(re, im, I8{4, 12, 5, 13, 6, 14, 7, 15}));
}
// Eight (re, im) pairs at p to split parts.
FC25_FFT_INLINE void ld_pairs(const float* p, V8& re, V8& im) {
  const V8 a = ld(p), b = ld(p + 8);
  re = __builtin_shuffle(a, b, I8{0, 2, 4, 6, 8, 10, 12, 14});
  im = __builtin_shuffle(a, b, I8{1, 3, 5, 7, 9, 11, 13, 15});
}

int pad8(int n) { return (n + 7) / 8 * 8; }

// Radices of n, fours first: 16 -> 4 4, 30 -> 2 3 5.
std::vector<int> radices_of(int n) {
  std::vector<int> r;
  while (n % 4 == 0) r.push_back(4), n /= 4;
  while (n % 2 == 0) r.push_back(2), n /= 2;
  for (int p = 3; n > 1; p += 2)
    while (n % p == 0) r.push_back(p), n /= p;
  return r;
}

// n-point transforms of `lanes` sequences side by side, [n][stride] floats (stride = lanes rounded up to eight),
// by Stockham's autosort algorithm: each stage reads the previous stage's output and writes the other buffer, and
// the result comes out in order. Stage with radix r on sub-transforms of length len (m = len / r) and s of them
// interleaved: rows s (p + j m) .. + s, j < r, give rows s (r p + k) .. + s, k < r, as
// y_k = w^(p k) sum_j x_j e^(sign 2 pi i j k / r), w = e^(sign 2 pi i / len). The s rows of a (p, j) are
// contiguous, so every butterfly runs over s whole rows of vectors.
struct Batched {
  int n = 1, lanes = 0, stride = 0;
  float sign = -1.0f;
  std::vector<int> radices;
  std::vector<float> tw_re, tw_im;   // per stage, per p < m, per k in 1 .. r - 1: w^(p k)
  // For each radix above 5, in order: r, then e^(sign 2 pi i q / r) for q < r (gen_im: 0, then the same).
  std::vector<float> gen_re, gen_im;

  Batched() = default;
  Batched(int n_, int lanes_, float sign_) : n(n_), lanes(lanes_), stride(pad8(lanes_)), sign(sign_) {
    radices = radices_of(n);
    int len = n;
    for (int r : radices) {
      const int m = len / r;
      for (int p = 0; p < m; ++p)
        for (int k = 1; k < r; ++k) {
          const double a = sign * 2.0 * M_PI * static_cast<double>(p) * k / len;
          tw_re.push_back(static_cast<float>(std::cos(a)));
          tw_im.push_back(static_cast<float>(std::sin(a)));
        }
      if (r > 5) {
        gen_re.push_back(static_cast<float>(r));
        gen_im.push_back(0.0f);
        for (int q = 0; q < r; ++q) {
          gen_re.push_back(static_cast<float>(std::cos(sign * 2.0 * M_PI * q / r)));
          gen_im.push_back(static_cast<float>(std::sin(sign * 2.0 * M_PI * q / r)));
        }
      }
      len = m;
    }
  }
};

// One radix-R stage. Inputs: x rows; outputs: y rows; `block` floats per (p, j) or (p, k) (s rows).
template <int R>
FC25_FFT_INLINE void stage(int m, std::size_t block, const float* twr, const float* twi, float sg, const float* gr,
                           const float* gi, const float* xr, const float* xi, float* yr, float* yi) {
  const int r = R > 5 ? static_cast<int>(gr[0]) : R;   // a radix above 5 loops over its table (gr, gi)
  for (int p = 0; p < m; ++p) {
    const float* wr = twr + static_cast<std::size_t>(p) * (r - 1);
    const float* wi = twi + static_cast<std::size_t>(p) * (r - 1);
    for (std::size_t u = 0; u < block; u += 8) {
      auto in = [&](int j, V8& re, V8& im) {
        const std::size_t off = (static_cast<std::size_t>(p) + static_cast<std::size_t>(j) * m) * block + u;
        re = ld(xr + off);
        im = ld(xi + off);
      };
      auto out = [&](int k, V8 re, V8 im) {
        const std::size_t off = (static_cast<std::size_t>(p) * r + k) * block + u;
        if (k > 0 && p > 0) {
          const float cr = wr[k - 1], ci = wi[k - 1];
          const V8 t = re * cr - im * ci;
          im = re * ci + im * cr;
          re = t;
        }
        st(yr + off, re);
        st(yi + off, im);
      };
      if constexpr (R == 2) {
        V8 ar, ai, br, bi;
        in(0, ar, ai);
        in(1, br, bi);
        out(0, ar + br, ai + bi);
        out(1, ar - br, ai - bi);
      } else if constexpr (R == 3) {
        const float h = sg * 0.86602540378443864676f;   // sign * sin(2 pi / 3)
        V8 ar, ai, br, bi, cr, ci;
        in(0, ar, ai);
        in(1, br, bi);
        in(2, cr, ci);
        const V8 sr = br + cr, si = bi + ci, dr = br - cr, di = bi - ci;
        const V8 mr = ar - 0.5f * sr, mi = ai - 0.5f * si;
        out(0, ar + sr, ai + si);
        out(1, mr - h * di, mi + h * dr);
        out(2, mr + h * di, mi - h * dr);
      } else if constexpr (R == 4) {
        V8 ar[4], ai[4];
        for (int j = 0; j < 4; ++j) in(j, ar[j], ai[j]);
        const auto &a0r = ar[0], &a0i = ai[0], &a1r = ar[1], &a1i = ai[1], &a2r = ar[2], &a2i = ai[2];
        const auto &a3r = ar[3], &a3i = ai[3];
        const V8 t0r = a0r + a2r, t0i = a0i + a2i, t1r = a0r - a2r, t1i = a0i - a2i;
        const V8 t2r = a1r + a3r, t2i = a1i + a3i, t3r = a1r - a3r, t3i = a1i - a3i;
        out(0, t0r + t2r, t0i + t2i);
        out(2, t0r - t2r, t0i - t2i);
        // (sign i) t3 = (-sign t3i, sign t3r)
        const V8 jr = -sg * t3i, ji = sg * t3r;
        out(1, t1r + jr, t1i + ji);
        out(3, t1r - jr, t1i - ji);
      } else if constexpr (R == 5) {
        const float c1 = 0.30901699437494742410f, c2 = -0.80901699437494742410f;   // cos(2 pi / 5), cos(4 pi / 5)
        const float s1 = sg * 0.95105651629515357212f, s2 = sg * 0.58778525229247312917f;   // sign * sin(...)
        V8 ar[5], ai[5];
        for (int j = 0; j < 5; ++j) in(j, ar[j], ai[j]);
        const auto &a0r = ar[0], &a0i = ai[0], &a1r = ar[1], &a1i = ai[1], &a2r = ar[2], &a2i = ai[2];
        const auto &a3r = ar[3], &a3i = ai[3], &a4r = ar[4], &a4i = ai[4];
        const V8 p1r = a1r + a4r, p1i = a1i + a4i, d1r = a1r - a4r, d1i = a1i - a4i;
        const V8 p2r = a2r + a3r, p2i = a2i + a3i, d2r = a2r - a3r, d2i = a2i - a3i;
        const V8 e1r = a0r + c1 * p1r + c2 * p2r, e1i = a0i + c1 * p1i + c2 * p2i;
        const V8 e2r = a0r + c2 * p1r + c1 * p2r, e2i = a0i + c2 * p1i + c1 * p2i;
        // i (s1 d1 + s2 d2) and i (s2 d1 - s1 d2)
        const V8 f1r = -(s1 * d1i + s2 * d2i), f1i = s1 * d1r + s2 * d2r;
        const V8 f2r = -(s2 * d1i - s1 * d2i), f2i = s2 * d1r - s1 * d2r;
        out(0, a0r + p1r + p2r, a0i + p1i + p2i);
        out(1, e1r + f1r, e1i + f1i);
        out(4, e1r - f1r, e1i - f1i);
        out(2, e2r + f2r, e2i + f2i);
        out(3, e2r - f2r, e2i - f2i);
      } else {
        // Any other radix: the r-point DFT by its definition (gr[1 ..] = the radix's roots of unity).
        for (int k = 0; k < r; ++k) {
          V8 sr = {}, si = {};
          for (int j = 0; j < r; ++j) {
            V8 ar, ai;
            in(j, ar, ai);
            const int q = (j * k) % r;
            const float cr = gr[1 + q], ci = gi[1 + q];
            sr += ar * cr - ai * ci;
            si += ar * ci + ai * cr;
          }
          out(k, sr, si);
        }
      }
    }
  }
}

// The stages of b on (xr, xi); returns whether the result is in (yr, yi).
FC25_FFT_INLINE bool run_batched(const Batched& b, float* xr, float* xi, float* yr, float* yi) {
  int len = b.n;
  std::size_t block = static_cast<std::size_t>(b.stride), tw = 0, gen = 0;
  bool in_y = false;
  for (int r : b.radices) {
    const int m = len / r;
    const float* twr = b.tw_re.data() + tw;
    const float* twi = b.tw_im.data() + tw;
    switch (r) {
      case 2: stage<2>(m, block, twr, twi, b.sign, nullptr, nullptr, xr, xi, yr, yi); break;
      case 3: stage<3>(m, block, twr, twi, b.sign, nullptr, nullptr, xr, xi, yr, yi); break;
      case 4: stage<4>(m, block, twr, twi, b.sign, nullptr, nullptr, xr, xi, yr, yi); break;
      case 5: stage<5>(m, block, twr, twi, b.sign, nullptr, nullptr, xr, xi, yr, yi); break;
      default:
        stage<7>(m, block, twr, twi, b.sign, b.gen_re.data() + gen, b.gen_im.data() + gen, xr, xi, yr, yi);
        gen += static_cast<std::size_t>(r) + 1;
    }
    tw += static_cast<std::size_t>(m) * (r - 1);
    std::swap(xr, yr);
    std::swap(xi, yi);
    in_y = !in_y;
    block *= r;
    len = m;
  }
  return in_y;
}

// Eight rows of eight, `ss` floats apart, to eight columns `ds` floats apart (three rounds of shuffles).
FC25_FFT_INLINE void transpose8(const float* src, std::size_t ss, float* dst, std::size_t ds) {
  V8 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = ld(src + i * ss);
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shuffle(r[i], r[i + 1], I8{0, 8, 1, 9, 4, 12, 5, 13});
    t[i + 1] = __builtin_shuffle(r[i], r[i + 1], I8{2, 10, 3, 11, 6, 14, 7, 15});
  }
  for (int i = 0; i < 8; i += 4)
    for (int h = 0; h < 2; ++h) {
      u[i + 2 * h] = __builtin_shuffle(t[i + h], t[i + h + 2], I8{0, 1, 8, 9, 4, 5, 12, 13});
      u[i + 2 * h + 1] = __builtin_shuffle(t[i + h], t[i + h + 2], I8{2, 3, 10, 11, 6, 7, 14, 15});
    }
  for (int j = 0; j < 4; ++j) {
    st(dst + j * ds, __builtin_shuffle(u[j], u[j + 4], I8{0, 1, 2, 3, 8, 9, 10, 11}));
    st(dst + (j + 4) * ds, __builtin_shuffle(u[j], u[j + 4], I8{4, 5, 6, 7, 12, 13, 14, 15}));
  }
}

}  // namespace

// The complex transform of M = M1 M2 points in one direction. z[n1 M2 + n2] enters as row n1, lane n2 of a
// ([M1][stride1]); `first` transforms the columns (over n1), each value is multiplied by e^(sign 2 pi i k1 n2 / M),
// the result is transposed into c ([M2][stride2]: row n2, lane k1), and `second` transforms over n2: row k2,
// lane k1 is Z[k1 + M1 k2], in order where M1 fills whole vectors (stride2 = M1), else copied into order.
// Read-only once made: every stream's transform of one length shares it.
struct RealFft::Plan {
  int m = 0, m1 = 1, m2 = 1;
  Batched first, second;
  std::vector<float> t_re, t_im;   // [M1][stride1]

  Plan(int m_, float sign) : m(m_) {
    // M1: the largest divisor of M up to its square root that fills whole vectors, else the largest divisor.
    for (int d = 1; d * d <= m; ++d)
      if (m % d == 0 && (d % 8 == 0 || m1 % 8 != 0)) m1 = d;
    m2 = m / m1;
    first = Batched(m1, m2, sign);
    second = Batched(m2, m1, sign);
    const std::size_t s1 = stride1();
    t_re.assign(m1 * s1, 0.0f);
    t_im.assign(m1 * s1, 0.0f);
    for (int k1 = 0; k1 < m1; ++k1)
      for (int n2 = 0; n2 < m2; ++n2) {
        const double a = sign * 2.0 * M_PI * static_cast<double>(k1) * n2 / m;
        t_re[k1 * s1 + n2] = static_cast<float>(std::cos(a));
        t_im[k1 * s1 + n2] = static_cast<float>(std::sin(a));
      }
  }
  std::size_t stride1() const { return static_cast<std::size_t>(first.stride); }
  std::size_t stride2() const { return static_cast<std::size_t>(second.stride); }
  bool dense() const { return stride2() == static_cast<std::size_t>(m1); }
};

// The buffers a transform works in: the calling thread's own (both directions, one call at a time), so that a
// stream holds none and the streams a thread runs one after another find them in its caches.
struct RealFft::Work {
  int n = 0;
  std::vector<float> a_re, a_im, b_re, b_im, c_re, c_im, d_re, d_im, z_re_v, z_im_v, u_re, u_im;
  const float *z_re = nullptr, *z_im = nullptr;   // after run(): Z in order

  explicit Work(const Plan& pl, int n_) : n(n_) {
    const std::size_t s1 = pl.stride1(), s2 = pl.stride2();
    // The padding lanes start at zero and stay so: the butterflies and the twiddle keep zeros zero.
    for (auto* v : {&a_re, &a_im, &b_re, &b_im}) v->assign(pl.m1 * s1, 0.0f);
    // Whole blocks of eight rows for the transpose (the rows past M2 take the padding lanes' zeros).
    // (And eight floats more: the real transform reads Z backwards eight at a time, from M - 7 up to M.)
    for (auto* v : {&c_re, &c_im, &d_re, &d_im}) v->assign(s1 * s2 + 8, 0.0f);
    if (!pl.dense())
      for (auto* v : {&z_re_v, &z_im_v}) v->assign(pl.m + 8, 0.0f);
    for (auto* v : {&u_re, &u_im}) v->assign(pl.m, 0.0f);
  }

  // a holds z; afterwards z_re/z_im point at Z. Shuffles (Wide: the AVX2 build) transpose eight by eight; the
  // baseline build, which has only half-width shuffles, moves one value at a time.
  template <bool Wide>
  inline __attribute__((always_inline)) void run(const Plan& pl) {
    const int m = pl.m, m1 = pl.m1, m2 = pl.m2;
    const std::size_t s1 = pl.stride1(), s2 = pl.stride2();
    const bool in_b = run_batched(pl.first, a_re.data(), a_im.data(), b_re.data(), b_im.data());
    float* rr = in_b ? b_re.data() : a_re.data();
    float* ri = in_b ? b_im.data() : a_im.data();
    for (std::size_t i = 0; i < m1 * s1; i += 8) {
      const V8 xr = ld(rr + i), xi = ld(ri + i), tr = ld(pl.t_re.data() + i), ti = ld(pl.t_im.data() + i);
      st(rr + i, xr * tr - xi * ti);
      st(ri + i, xr * ti + xi * tr);
    }
    if (Wide && pl.dense()) {
      for (std::size_t k1 = 0; k1 < static_cast<std::size_t>(m1); k1 += 8)
        for (std::size_t n2 = 0; n2 < s1; n2 += 8) {
          transpose8(rr + k1 * s1 + n2, s1, c_re.data() + n2 * s2 + k1, s2);
          transpose8(ri + k1 * s1 + n2, s1, c_im.data() + n2 * s2 + k1, s2);
        }
    } else {
      for (int k1 = 0; k1 < m1; ++k1)
        for (int n2 = 0; n2 < m2; ++n2) {
          c_re[n2 * s2 + k1] = rr[k1 * s1 + n2];
          c_im[n2 * s2 + k1] = ri[k1 * s1 + n2];
        }
    }
    const bool in_d = run_batched(pl.second, c_re.data(), c_im.data(), d_re.data(), d_im.data());
    z_re = in_d ? d_re.data() : c_re.data();
    z_im = in_d ? d_im.data() : c_im.data();
    if (!pl.dense()) {
      for (int k = 0; k < m; ++k) {
        z_re_v[k] = z_re[static_cast<std::size_t>(k / m1) * s2 + k % m1];
        z_im_v[k] = z_im[static_cast<std::size_t>(k / m1) * s2 + k % m1];
      }
      z_re = z_re_v.data();
      z_im = z_im_v.data();
    }
  }
};

// One length's tables, both directions.
struct RealFft::Tables {
  Plan fwd, inv;
  std::vector<float> w_re, w_im;   // e^(-2 pi i k / N), k < N / 2: the real transform's own twiddles
  explicit Tables(int n) : fwd(n / 2, -1.0f), inv(n / 2, 1.0f), w_re(n / 2), w_im(n / 2) {
    for (int k = 0; k < n / 2; ++k) {
      w_re[k] = static_cast<float>(std::cos(-2.0 * M_PI * k / n));
      w_im[k] = static_cast<float>(std::sin(-2.0 * M_PI * k / n));
    }
  }
};

namespace {

template <bool Wide>
FC25_FFT_INLINE void forward_impl(const RealFft::Plan& pl, RealFft::Work& wk, const float* w_re, const float* w_im,
                                  const float* x, std::complex<float>* bins) {
  const int m = pl.m, m1 = pl.m1, m2 = pl.m2;
  const std::size_t s1 = pl.stride1();
  // z[n] = x[2n] + i x[2n + 1], n = n1 M2 + n2 -> row n1, lane n2.
  for (int n1 = 0; n1 < m1; ++n1) {
    const float* row = x + 2 * static_cast<std::size_t>(n1) * m2;
    float* __restrict ar = wk.a_re.data() + n1 * s1;
    float* __restrict ai = wk.a_im.data() + n1 * s1;
    for (int n2 = 0; n2 < m2; ++n2) {
      ar[n2] = row[2 * n2];
      ai[n2] = row[2 * n2 + 1];
    }
  }
  wk.run<Wide>(pl);
  // X[k] = (Z[k] + conj Z[M - k]) / 2 - i e^(-2 pi i k / N) (Z[k] - conj Z[M - k]) / 2, eight k at a time (Z[M - k]
  // read backwards), then one by one; k = 0 and M apart.
  const float* __restrict zr = wk.z_re;
  const float* __restrict zi = wk.z_im;
  float* __restrict out = reinterpret_cast<float*>(bins);
  int k = 0;
  for (; Wide && k + 8 <= m; k += 8) {
    const V8 ar = ld(zr + k), ai = ld(zi + k), br = reversed(ld(zr + m - k - 7)), bi = reversed(ld(zi + m - k - 7));
    const V8 er = 0.5f * (ar + br), ei = 0.5f * (ai - bi);
    const V8 orr = 0.5f * (ai + bi), oi = -0.5f * (ar - br);   // -i (A - conj B) / 2
    const V8 wr = ld(w_re + k), wi = ld(w_im + k);
    st_pairs(out + 2 * k, er + (wr * orr - wi * oi), ei + (wr * oi + wi * orr));
  }
  for (; k < m; ++k) {
    const float ar = zr[k], ai = zi[k], br = zr[m - k], bi = zi[m - k];
    const float er = 0.5f * (ar + br), ei = 0.5f * (ai - bi);
    const float orr = 0.5f * (ai + bi), oi = -0.5f * (ar - br);
    const float wr = w_re[k], wi = w_im[k];
    out[2 * k] = er + (wr * orr - wi * oi);
    out[2 * k + 1] = ei + (wr * oi + wi * orr);
  }
  out[0] = zr[0] + zi[0];
  out[1] = 0.0f;
  out[2 * m] = zr[0] - zi[0];
  out[2 * m + 1] = 0.0f;
}

template <bool Wide>
FC25_FFT_INLINE void inverse_impl(const RealFft::Plan& pl, RealFft::Work& wk, const float* w_re, const float* w_im,
                                  const std::complex<float>* bins, float* x) {
  const int m = pl.m, m1 = pl.m1, m2 = pl.m2;
  const std::size_t s1 = pl.stride1();
  // Z[k] = E + i O: E = X[k] + conj X[M - k], O = (X[k] - conj X[M - k]) e^(2 pi i k / N), in order in u (eight k
  // at a time, X[M - k] read backwards, then one by one; k = 0 apart), then row k / M2, lane k % M2 of a.
  const float* __restrict in = reinterpret_cast<const float*>(bins);
  float* __restrict ur = wk.u_re.data();
  float* __restrict ui = wk.u_im.data();
  int k = 0;
  for (; Wide && k + 8 <= m; k += 8) {
    V8 xr, xi, cr, ci;
    ld_pairs(in + 2 * k, xr, xi);
    ld_pairs(in + 2 * (m - k - 7), cr, ci);
    cr = reversed(cr);
    ci = -reversed(ci);
    const V8 er = xr + cr, ei = xi + ci, dr = xr - cr, di = xi - ci;
    const V8 wr = ld(w_re + k), wi = ld(w_im + k);
    const V8 orr = dr * wr + di * wi, oi = di * wr - dr * wi;
    st(ur + k, er - oi);
    st(ui + k, ei + orr);
  }
  for (; k < m; ++k) {
    const float xr = in[2 * k], xi = in[2 * k + 1], cr = in[2 * (m - k)], ci = -in[2 * (m - k) + 1];
    const float er = xr + cr, ei = xi + ci, dr = xr - cr, di = xi - ci;
    const float wr = w_re[k], wi = w_im[k];
    const float orr = dr * wr + di * wi, oi = di * wr - dr * wi;
    ur[k] = er - oi;
    ui[k] = ei + orr;
  }
  {
    const float xr = in[0], cr = in[2 * m];   // the imaginary parts of bins 0 and M count as zero
    ur[0] = xr + cr;
    ui[0] = xr - cr;
  }
  for (int n1 = 0; n1 < m1; ++n1) {
    std::memcpy(wk.a_re.data() + n1 * s1, ur + n1 * m2, m2 * sizeof(float));
    std::memcpy(wk.a_im.data() + n1 * s1, ui + n1 * m2, m2 * sizeof(float));
  }
  wk.run<Wide>(pl);
  const float* __restrict zr = wk.z_re;
  const float* __restrict zi = wk.z_im;
  k = 0;
  for (; Wide && k + 8 <= m; k += 8) st_pairs(x + 2 * k, ld(zr + k), ld(zi + k));
  for (; k < m; ++k) {
    x[2 * k] = zr[k];
    x[2 * k + 1] = zi[k];
  }
}

__attribute__((target("avx2"), flatten)) void forward_avx2(const RealFft::Plan& pl, RealFft::Work& wk,
                                                           const float* w_re, const float* w_im, const float* x,
                                                           std::complex<float>* bins) {
  forward_impl<true>(pl, wk, w_re, w_im, x, bins);
}
__attribute__((flatten)) void forward_base(const RealFft::Plan& pl, RealFft::Work& wk, const float* w_re,
                                           const float* w_im, const float* x, std::complex<float>* bins) {
  forward_impl<false>(pl, wk, w_re, w_im, x, bins);
}
__attribute__((target("avx2"), flatten)) void inverse_avx2(const RealFft::Plan& pl, RealFft::Work& wk,
                                                           const float* w_re, const float* w_im,
                                                           const std::complex<float>* bins, float* x) {
  inverse_impl<true>(pl, wk, w_re, w_im, bins, x);
}
__attribute__((flatten)) void inverse_base(const RealFft::Plan& pl, RealFft::Work& wk, const float* w_re,
                                           const float* w_im, const std::complex<float>* bins, float* x) {
  inverse_impl<false>(pl, wk, w_re, w_im, bins, x);
}

// One set of tables per length for the whole process.
std::shared_ptr<const RealFft::Tables> tables_for(int n) {
  static std::mutex mutex;
  static std::map<int, std::shared_ptr<const RealFft::Tables>> made;
  std::lock_guard lock(mutex);
  auto& t = made[n];
  if (!t) t = std::make_shared<const RealFft::Tables>(n);
  return t;
}

// The calling thread's buffers for a transform of length n.
RealFft::Work& work_for(const RealFft::Plan& pl, int n) {
  thread_local std::unique_ptr<RealFft::Work> work;
  if (!work || work->n != n) work = std::make_unique<RealFft::Work>(pl, n);
  return *work;
}

}  // namespace

bool RealFft::avx2_available() { return __builtin_cpu_supports("avx2"); }

RealFft::RealFft(int n, bool avx2) : n_(n), avx2_(avx2) {
  if (n < 2 || n % 2 != 0) throw std::invalid_argument("RealFft: the length must be even and positive, not " + std::to_string(n));
  if (avx2 && !avx2_available()) throw std::invalid_argument("RealFft: this processor has no AVX2");
  tables_ = tables_for(n);
}

RealFft::~RealFft() = default;

void RealFft::forward(const float* x, std::complex<float>* bins) const {
  const Plan& pl = tables_->fwd;
  (avx2_ ? forward_avx2 : forward_base)(pl, work_for(pl, n_), tables_->w_re.data(), tables_->w_im.data(), x, bins);
}

void RealFft::inverse(const std::complex<float>* bins, float* x) const {
  const Plan& pl = tables_->inv;
  (avx2_ ? inverse_avx2 : inverse_base)(pl, work_for(pl, n_), tables_->w_re.data(), tables_->w_im.data(), bins, x);
}

}  // namespace fc25::denoise::dsp
