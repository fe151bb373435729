#pragma once
// WebRTC signalling of pages and the media-side of live streams: one table of the messages a page may send on its
// presence socket (webrtc_offer, ice_candidate, set_strength, resume, listen_*, mic_test_*), each with who may send
// it; listeners (here, or fed by a relay from the node where the stream runs) and microphone tests; and the glue
// between the stream registry (who is live), the live media plane (ingest, denoise, recording) and presence. It
// decides nothing about the media itself.
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "core/events.hpp"
#include "live/live.hpp"
#include "recording/library.hpp"
#include "presence/presence.hpp"
#include "relay/relay.hpp"
#include "storage/store.hpp"
#include "streams/registry.hpp"

namespace fc25::signalling {

class Signalling {
 public:
  Signalling(boost::asio::io_context& io, storage::Store& store, streams::StreamRegistry& registry,
             core::EventSink& events, const recording::Library& library, live::Config config);
  ~Signalling();

  // For the registry.
  streams::MediaHooks hooks();
  // For presence: "webrtc_offer", "ice_candidate" and "set_strength" from the owning tab; "listen_offer",
  // "listen_stop" and listeners' "ice_candidate" from friends' pages.
  void on_message(const presence::SocketUser& user, const std::string& client_id, const nlohmann::json& msg,
                  presence::Reply reply);
  // A presence socket closed: its listeners go.
  void on_socket_closed(std::int64_t user_id, const std::string& client_id);
  // A friendship of `username` was removed (seen in whichever process holds the sockets): each listener here from
  // or to that user who is no longer a friend of the broadcaster ends (listen_ended, reason not_friends).
  void end_unfriended_listeners(const std::string& username);

  // A cluster: streams cross between nodes over relays (relay/relay.hpp), authenticated by the cluster secret.
  struct ClusterLinks {
    std::string secret;
    // Where another node is reached (its FC25_NODE_URL), nullopt when it holds no lease now.
    std::function<std::optional<std::string>(const std::string& node_id)> node_url;
    boost::asio::thread_pool* store_work = nullptr;  // where store calls of relays run (null: inline)
    int realtime_priority = 0;
  };
  void enable_relays(ClusterLinks links);
  // A relay's upgrade from another node (the secret checked): the stream's packets go to it.
  void accept_relay(boost::beast::tcp_stream&& stream, boost::beast::http::request<boost::beast::http::string_body>&& req,
                    std::int64_t session_id);
  // Relays sent and received, for GET /api/health.
  nlohmann::json relay_stats() const;

  std::string_view denoiser() const;
  // How long a microphone test may run (default 60 s).
  void set_mic_test_limit(std::chrono::seconds limit) { mic_test_limit_ = limit; }
  std::size_t open_streams() const;
  // Listeners (friends' pages and microphone tests) this process serves.
  std::size_t listener_count() const;
  // At start: recordings in streamed_audios/ that a crash left unfinished (header_stale) whose session has already
  // been ended by another node (node_lost) are repaired and get their row; returns how many. (Sessions still live
  // are the registry's: it ends them server_restart and repairs them then.)
  std::size_t recover_recordings();
  // Ends the media of every stream (shutdown); the registry ends them first, this catches anything left.
  void close_all();

