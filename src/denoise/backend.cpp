#include <algorithm>
#include <stdexcept>
#include <string>

#include "denoise/denoise.hpp"
#include "denoise/nn/isa.hpp"

namespace fc25::denoise {

Backend parse_backend(std::string_view name) {
  if (name == "dfn3") return Backend::dfn3;
  if (name == "classic") return Backend::classic;
  if (name == "passthrough") return Backend::passthrough;
  throw std::invalid_argument("unknown denoiser '" + std::string(name) + "' (expected dfn3, classic or passthrough)");
}

std::string_view to_string(Backend backend) {
  switch (backend) {
    case Backend::dfn3: return "dfn3";
    case Backend::classic: return "classic";
    case Backend::passthrough: return "passthrough";
  }
  return "unknown";
}

void Denoiser::require_whole_hops(std::span<const float> in, std::span<float> out) {
  if (in.size() != out.size() || in.size() % kHopSize != 0) {
    throw std::invalid_argument("process_block: input and output of the same whole number of hops");
  }
}

void Denoiser::check_atten_lim_db(float db) {
  if (!(db >= 0.0f)) throw std::invalid_argument("atten_lim_db must be 0 or more (100: no limit)");
}

void Denoiser::process_block(std::span<const float> in, std::span<float> out) {
  require_whole_hops(in, out);
  for (std::size_t i = 0; i < in.size(); i += kHopSize) process(in.subspan(i, kHopSize), out.subspan(i, kHopSize));
}

void Denoiser::process_file(std::span<const float> in, std::span<float> out, bool,
                            const std::function<void(std::size_t)>& progress) {
  constexpr std::size_t kChunk = 64 * kHopSize;
  for (std::size_t i = 0; i < in.size(); i += kChunk) {
    const std::size_t len = std::min(kChunk, in.size() - i);
    process_block(in.subspan(i, len), out.subspan(i, len));
    if (progress) progress((i + len) / kHopSize);
  }
}

Precision parse_precision(std::string_view name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw std::invalid_argument("unknown precision '" + std::string(name) + "' (expected fp32 or bf16)");
}

std::string_view to_string(Precision precision) { return precision == Precision::bf16 ? "bf16" : "fp32"; }

std::string kernel_path() { return std::string(nn::isa_name(nn::active_isa())); }

std::vector<std::string> kernel_paths() {
  std::vector<std::string> names;
  for (auto isa : nn::supported_isas()) names.emplace_back(nn::isa_name(isa));
  return names;
}

void use_kernel_path(std::string_view name) {
  if (auto isa = nn::parse_isa(name); isa && nn::supports(*isa)) {
    nn::use_isa(*isa);
    return;
  }
  std::string have;
  for (auto& n : kernel_paths()) have += (have.empty() ? "" : ", ") + n;
  throw std::invalid_argument("kernel path '" + std::string(name) + "' is not one this processor can run (" + have +
                              ")");
}

namespace {
// "auto" (the processor's default), "on" or "off"; anything else refused, naming the setting.
bool auto_on_off(std::string_view mode, std::string_view setting, bool automatic) {
  if (mode == "auto") return automatic;
  if (mode == "on") return true;
  if (mode == "off") return false;
  throw std::invalid_argument(std::string(setting) + " '" + std::string(mode) + "' is not auto, on or off");
}
}  // namespace

std::string prefetch_mode() { return nn::prefetch_active() ? "on" : "off"; }

void use_prefetch(std::string_view mode) { nn::use_prefetch(auto_on_off(mode, "prefetch", nn::prefetch_default())); }

std::string bf16_dot_mode() { return nn::bf16_dot_active() ? "on" : "off"; }

void use_bf16_dot(std::string_view mode) { nn::use_bf16_dot(auto_on_off(mode, "bf16-dot", nn::bf16_dot_default())); }

}  // namespace fc25::denoise
