// Relays between nodes: the origin's side (a WebSocket per relay, fed by a tap on the stream's encoder) and the
// listeners' side (one WebSocket per stream heard here, feeding a relayed fan-out). Each socket lives on its own
// strand; packets cross from the encoder thread by a post, and a relay that cannot keep up loses the oldest.
#include "relay/relay.hpp"

#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include "core/crypto.hpp"
#include "core/guard.hpp"
#include "core/log.hpp"
#include "core/run_on.hpp"
#include "core/text.hpp"
#include "core/thread.hpp"
#include "core/time.hpp"

namespace fc25::relay {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using nlohmann::json;

namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kHeader = 32;  // version, 7 reserved, pts, age, sent: little-endian 64-bit each
constexpr std::size_t kMaxOpus = 4000;
constexpr std::size_t kMaxQueued = 100;  // packets (2 s) waiting for a slow relay; then the oldest go

void put64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get64(std::string_view in, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return v;
}

template <class Ws>
void set_nodelay(Ws& ws) {
  beast::error_code ec;
  beast::get_lowest_layer(ws).socket().set_option(tcp::no_delay(true), ec);
}

// The relays' own thread: their sockets never wait behind HTTP requests, signalling or presence on the io
// threads (a packet every 20 ms per relay). Held by whatever may still post to it (a tap on an encoder thread), so
// that it outlives them; its thread ends with stop().
struct RelayThread {
  net::io_context io{1};
  net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(io);
  std::thread thread;

  std::atomic<bool> finished{false};

  RelayThread(const std::string& name, int realtime_priority) {
    thread = std::thread([this, name, realtime_priority] {
      core::guarded("relay thread setup", [&] { core::name_and_prioritise_thread(name, realtime_priority); });
      core::run_guarded("relay thread", [&] { io.run(); });
      finished = true;
    });
  }
  // Lets the work under way finish (sockets closing) for up to `grace`, then stops whatever is left.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(0)) {
    work.reset();
    auto until = std::chrono::steady_clock::now() + grace;
    while (!finished && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    io.stop();
    if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
  }
  ~RelayThread() {
    stop();
    if (thread.joinable()) thread.detach();
  }
};

// From the audio's arrival at the origin to its packet entering a listener's payloader here.
std::string latency_fields(const media::Fanout::Latency& l) {
  return fmt::format("packets={} latency p50={:.2f}ms p99={:.2f}ms max={:.2f}ms", l.count, l.p50_ms, l.p99_ms, l.max_ms);
}

}  // namespace

std::string encode_packet(const Packet& p) {
  std::string out;
  out.reserve(kHeader + p.opus.size());
  out.push_back(static_cast<char>(kVersion));
  out.append(7, '\0');
  put64(out, p.pts_ns);
  put64(out, static_cast<std::uint64_t>(p.age_ns));
  put64(out, static_cast<std::uint64_t>(p.sent_ns));
  out.append(p.opus);
  return out;
}

std::optional<Packet> decode_packet(std::string_view bytes) {
  if (bytes.size() <= kHeader || bytes.size() > kHeader + kMaxOpus) return std::nullopt;
  if (static_cast<std::uint8_t>(bytes[0]) != kVersion) return std::nullopt;
  Packet p;
  p.pts_ns = get64(bytes, 8);
  p.age_ns = static_cast<std::int64_t>(get64(bytes, 16));
  p.sent_ns = static_cast<std::int64_t>(get64(bytes, 24));
  p.opus = bytes.substr(kHeader);
  return p;
}

namespace {

// A string field of at most `max` bytes: its value, `fallback` when absent, nullopt when of another type or longer.
std::optional<std::string> text_field(const json& msg, const char* name, const char* fallback, std::size_t max = 128) {
  auto it = msg.find(name);
  if (it == msg.end()) {
    if (fallback) return std::string(fallback);
    return std::nullopt;
  }
  if (!it->is_string() || it->get_ref<const std::string&>().size() > max) return std::nullopt;
  return it->get<std::string>();
}

std::optional<json> message_object(std::string_view text) {
  try {
    auto msg = core::parse_json(text, 4);
    if (msg.is_object()) return msg;
  } catch (const std::exception&) {  // not JSON, too deep
  }
  return std::nullopt;
}

}  // namespace

