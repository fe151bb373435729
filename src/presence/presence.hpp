#pragma once
// Presence: the /ws/presence/ WebSocket sessions and the channel layer that carries events between them, across
// server processes when the Redis backend is used. The HTTP plane hands over upgraded connections; the streams and
// social planes send events to users. Nothing here knows about HTTP routing, SQL or streams.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

namespace fc25::presence {

struct ChannelLayerConfig {
  std::string backend = "memory";     // "memory" | "redis"
  std::string redis_host = "127.0.0.1";
  int redis_port = 6379;
};

struct SocketUser {
  std::int64_t id = 0;
  std::string username;   // lower-case
  std::string session;    // the session the socket was opened with (SHA-256 hex of its token; "" when unknown)
};

struct Options {
  // Sockets one user may hold in this process; one more is refused (429 too_many_sockets). 0: no limit.
  int max_sockets_per_user = 32;
  // How often every socket's session is checked (expired or deleted: the socket is closed, 4001).
  std::chrono::milliseconds session_check{5000};
  // Where the hooks run when they may block on a database round trip (PostgreSQL): each socket's messages, its
  // snapshot and its close in order on a strand of this pool, the session checks on it too. Null: on the io threads.
  boost::asio::thread_pool* hook_work = nullptr;
};

// Sends a message to one socket (the one a message came from). Thread-safe, never blocks; a no-op once closed.
using Reply = std::function<void(const nlohmann::json& message)>;

// What presence needs from the other planes; filled in by the app.
struct Hooks {
  // The full snapshot message for a user (type "snapshot": self + friends' status). Called on connect and after a
  // channel-layer reconnect; may be called from any thread.
  std::function<nlohmann::json(std::int64_t user_id)> snapshot_for;
  // A presence socket of this user, opened with this client_id, has closed (any reason).
  std::function<void(std::int64_t user_id, const std::string& client_id)> on_socket_closed;
  // A message from a page other than "ping" (e.g. WebRTC signalling). Throw std::invalid_argument for an unknown
  // type or a bad field, core::ApiError for a refused request: the page gets an "error" message saying why.
  std::function<void(const SocketUser& user, const std::string& client_id, const nlohmann::json& message,
                     Reply reply)> on_message;
  // An event with this "type" reached the sockets this process holds for `username` (whichever process sent it),
  // just before they are sent it; on an io thread. Lets a plane act where the sockets are (a removed friendship
  // ends listening in the process that serves it).
  std::function<void(const std::string& username, std::string_view type)> on_delivered;
  // Whether a session (SocketUser::session) is still valid: not logged out, not expired. Called every
  // Options::session_check for each session that has sockets here, on an io thread.
  std::function<bool(const std::string& session)> session_valid;
};


class Presence {
 public:
  using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  // Creates the channel layer (connecting to Redis when configured; it reconnects with backoff on its own).
  Presence(boost::asio::io_context& io, ChannelLayerConfig config, Hooks hooks, Options options = {});
  ~Presence();
  Presence(const Presence&) = delete;
  Presence& operator=(const Presence&) = delete;

  // Takes over a connection whose HTTP upgrade request has already been authenticated and Origin-checked by the
  // HTTP plane; performs the WebSocket handshake, sends the snapshot, and serves the socket until it closes. A user
  // who already holds Options::max_sockets_per_user sockets here is answered 429 too_many_sockets (no handshake).
  void accept(boost::beast::tcp_stream stream,
              boost::beast::http::request<boost::beast::http::string_body> upgrade_request,
              SocketUser user, std::string client_id);
  // The same over HTTPS (wss://), the TLS handshake done.
  void accept(TlsStream stream, boost::beast::http::request<boost::beast::http::string_body> upgrade_request,
              SocketUser user, std::string client_id);

  // Sends one event (a JSON object with a "type") to every presence socket of `username`, in every process.
  // Thread-safe; never blocks on a socket.
  void send_to_user(const std::string& username, const nlohmann::json& event);

  // Number of open presence sockets in this process (for tests and logs).
  std::size_t open_sockets() const;

  // The session was logged out: every socket opened with it, in every process, is closed at once (4001 "session
  // ended"); the user's other sessions keep theirs. Thread-safe.
  void end_session(const std::string& username, const std::string& session);

  // Closes every socket (1001 going away) and the channel layer. Idempotent.
  void shutdown();

 private:
  friend class WsSession;
  template <class Stream>
  void accept_on(Stream stream, boost::beast::http::request<boost::beast::http::string_body> upgrade_request,
                 SocketUser user, std::string client_id);
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace fc25::presence
