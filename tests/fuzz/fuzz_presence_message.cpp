// A text frame from a page on its presence socket, handled as the socket session handles it
// (presence::detail::answer_frame: ping, errors naming what they answer, hand-over to on_message), and every
// answer serialised as it is sent.
//
// on_message is where the app does WebRTC signalling (signalling::Signalling, which needs the media plane and a live
// stream). Here it reads the fields with the app's own readers (signalling/fields.hpp: session_id, listen_id,
// username, candidate, sdpMid, sdpMLineIndex, sdp), places candidates as the media plane does, runs the offer check of the media plane on any SDP, and refuses as the app does
// (std::invalid_argument for a bad field, core::ApiError for a refusal), echoing client text in its messages.
//
// A crash is: an exception escaping, an answer that is not one JSON object in valid UTF-8, an error answer
// without a code and message.
#include <cstdint>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "signalling/fields.hpp"
#include "core/api_error.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "fuzz_support.hpp"
#include "media/media.hpp"
#include "presence/detail/frame.hpp"

namespace {

using namespace fc25;
using nlohmann::json;

void handle_signalling(const presence::SocketUser& user, const std::string&, const json& msg, const presence::Reply& reply) {
  using fc25::signalling::candidate_fields;
  using fc25::signalling::session_field;
  using fc25::signalling::string_field;
  auto type = msg["type"].get<std::string>();
  if (type == "listen_offer") {
    auto name = string_field(msg, "username");
    try {
      media::check_offer(string_field(msg, "sdp"), media::OfferDirection::receives);
    } catch (const media::OfferError& e) {
      throw core::ApiError(400, "bad_offer", e.what());
    }
    throw core::ApiError(409, "not_live", "'" + name + "' is not live");
  }
  if (type == "listen_stop" || (type == "ice_candidate" && msg.contains("listen_id"))) {
    auto id = string_field(msg, "listen_id");
    if (type == "ice_candidate") (void)candidate_fields(msg);
    throw core::ApiError(404, "unknown_listener", "no listening session '" + id + "' of yours");
  }
  if (type != "webrtc_offer" && type != "ice_candidate") {
    throw std::invalid_argument("unknown message type '" + type +
                                "' (expected: ping, webrtc_offer, ice_candidate, listen_offer, listen_stop)");
  }
  auto session_id = session_field(msg);
  if (type == "ice_candidate") {
    auto c = candidate_fields(msg);
    // As the media plane places it, against an offer whose one m-line has a=mid "0".
    auto mline = media::candidate_mline(c, {"0"});
    reply(json{{"type", "ice_candidate"}, {"session_id", session_id}, {"candidate", c.candidate}, {"sdpMid", "0"},
               {"sdpMLineIndex", mline}});
    return;
  }
  try {
    media::check_offer(string_field(msg, "sdp"), media::OfferDirection::sends);
  } catch (const media::OfferError& e) {
    throw core::ApiError(400, "bad_offer", e.what());
  }
  reply(json{{"type", "webrtc_answer"}, {"session_id", session_id}, {"sdp", "v=0\r\n"}, {"user", user.username}});
}

void check_message(const std::string& text, bool must_be_error) {
  if (!core::is_valid_utf8(text)) fuzz::fail("an answer is not valid UTF-8: " + core::printable(text));
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fuzz::fail(std::string("an answer does not parse: ") + e.what());
  }
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) fuzz::fail("an answer has no type: " + text);
  if (must_be_error || j["type"] == "error") {
    auto e = j.find("error");
    if (e == j.end() || !e->is_object() || !e->contains("code") || !e->contains("message") ||
        !(*e)["code"].is_string() || !(*e)["message"].is_string()) {
      fuzz::fail("an error answer without a code and a message: " + text);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  core::set_log_level("off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  presence::Hooks hooks;
  hooks.on_message = handle_signalling;
  presence::SocketUser user;
  user.id = 7;
  user.username = "fuzz";
  auto sent = [](const json& m) { check_message(core::json_text(m), false); };
  auto answer = presence::detail::answer_frame(text, hooks, user, "fuzztab", sent);
  if (answer) check_message(*answer, false);
  // And the same frame where no signalling is wired (only ping is known).
  auto plain = presence::detail::answer_frame(text, presence::Hooks{}, user, "fuzztab", sent);
  if (!plain) fuzz::fail("a message went to a hook that is not set");
  check_message(*plain, false);
  return 0;
}
