// Header and query text a client controls, through the parsers the HTTP plane uses on it: the Range header of a
// download (http::parse_range, against files of several sizes), the Cookie header (http::parse_cookies), paths
// and queries (http::url_decode, http::parse_form), and the helpers every error message that echoes such text
// goes through (core::printable, core::json_text).
//
// A crash is: any exception, a range outside the file, decoded text longer than its source, a cookie that is not
// a piece of the header, or echoed text that is not valid UTF-8.
#include <cstdint>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "core/text.hpp"
#include "fuzz_support.hpp"
#include "http/exchange.hpp"
#include "http/range.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fc25;
  std::string_view text(reinterpret_cast<const char*>(data), size);

  for (std::uint64_t file_size : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{44}, std::uint64_t{96044},
                                  std::uint64_t{1} << 40, std::numeric_limits<std::uint64_t>::max()}) {
    auto got = http::parse_range(text, file_size);
    if (got.kind != http::RangeRequest::Kind::part) continue;
    auto& r = got.range;
    if (r.length == 0 || r.first >= file_size || r.length > file_size - r.first) {
      fuzz::fail("range " + std::to_string(r.first) + "+" + std::to_string(r.length) + " of a " +
                 std::to_string(file_size) + "-byte file");
    }
  }

  auto cookies = http::parse_cookies(text);
  for (auto& [k, v] : cookies) {
    if (text.find(k + "=" + v) == std::string_view::npos) fuzz::fail("a cookie that is not in the header");
  }

  auto decoded = http::url_decode(text);
  if (decoded.size() > text.size()) fuzz::fail("url_decode made the text longer");
  for (auto& [k, v] : http::parse_form(text)) {
    if (k.size() + v.size() > text.size()) fuzz::fail("a form field longer than the form");
  }

  for (const auto& s : {std::string(text), decoded}) {
    auto shown = core::printable(s);
    if (!core::is_valid_utf8(shown)) fuzz::fail("printable() gave invalid UTF-8");
    auto j = core::json_text(nlohmann::json{{"error", {{"code", "x"}, {"message", "'" + s + "'"}}}});
    if (!core::is_valid_utf8(j)) fuzz::fail("json_text() gave invalid UTF-8");
    (void)nlohmann::json::parse(j);  // throws (a crash) when the text is not JSON
    (void)core::utf8_length(s);
  }
  return 0;
}
