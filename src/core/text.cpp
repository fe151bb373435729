#include "core/text.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>

namespace fc25::core {

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are not one.
std::size_t sequence_at(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t n;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  return n;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto n = sequence_at(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::size_t utf8_length(std::string_view s) {
  if (!is_valid_utf8(s)) return s.size();
  std::size_t count = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++count;
  return count;
}

std::string printable(std::string_view s, std::size_t max_bytes) {
  std::string out;
  bool cut = s.size() > max_bytes;
  if (cut) s = s.substr(0, max_bytes);
  out.reserve(s.size());
  static const char* hex = "0123456789abcdef";
  for (std::size_t i = 0; i < s.size();) {
    auto n = sequence_at(s, i);
    if (n == 0) {
      // A sequence cut by max_bytes is dropped rather than shown as garbage.
      if (cut && s.size() - i < 4) break;
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (n == 1 && ((c < 0x20 && c != '\t') || c == 0x7F)) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  if (cut) out += "\xE2\x80\xA6";
  return out;
}

std::string json_text(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

nlohmann::json parse_json(std::string_view text, int max_depth) {
  nlohmann::json::parser_callback_t limit = [max_depth](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if (depth >= max_depth && (event == nlohmann::json::parse_event_t::object_start ||
                               event == nlohmann::json::parse_event_t::array_start)) {
      throw JsonTooDeep("JSON nested deeper than " + std::to_string(max_depth) + " levels");
    }
    return true;
  };
  return nlohmann::json::parse(text, limit);
}

HostPort parse_node_url(const std::string& url) {
  constexpr std::string_view scheme = "http://";
  if (!url.starts_with(scheme)) {
    throw std::invalid_argument("the node URL '" + url + "' is not http://host:port (nodes talk over their private network)");
  }
  auto rest = url.substr(scheme.size());
  rest = rest.substr(0, rest.find('/'));
  HostPort t;
  if (!rest.empty() && rest[0] == '[') {  // [v6]:port
    auto close = rest.find(']');
    if (close == std::string::npos) throw std::invalid_argument("the node URL '" + url + "' has a bad address");
    t.host = rest.substr(1, close - 1);
    t.port = close + 1 < rest.size() && rest[close + 1] == ':' ? rest.substr(close + 2) : "80";
  } else {
    auto colon = rest.rfind(':');
    t.host = rest.substr(0, colon);
    t.port = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  }
  if (t.host.empty() || t.port.empty() || t.port.find_first_not_of("0123456789") != std::string::npos) {
    throw std::invalid_argument("the node URL '" + url + "' has no host:port");
  }
  return t;
}

}  // namespace fc25::core
