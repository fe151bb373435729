#pragma once
// The real FFT of the STFT: N samples (N even) to N/2 + 1 bins and back, unnormalised both ways (forward
// X[k] = sum_n x[n] e^(-2 pi i k n / N); inverse N times the inverse transform), as DeepFilterNet's STFT uses them.
// N/2 complex points, split as M1 x M2 (the "four-step" FFT): M2 transforms of M1 points side by side, a twiddle
// per point, a transpose, M1 transforms of M2 points side by side. Side by side, every butterfly is a vector
// operation over whole rows (16 and 30 lanes for N = 960), where a transform alone would have short, strided ones.
// The tables of a length are made once per process and shared; the buffers a transform works in are the calling
// thread's, made on its first transform of that length. So a stream holds no more than a pointer, and any number
// of threads may use one object at once.
#include <complex>
#include <memory>

namespace fc25::denoise::dsp {

class RealFft {
 public:
  // avx2: run the AVX2 build of the same code (the results are the same bit for bit: no fused multiply-adds, no
  // reassociation); the default where the processor has it.
  explicit RealFft(int n, bool avx2 = avx2_available());
  static bool avx2_available();

  // n samples -> n / 2 + 1 bins.
  void forward(const float* x, std::complex<float>* bins) const;
  // n / 2 + 1 bins -> n samples. The imaginary parts of the first and last bin are taken as zero (a real signal's
  // spectrum has none there).
  void inverse(const std::complex<float>* bins, float* x) const;

  // (fft.cpp) One direction's complex transform of N / 2 points; a thread's buffers; a length's tables.
  struct Plan;
  struct Work;
  struct Tables;

 private:
  int n_;
  bool avx2_;
  std::shared_ptr<const Tables> tables_;

 public:
  ~RealFft();
  RealFft(const RealFft&) = delete;
  RealFft& operator=(const RealFft&) = delete;
};

}  // namespace fc25::denoise::dsp
