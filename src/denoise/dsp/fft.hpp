#pragma once
// The real FFT of the STFT: N samples (N even) to N/2 + 1 bins and back, unnormalised both ways (forward
// X[k] = sum_n x[n] e^(-2 pi i k n / N); inverse N times the inverse transform), as DeepFilterNet's STFT uses them.
// N/2 complex points, split as M1 x M2 (the "four-step" FFT): M2 transforms of M1 points side by side, a twiddle
// per point, a transpose, M1 transforms of M2 points side by side. Side by side, every butterfly is a vector
// operation over whole rows (16 and 30 lanes for N = 960), where a transform alone would have short, strided ones.
// Nothing allocates after construction. One object may run forward() on one thread while another runs inverse().
#include <complex>
#include <memory>
#include <vector>

namespace fc25::denoise::dsp {

class RealFft {
 public:
  // avx2: run the AVX2 build of the same code (the results are the same bit for bit: no fused multiply-adds, no
  // reassociation); the default where the processor has it.
  explicit RealFft(int n, bool avx2 = avx2_available());
  static bool avx2_available();

  int size() const { return n_; }
  // n samples -> n / 2 + 1 bins.
  void forward(const float* x, std::complex<float>* bins);
  // n / 2 + 1 bins -> n samples. The imaginary parts of the first and last bin are taken as zero (a real signal's
  // spectrum has none there).
  void inverse(const std::complex<float>* bins, float* x);

  struct Plan;   // one direction's complex transform of N / 2 points and the buffers it works in (fft.cpp)

 private:
  int n_;
  bool avx2_;
  std::unique_ptr<Plan> fwd_, inv_;
  std::vector<float> w_re_, w_im_;   // e^(-2 pi i k / N), k < N / 2: the real transform's own twiddles
  std::vector<float> u_re_, u_im_;   // inverse: the complex spectrum it transforms, in order

 public:
  ~RealFft();
  RealFft(const RealFft&) = delete;
  RealFft& operator=(const RealFft&) = delete;
};

}  // namespace fc25::denoise::dsp
