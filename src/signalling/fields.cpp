#include "signalling/fields.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>

namespace fc25::signalling {

using nlohmann::json;

std::int64_t session_field(const json& msg) { return integer_field(msg, "session_id"); }

std::int64_t integer_field(const json& msg, const char* name) {
  auto it = msg.find(name);
  if (it == msg.end() || !it->is_number_integer()) {
    throw std::invalid_argument(std::string("field '") + name + "' is required and must be a number");
  }
  return it->get<std::int64_t>();
}

std::string string_field(const json& msg, const char* name) {
  auto it = msg.find(name);
  if (it == msg.end() || !it->is_string()) {
    throw std::invalid_argument(std::string("field '") + name + "' is required and must be a string");
  }
  return it->get<std::string>();
}

// The m-line index of a candidate: absent or null, none; otherwise an integer 0-16 (a value that does not fit an
// int, a fraction or a string is refused, never wrapped or converted).
std::optional<unsigned> mline_field(const json& msg) {
  auto it = msg.find("sdpMLineIndex");
  if (it == msg.end() || it->is_null()) return std::nullopt;
  if (it->is_number_unsigned() && it->get<std::uint64_t>() <= 16) return static_cast<unsigned>(it->get<std::uint64_t>());
  if (it->is_number_integer() && !it->is_number_unsigned() && it->get<std::int64_t>() >= 0 &&
      it->get<std::int64_t>() <= 16) {
    return static_cast<unsigned>(it->get<std::int64_t>());
  }
  throw std::invalid_argument("field 'sdpMLineIndex' must be an integer 0-16");
}

// An ice_candidate message of a page (a broadcaster's or a listener's): the candidate, and its m-line named by
// sdpMid, sdpMLineIndex or both (which m-line of the offer that is, the media plane decides).
media::RemoteCandidate candidate_fields(const json& msg) {
  media::RemoteCandidate c;
  c.candidate = string_field(msg, "candidate");
  auto mid = msg.find("sdpMid");
  if (mid != msg.end() && !mid->is_null()) {
    if (!mid->is_string() || mid->get_ref<const std::string&>().size() > 256) {
      throw std::invalid_argument("field 'sdpMid' must be a string of at most 256 characters");
    }
    c.mid = mid->get<std::string>();
  }
  c.mline = mline_field(msg);
  if (!c.mid && !c.mline) {
    throw std::invalid_argument("an ice_candidate needs 'sdpMid' (an a=mid of the offer) or 'sdpMLineIndex'");
  }
  return c;
}

}  // namespace fc25::signalling
