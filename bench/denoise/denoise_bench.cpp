// Speed of the denoise engine: one stream on one thread over a real 10 s recording (real-time factor = compute
// time / audio time), and many streams sharing one model on one thread (how many fit in real time).
//   build/bench/denoise/denoise_bench [--benchmark_filter=...]   (FC25_MODEL_DIR, FC25_SHARED_DIR, FC25_ISA,
//   FC25_PREFETCH, FC25_BF16_DOT, FC25_PRECISION)
// Prints the processor's model, the kernel path it ran (FC25_ISA=portable|avx2 picks one; default the best),
// whether the GRUs' weights were asked for ahead (FC25_PREFETCH=on|off; default off on AMD, on elsewhere) and, for
// bf16 weights, whether their products ran on vdpbf16ps (FC25_BF16_DOT=on|off; default where the processor has it).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <malloc.h>

#include <benchmark/benchmark.h>
#include <sndfile.h>

#include "../gbench_main.hpp"
#include "denoise/denoise.hpp"
#include "denoise/dsp/dsp.hpp"
#include "denoise/model/model.hpp"
#include "denoise/nn/layers.hpp"

namespace fs = std::filesystem;
using namespace fc25::denoise;


namespace {

fs::path shared_dir() {
  if (const char* e = std::getenv("FC25_SHARED_DIR"); e && *e) return e;
  return fs::path(FC25_SOURCE_DIR) / ".." / "shared";
}
fs::path model_dir() {
  if (const char* e = std::getenv("FC25_MODEL_DIR"); e && *e) return e;
  return shared_dir() / "models" / "DeepFilterNet3";
}

const std::vector<float>& audio() {
  static std::vector<float> x = [] {
    auto f = shared_dir() / "audio/dns/A2CH4HRFV27II2_M_AirCon_Near_Regular_SP_Mobile_Primary_noisy.wav";
    SF_INFO info{};
    SNDFILE* s = sf_open(f.c_str(), SFM_READ, &info);
    if (!s) throw std::runtime_error("cannot read " + f.string());
    std::vector<float> v(static_cast<std::size_t>(info.frames));
    sf_readf_float(s, v.data(), info.frames);
    sf_close(s);
    v.resize(v.size() / kHopSize * kHopSize);
    return v;
  }();
  return x;
}

// FC25_PRECISION: the weights the engine holds (fp32, the default, or bf16); the floor is their bytes.
Precision precision() {
  const char* p = std::getenv("FC25_PRECISION");
  return p && *p ? parse_precision(p) : Precision::fp32;
}

std::shared_ptr<const Model> model() {
  static auto m = Model::load(model_dir(), precision());
  return m;
}

// The floor of one stream: reading the model's weights once, as a hop does, at the speed this core reads a buffer
// of that size (summed with wide loads, several accumulators, the buffer warm as the weights are between hops). A
// hop cannot take less; hop_us / floor_us says how far above the limit the engine is.
__attribute__((target("avx2"))) double read_pass_us(const std::vector<float>& buf) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  auto t0 = std::chrono::steady_clock::now();
  const float* p = buf.data();
  for (std::size_t i = 0; i + 32 <= buf.size(); i += 32) {
    acc[0] = _mm256_add_ps(acc[0], _mm256_loadu_ps(p + i));
    acc[1] = _mm256_add_ps(acc[1], _mm256_loadu_ps(p + i + 8));
    acc[2] = _mm256_add_ps(acc[2], _mm256_loadu_ps(p + i + 16));
    acc[3] = _mm256_add_ps(acc[3], _mm256_loadu_ps(p + i + 24));
  }
  auto t1 = std::chrono::steady_clock::now();
  __m256 all = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
  benchmark::DoNotOptimize(all);
  return std::chrono::duration<double, std::micro>(t1 - t0).count();
}

