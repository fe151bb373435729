// Listener and HTTP sessions (Beast's advanced-server shape): a session per connection on its own strand,
// do_read/on_read, limits on headers and body, a read timeout, keep-alive, and the upgrade of /ws/presence/.
// With TLS (Services::tls) the listener looks at each connection's first bytes (Beast's flex-server shape): a TLS
// handshake goes to a session over an ssl_stream, anything else is answered 400 https_required. The session is a
// template on its stream, so plain HTTP runs the same code it did before TLS existed.
#include "http/server.hpp"

#include <charconv>
#include <chrono>
#include <type_traits>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>

#include "core/crypto.hpp"
#include "core/guard.hpp"
#include "core/api_error.hpp"
#include "core/log.hpp"
#include "core/run_on.hpp"
#include "core/text.hpp"
#include "http/api.hpp"
#include "http/exchange.hpp"
#include "http/proxy.hpp"

namespace fc25::http {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Who sent a request: the connection's peer, or, when that is a trusted proxy, the right-most address of
// X-Forwarded-For that is not a trusted proxy itself (every proxy appends the address it was reached from, so
// entries further left are whatever the client wrote). A value that is not an address ends the walk.
std::string client_address(const std::string& peer, const bhttp::request<bhttp::string_body>& msg,
                           const std::vector<net::ip::address>& trusted) {
  auto is_trusted = [&](const net::ip::address& a) {
    for (auto& t : trusted)
      if (t == a) return true;
    return false;
  };
  beast::error_code ec;
  auto peer_addr = net::ip::make_address(peer, ec);
  if (ec || !is_trusted(peer_addr)) return peer;
  std::vector<std::string> hops;
  auto [first, last] = msg.equal_range(beast::string_view("X-Forwarded-For"));
  for (auto it = first; it != last; ++it) {
    std::string_view v(it->value().data(), it->value().size());
    while (!v.empty()) {
      auto comma = v.find(',');
      auto item = v.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      hops.emplace_back(item);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  std::string client = peer;
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    auto a = net::ip::make_address(*it, ec);
    if (ec) break;
    client = a.to_string();
    if (!is_trusted(a)) break;
  }
  return client;
}

std::string remote_of(beast::tcp_stream& stream) {
  beast::error_code ec;
  auto ep = stream.socket().remote_endpoint(ec);
  return ec ? "?" : ep.address().to_string();
}

// Stream: beast::tcp_stream (plain HTTP, or the refusal of plain HTTP on an HTTPS port) or TlsStream.
template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  using std::enable_shared_from_this<HttpSession<Stream>>::shared_from_this;

 public:
  HttpSession(tcp::socket&& socket, Services& svc, const Api& api)
      : stream_(std::move(socket)), svc_(svc), api_(api), log_(core::logger("http")) {
    remote_ = remote_of(stream_);
  }

  // A connection whose first bytes (in `buffer`) were already read to tell TLS from plain HTTP. Plain HTTP on an
  // HTTPS port: `https_only` answers every request 400 https_required.
  HttpSession(beast::tcp_stream&& stream, beast::flat_buffer&& buffer, Services& svc, const Api& api,
              bool https_only = false)
      : stream_(make_stream(std::move(stream), svc)), buffer_(std::move(buffer)), svc_(svc), api_(api),
        log_(core::logger("http")), https_only_(https_only) {
    remote_ = remote_of(beast::get_lowest_layer(stream_));
  }

  void run() {
    if constexpr (kTls) {
      net::dispatch(stream_.get_executor(), beast::bind_front_handler(&HttpSession::do_handshake, shared_from_this()));
    } else {
      net::dispatch(stream_.get_executor(), beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
    }
  }

 private:
  static Stream make_stream(beast::tcp_stream&& tcp, Services& svc) {
    if constexpr (kTls) {
      return Stream(std::move(tcp), *svc.tls);
    } else {
      return std::move(tcp);
    }
  }

  // The handshake has the request timeout; one that fails (a scanner, a client that distrusts the certificate,
  // plain junk) is a DEBUG line and a closed connection.
  void do_handshake() {
    beast::get_lowest_layer(stream_).expires_after(svc_.timeout);
    stream_.async_handshake(net::ssl::stream_base::server, buffer_.data(),
                            [self = shared_from_this()](beast::error_code ec, std::size_t used) {
                              if (ec) {
                                self->log_->debug("TLS handshake with {} failed: {}", self->remote_, ec.message());
                                beast::get_lowest_layer(self->stream_).close();
                                return;
                              }
                              self->buffer_.consume(used);
                              self->do_read();
                            });
  }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(kMaxBodyBytes);
    parser_->header_limit(16 * 1024);
    beast::get_lowest_layer(stream_).expires_after(svc_.timeout);
    bhttp::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout) {
      return close();
    }
    started_ = std::chrono::steady_clock::now();
    // Nothing of the previous request on this connection (its user, its fresh CSRF cookie) may reach this answer.
    req_ = Request{};
    req_.remote_address = remote_;
    if (ec == bhttp::error::body_limit) {
      req_.msg = parser_->release();
      keep_alive_ = false;
      return write(error_response(413, "payload_too_large",
                                  "request body over " + std::to_string(kMaxBodyBytes / 1024) + " KiB"));
    }
    if (ec == bhttp::error::header_limit) {
      keep_alive_ = false;
      return write(error_response(431, "headers_too_large", "request headers over 16 KiB"));
    }
    if (ec) {
      log_->debug("read from {} failed: {}", remote_, ec.message());
      return close();
    }
    req_.msg = parser_->release();
    keep_alive_ = req_.msg.keep_alive();
    if (!svc_.trusted_proxies.empty()) req_.remote_address = client_address(remote_, req_.msg, svc_.trusted_proxies);
    if (https_only_) {
      keep_alive_ = false;
      return write(error_response(400, "https_required",
                                  "this port speaks HTTPS only: use https:// with the same host and port"));
    }
    if (beast::websocket::is_upgrade(req_.msg)) return start_upgrade();
    // The answer may come later from another thread (password hashing): it holds the session until then.
    off_io([self = shared_from_this()] {
      self->api_.handle(self->req_, [self](Reply res) {
        auto holder = std::make_shared<Reply>(std::move(res));
        net::post(self->stream_.get_executor(), [self, holder] { self->write(std::move(*holder)); });
      });
    });
  }

