#include "streams/registry.hpp"

#include <csignal>
#include <regex>

#include <unistd.h>

#include "core/api_error.hpp"
#include "core/guard.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "streams/status.hpp"

namespace fc25::streams {

using nlohmann::json;

bool valid_client_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (unsigned char c : id)
    if (!(std::isalnum(c) || c == '_' || c == '-')) return false;
  return true;
}

namespace {
std::string hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}
}  // namespace

StreamRegistry::StreamRegistry(boost::asio::io_context& io, storage::Store& store, core::EventSink& events,
                               RegistryOptions options)
    : io_(io), store_(store), events_(events), options_(std::move(options)), host_(hostname()) {}

StreamRegistry::~StreamRegistry() { stop_housekeeping(); }

json StreamRegistry::status_event(const storage::LiveStatus& s) const {
  json e = status_json(s);
  e["type"] = "streaming_status";
  return e;
}

void StreamRegistry::notify(const std::string& username, std::int64_t user_id, const json& event) {
  for (auto& name : store_.friend_names(user_id)) events_.send_to_user(name, event);
  events_.send_to_user(username, event);  // the user's own other tabs
}

Started StreamRegistry::start(const storage::User& user, const std::string& client_id, const StartOptions& options) {
  if (!valid_client_id(client_id)) {
    throw core::ApiError(400, "invalid_field", "client_id must be 1-64 characters of A-Z a-z 0-9 _ -");
  }
  bool unrecorded = false;
  {
    std::lock_guard lock(mu_);
    unrecorded = !unrecorded_ends_.empty();
  }
  if (unrecorded) record_unrecorded_ends();  // the user's last stream may be one of them: not live any more
  auto result = store_.start_stream(user.id, client_id, core::now_ms(), options_.node_id);
  switch (result.outcome) {
    case storage::StartOutcome::live_elsewhere:
      throw core::ApiError(409, "already_streaming",
                           "'" + user.username + "' is already live from another tab (session " +
                               std::to_string(result.stream.session_id) + ")");
    case storage::StartOutcome::already_live_same_client:
      return Started{false, result.stream};
    case storage::StartOutcome::started:
      break;
  }
  auto stream = std::make_shared<LiveStream>(result.stream);
  stream->mark_live();
  {
    std::lock_guard lock(mu_);
    live_[result.stream.session_id] = stream;
  }
  if (media_.opened) {
    try {
      media_.opened(result.stream, options);
    } catch (const std::exception& e) {
      core::logger("streams")->error("stream session={} of {} cannot start its media: {}", result.stream.session_id,
                                     user.username, e.what());
      stop_session(result.stream.session_id, EndReason::media_error);
      throw core::ApiError(500, "media_error", std::string("the stream could not start: ") + e.what());
    }
  }
  core::logger("streams")->info("stream started user={} session={} client={}", user.username,
                                result.stream.session_id, client_id);
  storage::LiveStatus s{user.username, true, result.stream.session_id, result.stream.started_at, client_id,
                        std::nullopt};
  notify(user.username, user.id, status_event(s));
  return Started{true, result.stream};
}

std::optional<Stopped> StreamRegistry::finish_stop(std::int64_t session_id, std::shared_ptr<LiveStream> local,
                                                   EndReason reason) {
  // Order matters: media flushed and recording finalised, then the store, then friends.
  std::optional<storage::ActiveStream> active;
  try {
    active = store_.active_stream_by_session(session_id);
  } catch (const std::exception& e) {
    // The stream run here still ends; what the store holds is taken from memory.
    core::logger("streams")->error("reading stream session={} failed: {}", session_id, e.what());
    if (local) active = local->info();
  }
  if (media_.ending) {
    try {
      if (local) media_.ending(active ? *active : local->info(), reason, true);
      else if (active && (reason == EndReason::server_restart || reason == EndReason::node_lost))
        media_.ending(*active, reason, false);
    } catch (const std::exception& e) {
      core::logger("streams")->error("finishing the media of session={} failed: {}", session_id, e.what());
    }
  }
  auto now = core::now_ms();
  if (local) {
    // Its media is over whatever the store answers: no later stop may find it half-stopped.
    std::lock_guard lock(mu_);
    local->finish();
    live_.erase(session_id);
  }
  bool won = false;
  try {
    won = store_.end_stream(session_id, std::string(to_string(reason)), now);
  } catch (const std::exception& e) {
    if (!local) throw;  // not run here: nothing has ended, the caller hears why
    // Ended here, not yet in the store: written on the next housekeeping beat, friends told now.
    core::count_failure("stream end not recorded");
    core::logger("streams")->error("recording the end of session={} failed: {} (retried every heartbeat)",
                                   session_id, e.what());
    {
      std::lock_guard lock(mu_);
      unrecorded_ends_[session_id] = UnrecordedEnd{reason, now};
    }
    won = true;
  }
  if (!won || !active) return std::nullopt;
  core::logger("streams")->info("stream stopped user={} session={} reason={} duration={:.1f}s", active->username,
                                session_id, to_string(reason), (now - active->started_at) / 1000.0);
  json e = ended_json(*active, to_string(reason), now);
  e["type"] = "streaming_status";
  notify(active->username, active->user_id, e);
  return Stopped{session_id, reason};
}

