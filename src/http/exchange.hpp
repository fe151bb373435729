#pragma once
// One request as handlers see it, and helpers to answer it.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "storage/store.hpp"

namespace fc25::http {

namespace bhttp = boost::beast::http;
using Response = bhttp::response<bhttp::string_body>;

struct Request {
  bhttp::request<bhttp::string_body> msg;
  std::string path;                              // without query and trailing slash ("/" for the root)
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> params;     // from the route pattern
  std::map<std::string, std::string> cookies;
  std::string remote_address;
  std::string csrf_token;                        // the fc25_csrf cookie, or the fresh one set on this response
  bool set_csrf_cookie = false;
  std::optional<storage::User> user;             // from the session cookie
};

// Answers a request; callable once, from any thread.
using Respond = std::function<void(Response)>;

Response json_response(unsigned status, const nlohmann::json& body);
Response error_response(unsigned status, const std::string& code, const std::string& message);

std::map<std::string, std::string> parse_cookies(std::string_view header);
std::map<std::string, std::string> parse_form(std::string_view body);   // application/x-www-form-urlencoded
std::string url_decode(std::string_view s);

}  // namespace fc25::http