  // Runs `fn` where a database call may block: on the store's own threads when the store is a network away
  // (PostgreSQL), at once otherwise (SQLite answers in microseconds).
  template <typename Fn>
  void off_io(Fn fn) {
    core::run_on(svc_.store_work, std::move(fn));
  }

  // The upgrade's session lookup (the store) off the io threads; the handshake back on this connection's strand.
  void start_upgrade() {
    off_io([self = shared_from_this()] {
      std::optional<Response> refusal;
      try {
        self->api_.prepare(self->req_);  // path, query, cookies, user; throws ApiError for a path that is not text
      } catch (const core::ApiError& e) {
        refusal = error_response(e.status(), e.code(), e.message());
      } catch (const std::exception& e) {
        core::count_failure("websocket upgrade");
        self->log_->error("upgrade of {} failed: {}", self->req_.path, e.what());
        refusal = error_response(500, "internal", "the server failed to open this WebSocket");
      } catch (...) {
        core::count_failure("websocket upgrade");
        refusal = error_response(500, "internal", "the server failed to open this WebSocket");
      }
      net::post(self->stream_.get_executor(), [self, refusal = std::move(refusal)]() mutable {
        if (refusal) {
          self->log_->info("GET {} {} upgrade refused", self->req_.path, refusal->result_int());
          return self->write(std::move(*refusal));
        }
        self->finish_upgrade();
      });
    });
  }

  void finish_upgrade() {
    try {
      return upgrade();
    } catch (const core::ApiError& e) {
      if (handed_over_) return log_->error("presence socket of {} failed: {}", req_.path, e.what());
      return write(error_response(e.status(), e.code(), e.message()));
    } catch (const std::exception& e) {
      core::count_failure("websocket upgrade");
      log_->error("upgrade of {} failed: {}", req_.path, e.what());
      // Once the connection is the presence service's, this session has nothing left to answer on.
      if (handed_over_) return;
      return write(error_response(500, "internal", "the server failed to open this WebSocket"));
    }
  }

