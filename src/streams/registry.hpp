#pragma once
// The authority over live streams. Every way a stream ends reaches stop_session(), which is idempotent: it
// finishes the media (MediaHooks::ending), ends the session in the store (exactly one caller wins, across
// processes), then tells the user's friends and the user's own other pages, once. A stream this process runs that
// another process ended is finished here by reconcile() (media only). Streams are owned by one tab (client_id); of
// the presence sockets, only that tab's ends them by closing.
//
// Threads: every public method may be called from any thread (the io threads, usually several at once), except
// set_media_hooks (once, before the registry is used) and the destructor (after the io threads are joined).
// Locks: mu_ guards live_ and the state of every LiveStream in it (begin_stop, finish); timer_mu_ guards the
// heartbeat timer and this node's heartbeat row. Neither is held while calling out to the media hooks or the event
// sink, so those may call back.
#include <atomic>
#include <chrono>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "core/run_on.hpp"
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "core/events.hpp"
#include "storage/store.hpp"
#include "streams/live_stream.hpp"

namespace fc25::streams {

// A page's per-tab id: 1-64 of A-Z a-z 0-9 _ -.
bool valid_client_id(const std::string& id);

struct Started {
  bool created = false;           // false: this tab was already live, the same session is returned
  storage::ActiveStream stream;
};

struct Stopped {
  std::int64_t session_id = 0;
  EndReason reason = EndReason::user;
};

// What the page chose before going live (passed through to the media plane).
struct StartOptions {
  bool noise_removal = true;
  std::optional<float> atten_lim_db;
  std::optional<Strength> strength;  // a preset; when set, atten_lim_db is unset
};

// The media plane, seen from the registry. Both are called once per stream, never under the registry's lock,
// on the thread of the call that starts or ends the stream.
struct MediaHooks {
  // A stream this process just started. May throw (e.g. the recording cannot be created): the stream is then
  // ended at once (media_error) and the error reaches the caller.
  std::function<void(const storage::ActiveStream&, const StartOptions&)> opened;
  // A stream is ending, before the store is told: `local` streams run here (flush the media, finalise the
  // recording); others were left by a crashed process (repair what it left).
  std::function<void(const storage::ActiveStream&, EndReason, bool local)> ending;
};

struct RegistryOptions {
  std::string node_id;                                           // this process, unique per start
  std::chrono::milliseconds socket_close_grace{250};             // lets a racing page_unload beacon win the reason
  // How long a stream waits for its page to come back after its presence socket closed or its audio stopped
  // (reconnecting); then it ends (socket_closed / webrtc_failed). 0: it ends at once.
  std::chrono::milliseconds reconnect_grace{15000};
  std::chrono::milliseconds heartbeat_interval{2000};
  std::chrono::milliseconds node_stale_after{10000};             // a node silent this long has crashed
  // How the streams of a crashed node end when found by housekeeping: server_restart (one server, found by its
  // next start) or node_lost (a cluster, where a survivor finds them; as when its lease lapses).
  EndReason orphan_reason = EndReason::server_restart;
  // Where its timers' work runs when the store is a network away (PostgreSQL); null: on the io thread.
  boost::asio::thread_pool* store_work = nullptr;
};

class StreamRegistry {
 public:
  StreamRegistry(boost::asio::io_context& io, storage::Store& store, core::EventSink& events, RegistryOptions options);
  ~StreamRegistry();

  // Throws core::ApiError 409 already_streaming when live from another tab; 400 for a bad client_id.
  Started start(const storage::User& user, const std::string& client_id, const StartOptions& options = {});

  void set_media_hooks(MediaHooks hooks) { media_ = std::move(hooks); }

  // Stops the user's live stream; with `only_session`, only if that is the live session. Idempotent.
  std::optional<Stopped> stop_user(const storage::User& user, std::optional<std::int64_t> only_session,
                                   EndReason reason);
  // Stops one session wherever it runs. Idempotent: nullopt when it was not live (any more).
  std::optional<Stopped> stop_session(std::int64_t session_id, EndReason reason);
  // Ends the live streams of another node that is gone (its cluster lease lapsed): node_lost. Returns how many this
  // process ended (the others were ended by another survivor, or were not live).
  std::size_t end_streams_of_node(const std::string& node_id, EndReason reason);

