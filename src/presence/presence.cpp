// Presence: one WsSession per /ws/presence/ socket, each on its own strand with one write in flight and a bounded
// queue; a hub that knows which local sessions are in which group and fans channel-layer messages out to them.
#include "presence/presence.hpp"

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <variant>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "core/api_error.hpp"
#include "core/guard.hpp"
#include "core/log.hpp"
#include "core/run_on.hpp"
#include "core/text.hpp"
#include "presence/channel_layer.hpp"
#include "presence/detail/frame.hpp"

namespace fc25::presence {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
using nlohmann::json;

namespace {
constexpr std::size_t kMaxMessageBytes = 64 * 1024;
constexpr std::size_t kMaxQueuedMessages = 1024;
// Closes a socket whose session was logged out or expired (an application code: the page goes to the login page).
constexpr std::uint16_t kSessionEndedCode = 4001;
// Between processes only (never sent to a page): "close the sockets of this session".
constexpr std::string_view kSessionEndedType = "session_ended";

std::string group_of(const std::string& username) { return "user." + username; }

// The "type" of an event, read without parsing (events are dumped with sorted keys, "type" is always present).
std::string_view type_of(std::string_view payload) {
  auto p = payload.find("\"type\":\"");
  if (p == std::string_view::npos) return "?";
  p += 8;
  auto e = payload.find('"', p);
  return payload.substr(p, e == std::string_view::npos ? 0 : e - p);
}
}  // namespace

std::optional<std::string> detail::answer_frame(const std::string& text, const Hooks& hooks, const SocketUser& user,
                                                const std::string& client_id, const Reply& send_reply) {
  json reply;
  try {
    auto msg = core::parse_json(text);
    if (!msg.is_object() || !msg.contains("type") || !msg["type"].is_string()) {
      throw std::invalid_argument("a message must be a JSON object with a string \"type\"");
    }
    auto type = msg["type"].get<std::string>();
    if (type == "ping") {
      reply = {{"type", "pong"}, {"t", msg.value("t", json(nullptr))}};
    } else if (hooks.on_message) {
      hooks.on_message(user, client_id, msg, send_reply);
      return std::nullopt;
    } else {
      throw std::invalid_argument("unknown message type '" + type + "' (expected: ping)");
    }
  } catch (const json::parse_error& e) {
    reply = {{"type", "error"}, {"error", {{"code", "bad_message"}, {"message", std::string("malformed JSON: ") + e.what()}}}};
  } catch (const core::ApiError& e) {
    reply = {{"type", "error"}, {"error", {{"code", e.code()}, {"message", e.message()}}}};
  } catch (const std::invalid_argument& e) {  // a field missing or of the wrong kind
    reply = {{"type", "error"}, {"error", {{"code", "bad_message"}, {"message", e.what()}}}};
  } catch (const json::exception& e) {
    reply = {{"type", "error"}, {"error", {{"code", "bad_message"}, {"message", e.what()}}}};
  } catch (const std::exception& e) {  // not the message's fault: say so, and count it
    core::logger("presence")->error("presence user={}: a message failed: {}", user.username, e.what());
    core::count_failure("presence message");
    reply = {{"type", "error"}, {"error", {{"code", "internal"}, {"message", std::string("the server failed to handle this message: ") + e.what()}}}};
  } catch (...) {
    core::logger("presence")->error("presence user={}: a message failed with an unknown exception", user.username);
    core::count_failure("presence message");
    reply = {{"type", "error"}, {"error", {{"code", "internal"}, {"message", "the server failed to handle this message"}}}};
  }
  // Errors name what they answer, so a page can match them to its request.
  if (reply.value("type", "") == "error") {
    try {
      auto msg = core::parse_json(text);
      // Only plain values are echoed (a page's own request names them so).
      auto plain = [](const json& v) { return v.is_string() || v.is_number() || v.is_boolean(); };
      if (msg.is_object() && msg.contains("type") && plain(msg["type"])) reply["for"] = msg["type"];
      if (msg.is_object() && msg.contains("session_id") && plain(msg["session_id"])) reply["session_id"] = msg["session_id"];
    } catch (...) {
    }
    // A refusal is logged as a refused request is (failures of ours were logged above). What the page sent is
    // quoted as JSON, so that its text cannot make lines of its own in the log.
    const auto& err = reply["error"];
    if (err.value("code", "") != "internal") {
      auto quoted = [](const json& v) {
        auto t = v.dump(-1, ' ', false, json::error_handler_t::replace);
        return t.size() > 200 ? t.substr(0, 200) + "..." : t;
      };
      core::logger("presence")->info("presence user={} client={} message {} refused: {} {}", user.username, client_id,
                                     reply.contains("for") ? quoted(reply["for"]) : "(unreadable)",
                                     err.value("code", ""), quoted(err.value("message", "")));
    }
  }
  return core::json_text(reply);
}

class WsSession;

struct Presence::Impl : std::enable_shared_from_this<Presence::Impl> {
  boost::asio::io_context& io;
  Hooks hooks;
  Options opts;
  std::unique_ptr<ChannelLayer> layer;
  std::shared_ptr<spdlog::logger> log = core::logger("presence");
  std::shared_ptr<spdlog::logger> chlog = core::logger("channel");
  mutable std::mutex mu;
  std::map<std::string, std::set<WsSession*>> groups;   // group -> local members
  std::map<WsSession*, std::weak_ptr<WsSession>> sessions;
  std::map<std::int64_t, int> per_user;                 // sockets accepted and not yet closed, by user id
  std::atomic<bool> closed{false};
  boost::asio::strand<boost::asio::io_context::executor_type> timer_strand;
  boost::asio::steady_timer session_timer;

