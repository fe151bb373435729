#include "streams/live_stream.hpp"

namespace fc25::streams {

std::string_view to_string(State s) {
  switch (s) {
    case State::starting: return "starting";
    case State::live: return "live";
    case State::stopping: return "stopping";
    case State::ended: return "ended";
  }
  return "?";
}

namespace {
constexpr std::pair<EndReason, std::string_view> kReasons[] = {
    {EndReason::user, "user"},
    {EndReason::page_unload, "page_unload"},
    {EndReason::socket_closed, "socket_closed"},
    {EndReason::webrtc_failed, "webrtc_failed"},
    {EndReason::media_timeout, "media_timeout"},
    {EndReason::server_shutdown, "server_shutdown"},
    {EndReason::server_restart, "server_restart"},
    {EndReason::media_error, "media_error"},
    {EndReason::recording_failed, "recording_failed"},
    {EndReason::node_lost, "node_lost"},
};
}  // namespace

std::string_view to_string(EndReason r) {
  for (auto& [reason, name] : kReasons)
    if (reason == r) return name;
  return "?";
}

std::optional<EndReason> parse_end_reason(std::string_view s) {
  for (auto& [reason, name] : kReasons)
    if (name == s) return reason;
  return std::nullopt;
}

namespace {
struct StrengthInfo {
  Strength strength;
  std::string_view name;
  float atten_lim_db;
};
constexpr StrengthInfo kStrengths[] = {
    {Strength::off, "off", 0.0f},
    {Strength::light, "light", 12.0f},
    {Strength::balanced, "balanced", 24.0f},
    {Strength::full, "full", 100.0f},
};
}  // namespace

std::string_view to_string(Strength s) {
  for (auto& i : kStrengths)
    if (i.strength == s) return i.name;
  return "?";
}

std::optional<Strength> parse_strength(std::string_view s) {
  for (auto& i : kStrengths)
    if (i.name == s) return i.strength;
  return std::nullopt;
}

float atten_lim_db(Strength s) {
  for (auto& i : kStrengths)
    if (i.strength == s) return i.atten_lim_db;
  return 100.0f;
}

bool LiveStream::mark_live() {
  if (state_ != State::starting) return false;
  state_ = State::live;
  return true;
}

bool LiveStream::begin_stop(EndReason reason) {
  if (state_ != State::starting && state_ != State::live) return false;
  state_ = State::stopping;
  reason_ = reason;
  return true;
}

bool LiveStream::finish() {
  if (state_ != State::stopping) return false;
  state_ = State::ended;
  return true;
}

}  // namespace fc25::streams
