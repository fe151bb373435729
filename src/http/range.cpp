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

RangeRequest parse_range(std::string_view header, std::uint64_t size) {
  using Kind = RangeRequest::Kind;
  constexpr std::string_view kUnit = "bytes=";
  const RangeRequest whole{}, unsatisfiable{Kind::unsatisfiable, {}};
  if (header.substr(0, kUnit.size()) != kUnit) return whole;
  auto spec = header.substr(kUnit.size());
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return whole;  // a "," is no digit: several ranges are ignored below too
  auto a = spec.substr(0, dash), b = spec.substr(dash + 1);
  if (a.empty()) {  // the last n bytes
    auto n = number(b);
    if (!n) return whole;
    if (*n == 0 || size == 0) return unsatisfiable;
    auto length = *n < size ? *n : size;
    return {Kind::part, {size - length, length}};
  }
  auto first = number(a);
  if (!first) return whole;
  std::uint64_t last = std::numeric_limits<std::uint64_t>::max();
  if (!b.empty()) {
    auto l = number(b);
    if (!l || *l < *first) return whole;  // not a range (RFC 9110 14.1.1: last-pos < first-pos is invalid)
    last = *l;
  }
  if (*first >= size) return unsatisfiable;
  if (last > size - 1) last = size - 1;
  return {Kind::part, {*first, last - *first + 1}};
}

}  // namespace fc25::http