  Impl(boost::asio::io_context& io_, Hooks h, Options o)
      : io(io_), hooks(std::move(h)), opts(o), timer_strand(boost::asio::make_strand(io_)), session_timer(timer_strand) {}

  void add(const std::shared_ptr<WsSession>& s, const std::string& group);
  void remove(WsSession* s, const std::string& group);
  void release(std::int64_t user_id);
  void deliver(const std::string& group, const std::string& payload);
  void resend_snapshots();
  // Closes the local sockets opened with `session` (of `group`'s user, or any when group is empty).
  void close_session(const std::string& group, const std::string& session, const char* why);
  void schedule_session_check();
  void check_sessions();
};

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  template <class Stream>
  WsSession(std::shared_ptr<Presence::Impl> hub, Stream&& stream, SocketUser user, std::string client_id)
      : hub_(std::move(hub)), ws_(std::in_place_type<websocket::stream<Stream>>, std::move(stream)),
        user_(std::move(user)), client_id_(std::move(client_id)) {
    if (hub_->opts.hook_work) hooks_strand_.emplace(boost::asio::make_strand(hub_->opts.hook_work->get_executor()));
  }

  ~WsSession() { release(); }

  // The socket as what it is (plain or TLS): one dispatch per operation, none per byte.
  template <class Fn>
  decltype(auto) on_ws(Fn&& fn) {
    return std::visit(std::forward<Fn>(fn), ws_);
  }

  boost::asio::any_io_executor executor() {
    return on_ws([](auto& ws) -> boost::asio::any_io_executor { return ws.get_executor(); });
  }

  const SocketUser& user() const { return user_; }

  void run(http::request<http::string_body> req) {
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(10);
    t.idle_timeout = std::chrono::seconds(20);   // a ping after 10 s of silence; no answer by 20 s: dropped
    t.keep_alive_pings = true;
    on_ws([&](auto& ws) {
      ws.set_option(t);
      ws.read_message_max(kMaxMessageBytes);
      ws.set_option(websocket::stream_base::decorator(
          [](websocket::response_type& res) { res.set(http::field::server, "fc25"); }));
      ws.async_accept(req, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
    });
  }

  // Thread-safe: queues a text message on this session's strand.
  void send(std::shared_ptr<const std::string> msg) {
    boost::asio::post(executor(), [self = shared_from_this(), msg = std::move(msg)] { self->enqueue(msg); });
  }

  void send_snapshot() {
    if (!hub_->hooks.snapshot_for) return;
    on_hooks([self = shared_from_this()] {
      try {
        auto snap = self->hub_->hooks.snapshot_for(self->user_.id);
        self->send(std::make_shared<const std::string>(core::json_text(snap)));
      } catch (const std::exception& e) {
        self->hub_->log->warn("snapshot for {} failed: {}", self->user_.username, e.what());
      }
    });
  }

  // Closes after the messages already queued are written (so a shutdown notice reaches the page first).
  void close(websocket::close_reason why) {
    boost::asio::post(executor(), [self = shared_from_this(), why] {
      if (self->closing_ || self->done_) return;
      self->closing_ = true;
      self->close_reason_ = why;
      if (self->queue_.empty()) self->do_close();
    });
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) {
      hub_->log->debug("websocket handshake failed for {}: {}", user_.username, ec.message());
      closed();
      return;
    }
    hub_->log->info("presence open user={} client={}", user_.username, client_id_);
    hub_->add(shared_from_this(), group_of(user_.username));
    send_snapshot();
    do_read();
  }

