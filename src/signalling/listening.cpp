// Listening: friends' connections to a live stream, on this node or relayed from the stream's node; the
// registry of listeners, their ends, and the broadcaster's listener count.
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

// Listening: only friends of a live broadcaster, and only where the stream runs.
// listen_offer: to one's own microphone test, or to a friend's stream (only friends, and only a live stream: here,
// or relayed from the node where it runs).
void Signalling::listen_offer(Message& m) {
  const auto& user = m.user;
  const auto& client_id = m.client_id;
  const auto& msg = m.msg;
  auto reply = m.reply;
  if (msg.contains("test_id")) {
    auto t = test_of(user, client_id, integer_field(msg, "test_id"));
    return join(user, client_id, string_field(msg, "sdp"), t.session_id, user.id, user.username, std::move(reply));
  }
  auto name = string_field(msg, "username");
  auto sdp = string_field(msg, "sdp");
  auto target = store_.user_by_name(name);
  if (!target) throw core::ApiError(404, "unknown_user", "no user '" + name + "'");
  if (target->id == user.id) throw core::ApiError(400, "self_listen", "you cannot listen to yourself");
  if (!store_.are_friends(user.id, target->id)) {
    throw core::ApiError(403, "not_friends", "only friends of '" + target->username + "' may listen");
  }
  auto active = store_.active_stream(target->id);
  if (!active) throw core::ApiError(409, "not_live", "'" + target->username + "' is not live");
  if (!live_ || !live_->is_open(active->session_id)) {
    // Its row is written before its media opens, and removed after its media closes.
    if (registry_.holds_live(active->session_id)) {
      throw core::ApiError(409, "starting", "the stream of '" + target->username + "' is starting; ask again in a moment");
    }
    if (active->node_id == registry_.node_id()) throw core::ApiError(409, "not_live", "'" + target->username + "' is not live");
    if (!relays_) {
      throw core::ApiError(409, "not_here", "the stream of '" + target->username +
                                                "' is served by another server process, and this one relays nothing "
                                                "(FC25_CLUSTER_SECRET is not set)");
    }
    auto url = links_.node_url ? links_.node_url(active->node_id) : std::nullopt;
    if (!url) {
      throw core::ApiError(503, "relay_unavailable", "the server that holds the stream of '" + target->username +
                                                         "' (node " + active->node_id + ") is not reachable");
    }
    return join(user, client_id, sdp, active->session_id, target->id, target->username, std::move(reply), url);
  }
  join(user, client_id, sdp, active->session_id, target->id, target->username, std::move(reply));
}

void Signalling::join(const presence::SocketUser& user, const std::string& client_id, const std::string& sdp,
                      std::int64_t session_id, std::int64_t owner_id, const std::string& owner_name,
                      presence::Reply reply, const std::optional<std::string>& origin_url) {
  auto log = core::logger("live");
  auto id = core::random_token_hex(8);
  const bool relayed = origin_url.has_value();
  {
    std::lock_guard lock(mu_);
    listeners_[id] = Listener{session_id, user.id, user.username, client_id, owner_id, owner_name, true, relayed, reply};
  }
  live::SignalSink sink;
  // The answer and candidates come from media threads. Each is posted to the page while mu_ is held, and only if
  // the listener is still registered: a drop erases it under mu_ before posting listen_ended, so nothing of a listen
  // ever reaches the page after its end.
  sink.answer = [this, reply, id, session_id, owner = owner_name](const std::string& answer) {
    std::lock_guard lock(mu_);
    if (!listeners_.count(id)) return;  // ended before its answer was ready: the page was told already
    reply(json{{"type", "listen_answer"}, {"listen_id", id}, {"session_id", session_id}, {"username", owner},
               {"sdp", answer}});
  };
  sink.candidate = [this, reply, id](unsigned mline, const std::string& mid, const std::string& c) {
    std::lock_guard lock(mu_);
    if (!listeners_.count(id)) return;
    reply(json{{"type", "ice_candidate"}, {"listen_id", id}, {"candidate", c}, {"sdpMid", mid},
               {"sdpMLineIndex", mline}});
  };
  auto failed = [this, id](const std::string& why) {
    // From a GStreamer thread: the io threads drop it and tell the listener's page why.
    boost::asio::post(io_, [this, id, why] {
      if (auto l = drop_listener(id, why)) {
        l->reply(listen_ended(id, l->session_id, l->owner, "failed", why));
      }
    });
  };
  try {
    if (relayed) {
      media::PeerEvents ev;
      ev.answer = std::move(sink.answer);
      ev.local_candidate = std::move(sink.candidate);
      ev.failed = failed;
      ev.connected = [session_id, id] {
        core::logger("live")->info("listener connected session={} listener={} (relayed)", session_id, id);
      };
      relays_->join(session_id, *origin_url, id, user.id, sdp, std::move(ev));
    } else {
      live_->listen(session_id, id, sdp, std::move(sink), failed);
    }
  } catch (const media::OfferError& e) {
    std::lock_guard lock(mu_);
    listeners_.erase(id);
    throw core::ApiError(400, "bad_offer", e.what());
  } catch (const live::NotOpen& e) {
    std::lock_guard lock(mu_);
    listeners_.erase(id);
    throw core::ApiError(409, "not_live", e.what());
  } catch (const std::exception& e) {  // the media plane could not make the connection: the server's trouble
    {
      std::lock_guard lock(mu_);
      listeners_.erase(id);
    }
    log->error("listener of {} to session={} could not start: {}", user.username, session_id, e.what());
    core::count_failure("listen");
    throw core::ApiError(503, "media_error", std::string("the server could not open a listening connection: ") + e.what());
  }
  {
    // Dropped while its connection was being made (socket closed, friendship removed, stream ended): the drop found
    // nothing to release then, so release it now.
    std::unique_lock lock(mu_);
    auto it = listeners_.find(id);
    if (it != listeners_.end()) it->second.joining = false;
    if (it == listeners_.end()) {
      lock.unlock();
      Listener gone;
      gone.session_id = session_id;
      gone.relayed = relayed;
      release_listener(gone, id);
      log->info("listener left session={} listener={} (dropped while joining)", session_id, id);
      return;
    }
  }
  log->info("listener joined user={} stream={} session={} listener={}{}", user.username, owner_name, session_id, id,
            relayed ? " relayed from " + *origin_url : std::string());
  // A removal of the friendship since the check above either saw this listener (it is registered) or happened
  // before this second look: either way it ends.
  if (end_if_not_friends(id)) return;
  announce_listeners(session_id);
}

