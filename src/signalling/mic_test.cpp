// Microphone tests: a tab's audio denoised and sent straight back to it (a listener of its own), recorded nowhere,
// seen by no one, ended by the tab, its socket closing or a time limit.
#include "signalling/signalling.hpp"
#include "signalling/fields.hpp"

#include <boost/asio/post.hpp>

#include "core/api_error.hpp"
#include "core/crypto.hpp"
#include "core/guard.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

namespace fc25::signalling {

using nlohmann::json;

void Signalling::start_test(const presence::SocketUser& user, const std::string& client_id, const json& msg,
                            presence::Reply reply) {
  if (!live_) throw core::ApiError(503, "media_error", "the server is shutting down");
  auto strength = streams::Strength::full;
  if (auto it = msg.find("strength"); it != msg.end() && !it->is_null()) {
    auto parsed = it->is_string() ? streams::parse_strength(it->get<std::string>()) : std::nullopt;
    if (!parsed) throw std::invalid_argument("field 'strength' must be one of off, light, balanced, full");
    strength = *parsed;
  }
  auto active = store_.active_stream(user.id);
  if (active && active->client_id == client_id) {
    throw core::ApiError(409, "live", "this tab is live: stop the stream to test the microphone");
  }
  std::int64_t id = 0;
  {
    std::lock_guard lock(mu_);
    for (auto& [tid, t] : tests_) {
      if (t.user_id == user.id && t.client_id == client_id) {
        throw core::ApiError(409, "test_running", "this tab is already testing its microphone (test " +
                                                      std::to_string(tid) + ")");
      }
    }
    id = --last_test_id_;
    MicTest& t = tests_[id];
    t = MicTest{user.id, user.username, client_id, core::now_ms(), reply,
                std::make_shared<boost::asio::steady_timer>(io_, mic_test_limit_)};
    Owner& owner = owners_[id];
    owner.started_at = t.started_at;
    owner.adjustable = true;
    owner.reply = reply;
  }
  try {
    live::StreamOptions o;
    o.atten_lim_db = streams::atten_lim_db(strength);
    o.record = false;
    live_->open(id, user.username, core::now_ms(), o);
  } catch (...) {
    std::lock_guard lock(mu_);
    tests_.erase(id);
    owners_.erase(id);
    throw;
  }
  std::shared_ptr<boost::asio::steady_timer> limit;
  {
    std::lock_guard lock(mu_);
    if (auto it = tests_.find(id); it != tests_.end()) limit = it->second.limit;
  }
  if (limit) {
    limit->async_wait([this, id](const boost::system::error_code& ec) {
      if (!ec) end_test(id, "time_limit");
    });
  }
  core::logger("live")->info("mic test started user={} test={} strength={}", user.username, id,
                             streams::to_string(strength));
  reply(json{{"type", "mic_test_started"},
             {"test_id", id},
             {"session_id", id},
             {"strength", streams::to_string(strength)},
             {"max_s", mic_test_limit_.count()}});
}

storage::ActiveStream Signalling::test_of(const presence::SocketUser& user, const std::string& client_id,
                                          std::int64_t test_id) {
  std::lock_guard lock(mu_);
  auto it = tests_.find(test_id);
  if (it == tests_.end() || it->second.user_id != user.id) {
    throw core::ApiError(403, "not_your_session",
                         "microphone test " + std::to_string(test_id) + " is not running for '" + user.username + "'");
  }
  if (it->second.client_id != client_id) {
    throw core::ApiError(409, "other_tab", "microphone test " + std::to_string(test_id) +
                                               " belongs to another tab of '" + user.username + "'");
  }
  return storage::ActiveStream{test_id, user.id, user.username, client_id, it->second.started_at, registry_.node_id(), std::nullopt, std::nullopt};
}

bool Signalling::end_test(std::int64_t test_id, const std::string& reason) {
  MicTest t;
  std::vector<std::string> listening;
  {
    std::lock_guard lock(mu_);
    auto it = tests_.find(test_id);
    if (it == tests_.end()) return false;
    t = std::move(it->second);
    tests_.erase(it);
    owners_.erase(test_id);
    for (auto& [lid, l] : listeners_)
      if (l.session_id == test_id) listening.push_back(lid);
  }
  t.limit->cancel();
  for (auto& lid : listening) drop_listener(lid, "test ended");
  if (live_) live_->close(test_id);
  core::logger("live")->info("mic test ended user={} test={} reason={} after {:.1f} s", t.username, test_id, reason,
                             static_cast<double>(core::now_ms() - t.started_at) / 1000.0);
  t.reply(json{{"type", "mic_test_ended"}, {"test_id", test_id}, {"reason", reason}});
  return true;
}

}  // namespace fc25::signalling