  void upgrade() {
    auto log_refusal = [&](unsigned status) {
      log_->info("GET {} {} upgrade refused user={}", req_.path, status, req_.user ? req_.user->username : "-");
    };
    if (req_.path.starts_with("/internal/relay/")) return upgrade_relay();
    if (req_.path != "/ws/presence") {
      log_refusal(404);
      return write(error_response(404, "not_found", "no WebSocket at " + req_.path));
    }
    if (!req_.user) {
      log_refusal(401);
      return write(error_response(401, "not_authenticated", "log in before opening the presence socket"));
    }
    std::string origin(req_.msg[bhttp::field::origin]);
    std::string host(req_.msg[bhttp::field::host]);
    if (origin.empty() || host.empty() || (origin != "http://" + host && origin != "https://" + host)) {
      log_refusal(403);
      return write(error_response(403, "forbidden_origin",
                                  "WebSocket Origin '" + origin + "' is not this server (" + host + ")"));
    }
    auto client_id = req_.query.count("client_id") ? req_.query["client_id"] : std::string();
    if (!streams::valid_client_id(client_id)) {
      log_refusal(400);
      return write(error_response(400, "invalid_field", "client_id must be 1-64 characters of A-Z a-z 0-9 _ -"));
    }
    log_->info("GET /ws/presence 101 user={} client={}", req_.user->username, client_id);
    beast::get_lowest_layer(stream_).expires_never();
    // The socket remembers its session, so that logging out (or expiry) closes it.
    auto session = req_.cookies.count("fc25_session") ? core::sha256_hex(req_.cookies["fc25_session"]) : std::string();
    handed_over_ = true;
    svc_.presence.accept(std::move(stream_), std::move(req_.msg), {req_.user->id, req_.user->username, session},
                         client_id);
  }

