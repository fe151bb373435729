#include <gtest/gtest.h>

#include "http/router.hpp"

namespace fc25::http {
namespace {

using boost::beast::http::verb;

TEST(Router, MatchesParametersAndIgnoresTheTrailingSlash) {
  Router<int> r;
  r.add(verb::post, "/api/friends/requests/{id}/accept", 1);
  r.add(verb::get, "/api/me", 2);
  r.add(verb::get, "/static/{*path}", 3);
  auto m = r.match(verb::post, "/api/friends/requests/42/accept/");
  ASSERT_TRUE(m.handler);
  EXPECT_EQ(*m.handler, 1);
  EXPECT_EQ(m.params["id"], "42");
  ASSERT_TRUE(r.match(verb::get, "/api/me/").handler);
  auto s = r.match(verb::get, "/static/dashboard/js/main.js");
  ASSERT_TRUE(s.handler);
  EXPECT_EQ(s.params["path"], "dashboard/js/main.js");
}

TEST(Router, TellsUnknownPathsFromWrongMethods) {
  Router<int> r;
  r.add(verb::get, "/api/me", 1);
  auto wrong = r.match(verb::post, "/api/me");
  EXPECT_FALSE(wrong.handler);
  EXPECT_EQ(wrong.allowed, std::vector<std::string>{"GET"});
  auto unknown = r.match(verb::get, "/api/you");
  EXPECT_FALSE(unknown.handler);
  EXPECT_TRUE(unknown.allowed.empty());
  EXPECT_FALSE(r.match(verb::get, "/api/me/extra").handler);
  EXPECT_FALSE(r.match(verb::get, "/api").handler);
}

}  // namespace
}  // namespace fc25::http