std::optional<OriginMessage> parse_origin_message(std::string_view text) {
  auto msg = message_object(text);
  if (!msg) return std::nullopt;
  auto type = text_field(*msg, "type", nullptr);
  OriginMessage m;
  if (type == "ended") {
    auto reason = text_field(*msg, "reason", "ended");
    if (!reason) return std::nullopt;
    m.kind = OriginMessage::Kind::ended;
    m.reason = *reason;
    return m;
  }
  if (type == "refused") {
    auto lid = text_field(*msg, "listen_id", nullptr);
    auto code = text_field(*msg, "code", "not_friends");
    auto message = text_field(*msg, "message", "", 1000);
    if (!lid || !code || !message) return std::nullopt;
    m.kind = OriginMessage::Kind::refused;
    m.listen_id = *lid;
    m.code = *code;
    m.message = *message;
    return m;
  }
  return std::nullopt;
}

std::optional<RelayMessage> parse_relay_message(std::string_view text) {
  auto msg = message_object(text);
  if (!msg) return std::nullopt;
  auto type = text_field(*msg, "type", nullptr);
  auto lid = text_field(*msg, "listen_id", nullptr);
  if (!lid) return std::nullopt;
  RelayMessage m;
  m.listen_id = *lid;
  if (type == "listener_left") {
    m.kind = RelayMessage::Kind::listener_left;
    return m;
  }
  if (type != "listener") return std::nullopt;
  auto user = msg->find("user_id");
  if (user == msg->end() || !user->is_number_integer()) return std::nullopt;
  m.kind = RelayMessage::Kind::listener;
  m.user_id = user->get<std::int64_t>();
  return m;
}

// ---------------------------------------------------------------------------------------------------------------
// The origin's side.

struct Origin::Impl : std::enable_shared_from_this<Origin::Impl> {
  net::io_context& io;
  OriginHooks hooks;
  net::thread_pool* blocking;
  std::shared_ptr<spdlog::logger> log = core::logger("relay");
  struct Out;
  mutable std::mutex mu;
  std::map<std::string, std::weak_ptr<Out>> outs;  // by tap id
  std::atomic<std::uint64_t> packets{0}, dropped{0};

  std::shared_ptr<RelayThread> rt;

  Impl(net::io_context& io, OriginHooks h, net::thread_pool* b, int prio)
      : io(io), hooks(std::move(h)), blocking(b), rt(std::make_shared<RelayThread>("fc25-relay-out", prio)) {}

  // One relay: a socket to another node, fed by a tap on the stream's fan-out.
  struct Out : std::enable_shared_from_this<Out> {
    websocket::stream<beast::tcp_stream> ws;
    std::weak_ptr<Impl> origin;
    std::int64_t session_id;
    std::string id = core::random_token_hex(8);
    std::string peer;
    beast::flat_buffer in;
    std::deque<std::pair<bool, std::string>> queue;  // (text?, message); the strand only
    std::size_t queued_packets = 0;
    bool writing = false, closing = false, done = false;

    using Request = beast::http::request<beast::http::string_body>;
    Request req;                       // the upgrade, kept until it is answered
    std::set<std::string> listeners;   // announced and let in; Impl::mu

    std::shared_ptr<RelayThread> rt;  // where ws lives; kept alive by whoever may post to it

    Out(beast::tcp_stream s, std::weak_ptr<Impl> o, std::int64_t sid, std::shared_ptr<RelayThread> t)
        : ws(std::move(s)), origin(std::move(o)), session_id(sid), rt(std::move(t)) {}

