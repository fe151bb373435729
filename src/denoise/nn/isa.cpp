#include "denoise/nn/isa.hpp"

#include <cpuid.h>

#include <atomic>
#include <stdexcept>
#include <string>

namespace fc25::denoise::nn {
namespace {

std::atomic<Isa>& current() {
  static std::atomic<Isa> isa{best_isa()};
  return isa;
}

std::atomic<bool>& prefetch_on() {
  static std::atomic<bool> on{prefetch_default()};
  return on;
}

std::atomic<bool>& bf16_dot_on() {
  static std::atomic<bool> on{bf16_dot_default()};
  return on;
}

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::portable: break;
  }
  return "portable";
}

std::optional<Isa> parse_isa(std::string_view name) {
  if (name == "portable") return Isa::portable;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  return std::nullopt;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> all{Isa::portable};
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return all;
  all.push_back(Isa::avx2);
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl")) {
    all.push_back(Isa::avx512);
  }
  return all;
}

Isa best_isa() { return supported_isas().back(); }

Isa active_isa() { return current().load(std::memory_order_relaxed); }

bool supports(Isa isa) {
  for (Isa s : supported_isas()) {
    if (s == isa) return true;
  }
  return false;
}

void use_isa(Isa isa) {
  if (supports(isa)) {
    current().store(isa, std::memory_order_relaxed);
    return;
  }
  throw std::invalid_argument("this processor cannot run the " + std::string(isa_name(isa)) + " kernels");
}

bool prefetch_default() {
  if (!__builtin_cpu_is("amd")) return true;
  // AMD: off before family 26 (Zen 5), where the instructions cost one stream its time (Zen 4) or were not measured.
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const unsigned base = (a >> 8) & 0xf;
  const unsigned family = base == 0xf ? base + ((a >> 20) & 0xff) : base;
  return family >= 26;
}

bool prefetch_active() { return prefetch_on().load(std::memory_order_relaxed); }

void use_prefetch(bool on) { prefetch_on().store(on, std::memory_order_relaxed); }

bool bf16_dot_supported() {
  unsigned a = 0, b = 0, c = 0, d = 0;   // CPUID leaf 7, sub-leaf 1: EAX bit 5 is AVX512-BF16
  return supports(Isa::avx512) && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5)) != 0;
}

bool bf16_dot_default() { return bf16_dot_supported(); }

bool bf16_dot_active() { return bf16_dot_on().load(std::memory_order_relaxed); }

void use_bf16_dot(bool on) {
  if (on && !bf16_dot_supported()) throw std::invalid_argument("this processor has no AVX512-BF16 (vdpbf16ps)");
  bf16_dot_on().store(on, std::memory_order_relaxed);
}

}  // namespace fc25::denoise::nn
