// Presence sockets over real loopback TCP: a Beast WebSocket client against Presence::accept.
#include <atomic>
#include <mutex>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>

#include "core/log.hpp"
#include "presence/detail/frame.hpp"
#include "presence/presence.hpp"

namespace fc25::presence {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using nlohmann::json;
using namespace std::chrono_literals;

// Accepts connections, reads the upgrade request and hands the socket to presence, as the HTTP plane does.
class Harness {
 public:
  Harness() {
    Hooks hooks;
    hooks.snapshot_for = [](std::int64_t id) { return json{{"type", "snapshot"}, {"self", {{"id", id}}}, {"friends", json::array()}}; };
    hooks.on_socket_closed = [this](std::int64_t id, const std::string& client) {
      std::lock_guard lock(mu);
      closed.emplace_back(id, client);
    };
    presence = std::make_unique<Presence>(io, ChannelLayerConfig{}, hooks);
    acceptor.open(tcp::v4());
    acceptor.bind({net::ip::make_address("127.0.0.1"), 0});
    acceptor.listen();
    port = acceptor.local_endpoint().port();
    accept_one();
    thread = std::thread([this] { io.run(); });
  }
  ~Harness() {
    presence->shutdown();
    std::this_thread::sleep_for(100ms);
    guard.reset();
    io.stop();
    thread.join();
  }

  void accept_one() {
    acceptor.async_accept(net::make_strand(io), [this](beast::error_code ec, tcp::socket s) {
      if (ec) return;
      auto stream = std::make_shared<beast::tcp_stream>(std::move(s));
      auto buf = std::make_shared<beast::flat_buffer>();
      auto req = std::make_shared<http::request<http::string_body>>();
      http::async_read(*stream, *buf, *req, [this, stream, buf, req](beast::error_code ec2, std::size_t) {
        if (ec2) return;
        std::string target(req->target());
        auto user = target.find("bob") != std::string::npos ? SocketUser{2, "bob"} : SocketUser{1, "alice"};
        auto client = target.substr(target.find("client_id=") + 10);
        presence->accept(std::move(*stream), std::move(*req), user, client);
      });
      accept_one();
    });
  }

  std::size_t closed_count() {
    std::lock_guard lock(mu);
    return closed.size();
  }

  net::io_context io;
  net::executor_work_guard<net::io_context::executor_type> guard{io.get_executor()};
  tcp::acceptor acceptor{io};
  unsigned short port = 0;
  std::unique_ptr<Presence> presence;
  std::mutex mu;
  std::vector<std::pair<std::int64_t, std::string>> closed;
  std::thread thread;
};

struct Client {
  net::io_context io;
  websocket::stream<tcp::socket> ws{io};
  Client(unsigned short port, const std::string& who, const std::string& client_id) {
    ws.next_layer().connect({net::ip::make_address("127.0.0.1"), port});
    ws.handshake("127.0.0.1:" + std::to_string(port), "/ws/presence/?user=" + who + "&client_id=" + client_id);
  }
  json read() {
    beast::flat_buffer b;
    ws.read(b);
    return json::parse(beast::buffers_to_string(b.data()));
  }
  void send(const std::string& text) { ws.write(net::buffer(text)); }
};

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds timeout = 3s) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

TEST(Presence, SendsTheSnapshotOnConnectThenEventsForThatUserOnly) {
  Harness h;
  Client alice(h.port, "alice", "a1");
  Client bob(h.port, "bob", "b1");
  EXPECT_EQ(alice.read()["self"]["id"], 1);
  EXPECT_EQ(bob.read()["self"]["id"], 2);
  ASSERT_TRUE(eventually([&] { return h.presence->open_sockets() == 2; }));
  h.presence->send_to_user("bob", {{"type", "streaming_status"}, {"username", "alice"}, {"is_streaming", true}});
  auto got = bob.read();
  EXPECT_EQ(got["type"], "streaming_status");
  EXPECT_EQ(got["username"], "alice");
  // alice got nothing: her next message is the pong to her own ping.
  alice.send(R"({"type":"ping","t":1})");
  EXPECT_EQ(alice.read()["type"], "pong");
}

