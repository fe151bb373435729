#include "app/broadcasts.hpp"
#include "app/signalling_fields.hpp"

#include <boost/asio/post.hpp>

#include "core/api_error.hpp"
#include "core/crypto.hpp"
#include "core/guard.hpp"
#include "core/log.hpp"
#include "core/run_on.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "recording/recording.hpp"

namespace fc25::app {

using nlohmann::json;


Broadcasts::Broadcasts(boost::asio::io_context& io, storage::Store& store, streams::StreamRegistry& registry,
                       core::EventSink& events, std::filesystem::path data_dir, live::Config config)
    : io_(io), store_(store), registry_(registry), data_dir_(std::move(data_dir)), events_(events) {
  live::Callbacks cb;
  cb.ended = [this](std::int64_t session_id, live::MediaEnd why, const std::string& detail) {
    // From a media or recorder thread: the stop runs on the io threads.
    auto reason = why == live::MediaEnd::media_timeout      ? streams::EndReason::media_timeout
                  : why == live::MediaEnd::recording_failed ? streams::EndReason::recording_failed
                                                            : streams::EndReason::webrtc_failed;
    core::logger("live")->info("media ends session={}: {} ({})", session_id, streams::to_string(reason), detail);
    if (session_id < 0) {  // a microphone test
      boost::asio::post(io_, [this, session_id, reason] { end_test(session_id, std::string(streams::to_string(reason))); });
      return;
    }
    boost::asio::post(io_, [this, session_id, reason] {
      core::guarded("media end", [&] {
        // A failed connection may come back (the page offers again) within the grace; without one it ends now.
        if (reason == streams::EndReason::webrtc_failed && registry_.reconnect_grace().count() > 0) {
          registry_.lost(session_id, storage::Trouble::media);
        } else {
          registry_.stop_session(session_id, reason);
        }
      });
    });
  };
  cb.audio = [this](std::int64_t session_id, bool flowing) {
    if (session_id < 0) return;  // a microphone test has no friends to tell
    boost::asio::post(io_, [this, session_id, flowing] {
      core::guarded("media audio", [&] {
        if (flowing) registry_.back(session_id, storage::Trouble::media);
        else registry_.lost(session_id, storage::Trouble::media);
      });
    });
  };
  cb.meter = [this](std::int64_t session_id, const denoise::MeterReading& r) { send_meter(session_id, r); };
  live_ = std::make_unique<live::LiveMedia>(std::move(config), std::move(cb));
}

Broadcasts::~Broadcasts() = default;

std::string_view Broadcasts::denoiser() const { return live_->backend_name(); }
std::size_t Broadcasts::open_streams() const { return live_->open_streams(); }

std::size_t Broadcasts::recover_recordings() {
  auto log = core::logger("live");
  auto dir = data_dir_ / "streamed_audios";
  std::size_t recovered = 0;
  std::error_code ec;
  for (auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    auto name = entry.path().filename().string();
    // {username}_{session}.wav; usernames hold no '_'-free guarantee, so the session is after the last '_'.
    if (entry.path().extension() != ".wav" || name.size() < 9 || name.ends_with("_raw.wav")) continue;
    auto us = name.rfind('_');
    if (us == std::string::npos) continue;
    auto digits = name.substr(us + 1, name.size() - us - 5);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 18) continue;
    if (!recording::header_stale(entry.path())) continue;
    core::guarded("recording recovery", [&] {
      auto session_id = std::stoll(digits);
      auto session = store_.stream_session(session_id);
      if (!session || !session->ended_at) return;   // unknown, or live: the registry's to end and repair
      auto user = store_.user_by_id(session->user_id);
      if (!user || recording::file_name(user->username, session_id) != name) return;
      storage::ActiveStream s{session_id, user->id, user->username, session->client_id, session->started_at, "", {}, {}};
      ending(s, streams::parse_end_reason(session->end_reason).value_or(streams::EndReason::node_lost), false);
      ++recovered;
    });
  }
  if (recovered) log->info("recovered {} recordings whose streams another node ended while this one was down", recovered);
  return recovered;
}

std::size_t Broadcasts::listener_count() const {
  std::lock_guard lock(mu_);
  return listeners_.size();
}

void Broadcasts::close_all() {
  if (relays_) relays_->close_all();
  if (origin_) origin_->close_all();
  live_.reset();
}

