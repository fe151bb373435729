#include "social/friends.hpp"

#include "auth/auth.hpp"
#include "core/api_error.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "streams/status.hpp"

namespace fc25::social {

using streams::status_json;

using core::ApiError;
using nlohmann::json;

static json request_json(const storage::FriendRequest& r) {
  return {{"id", r.id}, {"from", r.from_username}, {"to", r.to_username},
          {"created_at", core::iso8601_ms(r.created_at)}};
}

json Friends::send_request(const storage::User& from, const std::string& to_username_raw) {
  auto to_username = auth::normalise_username(to_username_raw);
  if (to_username == from.username) {
    throw ApiError(400, "self_request", "you cannot send a friend request to yourself");
  }
  auto to = store_.user_by_name(to_username);
  if (!to) throw ApiError(404, "unknown_user", "no user named '" + to_username_raw + "'");
  if (store_.are_friends(from.id, to->id)) {
    throw ApiError(409, "already_friends", "you are already friends with '" + to->username + "'");
  }
  if (store_.pending_request(from.id, to->id)) {
    throw ApiError(409, "duplicate_request", "a friend request to '" + to->username + "' is already pending");
  }
  if (auto reverse = store_.pending_request(to->id, from.id)) {
    // They asked first: asking back is agreeing.
    return make_friends(from, *reverse);
  }
  auto created = store_.create_request(from.id, to->id, core::now_ms());
  if (!created) {
    // One was made between the checks above and now (two tabs, or both asking at once): the store keeps one.
    if (auto reverse = store_.pending_request(to->id, from.id)) return make_friends(from, *reverse);
    throw ApiError(409, "duplicate_request", "a friend request to '" + to->username + "' is already pending");
  }
  auto& r = *created;
  core::logger("social")->info("friend request {} from={} to={}", r.id, r.from_username, r.to_username);
  events_.send_to_user(to->username, {{"type", "friend_request"}, {"request", request_json(r)}});
  return {{"request", request_json(r)}};
}

storage::FriendRequest Friends::own_pending(std::int64_t request_id, std::int64_t user_id, bool as_recipient) {
  auto r = store_.request_by_id(request_id);
  if (!r || r->status != "pending" || (as_recipient ? r->to_user : r->from_user) != user_id) {
    throw ApiError(404, "not_found", "no pending friend request " + std::to_string(request_id) + " of yours");
  }
  return *r;
}

json Friends::make_friends(const storage::User& me, const storage::FriendRequest& r) {
  if (!store_.resolve_request(r.id, "accepted", core::now_ms())) {
    throw ApiError(404, "not_found", "friend request " + std::to_string(r.id) + " is no longer pending");
  }
  auto other_name = r.from_user == me.id ? r.to_username : r.from_username;
  auto other = store_.user_by_name(other_name);
  core::logger("social")->info("friends {} and {}", me.username, other_name);
  if (other) {
    events_.send_to_user(other_name, {{"type", "friend_added"}, {"friend", status_json(store_.live_status(me.id))}});
    events_.send_to_user(me.username,
                         {{"type", "friend_added"}, {"friend", status_json(store_.live_status(other->id))}});
  }
  return {{"friend", other_name}};
}

json Friends::accept(const storage::User& me, std::int64_t request_id) {
  return make_friends(me, own_pending(request_id, me.id, true));
}

void Friends::decline(const storage::User& me, std::int64_t request_id) {
  auto r = own_pending(request_id, me.id, true);
  if (!store_.resolve_request(r.id, "declined", core::now_ms())) return;
  events_.send_to_user(r.from_username,
                       {{"type", "friend_request_declined"},
                        {"request", {{"id", r.id}, {"from", r.from_username}, {"to", r.to_username}}}});
}

void Friends::cancel(const storage::User& me, std::int64_t request_id) {
  auto r = own_pending(request_id, me.id, false);
  if (!store_.resolve_request(r.id, "cancelled", core::now_ms())) return;
  events_.send_to_user(r.to_username,
                       {{"type", "friend_request_cancelled"},
                        {"request", {{"id", r.id}, {"from", r.from_username}, {"to", r.to_username}}}});
}

void Friends::remove(const storage::User& me, const std::string& username_raw) {
  auto username = auth::normalise_username(username_raw);
  auto other = store_.user_by_name(username);
  if (!other) throw ApiError(404, "unknown_user", "no user named '" + username_raw + "'");
  if (!store_.remove_friendship(me.id, other->id)) {
    throw ApiError(404, "not_found", "'" + other->username + "' is not your friend");
  }
  core::logger("social")->info("friendship removed {} and {}", me.username, other->username);
  events_.send_to_user(other->username, {{"type", "friend_removed"}, {"username", me.username}});
  events_.send_to_user(me.username, {{"type", "friend_removed"}, {"username", other->username}});
}

json Friends::list(const storage::User& me) {
  json arr = json::array();
  for (auto& s : store_.friends_of(me.id)) arr.push_back(status_json(s));
  return {{"friends", arr}};
}

json Friends::requests(const storage::User& me) {
  json in = json::array(), out = json::array();
  for (auto& r : store_.incoming_requests(me.id))
    in.push_back({{"id", r.id}, {"from", r.from_username}, {"created_at", core::iso8601_ms(r.created_at)}});
  for (auto& r : store_.outgoing_requests(me.id))
    out.push_back({{"id", r.id}, {"to", r.to_username}, {"created_at", core::iso8601_ms(r.created_at)}});
  return {{"incoming", in}, {"outgoing", out}};
}

storage::User Friends::visible_user(const storage::User& me, const std::string& username_raw) {
  auto username = auth::normalise_username(username_raw);
  if (username == me.username) return me;
  auto other = store_.user_by_name(username);
  if (!other) throw ApiError(404, "unknown_user", "no user named '" + username_raw + "'");
  if (!store_.are_friends(me.id, other->id)) {
    throw ApiError(403, "not_friends", "only friends of '" + other->username + "' can see their status");
  }
  return *other;
}

}  // namespace fc25::social