bool Signalling::end_if_not_friends(const std::string& listen_id) {
  Listener l;
  {
    std::lock_guard lock(mu_);
    auto it = listeners_.find(listen_id);
    if (it == listeners_.end()) return false;
    l = it->second;
  }
  if (l.user_id == l.owner_id || store_.are_friends(l.user_id, l.owner_id)) return false;  // (self: a mic test)
  if (auto gone = drop_listener(listen_id, "not friends")) {
    gone->reply(listen_ended(listen_id, gone->session_id, gone->owner, "not_friends"));
    return true;
  }
  return false;
}

void Signalling::end_unfriended_listeners(const std::string& username) {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, l] : listeners_)
      if (l.username == username || l.owner == username) ids.push_back(id);
  }
  for (auto& id : ids) end_if_not_friends(id);
}

std::optional<Signalling::Listener> Signalling::drop_listener(const std::string& listen_id, const std::string& why) {
  Listener l;
  {
    std::lock_guard lock(mu_);
    auto it = listeners_.find(listen_id);
    if (it == listeners_.end()) return std::nullopt;
    l = std::move(it->second);
    listeners_.erase(it);
  }
  // A listener still joining is released by the join itself once its connection exists (closing a connection
  // while another thread makes it is not safe).
  auto counts = l.joining ? media::Fanout::ListenerCounts{} : release_listener(l, listen_id);
  core::logger("live")->info("listener left session={} listener={} ({}; {} packets sent, {} dropped)",
                             l.session_id, listen_id, why, counts.sent, counts.dropped);
  announce_listeners(l.session_id);
  return l;
}

media::Fanout::ListenerCounts Signalling::release_listener(const Listener& l, const std::string& listen_id) {
  media::Fanout::ListenerCounts counts;
  if (l.relayed) {
    if (relays_) {
      counts = relays_->counts(l.session_id, listen_id);
      relays_->leave(l.session_id, listen_id);
    }
  } else if (live_) {
    counts = live_->listener_counts(l.session_id, listen_id);
    live_->unlisten(l.session_id, listen_id);
  }
  return counts;
}

void Signalling::on_socket_closed(std::int64_t user_id, const std::string& client_id) {
  std::vector<std::string> ids;
  std::vector<std::int64_t> tests;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, l] : listeners_)
      if (l.user_id == user_id && l.client_id == client_id) ids.push_back(id);
    for (auto& [id, t] : tests_)
      if (t.user_id == user_id && t.client_id == client_id) tests.push_back(id);
  }
  for (auto& id : ids) drop_listener(id, "socket closed");
  for (auto id : tests) end_test(id, "socket_closed");
}

// The broadcaster's pages show how many are listening.
void Signalling::announce_listeners(std::int64_t session_id) {
  // Counted where the stream runs: its own listeners and those its relays serve on other nodes.
  if (!live_ || !live_->is_open(session_id)) return;
  auto active = store_.active_stream_by_session(session_id);
  if (!active) return;
  std::size_t n = origin_ ? origin_->listeners(session_id) : 0;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, l] : listeners_)
      if (l.session_id == session_id && !l.relayed) ++n;
  }
  events_.send_to_user(active->username, json{{"type", "listeners"}, {"session_id", session_id}, {"count", n}});
}

void Signalling::relayed_listener_ended(const std::string& listen_id, const std::string& reason, const std::string& detail) {
  if (auto l = drop_listener(listen_id, reason)) l->reply(listen_ended(listen_id, l->session_id, l->owner, reason, detail));
}

}  // namespace fc25::signalling