void Broadcasts::enable_relays(ClusterLinks links) {
  links_ = std::move(links);
  relay::OriginHooks oh;
  oh.tap = [this](std::int64_t session_id, const std::string& tap_id, media::Fanout::PacketTap tap) {
    if (!live_) throw live::NotOpen("the server is stopping");
    live_->tap(session_id, tap_id, std::move(tap));
  };
  oh.untap = [this](std::int64_t session_id, const std::string& tap_id) {
    if (live_) live_->untap(session_id, tap_id);
  };
  // The owner's node checks again that a listener elsewhere is a friend.
  oh.may_listen = [this](std::int64_t session_id, std::int64_t user_id) {
    auto active = store_.active_stream_by_session(session_id);
    return active && store_.are_friends(active->user_id, user_id);
  };
  // Both read the store: off the io threads when it is a network away.
  oh.listeners_changed = [this](std::int64_t session_id) {
    core::run_on(links_.store_work, [this, session_id] {
      core::guarded("relay listeners", [&] { announce_listeners(session_id); });
    });
  };
  origin_ = std::make_unique<relay::Origin>(io_, std::move(oh), links_.store_work, links_.realtime_priority);

  relay::RelayOptions ro;
  ro.secret = links_.secret;
  ro.node_id = registry_.node_id();
  ro.ice = live_->ice();
  ro.realtime_priority = links_.realtime_priority;
  relay::RelayHooks rh;
  rh.ended = [this](const std::string& listen_id, const std::string& reason, const std::string& detail) {
    core::run_on(links_.store_work, [this, listen_id, reason, detail] {
      core::guarded("relayed listener end", [&] { relayed_listener_ended(listen_id, reason, detail); });
    });
  };
  rh.ended_reason = [this](std::int64_t session_id) -> std::optional<std::string> {
    auto s = store_.stream_session(session_id);
    if (!s) return std::string("not_live");
    if (s->ended_at) return s->end_reason.empty() ? std::string("ended") : s->end_reason;
    return std::nullopt;
  };
  relays_ = std::make_unique<relay::Relays>(io_, std::move(ro), std::move(rh), links_.store_work);
}

void Broadcasts::accept_relay(boost::beast::tcp_stream&& stream,
                              boost::beast::http::request<boost::beast::http::string_body>&& req, std::int64_t session_id) {
  if (!origin_) return;  // not a cluster: the HTTP plane refuses before this
  origin_->accept(std::move(stream), std::move(req), session_id);
}

json Broadcasts::relay_stats() const {
  if (!origin_ || !relays_) return nullptr;
  auto out = origin_->stats();
  auto in = relays_->stats();
  return json{{"out", {{"relays", out.relays}, {"packets", out.packets}, {"dropped", out.dropped}}},
              {"in", {{"relays", in.relays}, {"listeners", in.listeners}, {"packets", in.packets},
                      {"transit_ms", {{"count", in.transit.count}, {"p50", in.transit.p50_ms}, {"p99", in.transit.p99_ms},
                                      {"max", in.transit.max_ms}}}}}};
}

void Broadcasts::relayed_listener_ended(const std::string& listen_id, const std::string& reason, const std::string& detail) {
  if (auto l = drop_listener(listen_id, reason)) {
    json msg{{"type", "listen_ended"}, {"listen_id", listen_id}, {"session_id", l->session_id},
             {"username", l->owner}, {"reason", reason}};
    if (!detail.empty()) msg["detail"] = detail;
    l->reply(msg);
  }
}

streams::MediaHooks Broadcasts::hooks() {
  streams::MediaHooks h;
  h.opened = [this](const storage::ActiveStream& s, const streams::StartOptions& o) {
    auto lim = o.strength ? std::optional<float>(streams::atten_lim_db(*o.strength)) : o.atten_lim_db;
    {
      std::lock_guard lock(mu_);
      Owner& owner = owners_[s.session_id];
      owner.started_at = s.started_at;
      owner.adjustable = o.noise_removal;
      if (o.strength) owner.strengths.push_back({{"at_ms", 0}, {"strength", streams::to_string(*o.strength)}});
    }
    try {
      live_->open(s.session_id, s.username, s.started_at, live::StreamOptions{o.noise_removal, lim});
    } catch (...) {
      std::lock_guard lock(mu_);
      owners_.erase(s.session_id);
      throw;
    }
  };
  h.ending = [this](const storage::ActiveStream& s, streams::EndReason reason, bool local) {
    ending(s, reason, local);
  };
  return h;
}