  // A presence socket closed: when this socket's tab owns the user's stream, the stream is reconnecting (after
  // socket_close_grace, so that a page_unload beacon ends it first) and ends if the tab is not back within
  // reconnect_grace.
  void on_socket_closed(std::int64_t user_id, const std::string& client_id);
  // The page of a live session lost (`lost`) or has again (`back`) its socket or its audio. The first trouble
  // makes the stream reconnecting and starts the grace; the last one cleared makes it live again. Friends and the
  // user's pages are told of each change. Idempotent.
  void lost(std::int64_t session_id, storage::Trouble trouble);
  void back(std::int64_t session_id, storage::Trouble trouble);
  // The live session `session_id` of `user_id`, owned by the tab `client_id`. Throws core::ApiError (403
  // not_your_session: not this user's live session; 409 other_tab: another tab's) for anyone else.
  storage::ActiveStream owned_stream(std::int64_t user_id, const std::string& username, const std::string& client_id,
                                     std::int64_t session_id);
  // The owning tab says it is here (on a socket of its own): its socket trouble is over. Throws as owned_stream.
  void resume(const storage::User& user, const std::string& client_id, std::int64_t session_id);

  // Ends every stream this process runs (shutdown); blocks until all are ended and friends told.
  void stop_all(EndReason reason);

  // Ends streams left live by crashed processes (server_restart), then beats; repeats every heartbeat.
  void start_housekeeping();
  void stop_housekeeping();
  std::size_t recover_orphans();

  // The streaming_status event for a user's current state.
  nlohmann::json status_event(const storage::LiveStatus& status) const;

  std::size_t live_count() const;
  // This process holds `session_id` as live (its media may still be opening: the row is written first).
  bool holds_live(std::int64_t session_id) const;
  const std::string& node_id() const { return options_.node_id; }
  std::chrono::milliseconds reconnect_grace() const { return options_.reconnect_grace; }

 private:
  void notify(const std::string& username, std::int64_t user_id, const nlohmann::json& event);
  // Sets or clears a trouble and tells everyone when the stream's state changed.
  void set_trouble(std::int64_t session_id, storage::Trouble trouble, bool lost);
  // Ends the stream when its trouble has outlasted the grace; else (still in trouble) checks again when it would.
  void check_grace(std::int64_t session_id);
  void schedule_grace_check(std::int64_t session_id, std::chrono::milliseconds after);
  std::optional<Stopped> finish_stop(std::int64_t session_id, std::shared_ptr<LiveStream> local, EndReason reason);
  // Writes the ends of streams that ended here while the store refused them; returns how many are still unwritten.
  std::size_t record_unrecorded_ends();
  void beat();
  void schedule_beat();
  // A timer's work: on RegistryOptions::store_work when set, else here.
  template <typename Fn>
  void off_io(Fn fn) {
    core::run_on(options_.store_work, std::move(fn));
  }
  bool node_alive(const storage::Node& n, std::int64_t now) const;

  boost::asio::io_context& io_;
  storage::Store& store_;
  core::EventSink& events_;
  RegistryOptions options_;
  std::string host_;
  mutable std::mutex mu_;
  std::map<std::int64_t, std::shared_ptr<LiveStream>> live_;  // by session id, streams run by this process; mu_
  struct UnrecordedEnd {
    EndReason reason;
    std::int64_t ended_at;
  };
  std::map<std::int64_t, UnrecordedEnd> unrecorded_ends_;       // ended here, not yet in the store; mu_
  MediaHooks media_;                                           // set before use, read-only afterwards
  void reconcile();
  std::mutex timer_mu_;
  std::unique_ptr<boost::asio::steady_timer> heartbeat_timer_;  // timer_mu_
  std::atomic<bool> housekeeping_{false};
};

}  // namespace fc25::streams