// The floor measured as the hop is. A hop's figure is the mean of a pass over the file (a thousand hops, ~0.3 s),
// the fastest of several passes; the floor is the same kind of figure: the mean read over as many reads back to
// back, the fastest of several such stretches. (The single fastest read, floor_min, is a lucky 0.3 ms on a shared
// machine: on these it is 4-6 % below a stretch's mean, and comparing a mean with it counts the machine's noise
// as the engine's.) Sampled between the hops' passes, so both see the same machine.
struct FloorMeter {
  explicit FloorMeter(std::size_t bytes = model()->weight_bytes()) : buf(bytes / sizeof(float), 1.0f) {}
  std::vector<float> buf;
  double stretch_us = 1e9, min_us = 1e9;
  void sample(int reads) {
    double sum = 0;
    for (int i = 0; i < reads; ++i) {
      const double t = read_pass_us(buf);
      sum += t;
      min_us = std::min(min_us, t);
    }
    stretch_us = std::min(stretch_us, sum / reads);
  }
};

// The core's multiply-add rate on the kernel path that runs (16 lanes on avx512, 8 on avx2, 4 on portable): twelve
// independent chains of multiply-adds in registers, no memory, the best of three. No arithmetic of a hop can run
// faster; the layers other than the GRUs (whose arithmetic hides under the read of their weights) take at least
// their multiply-adds at this rate.
template <class Step>
double peak_gmacs(Step step, int lanes) {
  constexpr long kIters = 1 << 20;
  double best_s = 1e9;
  for (int round = 0; round < 3; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    step(kIters);
    best_s = std::min(best_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 12.0 * lanes * kIters / best_s / 1e9;
}
__attribute__((target("avx512f"))) void fma_chains_512(long iters) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(1.0f + static_cast<float>(i));
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
  for (long k = 0; k < iters; ++k) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  }
  for (int i = 0; i < 12; ++i) benchmark::DoNotOptimize(acc[i]);
}
__attribute__((target("avx2,fma"))) void fma_chains_256(long iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(1.0f + static_cast<float>(i));
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
  for (long k = 0; k < iters; ++k) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  }
  for (int i = 0; i < 12; ++i) benchmark::DoNotOptimize(acc[i]);
}
void mul_add_chains_128(long iters) {
  __m128 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm_set1_ps(1.0f + static_cast<float>(i));
  const __m128 m = _mm_set1_ps(0.999999f), a = _mm_set1_ps(1e-6f);
  for (long k = 0; k < iters; ++k) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], m), a);
  }
  for (int i = 0; i < 12; ++i) benchmark::DoNotOptimize(acc[i]);
}
double peak_gmacs() {
  const std::string path = kernel_path();
  if (path == "avx512") return peak_gmacs(fma_chains_512, 16);
  if (path == "avx2") return peak_gmacs(fma_chains_256, 8);
  return peak_gmacs(mul_add_chains_128, 4);
}

