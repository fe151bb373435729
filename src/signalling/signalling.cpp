#include "signalling/signalling.hpp"
#include "signalling/fields.hpp"

#include <boost/asio/post.hpp>

#include "core/api_error.hpp"
#include "core/crypto.hpp"
#include "core/guard.hpp"
#include "core/log.hpp"
#include "core/run_on.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "recording/recording.hpp"

namespace fc25::signalling {

using nlohmann::json;


Signalling::Signalling(boost::asio::io_context& io, storage::Store& store, streams::StreamRegistry& registry,
                       core::EventSink& events, const recording::Library& library, live::Config config)
    : io_(io), store_(store), registry_(registry), library_(library), events_(events) {
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

Signalling::~Signalling() = default;

std::string_view Signalling::denoiser() const { return live_->backend_name(); }
std::size_t Signalling::open_streams() const { return live_->open_streams(); }

std::size_t Signalling::recover_recordings() {
  std::size_t recovered = 0;
  for (auto& f : library_.stale_files()) {
    core::guarded("recording recovery", [&] {
      auto session = store_.stream_session(f.session_id);
      if (!session || !session->ended_at) return;   // unknown, or live: the registry's to end and repair
      auto user = store_.user_by_id(session->user_id);
      if (!user || user->username != f.username) return;
      storage::ActiveStream s{f.session_id, user->id, user->username, session->client_id, session->started_at, "", {}, {}};
      ending(s, streams::parse_end_reason(session->end_reason).value_or(streams::EndReason::node_lost), false);
      ++recovered;
    });
  }
  if (recovered) {
    core::logger("live")->info("recovered {} recordings whose streams another node ended while this one was down",
                               recovered);
  }
  return recovered;
}

std::size_t Signalling::listener_count() const {
  std::lock_guard lock(mu_);
  return listeners_.size();
}

void Signalling::close_all() {
  if (relays_) relays_->close_all();
  if (origin_) origin_->close_all();
  live_.reset();
}

void Signalling::enable_relays(ClusterLinks links) {
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

void Signalling::accept_relay(boost::beast::tcp_stream&& stream,
                              boost::beast::http::request<boost::beast::http::string_body>&& req, std::int64_t session_id) {
  if (!origin_) return;  // not a cluster: the HTTP plane refuses before this
  origin_->accept(std::move(stream), std::move(req), session_id);
}

json Signalling::relay_stats() const {
  if (!origin_ || !relays_) return nullptr;
  auto out = origin_->stats();
  auto in = relays_->stats();
  return json{{"out", {{"relays", out.relays}, {"packets", out.packets}, {"dropped", out.dropped}}},
              {"in", {{"relays", in.relays}, {"listeners", in.listeners}, {"packets", in.packets},
                      {"transit_ms", {{"count", in.transit.count}, {"p50", in.transit.p50_ms}, {"p99", in.transit.p99_ms},
                                      {"max", in.transit.max_ms}}}}}};
}

streams::MediaHooks Signalling::hooks() {
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

void Signalling::ending(const storage::ActiveStream& s, streams::EndReason reason, bool local) {
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
      l.reply(listen_ended(id, s.session_id, s.username, std::string(streams::to_string(reason))));
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
    try {
      saved = library_.repair_orphan(s.username, s.session_id);
    } catch (const std::exception& e) {
      log->error("cannot repair the recording of session {}: {}", s.session_id, e.what());
    }
  }
  if (!saved) return;
  storage::Recording r;
  r.session_id = s.session_id;
  r.user_id = s.user_id;
  if (removed) r.noise_removed_db = *removed;
  r.strength_log = strengths.dump();
  if (f_gaps) {
    json gaps = json::array();
    for (auto& g : *f_gaps) gaps.push_back({{"at_ms", g.at_ms}, {"ms", g.ms}});
    r.gaps = gaps.dump();
  }
  library_.finish(store_, std::move(r), *saved);
  log->info("Saved recording to {} ({:.1f} s, {} bytes, session={}, reason={}, noise removed {})", saved->path.string(),
            saved->seconds(), saved->bytes, s.session_id, streams::to_string(reason),
            removed ? fmt::format("{:.1f} dB", *removed) : std::string("not measured"));
}

// Every message a page may send about media, who may send it, and what handles it. The check runs first; a handler
// finds what it checked in the Message.
const std::vector<Signalling::Route>& Signalling::routes() {
  static const std::vector<Route> table = {
      {"webrtc_offer", false, Check::owning_tab, [](Signalling& s, Message& m) { s.offer(m); }},
      {"ice_candidate", false, Check::owning_tab, [](Signalling& s, Message& m) {
         auto c = candidate_fields(m.msg);
         if (!c.candidate.empty()) s.live_->remote_candidate(m.active.session_id, c);
       }},
      {"set_strength", false, Check::owning_tab, [](Signalling& s, Message& m) { s.set_strength(m.active, m.msg, m.reply); }},
      {"resume", false, Check::signed_in, [](Signalling& s, Message& m) { s.resume(m); }},
      {"listen_offer", false, Check::signed_in, [](Signalling& s, Message& m) { s.listen_offer(m); }},
      {"listen_stop", true, Check::own_listener, [](Signalling& s, Message& m) {
         s.drop_listener(m.listen_id, "left");
         m.reply(listen_ended(m.listen_id, m.listener.session_id, m.listener.owner, "left"));
       }},
      {"ice_candidate", true, Check::own_listener, [](Signalling& s, Message& m) {
         auto c = candidate_fields(m.msg);
         if (c.candidate.empty()) return;
         if (m.listener.relayed && s.relays_) s.relays_->candidate(m.listener.session_id, m.listen_id, c);
         else if (!m.listener.relayed && s.live_) s.live_->listener_candidate(m.listener.session_id, m.listen_id, c);
       }},
      {"mic_test_start", false, Check::signed_in, [](Signalling& s, Message& m) { s.start_test(m.user, m.client_id, m.msg, m.reply); }},
      {"mic_test_stop", false, Check::own_test, [](Signalling& s, Message& m) { s.end_test(m.active.session_id, "stopped"); }},
  };
  return table;
}

void Signalling::on_message(const presence::SocketUser& user, const std::string& client_id, const json& msg,
                            presence::Reply reply) {
  auto type = msg["type"].get<std::string>();
  const bool names_listener = msg.contains("listen_id");
  const Route* route = nullptr;
  for (auto& r : routes()) {
    if (r.type == type && (r.listener == names_listener || type != "ice_candidate")) {
      route = &r;
      break;
    }
  }
  if (!route) {
    throw std::invalid_argument("unknown message type '" + type +
                                "' (expected: ping, webrtc_offer, ice_candidate, set_strength, resume, listen_offer, "
                                "listen_stop, mic_test_start, mic_test_stop)");
  }
  Message m{user, client_id, msg, std::move(reply), {}, {}, {}};
  switch (route->check) {
    case Check::signed_in:
      break;
    case Check::owning_tab: {
      // Only the tab that owns the live session (or the microphone test) may signal for it, where it runs.
      auto session_id = session_field(msg);
      m.active = session_id < 0 ? test_of(user, client_id, session_id)
                                : registry_.owned_stream(user.id, user.username, client_id, session_id);
      if (!live_ || !live_->is_open(session_id)) {
        throw core::ApiError(409, "not_here", "session " + std::to_string(session_id) +
                                                  " is not served by this server process");
      }
      break;
    }
    case Check::own_listener: {
      m.listen_id = string_field(msg, "listen_id");
      std::lock_guard lock(mu_);
      auto it = listeners_.find(m.listen_id);
      if (it == listeners_.end() || it->second.user_id != user.id) {
        throw core::ApiError(404, "unknown_listener", "no listening session '" + m.listen_id + "' of yours");
      }
      m.listener = it->second;
      break;
    }
    case Check::own_test:
      m.active = test_of(user, client_id, integer_field(msg, "test_id"));
      break;
  }
  route->handle(*this, m);
}

json Signalling::listen_ended(const std::string& listen_id, std::int64_t session_id, const std::string& owner,
                              const std::string& reason, const std::string& detail) {
  json msg{{"type", "listen_ended"}, {"listen_id", listen_id}, {"session_id", session_id}, {"username", owner},
           {"reason", reason}};
  if (!detail.empty()) msg["detail"] = detail;
  return msg;
}

void Signalling::resume(Message& m) {
  auto session_id = session_field(m.msg);
  registry_.resume(storage::User{m.user.id, m.user.username, "", 0, true}, m.client_id, session_id);
  std::lock_guard lock(mu_);
  if (auto it = owners_.find(session_id); it != owners_.end()) it->second.reply = m.reply;  // the meter follows
}

// The owning tab's offer (a new connection replaces the old one: the page reconnecting).
void Signalling::offer(Message& m) {
  auto session_id = m.active.session_id;
  auto sdp = string_field(m.msg, "sdp");
  auto reply = m.reply;
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
    core::logger("live")->info("refused the offer of {} for session={}: {}", m.user.username, session_id, e.what());
    throw core::ApiError(400, "bad_offer", e.what());
  } catch (const live::NotOpen& e) {  // ended since the check
    throw core::ApiError(409, "not_here", e.what());
  } catch (const std::exception& e) {  // the media plane could not make the connection: the server's trouble
    core::logger("live")->error("the offer of {} for session={} could not start: {}", m.user.username, session_id, e.what());
    core::count_failure("offer");
    throw core::ApiError(503, "media_error", std::string("the server could not open the audio connection: ") + e.what());
  }
  core::logger("live")->info("offer accepted user={} session={}", m.user.username, session_id);
}

void Signalling::set_strength(const storage::ActiveStream& active, const json& msg, presence::Reply reply) {
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

void Signalling::send_meter(std::int64_t session_id, const denoise::MeterReading& r) {
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

}  // namespace fc25::signalling

