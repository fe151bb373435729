// What the processor's bfloat16 instructions would give the GRUs' products, before the engine uses them: one GRU
// input matrix (256 rows x 768 gates, bf16, 384 KB: in the second-level cache, so that the arithmetic is measured,
// not the read) times S streams' inputs, three ways:
//   widened    the engine's arithmetic today: each weight widened to float in registers (even and odd columns by a
//              shift and a mask), multiplied by the float input with a fused multiply-add, rows in order;
//   vdpbf16ps  AVX512-BF16: the weights in row pairs, the inputs rounded to bf16, one instruction per 16 columns and
//              pair of rows (32 multiply-adds);
//   amx        AMX tiles (16 streams x 32 inputs times 32 inputs x 16 columns per instruction), 16 streams at a time.
// And whether each bf16 instruction is, bit for bit, a chain of fused multiply-adds over the pairs (odd input first,
// then even, as Intel documents vdpbf16ps) that the other kernel paths could reproduce: `*_differ` counts the
// outputs that are not, of 16 streams x 768 gates in each of 20 trials (-1: the processor lacks the instruction).
//   build/bench/denoise/bf16_products_bench [--benchmark_filter=...]
// Prints the processor's model and which of the instructions it has; one it lacks is reported as an error.
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <cpuid.h>

#include "../gbench_main.hpp"
#include "denoise/nn/layers.hpp"

// GCC 12's AVX-512 headers start some intrinsics from an "undefined" register and then warn about it when inlined.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

using fc25::denoise::nn::from_bf16;
using fc25::denoise::nn::to_bf16;

constexpr int kRows = 256, kCols = 768, kMaxStreams = 16;

bool has_avx512_bf16() {
  unsigned a, b, c, d;
  return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5)) && __builtin_cpu_supports("avx512f");
}

// AMX needs the processor's AMX-BF16 and AMX-TILE and the kernel's permission to use the tile state.
bool has_amx() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24))) return false;
  constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
  static const bool granted = syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
  return granted;
}

// The operands, the same values every way: weights as rows ([rows][cols]) and as row pairs ([rows/2][cols][2]),
// inputs as floats and as bf16 pairs, and partial sums to start from.
struct Operands {
  std::vector<std::uint16_t> w_rows, w_pairs;
  std::vector<float> x;             // [streams][rows], already bf16 values, so that every way multiplies the same
  std::vector<std::uint16_t> x_bf;  // [streams][rows]
  std::vector<float> y0;            // [streams][cols]
  explicit Operands(unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    w_rows.resize(static_cast<std::size_t>(kRows) * kCols);
    w_pairs.resize(w_rows.size());
    for (auto& v : w_rows) v = to_bf16(nd(rng) * 0.1f);
    for (int i = 0; i < kRows; ++i)
      for (int j = 0; j < kCols; ++j)
        w_pairs[(static_cast<std::size_t>(i / 2) * kCols + j) * 2 + i % 2] = w_rows[static_cast<std::size_t>(i) * kCols + j];
    x_bf.resize(static_cast<std::size_t>(kMaxStreams) * kRows);
    x.resize(x_bf.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      x_bf[i] = to_bf16(nd(rng) * std::exp(nd(rng)));
      x[i] = from_bf16(x_bf[i]);
    }
    y0.resize(static_cast<std::size_t>(kMaxStreams) * kCols);
    for (auto& v : y0) v = nd(rng);
  }
};

#define FC25_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16"), noinline))
#define FC25_512_TARGET __attribute__((target("avx512f,avx512bw"), noinline))
#define FC25_AMX_TARGET __attribute__((target("amx-tile,amx-bf16"), noinline))