// The middle of a set of timings (reordered in place): what a pass costs, however often the host gets in the way.
double median(std::vector<double>& v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

int hops_per_pass() { return static_cast<int>(audio().size() / kHopSize); }

void BM_WeightReadFloor(benchmark::State& state) {
  FloorMeter floor;
  for (auto _ : state) floor.sample(hops_per_pass());
  state.counters["weights_MB"] = static_cast<double>(model()->weight_bytes()) / 1e6;
  state.counters["floor_us"] = floor.stretch_us;
  state.counters["floor_min_us"] = floor.min_us;
  state.counters["read_GBps"] = static_cast<double>(model()->weight_bytes()) / floor.stretch_us / 1e3;
}
BENCHMARK(BM_WeightReadFloor)->Unit(benchmark::kMicrosecond)->MinTime(1.0);

// How much compute the weights' read can hide: the floor's buffer read in 4 KB chunks (the next 8 KB asked for
// ahead), with `rounds` x 12 independent multiply-adds on registers between chunks, against the two apart. The
// compute that runs while reading is what a hop could gain by interleaving its convolutions with the GRUs'
// recurrent products (which need only the previous hop's state); `hidden` is the share of the compute that cost no
// time. Arg: rounds per chunk.
__attribute__((target("avx2,fma"), noinline)) __m256 compute_rounds(int rounds, __m256 x) {
  __m256 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.999f);
  x = _mm256_mul_ps(x, _mm256_set1_ps(1e-9f));
  for (int r = 0; r < rounds; ++r)
    for (auto& v : a) v = _mm256_fmadd_ps(v, m, x);
  __m256 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, a[i]);
  return s;
}
__attribute__((target("avx2,fma"), noinline)) __m256 read_chunk(const float* p, std::size_t n, __m256 s) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  for (std::size_t i = 0; i < n; i += 16) {
    _mm_prefetch(reinterpret_cast<const char*>(p + i + 2048), _MM_HINT_T0);
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
  }
  return _mm256_add_ps(s, _mm256_add_ps(a0, a1));
}
__attribute__((target("avx2,fma"))) void BM_ReadHidesCompute(benchmark::State& state) {
  const int rounds = static_cast<int>(state.range(0));
  std::vector<float> buf(model()->weight_bytes() / sizeof(float), 1.0f);
  constexpr std::size_t kChunk = 1024;   // floats: 4 KB
  const std::size_t chunks = buf.size() / kChunk;
  using Clock = std::chrono::steady_clock;
  auto us = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); };
  double compute = 1e9, read = 1e9, both = 1e9;
  __m256 s = _mm256_set1_ps(1e-6f);
  for (auto _ : state) {
    auto t0 = Clock::now();
    for (std::size_t c = 0; c < chunks; ++c) s = compute_rounds(rounds, s);
    auto t1 = Clock::now();
    for (std::size_t c = 0; c < chunks; ++c) s = read_chunk(buf.data() + c * kChunk, kChunk, s);
    auto t2 = Clock::now();
    for (std::size_t c = 0; c < chunks; ++c) s = compute_rounds(rounds, read_chunk(buf.data() + c * kChunk, kChunk, s));
    auto t3 = Clock::now();
    compute = std::min(compute, us(t0, t1));
    read = std::min(read, us(t1, t2));
    both = std::min(both, us(t2, t3));
  }
  benchmark::DoNotOptimize(s);
  state.counters["compute_us"] = compute;
  state.counters["read_us"] = read;
  state.counters["both_us"] = both;
  state.counters["hidden"] = compute > 0 ? std::clamp((compute + read - both) / compute, 0.0, 1.0) : 0.0;
  state.counters["compute_ns_per_chunk"] = compute * 1e3 / static_cast<double>(chunks);
}
BENCHMARK(BM_ReadHidesCompute)->Arg(5)->Arg(10)->Arg(20)->Arg(40)->Unit(benchmark::kMicrosecond)->MinTime(1.0);