 private:
  void ending(const storage::ActiveStream& s, streams::EndReason reason, bool local);
  struct Listener;
  // Who may send a message, checked before its handler runs.
  enum class Check {
    signed_in,     // any signed-in page; the handler decides (listen_offer: friends only; resume: the registry)
    owning_tab,    // the tab that owns the live session (or microphone test) `session_id`, whose media runs here
    own_listener,  // the user of the listening connection `listen_id`
    own_test,      // the tab running the microphone test `test_id`
  };
  struct Message;
  struct Route {
    std::string_view type;
    bool listener;  // ice_candidate: this route is the one for messages that name a listen_id
    Check check;
    void (*handle)(Signalling&, Message&);
  };
  static const std::vector<Route>& routes();
  // The one shape of listen_ended.
  static nlohmann::json listen_ended(const std::string& listen_id, std::int64_t session_id, const std::string& owner,
                                     const std::string& reason, const std::string& detail = "");
  void resume(Message& m);
  void offer(Message& m);
  void listen_offer(Message& m);
  // Microphone tests: the tab's audio denoised and sent straight back to it, recorded nowhere, seen by no one.
  void start_test(const presence::SocketUser& user, const std::string& client_id, const nlohmann::json& msg,
                  presence::Reply reply);
  // Ends a test (its media, its listener, its timer) and tells its tab why; false when it was not running.
  bool end_test(std::int64_t test_id, const std::string& reason);
  // The test `test_id` as a stream of its tab; throws not_your_session / other_tab for anyone else's.
  storage::ActiveStream test_of(const presence::SocketUser& user, const std::string& client_id, std::int64_t test_id);
  // "set_strength" from the owning tab of a live session: its noise removal strength from the next frame on.
  void set_strength(const storage::ActiveStream& active, const nlohmann::json& msg, presence::Reply reply);
  void send_meter(std::int64_t session_id, const denoise::MeterReading& reading);
  // A listener's connection to `session_id` (a stream of `owner_name`, or one's own microphone test).
  // `origin_url`: the stream's node when it is another one (the listener is fed by a relay from it).
  void join(const presence::SocketUser& user, const std::string& client_id, const std::string& sdp,
            std::int64_t session_id, std::int64_t owner_id, const std::string& owner_name, presence::Reply reply,
            const std::optional<std::string>& origin_url = std::nullopt);
  // A relayed listener ended from its relay's side: the stream ended there, or the owner's node refused it.
  void relayed_listener_ended(const std::string& listen_id, const std::string& reason, const std::string& detail);
  // Forgets a listener and releases its connection; returns it (nullopt when it was already gone).
  std::optional<Listener> drop_listener(const std::string& listen_id, const std::string& why);
  // Releases a listener's connection (live_ or relays_), returning what it was sent.
  media::Fanout::ListenerCounts release_listener(const Listener& l, const std::string& listen_id);
  void announce_listeners(std::int64_t session_id);
  // Ends the listener (not_friends) when its user and the broadcaster are no longer friends; true when it did.
  bool end_if_not_friends(const std::string& listen_id);

  struct Listener {
    std::int64_t session_id = 0;
    std::int64_t user_id = 0;
    std::string username;       // the listener's
    std::string client_id;
    std::int64_t owner_id = 0;  // the broadcaster's user id
    std::string owner;          // the broadcaster's username
    bool joining = false;       // its connection is being made (live_->listen runs): a drop leaves the release to it
    bool relayed = false;       // the stream comes from another node (relays_), not from live_
    presence::Reply reply;
  };
  // A message, and what its route's check found.
  struct Message {
    const presence::SocketUser& user;
    const std::string& client_id;
    const nlohmann::json& msg;
    presence::Reply reply;
    storage::ActiveStream active;  // owning_tab, own_test
    std::string listen_id;         // own_listener
    Listener listener;             // own_listener
  };

  boost::asio::io_context& io_;
  storage::Store& store_;
  streams::StreamRegistry& registry_;
  const recording::Library& library_;
  core::EventSink& events_;
  std::unique_ptr<live::LiveMedia> live_;
  ClusterLinks links_;
  std::unique_ptr<relay::Origin> origin_;   // relays of this node's streams to others (with links_)
  std::unique_ptr<relay::Relays> relays_;   // other nodes' streams heard here
  mutable std::mutex mu_;                           // listeners_, owners_
  std::map<std::string, Listener> listeners_;       // by listen id
  // What a live stream of this process needs beside its media: its owning tab (its socket gets the noise meter)
  // and the strengths it had.
  struct Owner {
    std::int64_t started_at = 0;
    bool adjustable = false;                        // noise removal on: its strength may change while live
    presence::Reply reply;                          // the owning tab's socket, once it signalled
    nlohmann::json strengths = nlohmann::json::array();
  };
  std::map<std::int64_t, Owner> owners_;            // by session id (and microphone test id)
  struct MicTest {
    std::int64_t user_id = 0;
    std::string username;
    std::string client_id;
    std::int64_t started_at = 0;
    presence::Reply reply;
    std::shared_ptr<boost::asio::steady_timer> limit;  // ends it after mic_test_limit_
  };
  std::map<std::int64_t, MicTest> tests_;           // by test id: negative, never a session id; mu_
  std::int64_t last_test_id_ = 0;                   // mu_
  std::chrono::seconds mic_test_limit_{60};
};

}  // namespace fc25::signalling