// Eight streams (or fewer) over strips of 32 columns, all rows, from y's partial sums: the engine's gemm_tile
// arithmetic for bf16 today.
template <int S>
FC25_512_TARGET void widened(const Operands& o, int s0, float* y) {
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  for (int j = 0; j < kCols; j += 32) {
    __m512 even[S], odd[S];
    for (int s = 0; s < S; ++s) {   // from y's partial sums, as the other ways (kept split: only the time counts)
      even[s] = _mm512_loadu_ps(y + static_cast<std::size_t>(s0 + s) * kCols + j);
      odd[s] = _mm512_loadu_ps(y + static_cast<std::size_t>(s0 + s) * kCols + j + 16);
    }
    for (int i = 0; i < kRows; ++i) {
      const __m512i v = _mm512_loadu_si512(o.w_rows.data() + static_cast<std::size_t>(i) * kCols + j);
      const __m512 e = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
      const __m512 d = _mm512_castsi512_ps(_mm512_and_si512(v, high));
      for (int s = 0; s < S; ++s) {
        const __m512 b = _mm512_set1_ps(o.x[static_cast<std::size_t>(s0 + s) * kRows + i]);
        even[s] = _mm512_fmadd_ps(b, e, even[s]);
        odd[s] = _mm512_fmadd_ps(b, d, odd[s]);
      }
    }
    for (int s = 0; s < S; ++s) {
      _mm512_storeu_ps(y + static_cast<std::size_t>(s0 + s) * kCols + j, even[s]);
      _mm512_storeu_ps(y + static_cast<std::size_t>(s0 + s) * kCols + j + 16, odd[s]);
    }
  }
}

// The same product with vdpbf16ps: S streams over strips of 32 columns, pairs of rows, from y's partial sums.
template <int S>
FC25_BF16_TARGET void dot_pairs(const Operands& o, int s0, float* y) {
  for (int j = 0; j < kCols; j += 32) {
    __m512 a0[S], a1[S];
    for (int s = 0; s < S; ++s) {
      a0[s] = _mm512_loadu_ps(y + static_cast<std::size_t>(s0 + s) * kCols + j);
      a1[s] = _mm512_loadu_ps(y + static_cast<std::size_t>(s0 + s) * kCols + j + 16);
    }
    for (int p = 0; p < kRows / 2; ++p) {
      const std::uint16_t* r = o.w_pairs.data() + (static_cast<std::size_t>(p) * kCols + j) * 2;
      const __m512bh v0 = (__m512bh)_mm512_loadu_si512(r);
      const __m512bh v1 = (__m512bh)_mm512_loadu_si512(r + 32);
      for (int s = 0; s < S; ++s) {
        std::uint32_t pair;
        std::memcpy(&pair, o.x_bf.data() + static_cast<std::size_t>(s0 + s) * kRows + 2 * p, 4);
        const __m512bh b = (__m512bh)_mm512_set1_epi32(static_cast<int>(pair));
        a0[s] = _mm512_dpbf16_ps(a0[s], v0, b);
        a1[s] = _mm512_dpbf16_ps(a1[s], v1, b);
      }
    }
    for (int s = 0; s < S; ++s) {
      _mm512_storeu_ps(y + static_cast<std::size_t>(s0 + s) * kCols + j, a0[s]);
      _mm512_storeu_ps(y + static_cast<std::size_t>(s0 + s) * kCols + j + 16, a1[s]);
    }
  }
}

struct TileConfig {
  std::uint8_t palette = 1, start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

// Sixteen streams with AMX: four 16 x 16 sums (64 columns) at a time over all rows, from y's partial sums.
FC25_AMX_TARGET void amx16(const Operands& o, float* y) {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);
  constexpr long kYStride = kCols * 4, kXStride = kRows * 2, kWStride = kCols * 4;
  for (int j = 0; j < kCols; j += 64) {
    _tile_loadd(0, y + j, kYStride);
    _tile_loadd(1, y + j + 16, kYStride);
    _tile_loadd(2, y + j + 32, kYStride);
    _tile_loadd(3, y + j + 48, kYStride);
    for (int k = 0; k < kRows; k += 32) {
      _tile_loadd(4, o.x_bf.data() + k, kXStride);
      const std::uint16_t* w = o.w_pairs.data() + (static_cast<std::size_t>(k / 2) * kCols + j) * 2;
      _tile_loadd(5, w, kWStride);
      _tile_dpbf16ps(0, 4, 5);
      _tile_loadd(6, w + 32, kWStride);
      _tile_dpbf16ps(1, 4, 6);
      _tile_loadd(7, w + 64, kWStride);
      _tile_dpbf16ps(2, 4, 7);
      _tile_loadd(5, w + 96, kWStride);
      _tile_dpbf16ps(3, 4, 5);
    }
    _tile_stored(0, y + j, kYStride);
    _tile_stored(1, y + j + 16, kYStride);
    _tile_stored(2, y + j + 32, kYStride);
    _tile_stored(3, y + j + 48, kYStride);
  }
  _tile_release();
}