std::size_t StreamRegistry::record_unrecorded_ends() {
  std::map<std::int64_t, UnrecordedEnd> pending;
  {
    std::lock_guard lock(mu_);
    pending = unrecorded_ends_;
  }
  std::size_t left = 0;
  for (auto& [id, end] : pending) {
    try {
      store_.end_stream(id, std::string(to_string(end.reason)), end.ended_at);  // false: another process ended it
      core::logger("streams")->info("end of session={} recorded (reason={}, {} ms late)", id, to_string(end.reason),
                                    core::now_ms() - end.ended_at);
      std::lock_guard lock(mu_);
      unrecorded_ends_.erase(id);
    } catch (const std::exception& e) {
      ++left;
      core::logger("streams")->debug("end of session={} still not recorded: {}", id, e.what());
    }
  }
  return left;
}

std::optional<Stopped> StreamRegistry::stop_session(std::int64_t session_id, EndReason reason) {
  std::shared_ptr<LiveStream> local;
  {
    std::lock_guard lock(mu_);
    if (unrecorded_ends_.count(session_id)) return std::nullopt;  // ended here; its end is being written
    auto it = live_.find(session_id);
    if (it != live_.end()) {
      local = it->second;
      if (!local->begin_stop(reason)) return std::nullopt;  // another path is already stopping it
    }
  }
  // Not run here: another process owns it (or nobody, after a crash); the store decides who wins.
  return finish_stop(session_id, local, reason);
}

std::optional<Stopped> StreamRegistry::stop_user(const storage::User& user, std::optional<std::int64_t> only_session,
                                                 EndReason reason) {
  auto active = store_.active_stream(user.id);
  if (!active) return std::nullopt;
  if (only_session && *only_session != active->session_id) return std::nullopt;
  return stop_session(active->session_id, reason);
}

void StreamRegistry::on_socket_closed(std::int64_t user_id, const std::string& client_id) {
  auto active = store_.active_stream(user_id);
  if (!active || active->client_id != client_id) return;  // another tab of the user: not the owner
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, options_.socket_close_grace);
  auto session_id = active->session_id;
  timer->async_wait([this, timer, session_id](const boost::system::error_code& ec) {
    if (ec) return;
    off_io([this, session_id] {
      core::guarded("socket close", [&] {
        if (options_.reconnect_grace.count() <= 0) stop_session(session_id, EndReason::socket_closed);
        else lost(session_id, storage::Trouble::socket);
      });
    });
  });
}

void StreamRegistry::lost(std::int64_t session_id, storage::Trouble trouble) {
  if (options_.reconnect_grace.count() <= 0) {
    // No grace: a closed socket ends the stream at once; silent media is left to the media watchdog.
    if (trouble == storage::Trouble::socket) stop_session(session_id, EndReason::socket_closed);
    return;
  }
  set_trouble(session_id, trouble, true);
}

void StreamRegistry::back(std::int64_t session_id, storage::Trouble trouble) { set_trouble(session_id, trouble, false); }

storage::ActiveStream StreamRegistry::owned_stream(std::int64_t user_id, const std::string& username,
                                                   const std::string& client_id, std::int64_t session_id) {
  auto active = store_.active_stream(user_id);
  if (!active || active->session_id != session_id) {
    throw core::ApiError(403, "not_your_session",
                         "session " + std::to_string(session_id) + " is not a live stream of '" + username + "'");
  }
  if (active->client_id != client_id) {
    throw core::ApiError(409, "other_tab",
                         "session " + std::to_string(session_id) + " belongs to another tab of '" + username + "'");
  }
  return *active;
}

