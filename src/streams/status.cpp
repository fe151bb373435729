#include "streams/status.hpp"

#include "core/time.hpp"

namespace fc25::streams {

using nlohmann::json;

json status_json(const storage::LiveStatus& s) {
  json j{{"username", s.username}, {"is_streaming", s.is_streaming}};
  j["session_id"] = s.is_streaming ? json(s.session_id) : json(nullptr);
  j["started_at"] = s.is_streaming ? json(core::iso8601_ms(s.started_at)) : json(nullptr);
  j["state"] = !s.is_streaming ? "offline" : s.reconnecting_since ? "reconnecting" : "live";
  j["reconnecting_since"] = s.is_streaming && s.reconnecting_since ? json(core::iso8601_ms(*s.reconnecting_since))
                                                                    : json(nullptr);
  return j;
}

json ended_json(const storage::ActiveStream& s, std::string_view end_reason, std::int64_t ended_at) {
  return {{"username", s.username},
          {"is_streaming", false},
          {"session_id", s.session_id},
          {"started_at", core::iso8601_ms(s.started_at)},
          {"state", "offline"},
          {"reconnecting_since", nullptr},
          {"ended_at", core::iso8601_ms(ended_at)},
          {"end_reason", end_reason}};
}

json last_stream_json(storage::Store& store, std::int64_t user_id) {
  auto last = store.last_stream_session(user_id);
  if (!last) return nullptr;
  return {{"session_id", last->id},
          {"ended_at", last->ended_at ? json(core::iso8601_ms(*last->ended_at)) : json(nullptr)},
          {"end_reason", last->ended_at ? json(last->end_reason) : json(nullptr)}};
}

}  // namespace fc25::streams