enum Way { kWidened, kDot, kAmx };

void run(Way way, const Operands& o, int streams, float* y) {
  if (way == kAmx) {
    amx16(o, y);
    return;
  }
  int s = 0;
  for (; s + 8 <= streams; s += 8) way == kDot ? dot_pairs<8>(o, s, y) : widened<8>(o, s, y);
  for (; s < streams; ++s) way == kDot ? dot_pairs<1>(o, s, y) : widened<1>(o, s, y);
}

void BM_Bf16Products(benchmark::State& state, Way way) {
  const int streams = static_cast<int>(state.range(0));
  if (way == kDot && !has_avx512_bf16()) return state.SkipWithError("no AVX512-BF16 on this processor");
  if (way == kAmx && !has_amx()) return state.SkipWithError("no AMX-BF16 on this processor (or not allowed)");
  if (way == kAmx && streams != 16) return state.SkipWithError("AMX runs sixteen streams at a time");
  static const Operands o(1);
  std::vector<float> y = o.y0;
  for (auto _ : state) {
    run(way, o, streams, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double macs = static_cast<double>(kRows) * kCols * streams;
  state.counters["GMACps"] = benchmark::Counter(macs * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_CAPTURE(BM_Bf16Products, widened, kWidened)->ArgName("streams")->Arg(1)->Arg(8)->Arg(16);
BENCHMARK_CAPTURE(BM_Bf16Products, vdpbf16ps, kDot)->ArgName("streams")->Arg(1)->Arg(8)->Arg(16);
BENCHMARK_CAPTURE(BM_Bf16Products, amx, kAmx)->ArgName("streams")->Arg(16);

// Bit for bit: each instruction's sums against the chain of fused multiply-adds over the pairs, odd input first.
void BM_Bf16Exactness(benchmark::State& state) {
  const bool dot = has_avx512_bf16(), amx = has_amx();
  double dot_differ = 0, amx_differ = 0, outputs = 0;
  for (auto _ : state) {
    for (unsigned trial = 0; trial < 20; ++trial) {
      const Operands o(100 + trial);
      std::vector<float> chain = o.y0;
      for (int s = 0; s < kMaxStreams; ++s)
        for (int j = 0; j < kCols; ++j) {
          float& acc = chain[static_cast<std::size_t>(s) * kCols + j];
          for (int p = 0; p < kRows / 2; ++p) {
            const std::size_t xi = static_cast<std::size_t>(s) * kRows + 2 * p;
            const std::size_t wi = (static_cast<std::size_t>(p) * kCols + j) * 2;
            acc = std::fma(o.x[xi + 1], from_bf16(o.w_pairs[wi + 1]), acc);
            acc = std::fma(o.x[xi], from_bf16(o.w_pairs[wi]), acc);
          }
        }
      auto count = [&](Way way) {
        std::vector<float> y = o.y0;
        run(way, o, kMaxStreams, y.data());
        double n = 0;
        for (std::size_t i = 0; i < y.size(); ++i) n += y[i] != chain[i];
        return n;
      };
      if (dot) dot_differ += count(kDot);
      if (amx) amx_differ += count(kAmx);
      outputs += static_cast<double>(chain.size());
    }
  }
  state.counters["outputs"] = outputs;
  state.counters["vdpbf16ps_differ"] = dot ? dot_differ : -1;
  state.counters["amx_differ"] = amx ? amx_differ : -1;
}
BENCHMARK(BM_Bf16Exactness)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  return fc25::bench::run_benchmarks(argc, argv, {{"avx512_bf16", has_avx512_bf16() ? "yes" : "no"},
                                                    {"amx_bf16", has_amx() ? "yes" : "no"}});
}