  void do_read() {
    on_ws([&](auto& ws) { ws.async_read(buffer_, beast::bind_front_handler(&WsSession::on_read, shared_from_this())); });
  }


  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      if (ec == websocket::error::message_too_big) {
        hub_->log->info("presence user={} sent a message over {} bytes: closing (1009)", user_.username,
                        kMaxMessageBytes);
      }
      closed();
      return;
    }
    handle(beast::buffers_to_string(buffer_.data()));
    buffer_.consume(buffer_.size());
    do_read();
  }

  void handle(const std::string& text) {
    std::weak_ptr<WsSession> weak = shared_from_this();
    auto reply = [weak](const json& m) {
      if (auto s = weak.lock()) s->send(std::make_shared<const std::string>(core::json_text(m)));
    };
    if (!hooks_strand_) {
      auto answer = detail::answer_frame(text, hub_->hooks, user_, client_id_, reply);
      if (answer) enqueue(std::make_shared<const std::string>(std::move(*answer)));
      return;
    }
    on_hooks([self = shared_from_this(), text, reply] {
      auto answer = detail::answer_frame(text, self->hub_->hooks, self->user_, self->client_id_, reply);
      if (answer) self->send(std::make_shared<const std::string>(std::move(*answer)));
    });
  }

  // Runs a hook where it may block (Options::hook_work, in this socket's order), or here.
  template <typename Fn>
  void on_hooks(Fn fn) {
    if (hooks_strand_) {
      boost::asio::post(*hooks_strand_, std::move(fn));
    } else {
      fn();
    }
  }

  void enqueue(std::shared_ptr<const std::string> msg) {
    if (closing_ || done_) return;
    if (queue_.size() >= kMaxQueuedMessages) {
      // Not reading: drop the socket rather than grow without bound (the page reconnects and gets a snapshot).
      hub_->log->warn("presence user={} client={} is not reading: {} messages queued, closing", user_.username,
                      client_id_, queue_.size());
      closing_ = true;
      on_ws([](auto& ws) { beast::get_lowest_layer(ws).close(); });
      return;
    }
    queue_.push_back(std::move(msg));
    if (queue_.size() == 1) do_write();
  }

  void do_write() {
    on_ws([&](auto& ws) {
      ws.text(true);
      ws.async_write(boost::asio::buffer(*queue_.front()),
                     beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
    });
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) { closed(); return; }
    queue_.pop_front();
    if (!queue_.empty()) do_write();
    else if (closing_) do_close();
  }

  void do_close() {
    on_ws([&](auto& ws) { ws.async_close(close_reason_, [self = shared_from_this()](beast::error_code) {}); });
  }

  // Runs once, whatever ended the socket.
  void closed() {
    if (done_) return;
    done_ = true;
    queue_.clear();
    hub_->remove(this, group_of(user_.username));
    release();
    hub_->log->info("presence closed user={} client={}", user_.username, client_id_);
    if (!hub_->hooks.on_socket_closed || hub_->closed) return;
    // After the messages it sent before closing (same strand).
    on_hooks([hub = hub_, id = user_.id, client = client_id_] {
      core::guarded("presence close", [&] { hub->hooks.on_socket_closed(id, client); });
    });
  }

  std::shared_ptr<Presence::Impl> hub_;
  std::variant<websocket::stream<beast::tcp_stream>, websocket::stream<beast::ssl_stream<beast::tcp_stream>>> ws_;
  SocketUser user_;
  std::string client_id_;
  beast::flat_buffer buffer_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::optional<boost::asio::strand<boost::asio::thread_pool::executor_type>> hooks_strand_;
  bool closing_ = false;
  bool done_ = false;
  websocket::close_reason close_reason_{websocket::close_code::going_away};
  std::atomic<bool> released_{false};

  // Gives back this socket's place in its user's count (once; at close, or at the latest when it is destroyed).
  void release() {
    if (!released_.exchange(true)) hub_->release(user_.id);
  }
};