// The model's five GRUs alone, one step each per pass, back to back as a hop runs them, every input non-zero (so
// every weight row is read), against the floor for their bytes: how close the GRU kernels come to this core's read
// speed by themselves. What a hop takes beyond them (BM_SingleStream) is the other layers and the signal processing.
void BM_GruKernels(benchmark::State& state) {
  const auto* m = dynamic_cast<const model::Dfn3Model*>(model().get());
  if (!m) throw std::runtime_error("not a DeepFilterNet3 model");
  const auto& w = *m->weights;
  const nn::Gru* grus[] = {&w.enc_gru, &w.erb_gru[0], &w.erb_gru[1], &w.df_gru[0], &w.df_gru[1]};
  std::size_t bytes = 0;
  std::vector<std::vector<float>> x, h, scratch;
  for (const nn::Gru* g : grus) {
    bytes += (g->wi.size() + g->wr.size()) * sizeof(float) + (g->wi_bf16.size() + g->wr_bf16.size()) * 2;
    x.emplace_back(static_cast<std::size_t>(g->in));
    for (std::size_t i = 0; i < x.back().size(); ++i) x.back()[i] = 0.01f * static_cast<float>(i % 7 + 1);
    h.emplace_back(static_cast<std::size_t>(g->hidden), 0.0f);
    scratch.emplace_back(6 * static_cast<std::size_t>(g->hidden));
  }
  // As BM_SingleStream against its floor: the mean over a stretch of passes, the fastest stretch, against the
  // mean read of the same bytes over as many reads.
  const int passes = hops_per_pass();
  double best = 1e9, best_one = 1e9;
  FloorMeter floor(bytes);
  for (auto _ : state) {
    double sum = 0;
    for (int p = 0; p < passes; ++p) {
      auto t0 = std::chrono::steady_clock::now();
      for (std::size_t k = 0; k < std::size(grus); ++k) grus[k]->step(x[k].data(), h[k].data(), scratch[k].data());
      const double t = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      sum += t;
      best_one = std::min(best_one, t);
    }
    best = std::min(best, sum / passes);
    state.PauseTiming();
    floor.sample(passes);
    state.ResumeTiming();
  }
  state.counters["gru_MB"] = static_cast<double>(bytes) / 1e6;
  state.counters["gru_us"] = best;
  state.counters["floor_us"] = floor.stretch_us;
  state.counters["x_floor"] = best / floor.stretch_us;
  state.counters["x_floor_min"] = best_one / floor.min_us;   // the fastest pass against the fastest read
  state.counters["read_GBps"] = static_cast<double>(bytes) / best / 1e3;
}
BENCHMARK(BM_GruKernels)->Unit(benchmark::kMicrosecond)->MinTime(1.0);