    void start(Request r, const std::string& remote) {
      req = std::move(r);
      peer = remote;
      auto opt = websocket::stream_base::timeout::suggested(beast::role_type::server);
      opt.idle_timeout = std::chrono::seconds(10);
      opt.keep_alive_pings = true;
      ws.set_option(opt);
      ws.read_message_max(64 * 1024);
      set_nodelay(ws);
      ws.async_accept(req, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
    }

    void on_accept(beast::error_code ec) {
      auto o = origin.lock();
      if (!o) return;
      if (ec) return o->log->info("relay of session={} to {} not opened: {}", session_id, peer, ec.message());
      {
        std::lock_guard lock(o->mu);
        o->outs[id] = weak_from_this();
      }
      try {
        std::weak_ptr<Out> weak = weak_from_this();
        o->hooks.tap(session_id, id, [weak](const std::uint8_t* data, std::size_t size, std::uint64_t pts,
                                            std::int64_t arrival) {
          auto self = weak.lock();
          if (!self) return;
          auto now = core::steady_ns();
          auto msg = encode_packet({pts, arrival > 0 ? now - arrival : 0, now,
                                    std::string_view(reinterpret_cast<const char*>(data), size)});
          net::post(self->ws.get_executor(), [self, msg = std::move(msg)]() mutable { self->send(false, std::move(msg)); });
        });
      } catch (const std::exception& e) {
        o->log->info("relay of session={} to {} refused: {}", session_id, peer, e.what());
        finish("not_live");
        return;
      }
      o->log->info("relay opened session={} to={} relay={}", session_id, peer, id);
      read();
    }

    void read() {
      ws.async_read(in, [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
      if (ec) return gone(ec.message());
      core::guarded("relay message", [&] { handle(beast::buffers_to_string(in.data())); });
      in.consume(in.size());
      read();
    }

    // {"type":"listener","listen_id":L,"user_id":U}: the owner's node checks the friendship itself and counts the
    // listener; {"type":"listener_left","listen_id":L}.
    void handle(const std::string& text) {
      auto o = origin.lock();
      if (!o || !ws.got_text()) return;
      auto msg = parse_relay_message(text);
      if (!msg) {
        o->log->warn("relay={} sent a message that is neither listener nor listener_left: {}", id,
                     core::printable(text, 200));
        return;
      }
      auto listen_id = msg->listen_id;
      if (msg->kind == RelayMessage::Kind::listener_left) {
        std::size_t erased = 0;
        {
          std::lock_guard lock(o->mu);
          erased = listeners.erase(listen_id);
        }
        if (erased) o->changed(session_id);
        return;
      }
      auto user_id = msg->user_id;
      core::run_on(o->blocking, [self = shared_from_this(), o, listen_id, user_id] {
        bool ok = true;
        if (!core::guarded("relay listener check", [&] { ok = o->hooks.may_listen(self->session_id, user_id); })) {
          ok = true;  // the check failed (the store away): the listener's own node checked already
        }
        if (ok) {
          bool added = false;
          {
            std::lock_guard lock(o->mu);
            added = !self->done && self->listeners.insert(listen_id).second;
          }
          if (added) o->changed(self->session_id);
          return;
        }
        o->log->info("relay={} listener={} of session={} refused: user={} is not a friend of its owner", self->id,
                     listen_id, self->session_id, user_id);
        json refused{{"type", "refused"}, {"listen_id", listen_id}, {"code", "not_friends"},
                     {"message", "the stream's owner is not a friend of this listener"}};
        net::post(self->ws.get_executor(), [self, m = refused.dump()]() mutable { self->send(true, std::move(m)); });
      });
    }

    // The strand only.
    void send(bool text, std::string msg) {
      if (closing || done) return;
      if (!text) {
        if (queued_packets >= kMaxQueued) {
          // The oldest packet that is not being written goes (the first one is when a write is under way).
          for (auto it = queue.begin() + (writing ? 1 : 0); it != queue.end(); ++it) {
            if (!it->first) {
              queue.erase(it);
              --queued_packets;
              if (auto o = origin.lock()) o->dropped.fetch_add(1, std::memory_order_relaxed);
              break;
            }
          }
        }
        ++queued_packets;
      }
      queue.emplace_back(text, std::move(msg));
      if (!writing) write();
    }

    void write() {
      if (queue.empty()) {
        writing = false;
        if (closing) close();
        return;
      }
      writing = true;
      ws.text(queue.front().first);
      ws.async_write(net::buffer(queue.front().second), [self = shared_from_this()](beast::error_code ec, std::size_t) {
        const bool packet = !self->queue.front().first;
        if (packet) --self->queued_packets;
        self->queue.pop_front();
        if (ec) return self->gone(ec.message());
        if (auto o = self->origin.lock(); o && packet) o->packets.fetch_add(1, std::memory_order_relaxed);
        self->write();
      });
    }

    // The stream ended: its reason goes, then the close (the strand).
    void finish(const std::string& reason) {
      if (done || closing) return;
      untap();
      queue.emplace_back(true, json{{"type", "ended"}, {"reason", reason}}.dump());
      closing = true;
      if (!writing) write();
    }

    void close() {
      ws.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) { self->gone("closed"); });
    }

    void untap() {
      auto o = origin.lock();
      if (!o) return;
      core::guarded("relay untap", [&] { o->hooks.untap(session_id, id); });
    }

    void gone(const std::string& why) {
      if (done) return;
      done = true;
      untap();
      if (auto o = origin.lock()) {
        bool had_listeners = false;
        {
          std::lock_guard lock(o->mu);
          o->outs.erase(id);
          had_listeners = !listeners.empty();
          listeners.clear();
        }
        o->log->info("relay closed session={} to={} relay={}: {}", session_id, peer, id, why);
        if (had_listeners) o->changed(session_id);
      }
      beast::error_code ec;
      beast::get_lowest_layer(ws).socket().close(ec);
    }
  };

