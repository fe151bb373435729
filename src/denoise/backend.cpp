#include <stdexcept>
#include <string>

#include "denoise/denoise.hpp"

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

}  // namespace fc25::denoise