void StreamRegistry::resume(const storage::User& user, const std::string& client_id, std::int64_t session_id) {
  if (owned_stream(user.id, user.username, client_id, session_id).socket_lost_at) {
    back(session_id, storage::Trouble::socket);
  }
}

void StreamRegistry::set_trouble(std::int64_t session_id, storage::Trouble trouble, bool lost) {
  auto before = store_.active_stream_by_session(session_id);
  if (!before) return;
  auto now = core::now_ms();
  auto after = store_.set_trouble(session_id, trouble, lost ? std::optional<std::int64_t>(now) : std::nullopt);
  if (!after) return;
  auto was = before->reconnecting_since(), is = after->reconnecting_since();
  const char* what = trouble == storage::Trouble::socket ? "presence socket" : "audio";
  auto log = core::logger("streams");
  if (lost && !was) {
    log->info("stream reconnecting user={} session={}: its {} is lost; it ends unless back within {:.1f} s",
              after->username, session_id, what, options_.reconnect_grace.count() / 1000.0);
  } else if (!lost && was && !is) {
    log->info("stream back user={} session={}: its {} is back after {:.1f} s", after->username, session_id, what,
              (now - *was) / 1000.0);
  } else {
    log->debug("stream session={} {} {}", session_id, what, lost ? "lost" : "back");
  }
  if (is) schedule_grace_check(session_id, std::chrono::milliseconds(std::max<std::int64_t>(
                                               0, *is + options_.reconnect_grace.count() - now)));
  if (was.has_value() != is.has_value()) {
    storage::LiveStatus s{after->username, true, session_id, after->started_at, after->client_id, is};
    notify(after->username, after->user_id, status_event(s));
  }
}

void StreamRegistry::schedule_grace_check(std::int64_t session_id, std::chrono::milliseconds after) {
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, after + std::chrono::milliseconds(5));
  timer->async_wait([this, timer, session_id](const boost::system::error_code& ec) {
    if (ec) return;
    off_io([this, session_id] { core::guarded("reconnect grace", [&] { check_grace(session_id); }); });
  });
}

void StreamRegistry::check_grace(std::int64_t session_id) {
  auto a = store_.active_stream_by_session(session_id);
  if (!a) return;
  auto since = a->reconnecting_since();
  if (!since) return;  // back meanwhile
  auto left = *since + options_.reconnect_grace.count() - core::now_ms();
  if (left > 0) return schedule_grace_check(session_id, std::chrono::milliseconds(left));
  // The trouble that came first names the end.
  bool socket_first = a->socket_lost_at && (!a->media_lost_at || *a->socket_lost_at < *a->media_lost_at);
  core::logger("streams")->info("stream session={} of {} did not come back within {:.1f} s", session_id, a->username,
                                options_.reconnect_grace.count() / 1000.0);
  stop_session(session_id, socket_first ? EndReason::socket_closed : EndReason::webrtc_failed);
}

void StreamRegistry::stop_all(EndReason reason) {
  std::vector<std::int64_t> ids;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, s] : live_) ids.push_back(id);
  }
  // Streams recorded in the store for this node but not in memory (none normally) are ended too.
  for (auto& a : store_.active_streams_of_node(options_.node_id)) ids.push_back(a.session_id);
  for (auto id : ids) stop_session(id, reason);
  // Ends the store could not take before: once more now; a process started later ends what is left
  // (server_restart).
  if (auto left = record_unrecorded_ends()) {
    core::logger("streams")->error("{} stream ends could not be recorded; the next start ends them", left);
  }
}

bool StreamRegistry::node_alive(const storage::Node& n, std::int64_t now) const {
  if (n.node_id == options_.node_id) return true;
  if (n.host == host_ && n.pid > 0 && ::kill(static_cast<pid_t>(n.pid), 0) != 0 && errno == ESRCH) return false;
  return now - n.last_seen < options_.node_stale_after.count();
}

std::size_t StreamRegistry::end_streams_of_node(const std::string& node_id, EndReason reason) {
  if (node_id == options_.node_id) return 0;
  std::size_t ended = 0;
  for (auto& a : store_.active_streams_of_node(node_id)) {
    // Every surviving node tries; the store lets exactly one end each stream (and that one tells the friends).
    if (stop_session(a.session_id, reason)) ++ended;
  }
  if (ended) {
    core::logger("streams")->info("node {} is gone: ended {} of its live streams ({})", node_id, ended,
                                  to_string(reason));
  }
  return ended;
}