  void changed(std::int64_t session_id) {
    if (!hooks.listeners_changed) return;
    net::post(io, [self = shared_from_this(), session_id] {
      core::guarded("relay listeners changed", [&] { self->hooks.listeners_changed(session_id); });
    });
  }

  std::vector<std::shared_ptr<Out>> of(std::optional<std::int64_t> session_id) {
    std::vector<std::shared_ptr<Out>> found;
    std::lock_guard lock(mu);
    for (auto& [id, w] : outs) {
      if (auto o = w.lock(); o && (!session_id || o->session_id == *session_id)) found.push_back(o);
    }
    return found;
  }
};

Origin::Origin(net::io_context& io, OriginHooks hooks, net::thread_pool* blocking_work, int realtime_priority)
    : impl_(std::make_shared<Impl>(io, std::move(hooks), blocking_work, realtime_priority)) {}

Origin::~Origin() {
  // No tap may post to a relay after this: untapped here, at once; then the sockets close (the relays told the
  // server is stopping) and the thread ends once they have, or after a second.
  auto outs = impl_->of(std::nullopt);
  for (auto& o : outs) core::guarded("relay untap", [&] { impl_->hooks.untap(o->session_id, o->id); });
  for (auto& o : outs) net::post(o->ws.get_executor(), [o] { o->finish("server_shutdown"); });
  outs.clear();
  impl_->rt->stop(std::chrono::seconds(1));
}

void Origin::accept(beast::tcp_stream stream, beast::http::request<beast::http::string_body> req, std::int64_t session_id) {
  beast::error_code ec;
  auto ep = stream.socket().remote_endpoint(ec);
  auto remote = ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  auto node = std::string(req["X-FC25-Node"]);
  // The connection moves from the io threads to the relays' own thread.
  auto protocol = ep.protocol();
  auto fd = stream.socket().release(ec);
  if (ec) {
    impl_->log->warn("relay of session={} from {} not taken: {}", session_id, remote, ec.message());
    return;
  }
  beast::tcp_stream moved(net::make_strand(impl_->rt->io));
  moved.socket().assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    impl_->log->warn("relay of session={} from {} not taken: {}", session_id, remote, ec.message());
    return;
  }
  auto out = std::make_shared<Impl::Out>(std::move(moved), impl_, session_id, impl_->rt);
  net::post(out->ws.get_executor(), [out, req = std::move(req), who = node.empty() ? remote : node + "@" + remote]() mutable {
    out->start(std::move(req), who);
  });
}

