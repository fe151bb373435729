#pragma once
// One request as handlers see it, and helpers to answer it.
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/beast/core/file.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http.hpp>
#include <boost/optional.hpp>
#include <nlohmann/json.hpp>

#include "storage/store.hpp"

namespace fc25::http {

namespace bhttp = boost::beast::http;
using Response = bhttp::response<bhttp::string_body>;

// A byte range of a file on disk, read 64 KiB at a time as the socket takes it: what a download holds in memory
// does not depend on the file's size.
struct FileRangeBody {
  struct value_type {
    boost::beast::file file;       // open for reading
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
  };
  static std::uint64_t size(const value_type& v) { return v.length; }

  class writer {
   public:
    using const_buffers_type = boost::asio::const_buffer;
    template <bool isRequest, class Fields>
    writer(bhttp::header<isRequest, Fields>&, value_type& body) : body_(body) {}
    void init(boost::beast::error_code& ec) {
      remain_ = body_.length;
      body_.file.seek(body_.offset, ec);
    }
    boost::optional<std::pair<const_buffers_type, bool>> get(boost::beast::error_code& ec) {
      auto want = static_cast<std::size_t>(std::min<std::uint64_t>(remain_, sizeof(buf_)));
      if (want == 0) {
        ec = {};
        return boost::none;
      }
      auto n = body_.file.read(buf_, want, ec);
      if (ec) return boost::none;
      if (n == 0) {  // the file shrank under us
        ec = bhttp::error::short_read;
        return boost::none;
      }
      remain_ -= n;
      return {{const_buffers_type(buf_, n), remain_ > 0}};
    }

   private:
    value_type& body_;
    std::uint64_t remain_ = 0;
    char buf_[64 * 1024];
  };
};
using FileResponse = bhttp::response<FileRangeBody>;

// An answer another node of the cluster gives: `request` is sent to it and its answer (status, headers, body)
// streamed back to the client as it arrives, whatever its size. When the node cannot be reached, or does not
// begin its answer within `timeout`, the client gets `unavailable` instead.
struct Proxy {
  std::string host;
  std::string port;
  bhttp::request<bhttp::empty_body> request;
  std::chrono::milliseconds timeout{2000};
  Response unavailable;
};

// What a handler answers: a message held in memory, a file sent from disk, or another node's answer.
struct Reply {
  Reply(Response r) : message(std::move(r)) {}       // NOLINT: implicit, handlers answer with any of them
  Reply(FileResponse r) : message(std::move(r)) {}   // NOLINT
  Reply(Proxy p) : message(std::move(p)) {}          // NOLINT
  std::variant<Response, FileResponse, Proxy> message;
};

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
using Respond = std::function<void(Reply)>;

Response json_response(unsigned status, const nlohmann::json& body);
// Whether a request from another node carries the cluster secret (`Authorization: Bearer <secret>`); never with
// no secret set.
bool has_cluster_secret(const bhttp::request<bhttp::string_body>& msg, const std::string& secret);
Response error_response(unsigned status, const std::string& code, const std::string& message);

std::map<std::string, std::string> parse_cookies(std::string_view header);
std::map<std::string, std::string> parse_form(std::string_view body);   // application/x-www-form-urlencoded

// Percent-decoding, the one way text from a URL is decoded here: %XX (two hex digits) becomes that byte, and a %
// not followed by two hex digits stays as it is. In a query or a form '+' stands for a space (Plus::space); in a
// path or a URI's user info (a TURN credential) it is itself (Plus::literal).
enum class Plus { space, literal };
std::string url_decode(std::string_view s, Plus plus = Plus::space);

// A whole number written in ASCII digits only (at least one; no sign, space or other byte, whatever its value) and
// no greater than `max`; nullopt for anything else, however many digits it has.
std::optional<std::uint64_t> parse_decimal(std::string_view s,
                                           std::uint64_t max = std::numeric_limits<std::uint64_t>::max());

}  // namespace fc25::http