std::size_t StreamRegistry::recover_orphans() {
  auto now = core::now_ms();
  std::map<std::string, bool> alive;
  for (auto& n : store_.nodes()) alive[n.node_id] = node_alive(n, now);
  std::size_t ended = 0;
  for (auto& a : store_.all_active_streams()) {
    auto it = alive.find(a.node_id);
    if (a.node_id == options_.node_id || (it != alive.end() && it->second)) continue;
    if (stop_session(a.session_id, options_.orphan_reason)) ++ended;
  }
  for (auto& [id, ok] : alive)
    if (!ok) store_.forget_node(id);
  return ended;
}

// Streams this process runs that another process ended (e.g. a Stop that reached another server): finish their
// media here, where it runs. The other process already told the friends.
void StreamRegistry::reconcile() {
  std::vector<std::pair<std::int64_t, std::shared_ptr<LiveStream>>> ours;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, s] : live_) ours.emplace_back(id, s);
  }
  for (auto& [id, s] : ours) {
    if (store_.active_stream_by_session(id)) continue;
    auto ended = store_.stream_session(id);
    if (!ended || !ended->ended_at) continue;
    {
      std::lock_guard lock(mu_);
      if (!s->begin_stop(parse_end_reason(ended->end_reason).value_or(EndReason::user))) continue;
    }
    core::logger("streams")->info("stream session={} was ended elsewhere ({}): finishing its media here", id,
                                  ended->end_reason);
    if (media_.ending) {
      try {
        media_.ending(s->info(), parse_end_reason(ended->end_reason).value_or(EndReason::user), true);
      } catch (const std::exception& e) {
        core::logger("streams")->error("finishing the media of session={} failed: {}", id, e.what());
      }
    }
    std::lock_guard lock(mu_);
    s->finish();
    live_.erase(id);
  }
}

void StreamRegistry::beat() {
  try {
    {
      // Under timer_mu_: once stop_housekeeping has forgotten this node, no beat brings it back.
      std::lock_guard lock(timer_mu_);
      if (!housekeeping_) return;
      store_.heartbeat(storage::Node{options_.node_id, host_, static_cast<std::int64_t>(::getpid()), core::now_ms()});
    }
    record_unrecorded_ends();
    recover_orphans();
    reconcile();
    // Streams in trouble whose grace check was lost (a timer of a process that went away): ended here.
    for (auto& a : store_.active_streams_of_node(options_.node_id)) {
      if (auto since = a.reconnecting_since(); since && core::now_ms() - *since > options_.reconnect_grace.count()) {
        check_grace(a.session_id);
      }
    }
  } catch (const std::exception& e) {
    core::logger("streams")->warn("housekeeping failed: {}", e.what());
  }
}

void StreamRegistry::start_housekeeping() {
  {
    std::lock_guard lock(timer_mu_);
    if (housekeeping_.exchange(true)) return;
    heartbeat_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
  }
  beat();
  schedule_beat();
}

// The next beat. The handler holds nothing but `this`: stop_housekeeping (or the destructor) cancels the timer,
// and a cancelled handler returns before touching the registry.
void StreamRegistry::schedule_beat() {
  std::lock_guard lock(timer_mu_);
  if (!housekeeping_ || !heartbeat_timer_) return;
  heartbeat_timer_->expires_after(options_.heartbeat_interval);
  heartbeat_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec || !housekeeping_) return;
    off_io([this] {
      beat();
      schedule_beat();
    });
  });
}

void StreamRegistry::stop_housekeeping() {
  std::lock_guard lock(timer_mu_);
  if (!housekeeping_.exchange(false)) return;
  if (heartbeat_timer_) heartbeat_timer_->cancel();
  try {
    store_.forget_node(options_.node_id);
  } catch (...) {
  }
}

bool StreamRegistry::holds_live(std::int64_t session_id) const {
  std::lock_guard lock(mu_);
  auto it = live_.find(session_id);
  return it != live_.end() && it->second->state() == State::live;
}

std::size_t StreamRegistry::live_count() const {
  std::lock_guard lock(mu_);
  return live_.size();
}

}  // namespace fc25::streams