void Presence::Impl::add(const std::shared_ptr<WsSession>& s, const std::string& group) {
  std::lock_guard lock(mu);
  groups[group].insert(s.get());
  sessions[s.get()] = s;
}

void Presence::Impl::remove(WsSession* s, const std::string& group) {
  std::lock_guard lock(mu);
  auto it = groups.find(group);
  if (it != groups.end()) {
    it->second.erase(s);
    if (it->second.empty()) groups.erase(it);
  }
  sessions.erase(s);
}

void Presence::Impl::release(std::int64_t user_id) {
  std::lock_guard lock(mu);
  auto it = per_user.find(user_id);
  if (it != per_user.end() && --it->second <= 0) per_user.erase(it);
}

void Presence::Impl::close_session(const std::string& group, const std::string& session, const char* why) {
  if (session.empty()) return;
  std::vector<std::shared_ptr<WsSession>> all;   // taken under the lock, let go outside it
  {
    std::lock_guard lock(mu);
    for (auto& [p, w] : sessions)
      if (auto s = w.lock()) all.push_back(std::move(s));
  }
  for (auto& s : all) {
    if (s->user().session != session || (!group.empty() && group != group_of(s->user().username))) continue;
    log->info("presence closing user={} ({}): its session ended", s->user().username, why);
    s->close(websocket::close_reason(static_cast<websocket::close_code>(kSessionEndedCode), "session ended"));
  }
}

void Presence::Impl::schedule_session_check() {
  if (!hooks.session_valid || opts.session_check.count() <= 0 || closed) return;
  session_timer.expires_after(opts.session_check);
  std::weak_ptr<Impl> weak = shared_from_this();
  session_timer.async_wait([weak](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->closed) return;
    core::run_on(self->opts.hook_work, [self] {
      core::guarded("presence session check", [&] { self->check_sessions(); });
    });
    self->schedule_session_check();
  });
}

// Every socket's session, asked once per distinct session: a logged-out (in another process, while the channel
// layer was down) or expired one closes its sockets. Bound: Options::session_check.
void Presence::Impl::check_sessions() {
  std::vector<std::shared_ptr<WsSession>> all;
  {
    std::lock_guard lock(mu);
    for (auto& [p, w] : sessions)
      if (auto s = w.lock()) all.push_back(std::move(s));
  }
  std::set<std::string> distinct;
  for (auto& s : all)
    if (!s->user().session.empty()) distinct.insert(s->user().session);
  all.clear();
  for (auto& session : distinct) {
    bool valid = true;
    try {
      valid = hooks.session_valid(session);
    } catch (const std::exception& e) {
      log->warn("cannot check a presence socket's session: {}", e.what());
    }
    if (!valid) close_session("", session, "expired or logged out");
  }
}

void Presence::Impl::deliver(const std::string& group, const std::string& payload) {
  if (type_of(payload) == kSessionEndedType) {
    auto msg = json::parse(payload, nullptr, false);
    if (msg.is_object() && msg.contains("session") && msg["session"].is_string()) {
      close_session(group, msg["session"].get<std::string>(), "logged out");
    }
    return;
  }
  std::vector<std::shared_ptr<WsSession>> targets;
  {
    std::lock_guard lock(mu);
    auto it = groups.find(group);
    if (it == groups.end()) return;  // no local member: another process serves this group
    for (auto* s : it->second)
      if (auto sp = sessions[s].lock()) targets.push_back(std::move(sp));
  }
  chlog->info("channel receive group={} type={} sockets={}", group, type_of(payload), targets.size());
  if (hooks.on_delivered) {
    try {
      hooks.on_delivered(group.substr(5), type_of(payload));   // "user.<name>"
    } catch (const std::exception& e) {
      core::count_failure("presence event");
      log->error("handling event {} for {} failed: {}", type_of(payload), group, e.what());
    }
  }
  auto msg = std::make_shared<const std::string>(payload);
  for (auto& s : targets) s->send(msg);
}

void Presence::Impl::resend_snapshots() {
  std::vector<std::shared_ptr<WsSession>> all;
  {
    std::lock_guard lock(mu);
    for (auto& [p, w] : sessions)
      if (auto s = w.lock()) all.push_back(std::move(s));
  }
  log->info("channel layer reconnected: sending fresh snapshots to {} sockets", all.size());
  for (auto& s : all) s->send_snapshot();
}