  // Another node of the cluster asks for a stream's packets: only with the cluster secret.
  void upgrade_relay() {
    auto refuse = [&](unsigned status, const std::string& code, const std::string& message) {
      log_->info("GET {} {} relay refused from {}: {}", req_.path, status, remote_, code);
      write(error_response(status, code, message));
    };
    if (!svc_.relay || svc_.cluster_secret.empty()) {
      return refuse(403, "relay_disabled", "this node relays to no one: FC25_CLUSTER_SECRET is not set");
    }
    if (!has_cluster_secret(req_.msg, svc_.cluster_secret)) {
      return refuse(401, "cluster_secret_required", "relays need the cluster secret as a Bearer token");
    }
    auto digits = std::string_view(req_.path).substr(std::string_view("/internal/relay/").size());
    std::int64_t session_id = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), session_id);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || session_id <= 0) {
      return refuse(404, "not_found", "no stream session in '" + core::printable(req_.path) + "'");
    }
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      log_->info("GET {} 101 relay from {} node={}", req_.path, remote_,
                 core::printable(std::string(req_.msg["X-FC25-Node"])));
      stream_.expires_never();
      handed_over_ = true;
      svc_.relay(std::move(stream_), std::move(req_.msg), session_id);
    } else {
      // Nodes reach each other over plain HTTP on their private network (FC25_NODE_URL http://).
      return refuse(400, "relay_over_tls", "relays run over plain HTTP between nodes, not over this HTTPS port");
    }
  }

  void write(Reply reply) {
    std::visit([this](auto& res) { send(std::move(res)); }, reply.message);
  }

  // What every answer of this session carries.
  template <class Body>
  void decorate(bhttp::response<Body>& res) {
    res.set(bhttp::field::server, "fc25");
    res.keep_alive(keep_alive_);
    if (req_.set_csrf_cookie) {
      res.insert(bhttp::field::set_cookie, "fc25_csrf=" + req_.csrf_token + "; Path=/; SameSite=Lax; Max-Age=31536000" +
                                               (svc_.secure_cookies ? "; Secure" : ""));
    }
  }

  template <class Body>
  void send(bhttp::response<Body> res) {
    decorate(res);
    if (req_.msg.method() == bhttp::verb::head) {
      // The header a GET would have, Content-Length included, and no body (whatever the answer: an error's JSON
      // sent after a HEAD's header would be read as the start of the next answer on this connection).
      if (!res.has_content_length()) res.prepare_payload();
      return start_write(bhttp::response<bhttp::empty_body>(std::move(res.base())));
    }
    res.prepare_payload();
    start_write(std::move(res));
  }

  // Another node's answer, streamed through (http/proxy.hpp); `unavailable` when that node is not reached.
  void send(Proxy proxy) {
    auto up = std::make_shared<Upstream>(stream_.get_executor(), std::move(proxy));
    up->start([self = shared_from_this(), up](beast::error_code ec) {
      const auto& p = up->proxy();
      if (ec) {
        auto answer = up->unavailable();
        self->log_->warn("{} {}: node {}:{} did not answer ({}): {}", std::string(self->req_.msg.method_string()),
                         self->req_.path, p.host, p.port, ec.message(), answer.body());
        return self->send(std::move(answer));
      }
      auto& msg = up->message();
      self->log_->debug("{} {} answered by {}:{} ({})", std::string(self->req_.msg.method_string()), self->req_.path,
                        p.host, p.port, msg.result_int());
      msg.erase(bhttp::field::set_cookie);   // the other node's cookies are not this client's
      msg.erase(bhttp::field::connection);
      self->decorate(msg);
      self->status_ = msg.result_int();
      self->need_eof_ = msg.need_eof();
      if (self->req_.msg.method() == bhttp::verb::head) {
        return self->start_write(bhttp::response<bhttp::empty_body>(bhttp::response_header<>(msg.base())));
      }
      self->written_ = 0;
      self->pump(up, std::make_shared<bhttp::response_serializer<bhttp::buffer_body>>(msg));
    });
  }

  // One piece read from the other node, then written to the client, until the answer is through.
  void pump(std::shared_ptr<Upstream> up, std::shared_ptr<bhttp::response_serializer<bhttp::buffer_body>> sr) {
    up->read_some(svc_.timeout, [self = shared_from_this(), up, sr](beast::error_code ec) {
      if (ec) {
        // The header is gone already: the client sees the answer cut short.
        self->log_->warn("{} {}: the node's answer broke off after {} bytes: {}",
                         std::string(self->req_.msg.method_string()), self->req_.path, self->written_, ec.message());
        return self->on_write(ec, self->written_);
      }
      beast::get_lowest_layer(self->stream_).expires_after(self->svc_.timeout);
      bhttp::async_write(self->stream_, *sr, [self, up, sr](beast::error_code ec, std::size_t n) {
        if (ec == bhttp::error::need_buffer) ec = {};
        self->written_ += n;
        if (ec || sr->is_done()) return self->on_write(ec, self->written_);
        self->pump(up, sr);
      });
    });
  }

  template <class Body>
  void start_write(bhttp::response<Body> res) {
    auto msg = std::make_shared<bhttp::response<Body>>(std::move(res));
    status_ = msg->result_int();
    need_eof_ = msg->need_eof();
    res_ = msg;
    written_ = 0;
    write_some(std::make_shared<bhttp::response_serializer<Body>>(*msg));
  }

  template <class Body>
  void write_some(std::shared_ptr<bhttp::response_serializer<Body>> sr) {
    // A client that takes nothing of an answer for the timeout is gone. The limit is per write, not for the whole
    // answer: a long recording downloads at whatever pace the listener's network allows.
    beast::get_lowest_layer(stream_).expires_after(svc_.timeout);
    bhttp::async_write_some(stream_, *sr, [self = shared_from_this(), sr](beast::error_code ec, std::size_t n) {
      self->written_ += n;
      if (!ec && !sr->is_done()) return self->write_some(sr);
      self->on_write(ec, self->written_);
    });
  }

  void on_write(beast::error_code ec, std::size_t bytes) {
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
    std::string path = req_.path.empty() ? std::string(req_.msg.target().substr(0, req_.msg.target().find('?')))
                                         : req_.path;
    log_->info("{} {} {} {}B {:.1f}ms user={}", std::string(req_.msg.method_string()), core::printable(path), status_,
               bytes, ms, req_.user ? req_.user->username : "-");
    res_.reset();
    if (ec) return close();
    if (!keep_alive_ || need_eof_) return close();
    do_read();
  }

  void close() {
    if constexpr (kTls) {
      // close_notify, then the TCP connection, whether or not the client answers it (within the timeout).
      beast::get_lowest_layer(stream_).expires_after(svc_.timeout);
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
        beast::get_lowest_layer(self->stream_).close();
      });
    } else {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  Services& svc_;
  const Api& api_;
  std::shared_ptr<spdlog::logger> log_;
  std::string remote_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Request req_;
  bool keep_alive_ = true;
  bool handed_over_ = false;    // stream_ moved to the presence service (an upgrade)
  bool https_only_ = false;     // plain HTTP on an HTTPS port: every request is refused
  std::shared_ptr<void> res_;   // the message being written
  std::size_t written_ = 0;
  unsigned status_ = 0;
  bool need_eof_ = false;
  std::chrono::steady_clock::time_point started_;
};

