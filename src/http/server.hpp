#pragma once
// The HTTP plane: a Beast listener and one session per connection (each on its own strand), the REST API of
// docs/protocol.md, the pages and static files of web/, and the hand-over of /ws/presence/ upgrades to presence.
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "auth/auth.hpp"
#include "http/exchange.hpp"
#include "presence/presence.hpp"
#include "recording/library.hpp"
#include "social/friends.hpp"
#include "storage/store.hpp"
#include "streams/registry.hpp"

namespace boost::asio::ssl {
class context;
}

namespace fc25::http {

inline constexpr std::size_t kMaxBodyBytes = 64 * 1024;

// What the handlers use; owned by the app.
struct Services {
  storage::Store& store;
  auth::Sessions& sessions;
  auth::LoginThrottle& throttle;
  social::Friends& friends;
  streams::StreamRegistry& streams;
  presence::Presence& presence;
  boost::asio::thread_pool& slow_work;   // password hashing, off the io threads
  std::filesystem::path web_dir;
  bool secure_cookies = false;
  std::filesystem::path data_dir;        // recordings live under data_dir/streamed_audios
  std::string denoiser = "dfn3";         // what "noise removal on" runs (classic when no model is installed)
  nlohmann::json ice_servers = nlohmann::json::array();   // for the pages' RTCPeerConnection
  std::function<nlohmann::json()> health{};               // counters for GET /api/health
  std::function<nlohmann::json()> cluster{};              // the nodes for GET /api/cluster (null: one process)
  std::string cluster_secret{};                           // GET /api/cluster wants it (empty: loopback only)
  // Relays from other nodes of the cluster: GET /internal/relay/{session} upgraded to a WebSocket, taken here once
  // the cluster secret checked out (null, or no secret: refused).
  std::function<void(boost::beast::tcp_stream&&, bhttp::request<bhttp::string_body>&&, std::int64_t session_id)> relay{};
  // Logins of existing users hash on threads of their own, so a flood of registrations never queues them (null:
  // slow_work). Registrations per address are limited by `registrations` (null: no limit).
  boost::asio::thread_pool* login_work = nullptr;
  // Where requests run when a database call is a network round trip (PostgreSQL): never on an io thread. Null
  // (SQLite): on the io thread that read the request.
  boost::asio::thread_pool* store_work = nullptr;
  auth::RateLimit* registrations = nullptr;
  std::chrono::seconds timeout{30};      // a request must arrive, and each write of an answer be taken, within this
  std::uint64_t min_free_bytes = 0;      // free space the data dir needs for a new stream (0: not checked)
  std::uint64_t quota_bytes = 0;         // a user's recordings may take this much; then going live is refused (0: no quota)
  // HTTPS only, with this certificate and key (http/tls.hpp makes it); null: plain HTTP. Cookies should then be
  // secure_cookies.
  std::shared_ptr<boost::asio::ssl::context> tls{};
  // Proxies whose X-Forwarded-For is believed (FC25_TRUSTED_PROXIES): a request from one of them is from the
  // address it names (Request::remote_address: registration and login limits, the loopback check).
  std::vector<boost::asio::ip::address> trusted_proxies{};
  // The recordings' files: here, or on the node that recorded them (null: those under data_dir, one process).
  const recording::Library* library = nullptr;
};

class Server {
 public:
  Server(boost::asio::io_context& io, Services& services);
  ~Server();
  // Binds and starts accepting; returns the bound port (useful with port 0). Throws std::runtime_error naming
  // the address on failure.
  unsigned short listen(const std::string& address, unsigned short port);
  void stop_accepting();
  // One more route (before listen()); see Api::add_route.
  void add_route(bhttp::verb method, const std::string& pattern, bool needs_user,
                 std::function<void(Request&, Respond&)> fn);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace fc25::http