TEST(Presence, AnswersPingAndReportsBadMessagesWithoutClosing) {
  Harness h;
  Client c(h.port, "alice", "a1");
  c.read();  // snapshot
  c.send(R"({"type":"ping","t":"x"})");
  auto pong = c.read();
  EXPECT_EQ(pong["type"], "pong");
  EXPECT_EQ(pong["t"], "x");
  c.send("{oops");
  auto err = c.read();
  EXPECT_EQ(err["type"], "error");
  EXPECT_EQ(err["error"]["code"], "bad_message");
  c.send(R"({"type":"dance"})");
  EXPECT_NE(c.read()["error"]["message"].get<std::string>().find("dance"), std::string::npos);
  c.send(R"({"type":"ping"})");
  EXPECT_EQ(c.read()["type"], "pong");
}

// A message the page got wrong is its mistake (bad_message); a failure of the server's own while handling a good one
// is not: it is answered "internal", logged and counted, and the socket goes on.
TEST(Presence, TellsTheServersOwnFailureFromABadMessage) {
  Hooks hooks;
  hooks.on_message = [](const SocketUser&, const std::string&, const nlohmann::json& msg, const Reply&) {
    auto kind = msg.value("kind", "");
    if (kind == "field") throw std::invalid_argument("field 'sdp' is required and must be a string");
    if (kind == "type") (void)msg.at("sdp").get<std::string>();  // json::exception: absent
    if (kind == "server") throw std::runtime_error("cannot start the webrtcbin pipeline");
    throw 42;
  };
  SocketUser user;
  user.id = 1;
  user.username = "alice";
  auto answer = [&](const char* text) {
    auto a = detail::answer_frame(text, hooks, user, "a1", [](const nlohmann::json&) {});
    return nlohmann::json::parse(a.value());
  };
  auto failed = [] {
    auto c = core::failure_counts();
    return c.count("presence message") ? c["presence message"] : 0;
  };
  auto before = failed();
  EXPECT_EQ(answer(R"({"type":"listen_offer","kind":"field"})")["error"]["code"], "bad_message");
  EXPECT_EQ(answer(R"({"type":"listen_offer","kind":"type"})")["error"]["code"], "bad_message");
  EXPECT_EQ(failed(), before);
  auto e = answer(R"({"type":"listen_offer","kind":"server"})");
  EXPECT_EQ(e["error"]["code"], "internal");
  EXPECT_EQ(e["for"], "listen_offer");
  EXPECT_NE(e["error"]["message"].get<std::string>().find("webrtcbin"), std::string::npos);
  EXPECT_EQ(answer(R"({"type":"listen_offer","kind":"other"})")["error"]["code"], "internal");
  EXPECT_EQ(failed(), before + 2);
}

TEST(Presence, ReportsEachClosedSocketExactlyOnceWithItsClientId) {
  Harness h;
  {
    Client c(h.port, "alice", "tab-7");
    c.read();
    c.ws.close(websocket::close_code::normal);
  }
  ASSERT_TRUE(eventually([&] { return h.closed_count() == 1; }));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(h.closed_count(), 1u);
  EXPECT_EQ(h.closed[0], (std::pair<std::int64_t, std::string>{1, "tab-7"}));
  EXPECT_TRUE(eventually([&] { return h.presence->open_sockets() == 0; }));
}

TEST(Presence, ClosesTheSocketOnAnOversizedMessage) {
  Harness h;
  Client c(h.port, "alice", "a1");
  c.read();
  c.send(std::string(70 * 1024, 'x'));
  beast::flat_buffer b;
  beast::error_code ec;
  c.ws.read(b, ec);
  EXPECT_TRUE(ec) << "the socket must not stay open";
  // The server sends close 1009 and drops the connection; with the rest of the client's message still unread,
  // TCP may reset the connection before the close frame is read.
  if (ec == websocket::error::closed) {
    EXPECT_EQ(c.ws.reason().code, websocket::close_code::too_big);
  }
  EXPECT_TRUE(eventually([&] { return h.closed_count() == 1; }));
}

TEST(Presence, ShutdownClosesEverySocketGoingAway) {
  Harness h;
  Client c(h.port, "alice", "a1");
  c.read();
  h.presence->shutdown();
  beast::flat_buffer b;
  beast::error_code ec;
  c.ws.read(b, ec);
  EXPECT_EQ(ec, websocket::error::closed);
  EXPECT_EQ(c.ws.reason().code, websocket::close_code::going_away);
}

}  // namespace
}  // namespace fc25::presence