// A connection to an HTTPS port, before anyone knows what it speaks: TLS goes to an HttpSession<TlsStream>, plain
// HTTP to one that answers 400 https_required, silence past the timeout or a read error is closed (DEBUG).
class TlsDetector : public std::enable_shared_from_this<TlsDetector> {
 public:
  TlsDetector(tcp::socket&& socket, Services& svc, const Api& api) : stream_(std::move(socket)), svc_(svc), api_(api) {}

  void run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->stream_.expires_after(self->svc_.timeout);
      beast::async_detect_ssl(self->stream_, self->buffer_,
                              beast::bind_front_handler(&TlsDetector::on_detect, self));
    });
  }

 private:
  void on_detect(beast::error_code ec, bool tls) {
    if (ec) {
      core::logger("http")->debug("connection from {} sent nothing usable: {}", remote_of(stream_), ec.message());
      stream_.close();
      return;
    }
    core::guarded("http accept", [&] {
      if (tls) {
        std::make_shared<HttpSession<TlsStream>>(std::move(stream_), std::move(buffer_), svc_, api_)->run();
      } else {
        std::make_shared<HttpSession<beast::tcp_stream>>(std::move(stream_), std::move(buffer_), svc_, api_, true)
            ->run();
      }
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  Services& svc_;
  const Api& api_;
};

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  net::io_context& io;
  Services& svc;
  Api api;
  tcp::acceptor acceptor;
  net::steady_timer retry;  // on the acceptor's strand
  std::chrono::steady_clock::time_point last_accept_error_log{};

  Impl(net::io_context& io_, Services& s)
      : io(io_), svc(s), api(s), acceptor(net::make_strand(io_)), retry(acceptor.get_executor()) {}

  void do_accept() {
    acceptor.async_accept(net::make_strand(io), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
      if (ec) return self->accept_failed(ec);
      core::guarded("http accept", [&] {
        if (self->svc.tls) {
          std::make_shared<TlsDetector>(std::move(socket), self->svc, self->api)->run();
        } else {
          std::make_shared<HttpSession<beast::tcp_stream>>(std::move(socket), self->svc, self->api)->run();
        }
      });
      self->do_accept();
    });
  }

  // Out of file descriptors (or memory): the connection stays queued and accepting again at once fails again, a
  // core spinning for as long as it lasts. Wait a little; connections that close meanwhile make room.
  void accept_failed(const beast::error_code& ec) {
    core::count_failure("http accept");
    auto now = std::chrono::steady_clock::now();
    if (now - last_accept_error_log >= std::chrono::seconds(1)) {
      last_accept_error_log = now;
      core::logger("http")->error("cannot accept a connection: {} (retrying every 100 ms)", ec.message());
    }
    retry.expires_after(std::chrono::milliseconds(100));
    retry.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
      if (wait_ec || !self->acceptor.is_open()) return;
      self->do_accept();
    });
  }
};

Server::Server(net::io_context& io, Services& services) : impl_(std::make_shared<Impl>(io, services)) {}
Server::~Server() { stop_accepting(); }

unsigned short Server::listen(const std::string& address, unsigned short port) {
  beast::error_code ec;
  auto addr = net::ip::make_address(address, ec);
  if (ec) throw std::runtime_error("FC25_BIND: '" + address + "' is not an IP address");
  tcp::endpoint ep{addr, port};
  auto fail = [&](const char* what) {
    throw std::runtime_error(std::string("cannot ") + what + " " + address + ":" + std::to_string(port) + ": " +
                             ec.message());
  };
  impl_->acceptor.open(ep.protocol(), ec);
  if (ec) fail("open");
  impl_->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  impl_->acceptor.bind(ep, ec);
  if (ec) fail("bind");
  impl_->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail("listen on");
  impl_->do_accept();
  return impl_->acceptor.local_endpoint().port();
}

void Server::add_route(bhttp::verb method, const std::string& pattern, bool needs_user,
                       std::function<void(Request&, Respond&)> fn) {
  impl_->api.add_route(method, pattern, needs_user, std::move(fn));
}

void Server::stop_accepting() {
  net::post(impl_->acceptor.get_executor(), [impl = impl_] {
    beast::error_code ec;
    impl->acceptor.close(ec);
    impl->retry.cancel();
  });
}

}  // namespace fc25::http
