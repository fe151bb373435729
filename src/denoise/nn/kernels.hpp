#pragma once
// The layers' kernels, one table per kernel path (nn/isa.hpp): each operation written once portably and, where the
// processor allows, with AVX2 and FMA. The layers (nn/layers.cpp) call the active path's table; the tests and the
// benchmarks pick a path with use_isa() and run the same layers on it.
#include <cstddef>
#include <cstdint>

#include "denoise/nn/isa.hpp"
#include "denoise/nn/layers.hpp"

namespace fc25::denoise::nn {

struct Kernels {
  // y[k][yoff + j] += sum_i x[k][xoff + i] * w[i * ldw + j] for j < width, every stream k < n: one tile of a
  // matrix product. A batch gives each stream exactly what it would get alone.
  void (*gemm_tile)(const float* w, std::size_t ldw, int rows, const float* const* x, std::size_t xoff,
                    float* const* y, std::size_t yoff, int n, int width);
  // The same with the weights in bfloat16 (layers.hpp), each widened to float as it is loaded: equal, bit for
  // bit, to gemm_tile on the widened weights.
  void (*gemm_tile_bf16)(const std::uint16_t* w, std::size_t ldw, int rows, const float* const* x, std::size_t xoff,
                         float* const* y, std::size_t yoff, int n, int width);
  // One stream through a grouped linear whose groups are `out` = 8, 16 or 32 wide, the groups side by side (y is
  // zero on entry); nullptr where the path has no such kernel (gemm_tile runs it).
  void (*grouped_one)(const float* w, int groups, int in, int out, const float* x, float* y);
  void (*grouped_one_bf16)(const std::uint16_t* w, int groups, int in, int out, const float* x, float* y);
  // A convolution that is not pointwise (Conv2d::run handles 1x1 through gemm_tile).
  void (*conv)(const Conv2d& c, const float* const* frames, int in_f, float* out);
  // The transposed convolution DeepFilterNet3 uses: kernel 3, stride 2, padding 1, output padding 1.
  void (*convt_s2)(const ConvTranspose1x3& c, const float* in, int in_f, float* out);
  // A GRU's gates for one stream: h = (1 - z) n + z h from the input's and the state's gate sums (3 H each).
  void (*gru_gates)(const float* gx, const float* gh, float* h, int H);
  void (*tanh)(float* x, int n);
  // One stream through `panels` GRU panels one after the other (Gru::kPanel gates each, [rows][kPanel]):
  // y[p * kPanel + j] += sum_i x[i] * w[p][i][j]. nullptr where gemm_tile runs them panel by panel.
  void (*panels_one)(const float* w, int rows, int panels, const float* x, float* y);
  void (*panels_one_bf16)(const std::uint16_t* w, int rows, int panels, const float* x, float* y);
  // One stream through a matrix stored row by row ([rows][cols], cols a multiple of 16), only the rows listed
  // (ascending): y[j] += sum_k x[rows[k]] * w[rows[k]][j]. With the zero inputs left out of `rows` it equals,
  // bit for bit, the whole product, as gemm_tile or panels_one compute it.
  void (*rows_one)(const float* w, int cols, const int* rows, int count, const float* x, float* y);
  void (*rows_one_bf16)(const std::uint16_t* w, int cols, const int* rows, int count, const float* x, float* y);
  // A GRU's bfloat16 products for several streams (as gemm_tile_bf16, whose inputs are any floats, with inputs
  // that are bfloat16 values, Gru::to_bf16): where the processor has AVX512-BF16, two rows per vdpbf16ps, the
  // same bits (isa.hpp, use_bf16_dot).
  void (*gru_tile_bf16)(const std::uint16_t* w, std::size_t ldw, int rows, const float* const* x, std::size_t xoff,
                        float* const* y, std::size_t yoff, int n, int width);
  // out[i] = x[i] rounded to bfloat16 (bf16_flushed) and back: a GRU step's inputs as its products take them.
  void (*round_bf16)(const float* x, float* out, int n);
};

// A path's table with or without the weights asked for ahead in software (isa.hpp, use_prefetch), and with the
// bfloat16 pairs' products by vdpbf16ps or by widening the weights (isa.hpp, use_bf16_dot; the same bits).
const Kernels& kernels(Isa isa, bool prefetch, bool bf16_dot);
inline const Kernels& kernels() { return kernels(active_isa(), prefetch_active(), bf16_dot_active()); }

}  // namespace fc25::denoise::nn