Presence::Presence(boost::asio::io_context& io, ChannelLayerConfig config, Hooks hooks, Options options)
    : impl_(std::make_shared<Impl>(io, std::move(hooks), options)) {
  impl_->layer = make_channel_layer(io, config);
  std::weak_ptr<Impl> weak = impl_;
  impl_->layer->start(
      [weak](const std::string& group, const std::string& payload) {
        if (auto i = weak.lock()) i->deliver(group, payload);
      },
      [weak] {
        if (auto i = weak.lock()) i->resend_snapshots();
      });
  impl_->log->info("channel layer: {}{}", impl_->layer->name(),
                   config.backend == "redis" ? " at " + config.redis_host + ":" + std::to_string(config.redis_port)
                                             : std::string());
  boost::asio::post(impl_->timer_strand, [weak] {
    if (auto i = weak.lock()) i->schedule_session_check();
  });
}

Presence::~Presence() { shutdown(); }

void Presence::accept(beast::tcp_stream stream, http::request<http::string_body> req, SocketUser user,
                      std::string client_id) {
  accept_on(std::move(stream), std::move(req), std::move(user), std::move(client_id));
}

void Presence::accept(TlsStream stream, http::request<http::string_body> req, SocketUser user, std::string client_id) {
  accept_on(std::move(stream), std::move(req), std::move(user), std::move(client_id));
}

template <class Stream>
void Presence::accept_on(Stream stream, http::request<http::string_body> req, SocketUser user,
                         std::string client_id) {
  if (impl_->closed) return;
  int limit = impl_->opts.max_sockets_per_user;
  bool room = true;
  {
    std::lock_guard lock(impl_->mu);
    auto& n = impl_->per_user[user.id];
    if (limit > 0 && n >= limit) room = false;
    else ++n;
  }
  if (!room) {
    // Refused before the handshake, as any other upgrade refusal: a JSON error the client can read.
    impl_->log->info("presence refused user={}: already {} sockets (FC25_MAX_SOCKETS_PER_USER)", user.username, limit);
    auto res = std::make_shared<http::response<http::string_body>>(http::status::too_many_requests, req.version());
    res->set(http::field::server, "fc25");
    res->set(http::field::content_type, "application/json");
    res->keep_alive(false);
    res->body() = core::json_text(json{{"error", {{"code", "too_many_sockets"},
        {"message", "'" + user.username + "' already has " + std::to_string(limit) +
                        " presence sockets open; close one first"}}}});
    res->prepare_payload();
    auto st = std::make_shared<Stream>(std::move(stream));
    beast::get_lowest_layer(*st).expires_after(std::chrono::seconds(10));
    http::async_write(*st, *res, [st, res](beast::error_code, std::size_t) {
      beast::error_code ec;
      beast::get_lowest_layer(*st).socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
    });
    return;
  }
  auto s = std::make_shared<WsSession>(impl_, std::move(stream), std::move(user), std::move(client_id));
  s->run(std::move(req));
}

void Presence::end_session(const std::string& username, const std::string& session) {
  if (session.empty()) return;
  // This process at once; the others when the event reaches them (or at their next session check).
  impl_->close_session(group_of(username), session, "logged out");
  impl_->layer->publish(group_of(username),
                        core::json_text(json{{"session", session}, {"type", std::string(kSessionEndedType)}}));
}

void Presence::send_to_user(const std::string& username, const json& event) {
  auto group = group_of(username);
  auto payload = core::json_text(event);
  impl_->chlog->info("channel send group={} type={} user={}", group, type_of(payload), event.value("username", ""));
  impl_->layer->publish(group, std::move(payload));
}

std::size_t Presence::open_sockets() const {
  std::lock_guard lock(impl_->mu);
  return impl_->sessions.size();
}

void Presence::shutdown() {
  if (impl_->closed.exchange(true)) return;
  std::vector<std::shared_ptr<WsSession>> all;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [p, w] : impl_->sessions)
      if (auto s = w.lock()) all.push_back(std::move(s));
  }
  for (auto& s : all) s->close(websocket::close_code::going_away);
  boost::asio::post(impl_->timer_strand, [i = impl_] { i->session_timer.cancel(); });
  impl_->layer->stop();
}

}  // namespace fc25::presence
