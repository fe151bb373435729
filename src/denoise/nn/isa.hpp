#pragma once
// Which vector code the layer kernels run. Chosen once from what the processor supports; the server's --isa
// (FC25_ISA), the benchmarks and the tests may pick another the processor has, so that every path is measured and
// tested on any machine, the portable one included.
#include <optional>
#include <string_view>
#include <vector>

namespace fc25::denoise::nn {

enum class Isa {
  portable,  // any x86-64: plain loops the compiler vectorises for the baseline
  avx2,      // AVX2 and FMA (Intel since Haswell, AMD since Zen)
  avx512,    // AVX-512 F, BW, DQ and VL as well (Intel since Skylake-SP, AMD since Zen 4): the matrix products
             // 16 lanes wide, the rest as avx2; the same results as avx2, bit for bit
};

std::string_view isa_name(Isa isa);
// "portable", "avx2", "avx512"; nullopt for anything else.
std::optional<Isa> parse_isa(std::string_view name);
// What this processor can run, portable first.
std::vector<Isa> supported_isas();
// Whether this processor can run `isa`.
bool supports(Isa isa);
// The best of supported_isas(): the default.
Isa best_isa();
// What the kernels run now.
Isa active_isa();
// Throws std::invalid_argument, naming it, when this processor cannot run `isa`. Call before streams run (the
// tests and the benchmarks switch between runs; a switch during a hop would mix paths within it).
void use_isa(Isa isa);

// Whether the kernels that stream weights from the last-level cache (a GRU's, one stream at a time) ask for the
// next rows in software, prefetch instructions beside the loads, or leave it to the core's own prefetchers. The
// default is by processor: not on AMD processors before Zen 5 (family 26), whose prefetchers keep up with these
// sequential reads and where the extra instructions cost a stream 6-10 % of its hop (EPYC, Zen 4); yes on Zen 5
// (a stream 4-6 % faster with them) and on others (Intel Xeons, whose figures were measured with them). The audio
// is the same either way. Choose before streams run, as with use_isa.
bool prefetch_default();
bool prefetch_active();
void use_prefetch(bool on);

// Whether the avx512 path multiplies a GRU's bfloat16 rows for a batch of streams with AVX512-BF16's vdpbf16ps
// (two rows' products per lane, 32 per instruction) or widens each weight to float first; the audio is the same
// either way. The default is where the processor has AVX512-BF16. One stream, and the other paths, always widen.
// Choose before streams run, as with use_isa.
bool bf16_dot_supported();
bool bf16_dot_default();
bool bf16_dot_active();
// Throws std::invalid_argument when `on` and the processor has no AVX512-BF16.
void use_bf16_dot(bool on);

}  // namespace fc25::denoise::nn
