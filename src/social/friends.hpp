#pragma once
// Friendships: requests (send, accept, decline, cancel), removal, and lists. Pushes each change to the other
// user's open pages. Only friends see each other's status. Refusals are core::ApiError.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/events.hpp"
#include "storage/store.hpp"

namespace fc25::social {


class Friends {
 public:
  Friends(storage::Store& store, core::EventSink& events) : store_(store), events_(events) {}

  // 201-style {request:{...}} or, when the other had already asked, the friendship {friend: name}.
  nlohmann::json send_request(const storage::User& from, const std::string& to_username);
  nlohmann::json accept(const storage::User& me, std::int64_t request_id);
  void decline(const storage::User& me, std::int64_t request_id);
  void cancel(const storage::User& me, std::int64_t request_id);
  void remove(const storage::User& me, const std::string& username);

  nlohmann::json list(const storage::User& me);      // {friends:[...]}
  nlohmann::json requests(const storage::User& me);  // {incoming:[...], outgoing:[...]}

  // Throws 404 unknown_user / 403 not_friends unless `me` may see `username`'s status (oneself always may).
  storage::User visible_user(const storage::User& me, const std::string& username);

 private:
  nlohmann::json make_friends(const storage::User& me, const storage::FriendRequest& r);
  storage::FriendRequest own_pending(std::int64_t request_id, std::int64_t user_id, bool as_recipient);
  storage::Store& store_;
  core::EventSink& events_;
};

}  // namespace fc25::social
