#include <gtest/gtest.h>

#include "http/exchange.hpp"

namespace fc25::http {
namespace {

TEST(Exchange, ParsesCookiesAndForms) {
  auto c = parse_cookies("fc25_csrf=abc; fc25_session=def;other=1");
  EXPECT_EQ(c["fc25_csrf"], "abc");
  EXPECT_EQ(c["fc25_session"], "def");
  EXPECT_EQ(c["other"], "1");
  auto f = parse_form("csrf_token=a%2Bb&reason=page_unload&empty=&name=two+words");
  EXPECT_EQ(f["csrf_token"], "a+b");
  EXPECT_EQ(f["reason"], "page_unload");
  EXPECT_EQ(f["empty"], "");
  EXPECT_EQ(f["name"], "two words");
}

TEST(Exchange, UrlDecodeTakesPlusAsSpaceOnlyInForms) {
  EXPECT_EQ(url_decode("a+b%20c%2Bd"), "a b c+d");
  EXPECT_EQ(url_decode("a+b%20c%2Bd", Plus::literal), "a+b c+d");
  EXPECT_EQ(url_decode("p%40ss", Plus::literal), "p@ss");
  EXPECT_EQ(url_decode("%c3%A9"), "\xc3\xa9");
  // A % without two hex digits after it stays as it is, at the end too.
  EXPECT_EQ(url_decode("us%zzer%4"), "us%zzer%4");
  EXPECT_EQ(url_decode("%"), "%");
  EXPECT_EQ(url_decode("%41"), "A");
  EXPECT_EQ(url_decode("%00", Plus::literal), std::string(1, '\0'));
}

TEST(Exchange, ParseDecimalTakesAsciiDigitsUpToTheLimit) {
  EXPECT_EQ(parse_decimal("0"), 0u);
  EXPECT_EQ(parse_decimal("42"), 42u);
  EXPECT_EQ(parse_decimal("000000000000000000000042"), 42u);  // leading zeros are not overflow
  EXPECT_EQ(parse_decimal("18446744073709551615"), 18446744073709551615u);
  EXPECT_EQ(parse_decimal("9223372036854775807", 9223372036854775807u), 9223372036854775807u);
  EXPECT_EQ(parse_decimal("2000", 2000), 2000u);
  // Over the limit, or over what 64 bits hold: refused, never wrapped.
  EXPECT_EQ(parse_decimal("2001", 2000), std::nullopt);
  EXPECT_EQ(parse_decimal("9", 5), std::nullopt);
  EXPECT_EQ(parse_decimal("9223372036854775808", 9223372036854775807u), std::nullopt);
  EXPECT_EQ(parse_decimal("18446744073709551616"), std::nullopt);
  EXPECT_EQ(parse_decimal("99999999999999999999999999"), std::nullopt);
  // Nothing but ASCII digits: no sign, space, empty string, and no byte >= 0x80 (negative as a plain char).
  const std::string bad[] = {"", "-1", "+1", " 1", "1 ", "1e3", "0x10", "12a", "\xb2", "1\xd9\xa3", "\xef\xbc\x91",
                             std::string("1\0", 2)};
  for (std::size_t i = 0; i < std::size(bad); ++i) EXPECT_EQ(parse_decimal(bad[i]), std::nullopt) << "input #" << i;
  for (int b = 0; b < 256; ++b) {
    std::string s(1, static_cast<char>(b));
    EXPECT_EQ(parse_decimal(s).has_value(), b >= '0' && b <= '9') << "byte " << b;
  }
}

TEST(Exchange, ErrorsAreJsonWithCodeAndMessage) {
  auto res = error_response(413, "payload_too_large", "request body over 64 KiB");
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_EQ(res[boost::beast::http::field::content_type], "application/json");
  auto j = nlohmann::json::parse(res.body());
  EXPECT_EQ(j["error"]["code"], "payload_too_large");
  EXPECT_EQ(j["error"]["message"], "request body over 64 KiB");
}

}  // namespace
}  // namespace fc25::http