void Broadcasts::ending(const storage::ActiveStream& s, streams::EndReason reason, bool local) {
  auto log = core::logger("recording");
  std::optional<recording::Summary> saved;
  std::optional<float> removed;
  std::optional<std::vector<live::Gap>> f_gaps;
  json strengths = json::array();
  {
    std::lock_guard lock(mu_);
    if (auto it = owners_.find(s.session_id); it != owners_.end()) {
      strengths = std::move(it->second.strengths);
      owners_.erase(it);
    }
  }
  // Relays of it: from here to other nodes (a stream of this node), or to here (another's, which this node ended).
  if (local && origin_) origin_->end(s.session_id, std::string(streams::to_string(reason)));
  if (!local && relays_) relays_->end(s.session_id, std::string(streams::to_string(reason)));
  if (local) {
    // Listeners hear that the stream ended, then their connections close with the fan-out.
    std::vector<std::pair<std::string, Listener>> gone;
    {
      std::lock_guard lock(mu_);
      for (auto it = listeners_.begin(); it != listeners_.end();) {
        if (it->second.session_id == s.session_id) {
          gone.emplace_back(it->first, std::move(it->second));
          it = listeners_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& [id, l] : gone) {
      l.reply(json{{"type", "listen_ended"}, {"listen_id", id}, {"session_id", s.session_id},
                   {"username", s.username}, {"reason", streams::to_string(reason)}});
    }
    if (!gone.empty()) core::logger("live")->info("session={} ended with {} listeners", s.session_id, gone.size());
  }
  if (local && live_) {
    auto f = live_->close(s.session_id);
    if (f && f->clean) saved = f->clean;
    if (f) removed = f->noise_removed_db;
    if (f) f_gaps = f->gaps;
    if (f && !f->clean) log->info("session={} of {} received no audio: no recording kept", s.session_id, s.username);
  } else if (!local) {
    // Left by a crashed process: make what reached the disk playable.
    auto path = data_dir_ / "streamed_audios" / recording::file_name(s.username, s.session_id);
    try {
      saved = recording::repair(path);
      if (saved) log->info("repaired {} after a crash ({:.1f} s)", path.string(), saved->seconds());
      auto raw = data_dir_ / "streamed_audios" / recording::file_name(s.username, s.session_id, true);
      recording::repair(raw);
    } catch (const std::exception& e) {
      log->error("cannot repair {}: {}", path.string(), e.what());
    }
    if (saved && saved->samples == 0) {
      std::error_code ec;
      std::filesystem::remove(saved->path, ec);
      saved.reset();
    }
  }
  if (!saved) return;
  storage::Recording r;
  r.session_id = s.session_id;
  r.user_id = s.user_id;
  r.path = std::filesystem::relative(saved->path, data_dir_).generic_string();
  r.duration_ms = saved->samples * 1000 / recording::kSampleRate;
  r.bytes = saved->bytes;
  r.created_at = core::now_ms();
  if (removed) r.noise_removed_db = *removed;
  r.strength_log = strengths.dump();
  if (f_gaps) {
    json gaps = json::array();
    for (auto& g : *f_gaps) gaps.push_back({{"at_ms", g.at_ms}, {"ms", g.ms}});
    r.gaps = gaps.dump();
  }
  store_.add_recording(r);
  log->info("Saved recording to {} ({:.1f} s, {} bytes, session={}, reason={}, noise removed {})", saved->path.string(),
            saved->seconds(), saved->bytes, s.session_id, streams::to_string(reason),
            removed ? fmt::format("{:.1f} dB", *removed) : std::string("not measured"));
}

void Broadcasts::on_message(const presence::SocketUser& user, const std::string& client_id, const json& msg,
                            presence::Reply reply) {
  auto type = msg["type"].get<std::string>();
  if (type == "listen_offer" || type == "listen_stop" || (type == "ice_candidate" && msg.contains("listen_id"))) {
    return listen(user, client_id, msg, std::move(reply));
  }
  if (type == "mic_test_start") return start_test(user, client_id, msg, std::move(reply));
  if (type == "mic_test_stop") {
    auto id = test_of(user, client_id, integer_field(msg, "test_id")).session_id;
    end_test(id, "stopped");
    return;
  }
  if (type == "resume") {
    auto session_id = session_field(msg);
    registry_.resume(storage::User{user.id, user.username, "", 0, true}, client_id, session_id);
    std::lock_guard lock(mu_);
    if (auto it = owners_.find(session_id); it != owners_.end()) it->second.reply = reply;  // the meter follows
    return;
  }
  if (type != "webrtc_offer" && type != "ice_candidate" && type != "set_strength") {
    throw std::invalid_argument("unknown message type '" + type +
                                "' (expected: ping, webrtc_offer, ice_candidate, set_strength, resume, listen_offer, "
                                "listen_stop, mic_test_start, mic_test_stop)");
  }
  auto session_id = session_field(msg);
  // Only the tab that owns the live session (or the microphone test) may signal for it.
  auto active = session_id < 0 ? test_of(user, client_id, session_id)
                                : registry_.owned_stream(user.id, user.username, client_id, session_id);
  if (!live_ || !live_->is_open(session_id)) {
    throw core::ApiError(409, "not_here", "session " + std::to_string(session_id) +
                                              " is not served by this server process");
  }
  if (type == "ice_candidate") {
    auto c = candidate_fields(msg);
    if (!c.candidate.empty()) live_->remote_candidate(session_id, c);
    return;
  }
  if (type == "set_strength") return set_strength(active, msg, std::move(reply));
  auto sdp = string_field(msg, "sdp");
  {
    std::lock_guard lock(mu_);
    if (auto it = owners_.find(session_id); it != owners_.end()) it->second.reply = reply;
  }
  live::SignalSink sink;
  sink.answer = [reply, session_id](const std::string& answer) {
    reply(json{{"type", "webrtc_answer"}, {"session_id", session_id}, {"sdp", answer}});
  };
  sink.candidate = [reply, session_id](unsigned mline, const std::string& mid, const std::string& c) {
    reply(json{{"type", "ice_candidate"}, {"session_id", session_id}, {"candidate", c}, {"sdpMid", mid},
               {"sdpMLineIndex", mline}});
  };
  try {
    live_->offer(session_id, sdp, std::move(sink));
  } catch (const media::OfferError& e) {
    core::logger("live")->info("refused the offer of {} for session={}: {}", user.username, session_id, e.what());
    throw core::ApiError(400, "bad_offer", e.what());
  } catch (const live::NotOpen& e) {  // ended since the check above
    throw core::ApiError(409, "not_here", e.what());
  } catch (const std::exception& e) {  // the media plane could not make the connection: the server's trouble
    core::logger("live")->error("the offer of {} for session={} could not start: {}", user.username, session_id, e.what());
    core::count_failure("offer");
    throw core::ApiError(503, "media_error", std::string("the server could not open the audio connection: ") + e.what());
  }
  core::logger("live")->info("offer accepted user={} session={}", user.username, session_id);
}

void Broadcasts::start_test(const presence::SocketUser& user, const std::string& client_id, const json& msg,
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

storage::ActiveStream Broadcasts::test_of(const presence::SocketUser& user, const std::string& client_id,
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

bool Broadcasts::end_test(std::int64_t test_id, const std::string& reason) {
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

void Broadcasts::set_strength(const storage::ActiveStream& active, const json& msg, presence::Reply reply) {
  auto name = string_field(msg, "strength");
  auto strength = streams::parse_strength(name);
  if (!strength) {
    throw std::invalid_argument("field 'strength' must be one of off, light, balanced, full, not '" +
                                core::printable(name) + "'");
  }
  json entry;
  {
    std::lock_guard lock(mu_);
    auto it = owners_.find(active.session_id);
    if (it == owners_.end()) {
      throw core::ApiError(409, "not_here", "session " + std::to_string(active.session_id) +
                                                " is not served by this server process");
    }
    if (!it->second.adjustable) {
      throw core::ApiError(409, "noise_removal_off",
                           "this stream went live with noise removal off; its strength cannot change until the next");
    }
    entry = {{"at_ms", std::max<std::int64_t>(0, core::now_ms() - it->second.started_at)},
             {"strength", streams::to_string(*strength)}};
  }
  try {
    live_->set_atten_lim_db(active.session_id, streams::atten_lim_db(*strength));
  } catch (const live::NotOpen& e) {
    throw core::ApiError(409, "not_here", e.what());
  }
  {
    std::lock_guard lock(mu_);
    if (auto it = owners_.find(active.session_id); it != owners_.end()) it->second.strengths.push_back(entry);
  }
  core::logger("live")->info("strength session={} user={} {} ({} dB) at {} ms", active.session_id, active.username,
                             name, streams::atten_lim_db(*strength), entry["at_ms"].get<std::int64_t>());
  reply(json{{"type", "strength_set"}, {"session_id", active.session_id}, {"strength", name},
             {"atten_lim_db", streams::atten_lim_db(*strength)}});
}

void Broadcasts::send_meter(std::int64_t session_id, const denoise::MeterReading& r) {
  presence::Reply reply;
  {
    std::lock_guard lock(mu_);
    auto it = owners_.find(session_id);
    if (it == owners_.end() || !it->second.reply) return;
    reply = it->second.reply;
  }
  auto round1 = [](float x) { return std::round(x * 10.0f) / 10.0f; };
  reply(json{{"type", "noise_meter"},
             {"session_id", session_id},
             {"background", denoise::to_string(r.level)},
             {"noise_dbfs", round1(r.noise_dbfs)},
             {"input_dbfs", round1(r.input_dbfs)},
             {"removed_db", r.removed_db ? json(round1(*r.removed_db)) : json()},
             {"lsnr_db", r.lsnr_db ? json(round1(*r.lsnr_db)) : json()}});
}

}  // namespace fc25::app

namespace fc25::app {

// Listening: only friends of a live broadcaster, and only where the stream runs.
void Broadcasts::listen(const presence::SocketUser& user, const std::string& client_id, const json& msg,
                        presence::Reply reply) {
  auto type = msg["type"].get<std::string>();
  auto log = core::logger("live");
  if (type == "listen_stop" || type == "ice_candidate") {
    auto id = string_field(msg, "listen_id");
    Listener l;
    {
      std::lock_guard lock(mu_);
      auto it = listeners_.find(id);
      if (it == listeners_.end() || it->second.user_id != user.id) {
        throw core::ApiError(404, "unknown_listener", "no listening session '" + id + "' of yours");
      }
      l = it->second;
    }
    if (type == "ice_candidate") {
      auto c = candidate_fields(msg);
      if (c.candidate.empty()) return;
      if (l.relayed && relays_) relays_->candidate(l.session_id, id, c);
      else if (!l.relayed && live_) live_->listener_candidate(l.session_id, id, c);
      return;
    }
    drop_listener(id, "left");
    reply(json{{"type", "listen_ended"}, {"listen_id", id}, {"session_id", l.session_id}, {"username", l.owner},
               {"reason", "left"}});
    return;
  }
  // listen_offer: to one's own microphone test, or to a friend's stream
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

void Broadcasts::join(const presence::SocketUser& user, const std::string& client_id, const std::string& sdp,
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
  sink.answer = [this, reply, id, session_id, owner = owner_name](const std::string& answer) {
    {
      std::lock_guard lock(mu_);
      if (!listeners_.count(id)) return;  // ended before its answer was ready: the page was told already
    }
    reply(json{{"type", "listen_answer"}, {"listen_id", id}, {"session_id", session_id}, {"username", owner},
               {"sdp", answer}});
  };
  sink.candidate = [reply, id](unsigned mline, const std::string& mid, const std::string& c) {
    reply(json{{"type", "ice_candidate"}, {"listen_id", id}, {"candidate", c}, {"sdpMid", mid},
               {"sdpMLineIndex", mline}});
  };
  auto failed = [this, id](const std::string& why) {
    // From a GStreamer thread: the io threads drop it and tell the listener's page why.
    boost::asio::post(io_, [this, id, why] {
      if (auto l = drop_listener(id, why)) {
        l->reply(json{{"type", "listen_ended"}, {"listen_id", id}, {"session_id", l->session_id},
                      {"username", l->owner}, {"reason", "failed"}, {"detail", why}});
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

bool Broadcasts::end_if_not_friends(const std::string& listen_id) {
  Listener l;
  {
    std::lock_guard lock(mu_);
    auto it = listeners_.find(listen_id);
    if (it == listeners_.end()) return false;
    l = it->second;
  }
  if (l.user_id == l.owner_id || store_.are_friends(l.user_id, l.owner_id)) return false;  // (self: a mic test)
  if (auto gone = drop_listener(listen_id, "not friends")) {
    gone->reply(json{{"type", "listen_ended"}, {"listen_id", listen_id}, {"session_id", gone->session_id},
                     {"username", gone->owner}, {"reason", "not_friends"}});
    return true;
  }
  return false;
}

void Broadcasts::end_unfriended_listeners(const std::string& username) {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, l] : listeners_)
      if (l.username == username || l.owner == username) ids.push_back(id);
  }
  for (auto& id : ids) end_if_not_friends(id);
}

std::optional<Broadcasts::Listener> Broadcasts::drop_listener(const std::string& listen_id, const std::string& why) {
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

media::Fanout::ListenerCounts Broadcasts::release_listener(const Listener& l, const std::string& listen_id) {
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

void Broadcasts::on_socket_closed(std::int64_t user_id, const std::string& client_id) {
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
void Broadcasts::announce_listeners(std::int64_t session_id) {
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

}  // namespace fc25::app
