#pragma once
// The glue between the stream registry (who is live), the live media plane (ingest, denoise, recording) and
// presence (where WebRTC signalling travels). It decides nothing about the media itself.
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "core/events.hpp"
#include "live/live.hpp"
#include "presence/presence.hpp"
#include "storage/store.hpp"
#include "streams/registry.hpp"

namespace fc25::app {

class Broadcasts {
 public:
  Broadcasts(boost::asio::io_context& io, storage::Store& store, streams::StreamRegistry& registry,
             core::EventSink& events, std::filesystem::path data_dir, live::Config config);
  ~Broadcasts();

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

  std::string_view denoiser() const;
  std::size_t open_streams() const;
  // Ends the media of every stream (shutdown); the registry ends them first, this catches anything left.
  void close_all();

 private:
  void ending(const storage::ActiveStream& s, streams::EndReason reason, bool local);
  void listen(const presence::SocketUser& user, const std::string& client_id, const nlohmann::json& msg,
              presence::Reply reply);
  // "set_strength" from the owning tab of a live session: its noise removal strength from the next frame on.
  void set_strength(const storage::ActiveStream& active, const nlohmann::json& msg, presence::Reply reply);
  void send_meter(std::int64_t session_id, const denoise::MeterReading& reading);
  struct Listener;
  // Forgets a listener and releases its connection; returns it (nullopt when it was already gone).
  std::optional<Listener> drop_listener(const std::string& listen_id, const std::string& why);
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
    presence::Reply reply;
  };

  boost::asio::io_context& io_;
  storage::Store& store_;
  streams::StreamRegistry& registry_;
  std::filesystem::path data_dir_;
  core::EventSink& events_;
  std::unique_ptr<live::LiveMedia> live_;
  std::mutex mu_;                                   // listeners_, owners_
  std::map<std::string, Listener> listeners_;       // by listen id
  // What a live stream of this process needs beside its media: its owning tab (its socket gets the noise meter)
  // and the strengths it had.
  struct Owner {
    std::int64_t started_at = 0;
    bool adjustable = false;                        // noise removal on: its strength may change while live
    presence::Reply reply;                          // the owning tab's socket, once it signalled
    nlohmann::json strengths = nlohmann::json::array();
  };
  std::map<std::int64_t, Owner> owners_;            // by session id
};

}  // namespace fc25::app
