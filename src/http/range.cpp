#include "http/range.hpp"

#include <limits>

namespace fc25::http {
namespace {

// Digits only, at least one; saturates at the largest uint64 (a position past any file's end).
std::optional<std::uint64_t> number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    auto d = static_cast<std::uint64_t>(c - '0');
    n = n > (kMax - d) / 10 ? kMax : n * 10 + d;
  }
  return n;
}

}  // namespace

std::optional<ByteRange> parse_range(std::string_view header, std::uint64_t size) {
  constexpr std::string_view kUnit = "bytes=";
  if (header.substr(0, kUnit.size()) != kUnit) return std::nullopt;
  auto spec = header.substr(kUnit.size());
  auto dash = spec.find('-');
  if (dash == std::string_view::npos || size == 0) return std::nullopt;  // "," has no place in a number below
  auto a = spec.substr(0, dash), b = spec.substr(dash + 1);
  if (a.empty()) {  // the last n bytes
    auto n = number(b);
    if (!n || *n == 0) return std::nullopt;
    auto length = *n < size ? *n : size;
    return ByteRange{size - length, length};
  }
  auto first = number(a);
  if (!first || *first >= size) return std::nullopt;
  std::uint64_t last = size - 1;
  if (!b.empty()) {
    auto l = number(b);
    if (!l || *l < *first) return std::nullopt;
    if (*l < last) last = *l;
  }
  return ByteRange{*first, last - *first + 1};
}

}  // namespace fc25::http
