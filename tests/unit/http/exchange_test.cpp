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