void Origin::end(std::int64_t session_id, const std::string& reason) {
  for (auto& o : impl_->of(session_id)) {
    net::post(o->ws.get_executor(), [o, reason] { o->finish(reason); });
  }
}

void Origin::close_all() {
  for (auto& o : impl_->of(std::nullopt)) {
    net::post(o->ws.get_executor(), [o] { o->finish("server_shutdown"); });
  }
}

std::size_t Origin::listeners(std::int64_t session_id) const {
  std::lock_guard lock(impl_->mu);
  std::size_t n = 0;
  for (auto& [id, w] : impl_->outs) {
    if (auto o = w.lock(); o && o->session_id == session_id) n += o->listeners.size();
  }
  return n;
}

Stats Origin::stats() const {
  Stats s;
  {
    std::lock_guard lock(impl_->mu);
    s.relays = impl_->outs.size();
  }
  s.packets = impl_->packets.load(std::memory_order_relaxed);
  s.dropped = impl_->dropped.load(std::memory_order_relaxed);
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// The listeners' side.

struct Relays::Impl : std::enable_shared_from_this<Relays::Impl> {
  net::io_context& io;
  RelayOptions opt;
  RelayHooks hooks;
  net::thread_pool* blocking;
  std::shared_ptr<spdlog::logger> log = core::logger("relay");
  std::atomic<std::uint64_t> packets{0};
  core::LatencyHistogram transit;

  // One stream heard here: its socket to the origin and the fan-out to this node's listeners.
  struct In : std::enable_shared_from_this<In> {
    std::weak_ptr<Impl> relays;
    std::int64_t session_id;
    core::HostPort origin;
    std::string url;
    std::shared_ptr<media::Fanout> fanout;
    std::map<std::string, std::int64_t> listeners;  // listen id -> user id; Impl::mu
    // The strand only:
    net::strand<net::io_context::executor_type> strand;
    tcp::resolver resolver;
    net::steady_timer retry;
    std::optional<websocket::stream<beast::tcp_stream>> ws;
    beast::flat_buffer in;
    std::deque<std::string> queue;
    bool writing = false, open = false, ended = false;
    std::optional<std::chrono::steady_clock::time_point> lost_since;
    std::string last_error;
    unsigned generation = 0;  // of ws: a late completion of an old socket is ignored

    In(net::io_context& io, std::weak_ptr<Impl> r, std::int64_t sid, core::HostPort t, std::string u)
        : relays(std::move(r)), session_id(sid), origin(std::move(t)), url(std::move(u)), strand(net::make_strand(io)),
          resolver(strand), retry(strand) {}

    void connect() {
      auto r = relays.lock();
      if (!r || ended) return;
      ++generation;
      ws.emplace(strand);
      open = false;
      writing = false;
      queue.clear();
      in.consume(in.size());
      auto opt = websocket::stream_base::timeout::suggested(beast::role_type::client);
      opt.handshake_timeout = r->opt.connect_timeout;
      opt.idle_timeout = std::chrono::seconds(3);  // an origin that stops answering pings is gone
      opt.keep_alive_pings = true;
      ws->set_option(opt);
      ws->read_message_max(64 * 1024);
      ws->set_option(websocket::stream_base::decorator([secret = r->opt.secret, node = r->opt.node_id](websocket::request_type& req) {
        req.set(beast::http::field::authorization, "Bearer " + secret);
        req.set("X-FC25-Node", node);
      }));
      auto gen = generation;
      resolver.async_resolve(origin.host, origin.port, [self = shared_from_this(), gen](beast::error_code ec, tcp::resolver::results_type results) {
        if (gen != self->generation) return;
        if (ec) return self->lost("cannot resolve " + self->origin.host + ": " + ec.message());
        auto r = self->relays.lock();
        if (!r) return;
        beast::get_lowest_layer(*self->ws).expires_after(r->opt.connect_timeout);
        beast::get_lowest_layer(*self->ws).async_connect(results, [self, gen](beast::error_code ec, const tcp::endpoint&) {
          if (gen != self->generation) return;
          if (ec) return self->lost("cannot connect to " + self->url + ": " + ec.message());
          beast::get_lowest_layer(*self->ws).expires_never();
          set_nodelay(*self->ws);
          self->ws->async_handshake(self->origin.host + ":" + self->origin.port,
                                    std::string(kPathPrefix) + std::to_string(self->session_id),
                                    [self, gen](beast::error_code ec) {
                                      if (gen != self->generation) return;
                                      if (ec) return self->lost("relay refused by " + self->url + ": " + ec.message());
                                      self->opened();
                                    });
        });
      });
    }

    void opened() {
      auto r = relays.lock();
      if (!r) return;
      open = true;
      if (lost_since) r->log->info("relay of session={} from {} back after {} ms", session_id, url,
                                   std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - *lost_since).count());
      else r->log->info("relay of session={} from {} opened", session_id, url);
      lost_since.reset();
      std::vector<std::pair<std::string, std::int64_t>> all;
      {
        std::lock_guard lock(r->mu);
        all.assign(listeners.begin(), listeners.end());
      }
      for (auto& [lid, uid] : all) announce(lid, uid);
      read();
    }

    // The owner's node hears of each listener (the strand).
    void announce(const std::string& listen_id, std::int64_t user_id) {
      send(json{{"type", "listener"}, {"listen_id", listen_id}, {"user_id", user_id}}.dump());
    }

    void send(std::string text) {
      if (!open) return;  // the listeners are announced when it opens
      queue.push_back(std::move(text));
      if (!writing) write();
    }

    void write() {
      if (queue.empty() || !open) {
        writing = false;
        return;
      }
      writing = true;
      ws->text(true);
      auto gen = generation;
      ws->async_write(net::buffer(queue.front()), [self = shared_from_this(), gen](beast::error_code ec, std::size_t) {
        if (gen != self->generation) return;
        self->queue.pop_front();
        if (ec) return self->lost("writing to " + self->url + ": " + ec.message());
        self->write();
      });
    }

    void read() {
      auto gen = generation;
      ws->async_read(in, [self = shared_from_this(), gen](beast::error_code ec, std::size_t) {
        if (gen != self->generation) return;
        if (ec) return self->lost(ec == websocket::error::closed ? "the origin closed the relay" : ec.message());
        core::guarded("relay receive", [&] { self->received(); });
        self->in.consume(self->in.size());
        if (!self->ended) self->read();
      });
    }

    void received() {
      auto r = relays.lock();
      if (!r) return;
      auto bytes = beast::buffers_to_string(in.data());
      if (!ws->got_text()) {
        auto p = decode_packet(bytes);
        if (!p) return r->log->debug("relay of session={}: a malformed packet of {} bytes dropped", session_id, bytes.size());
        auto now = core::steady_ns();
        r->packets.fetch_add(1, std::memory_order_relaxed);
        if (p->sent_ns > 0 && now >= p->sent_ns) r->transit.add_ms(static_cast<double>(now - p->sent_ns) / 1e6);
        fanout->push_packet(reinterpret_cast<const std::uint8_t*>(p->opus.data()), p->opus.size(), p->pts_ns,
                            p->age_ns > 0 ? now - p->age_ns : 0);
        return;
      }
      auto msg = parse_origin_message(bytes);
      if (msg && msg->kind == OriginMessage::Kind::ended) {
        end_all(msg->reason, "");
      } else if (msg) {
        auto lid = msg->listen_id;
        r->drop(session_id, lid);
        net::post(r->io, [r, lid, code = msg->code, m = msg->message] {
          core::guarded("relay listener ended", [&] { r->hooks.ended(lid, code, m); });
        });
      } else {
        r->log->warn("relay of session={}: unknown message from {}: {}", session_id, url, core::printable(bytes, 200));
      }
    }

    // The socket broke: tried again every retry_every until the stream is known to have ended, or give_up passed.
    void lost(const std::string& why) {
      auto r = relays.lock();
      if (!r || ended) return;
      ++generation;  // nothing more from this socket
      open = false;
      if (ws) {
        beast::error_code ec;
        beast::get_lowest_layer(*ws).socket().close(ec);
      }
      last_error = why;
      auto now = std::chrono::steady_clock::now();
      if (!lost_since) {
        lost_since = now;
        r->log->info("relay of session={} from {} lost: {}", session_id, url, why);
      } else {
        r->log->debug("relay of session={} from {} still lost: {}", session_id, url, why);
      }
      retry.expires_after(r->opt.retry_every);
      retry.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec || self->ended) return;
        auto r = self->relays.lock();
        if (!r) return;
        core::run_on(r->blocking, [self, r] {
          std::optional<std::string> reason;
          bool known = core::guarded("relay stream check", [&] { reason = r->hooks.ended_reason(self->session_id); });
          net::post(self->strand, [self, r, reason, known] {
            if (self->ended) return;
            if (known && reason) return self->end_all(*reason, "");
            if (std::chrono::steady_clock::now() - *self->lost_since >= r->opt.give_up) {
              return self->end_all("relay_lost", "the server that holds this stream (" + self->url +
                                                     ") has not been reachable for " +
                                                     std::to_string(r->opt.give_up.count() / 1000) + " s: " + self->last_error);
            }
            self->connect();
          });
        });
      });
    }

    // The stream is over for this node: every listener here ends with `reason`.
    void end_all(const std::string& reason, const std::string& detail) {
      auto r = relays.lock();
      if (!r || ended) return;
      ended = true;
      ++generation;
      retry.cancel();
      std::vector<std::string> gone;
      {
        std::lock_guard lock(r->mu);
        for (auto& [lid, uid] : listeners) {
          gone.push_back(lid);
          r->final_counts[lid] = fanout->listener_counts(lid);  // for the listener's last log line
        }
        listeners.clear();
        if (auto it = r->ins.find(session_id); it != r->ins.end() && it->second.get() == this) r->ins.erase(it);
      }
      r->log->info("relay of session={} from {} ended ({}) with {} listeners here; {}", session_id, url, reason,
                   gone.size(), latency_fields(fanout->latency()));
      fanout->close();
      shut();
      for (auto& lid : gone) {
        net::post(r->io, [r, lid, reason, detail] {
          core::guarded("relay listener ended", [&] { r->hooks.ended(lid, reason, detail); });
        });
      }
    }

    // The strand.
    void shut() {
      ended = true;
      ++generation;
      retry.cancel();
      resolver.cancel();
      if (ws && open) {
        open = false;
        ws->async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {
          beast::error_code ec;
          beast::get_lowest_layer(*self->ws).socket().close(ec);
        });
      } else if (ws) {
        beast::error_code ec;
        beast::get_lowest_layer(*ws).socket().close(ec);
      }
    }
  };

  mutable std::mutex mu;
  std::map<std::int64_t, std::shared_ptr<In>> ins;  // by session id
  // What listeners ended with their relay were sent, until asked for (counts()).
  mutable std::map<std::string, media::Fanout::ListenerCounts> final_counts;

  std::shared_ptr<RelayThread> rt;

  Impl(net::io_context& io, RelayOptions o, RelayHooks h, net::thread_pool* b)
      : io(io), opt(std::move(o)), hooks(std::move(h)), blocking(b),
        rt(std::make_shared<RelayThread>("fc25-relay-in", opt.realtime_priority)) {}

  // Removes a listener; the relay closes with its last. False when it was not there.
  bool drop(std::int64_t session_id, const std::string& listen_id) {
    std::shared_ptr<In> in;
    bool last = false;
    {
      std::lock_guard lock(mu);
      auto it = ins.find(session_id);
      if (it == ins.end() || !it->second->listeners.erase(listen_id)) return false;
      in = it->second;
      if (in->listeners.empty()) {
        last = true;
        ins.erase(it);
      }
    }
    in->fanout->remove_listener(listen_id);
    if (!last) {
      net::post(in->strand, [in, listen_id] { in->send(json{{"type", "listener_left"}, {"listen_id", listen_id}}.dump()); });
    }
    if (last) {
      log->info("relay of session={} from {} closed: its last listener here left; {}", session_id, in->url,
                latency_fields(in->fanout->latency()));
      in->fanout->close();
      net::post(in->strand, [in] { in->shut(); });
    }
    return true;
  }
};