// Whole file, one stream: reports the real-time factor, the time per hop and that time over the floor.
void BM_SingleStream(benchmark::State& state) {
  const auto& x = audio();
  std::vector<float> y(kHopSize);
  auto d = make_dfn3(model());
  double best_s = 1e9;  // the fastest pass over the file, wall clock
  FloorMeter floor;     // and after each pass, a stretch of as many reads of the weights (FloorMeter)
  nn::gru_rows_read() = {};
  nn::multiply_adds() = {};
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    d->reset();
    for (std::size_t i = 0; i < x.size(); i += kHopSize) {
      d->process(std::span<const float>(x).subspan(i, kHopSize), y);
    }
    benchmark::DoNotOptimize(y.data());
    best_s = std::min(best_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    state.PauseTiming();
    floor.sample(hops_per_pass());
    state.ResumeTiming();
  }
  const double audio_s = static_cast<double>(x.size()) / kSampleRate;
  const double hops = static_cast<double>(hops_per_pass());
  const double hop_us = best_s / hops * 1e6;
  state.counters["audio_s"] = audio_s;
  state.counters["hop_us"] = hop_us;
  state.counters["floor_us"] = floor.stretch_us;
  state.counters["x_floor"] = hop_us / floor.stretch_us;
  state.counters["floor_min_us"] = floor.min_us;
  state.counters["x_floor_min"] = hop_us / floor.min_us;
  // A hop reads less than all the weights: the GRUs' input rows whose input is zero are skipped (768 gates each).
  const auto rows = nn::gru_rows_read();
  const double skipped_bytes = static_cast<double>(rows.rows - rows.read) * 768 *
                               (precision() == Precision::bf16 ? 2 : 4) / (hops * static_cast<double>(state.iterations()));
  state.counters["gru_rows_read"] = rows.rows ? static_cast<double>(rows.read) / static_cast<double>(rows.rows) : 1.0;
  // The arithmetic of a hop: the GRUs' multiply-adds, the other layers', and how long the other layers' would take
  // at the core's peak rate (peak_gmacs): the least a hop can take beyond the read of the GRUs' weights where the
  // core does not overlap arithmetic with that read.
  const auto macs = nn::multiply_adds();
  const double per_hop = hops * static_cast<double>(state.iterations());
  const double peak = peak_gmacs();
  state.counters["gru_MMAC"] = static_cast<double>(macs.gru) / per_hop / 1e6;
  state.counters["other_MMAC"] = static_cast<double>(macs.other) / per_hop / 1e6;
  state.counters["peak_GMACps"] = peak;
  state.counters["other_at_peak_us"] = static_cast<double>(macs.other) / per_hop / (peak * 1e3);
  state.counters["MB_read"] = (static_cast<double>(model()->weight_bytes()) - skipped_bytes) / 1e6;
  state.counters["rtf"] = benchmark::Counter(audio_s, benchmark::Counter::kIsIterationInvariantRate |
                                                          benchmark::Counter::kInvert);
}
// The signal processing of one hop around the network, as a stream runs it: the STFT's analysis, the ERB and
// complex features, and the synthesis (inverse FFT, window, overlap-add) over the same 10 s recording.
void BM_Dsp(benchmark::State& state) {
  const auto& x = audio();
  const dsp::DspConfig config;
  dsp::Stft stft(config);
  dsp::Features features(config);
  std::vector<dsp::cf32> spec(config.freq_size()), cplx(config.nb_df);
  std::vector<float> erb(config.nb_erb), y(config.hop_size);
  std::size_t i = 0;
  for (auto _ : state) {
    stft.analysis(std::span<const float>(x).subspan(i, config.hop_size), spec);
    features.erb(spec, erb);
    features.complex(spec, cplx);
    stft.synthesis(spec, y);
    benchmark::DoNotOptimize(y.data());
    i = (i + config.hop_size) % x.size();
  }
  state.counters["hop_us"] = benchmark::Counter(static_cast<double>(state.iterations()) * 1e-6,
                                                benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Dsp)->Unit(benchmark::kMicrosecond)->MinTime(1.0);

// Whole file at once (process_block, as `fc25 denoise` runs a file): the same audio as BM_SingleStream, layer by
// layer over 32 hops at a time.
void BM_FileBlocks(benchmark::State& state) {
  const auto& x = audio();
  std::vector<float> y(x.size());
  double best_s = 1e9;
  for (auto _ : state) {
    auto d = make_dfn3(model());
    auto t0 = std::chrono::steady_clock::now();
    d->process_block(x, y);
    benchmark::DoNotOptimize(y.data());
    best_s = std::min(best_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const double audio_s = static_cast<double>(x.size()) / kSampleRate;
  state.counters["audio_s"] = audio_s;
  state.counters["hop_us"] = best_s / static_cast<double>(hops_per_pass()) * 1e6;
  state.counters["best_ms"] = best_s * 1e3;
}
BENCHMARK(BM_FileBlocks)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// Memory: the model once, then what each further stream costs (heap, measured by the allocator).
// Heap in use: chunks in the arena plus those the allocator mapped on their own (large ones).
std::size_t heap_in_use() {
  const auto mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}
void BM_Memory(benchmark::State& state) {
  std::size_t model_bytes = 0, per_stream = 0;
  for (auto _ : state) {
    auto before = heap_in_use();
    auto m = Model::load(model_dir(), precision());
    model_bytes = heap_in_use() - before;
    std::vector<std::unique_ptr<Denoiser>> ds;
    auto mid = heap_in_use();
    for (int i = 0; i < 32; ++i) ds.push_back(make_dfn3(m));
    per_stream = (heap_in_use() - mid) / 32;
  }
  state.counters["model_MB"] = static_cast<double>(model_bytes) / 1e6;
  state.counters["per_stream_KiB"] = static_cast<double>(per_stream) / 1024;
}
BENCHMARK(BM_Memory)->Iterations(1)->Unit(benchmark::kMillisecond);

BENCHMARK(BM_SingleStream)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// N streams advanced by one hop each, one after another on one thread: time per hop for all N.
void BM_StreamsPerHop(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const auto& x = audio();
  std::vector<std::unique_ptr<Denoiser>> ds;
  for (int i = 0; i < n; ++i) ds.push_back(make_dfn3(model()));
  std::vector<float> y(kHopSize);
  std::size_t pos = 0;
  for (auto _ : state) {
    for (auto& d : ds) d->process(std::span<const float>(x).subspan(pos, kHopSize), y);
    pos = (pos + kHopSize) % x.size();
  }
  state.counters["hop_ms"] = benchmark::Counter(1e-3, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_StreamsPerHop)->Arg(1)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond);

// N streams advanced together with the batch path (each weight read once per hop for all of them), on one
// thread; with two threads (one per core) each advances half of them. hop_ms is the time for all N.
void BM_BatchPerHop(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const auto& x = audio();
  std::vector<std::unique_ptr<Denoiser>> ds;
  for (int i = 0; i < n; ++i) ds.push_back(make_dfn3(model()));
  std::vector<std::vector<float>> ys(n, std::vector<float>(kHopSize));
  std::size_t pos = 0;
  double worst_ms = 0;
  std::vector<double> hop_ms;   // the median: what a hop costs, however often the host gets in the way
  auto run_part = [&](int begin, int end) {
    std::vector<Denoiser*> p;
    std::vector<const float*> in;
    std::vector<float*> out;
    for (int k = begin; k < end; ++k) {
      p.push_back(ds[k].get());
      in.push_back(x.data() + (pos + static_cast<std::size_t>(k) * 7 * kHopSize) % x.size());
      out.push_back(ys[k].data());
    }
    process_batch(p, in, out);
  };
  // A persistent second thread (as the server's denoise pool will have), released once per hop.
  std::atomic<int> go{0}, done{0};
  std::atomic<bool> quit{false};
  std::thread worker;
  if (threads == 2) {
    worker = std::thread([&] {
      int seen = 0;
      while (true) {
        while (go.load(std::memory_order_acquire) == seen && !quit.load()) _mm_pause();
        if (quit.load()) return;
        seen = go.load();
        run_part(n / 2, n);
        done.store(seen, std::memory_order_release);
      }
    });
  }
  int hop = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    if (threads == 1) {
      run_part(0, n);
    } else {
      go.store(++hop, std::memory_order_release);
      run_part(0, n / 2);
      while (done.load(std::memory_order_acquire) != hop) _mm_pause();
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    worst_ms = std::max(worst_ms, ms);
    hop_ms.push_back(ms);
    pos = (pos + kHopSize) % x.size();
  }
  if (worker.joinable()) {
    quit.store(true);
    worker.join();
  }
  state.counters["worst_hop_ms"] = worst_ms;
  if (!hop_ms.empty()) state.counters["median_hop_ms"] = median(hop_ms);
  state.counters["streams"] = n;
}
BENCHMARK(BM_BatchPerHop)
    ->ArgsProduct({{1, 2, 3, 4, 6, 8, 32, 64, 128}, {1}})
    ->ArgsProduct({{32, 64, 96, 128}, {2}})
    ->ArgNames({"streams", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Whether the weights stay in the caches while a worker waits for its next pass: a buffer the size of the weights
// read right after the last read of it, and again after the thread slept `wait_us`. On a virtual machine whose
// last-level cache other tenants share, the read after 10 ms runs at close to memory's speed (BM_PacedBatch shows
// what that costs a batch). read_us: the median of 200 reads.
void BM_ReadAfterIdle(benchmark::State& state) {
  const auto wait = std::chrono::microseconds(state.range(0));
  std::vector<float> buf(model()->weight_bytes() / sizeof(float), 1.0f);
  std::vector<double> us;
  for (auto _ : state) {
    if (wait.count() > 0) std::this_thread::sleep_for(wait);
    us.push_back(read_pass_us(buf));
  }
  const double read_us = median(us);
  state.counters["read_us"] = read_us;
  state.counters["read_GBps"] = static_cast<double>(buf.size() * sizeof(float)) / read_us / 1e3;
}
BENCHMARK(BM_ReadAfterIdle)->ArgName("wait_us")->Arg(0)->Arg(1000)->Arg(10000)->Iterations(200)->Unit(benchmark::kMicrosecond);

// A batch as the server's worker runs it: one pass every `period_us` (10 ms in the server; 0: back to back, as
// BM_BatchPerHop), the thread asleep in between, each pass `frames` rounds of the batch one after another (a
// stream's 20 ms packet as one pass every 20 ms), and before each pass `evict_kb` of other memory written by the
// thread itself. Between passes 10 ms apart a virtual machine's caches lose what the pass read (the other programs
// on the host take them), so this, not BM_BatchPerHop, is what a frame costs a server's worker. pass_ms (wall) and
// cpu_us_per_frame (the thread's CPU time) are medians of the passes alone (the eviction not included).
void BM_PacedBatch(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const std::size_t evict_floats = static_cast<std::size_t>(state.range(1)) * 1024 / sizeof(float);
  const int frames = static_cast<int>(state.range(2));
  const long period_us = state.range(3);
  const auto& x = audio();
  std::vector<std::unique_ptr<Denoiser>> ds;
  for (int i = 0; i < n; ++i) ds.push_back(make_dfn3(model()));
  std::vector<std::vector<float>> ys(n, std::vector<float>(kHopSize));
  std::vector<float> other(std::max<std::size_t>(evict_floats, 1), 1.0f);
  std::vector<Denoiser*> p;
  std::vector<const float*> in(n);
  std::vector<float*> out;
  for (int k = 0; k < n; ++k) p.push_back(ds[k].get()), out.push_back(ys[k].data());
  auto thread_ms = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
  };
  std::vector<double> wall, cpu;
  std::size_t pos = 0;
  auto next = std::chrono::steady_clock::now();
  for (auto _ : state) {
    next += std::chrono::microseconds(period_us * frames);
    std::this_thread::sleep_until(next);
    for (std::size_t i = 0; i < evict_floats; i += 16) other[i] += 1.0f;  // one write per 64-byte line
    const double c0 = thread_ms();
    const auto t0 = std::chrono::steady_clock::now();
    for (int f = 0; f < frames; ++f) {
      for (int k = 0; k < n; ++k) in[k] = x.data() + (pos + static_cast<std::size_t>(k) * 7 * kHopSize) % x.size();
      process_batch(p, in, out);
      pos = (pos + kHopSize) % x.size();
    }
    wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    cpu.push_back(thread_ms() - c0);
  }
  benchmark::DoNotOptimize(other.data());
  state.counters["pass_ms"] = median(wall);
  state.counters["cpu_us_per_frame"] = median(cpu) * 1e3 / (n * frames);
}
BENCHMARK(BM_PacedBatch)
    ->ArgsProduct({{1, 16, 24}, {0}, {1}, {0, 10000}})
    ->Args({16, 32768, 1, 10000})
    ->Args({16, 0, 2, 10000})
    ->ArgNames({"streams", "evict_kb", "frames", "period_us"})
    ->Iterations(300)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  try {
    if (const char* isa = std::getenv("FC25_ISA"); isa && *isa) use_kernel_path(isa);
    if (const char* pf = std::getenv("FC25_PREFETCH"); pf && *pf) use_prefetch(pf);
    if (const char* dot = std::getenv("FC25_BF16_DOT"); dot && *dot) use_bf16_dot(dot);
    precision();
  } catch (const std::exception& e) {
    std::cerr << "FC25_ISA / FC25_PREFETCH / FC25_BF16_DOT / FC25_PRECISION: " << e.what() << "\n";
    return 2;
  }
  return fc25::bench::run_benchmarks(argc, argv, {{"kernels", std::string(kernel_path())},
                                                    {"prefetch", std::string(prefetch_mode())},
                                                    {"weights", std::string(to_string(precision()))},
                                                    {"bf16_dot", bf16_dot_mode()}});
}
