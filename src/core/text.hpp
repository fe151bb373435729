#pragma once
// Text from outside (paths, headers, bodies, WebSocket frames) is bytes until checked. These are the checks, and the
// one way JSON is turned into text here: invalid UTF-8 inside a value (an error message echoing a client's bytes)
// becomes U+FFFD instead of an exception, so answering a bad request can never fail.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace fc25::core {

// Well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);
// Code points in valid UTF-8 (bytes are counted for invalid input).
std::size_t utf8_length(std::string_view s);
// `s` with each invalid UTF-8 sequence replaced by U+FFFD and control characters other than tab shown as \xNN;
// at most `max_bytes` of the input are kept (then "…"). For echoing client input in messages and logs.
std::string printable(std::string_view s, std::size_t max_bytes = 200);
// Compact JSON; never throws for invalid UTF-8 in strings (replaced by U+FFFD).
std::string json_text(const nlohmann::json& j);

// JSON from outside nested deeper than parse_json allows.
class JsonTooDeep : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};
// Parses JSON from outside. Copying or writing a value recurses once per level, so a value nested thousands deep
// (a 64 KiB message can hold 32 000 levels) would overflow a thread's stack wherever it is later copied or echoed:
// deeper than `max_depth` is refused here (JsonTooDeep) before any such value exists. Syntax errors throw
// nlohmann::json::parse_error as json::parse does.
nlohmann::json parse_json(std::string_view text, int max_depth = 32);

// Where another node of the cluster is reached: its FC25_NODE_URL, http://host[:port][/...] ([v6] for IPv6; port
// 80 when absent). Throws std::invalid_argument naming the URL for anything else (nodes talk plain HTTP on their
// private network).
struct HostPort {
  std::string host;
  std::string port;
};
HostPort parse_node_url(const std::string& url);

}  // namespace fc25::core