Relays::Relays(net::io_context& io, RelayOptions options, RelayHooks hooks, net::thread_pool* blocking_work)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(hooks), blocking_work)) {}

Relays::~Relays() {
  close_all();
  impl_->rt->stop(std::chrono::seconds(1));
}

void Relays::join(std::int64_t session_id, const std::string& origin_url, const std::string& listen_id,
                  std::int64_t user_id, const std::string& offer_sdp, media::PeerEvents events) {
  auto& I = *impl_;
  std::shared_ptr<Impl::In> in;
  bool fresh = false;
  {
    std::lock_guard lock(I.mu);
    auto it = I.ins.find(session_id);
    if (it != I.ins.end()) {
      in = it->second;
    } else {
      auto target = core::parse_node_url(origin_url);
      in = std::make_shared<Impl::In>(I.rt->io, impl_, session_id, std::move(target), origin_url);
      in->fanout = media::Fanout::create_relayed("relay-" + std::to_string(session_id), I.opt.realtime_priority);
      I.ins[session_id] = in;
      fresh = true;
    }
    in->listeners[listen_id] = user_id;
  }
  try {
    in->fanout->add_listener(listen_id, offer_sdp, I.opt.ice, std::move(events));
  } catch (...) {
    impl_->drop(session_id, listen_id);
    throw;
  }
  if (fresh) net::post(in->strand, [in] { in->connect(); });
  else net::post(in->strand, [in, listen_id, user_id] { in->announce(listen_id, user_id); });
}

