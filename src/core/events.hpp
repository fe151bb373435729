#pragma once
// Where the social and streams planes send events meant for a user's open pages. The app connects it to presence.
#include <string>

#include <nlohmann/json.hpp>

namespace fc25::core {

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Delivers `event` (a JSON object with a "type") to every open page of `username`. Never blocks on a socket.
  virtual void send_to_user(const std::string& username, const nlohmann::json& event) = 0;
};

}  // namespace fc25::core
