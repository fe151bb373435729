#pragma once
// A user's live status as pages see it, built in one place for every message and answer that carries it
// (presence snapshots and pushes, friend lists, GET /api/me and /api/stream/status).
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "storage/store.hpp"

namespace fc25::streams {

// {username, is_streaming, session_id, started_at, state (live | reconnecting | offline), reconnecting_since}
nlohmann::json status_json(const storage::LiveStatus& s);

// The same for a stream that has just ended, with ended_at and end_reason (state offline).
nlohmann::json ended_json(const storage::ActiveStream& s, std::string_view end_reason, std::int64_t ended_at);

// The user's newest stream session, for the user's own pages: {session_id, ended_at, end_reason} (null fields while
// it is live; null when there is none), so that a page that was away when its stream ended can say why.
nlohmann::json last_stream_json(storage::Store& store, std::int64_t user_id);

}  // namespace fc25::streams