void Relays::candidate(std::int64_t session_id, const std::string& listen_id, const media::RemoteCandidate& c) {
  std::shared_ptr<Impl::In> in;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->ins.find(session_id);
    if (it == impl_->ins.end()) return;
    in = it->second;
  }
  in->fanout->add_remote_candidate(listen_id, c);
}

bool Relays::leave(std::int64_t session_id, const std::string& listen_id) { return impl_->drop(session_id, listen_id); }

media::Fanout::ListenerCounts Relays::counts(std::int64_t session_id, const std::string& listen_id) const {
  std::lock_guard lock(impl_->mu);
  if (auto f = impl_->final_counts.find(listen_id); f != impl_->final_counts.end()) {
    auto c = f->second;
    impl_->final_counts.erase(f);
    return c;
  }
  auto it = impl_->ins.find(session_id);
  return it == impl_->ins.end() ? media::Fanout::ListenerCounts{} : it->second->fanout->listener_counts(listen_id);
}

void Relays::end(std::int64_t session_id, const std::string& reason) {
  std::shared_ptr<Impl::In> in;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->ins.find(session_id);
    if (it == impl_->ins.end()) return;
    in = it->second;
  }
  net::post(in->strand, [in, reason] { in->end_all(reason, ""); });
}

void Relays::close_all() {
  std::map<std::int64_t, std::shared_ptr<Impl::In>> all;
  {
    std::lock_guard lock(impl_->mu);
    all.swap(impl_->ins);
  }
  for (auto& entry : all) {
    auto in = entry.second;   // named, for the capture
    in->fanout->close();
    net::post(in->strand, [in] { in->shut(); });
  }
}

Stats Relays::stats() const {
  Stats s;
  {
    std::lock_guard lock(impl_->mu);
    s.relays = impl_->ins.size();
    for (auto& [sid, in] : impl_->ins) s.listeners += in->listeners.size();
  }
  s.packets = impl_->packets.load(std::memory_order_relaxed);
  s.transit = impl_->transit.summary();
  return s;
}

}  // namespace fc25::relay
