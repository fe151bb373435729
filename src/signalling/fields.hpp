#pragma once
// The fields of a page's signalling messages on its presence socket, read strictly: a field missing or of the
// wrong kind throws std::invalid_argument naming it (the socket answers bad_message). Shared by app::Signalling and
// the presence-message fuzz target.
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "media/media.hpp"

namespace fc25::signalling {

std::int64_t session_field(const nlohmann::json& msg);
std::int64_t integer_field(const nlohmann::json& msg, const char* name);
std::string string_field(const nlohmann::json& msg, const char* name);
// The m-line index of a candidate: absent or null, none; otherwise an integer 0-16.
std::optional<unsigned> mline_field(const nlohmann::json& msg);
// An ice_candidate message: the candidate, and its m-line named by sdpMid, sdpMLineIndex or both.
media::RemoteCandidate candidate_fields(const nlohmann::json& msg);

}  // namespace fc25::signalling
