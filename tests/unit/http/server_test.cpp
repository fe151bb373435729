// The HTTP plane over real loopback TCP: a handler that fails in any way answers 500 and the server goes on serving.
#include <atomic>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "core/log.hpp"
#include "http/server.hpp"
#include "../support/temp_db.hpp"

namespace fc25::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using nlohmann::json;

class NoEvents final : public core::EventSink {
 public:
  void send_to_user(const std::string&, const json&) override {}
};

// A whole server (store, sessions, streams, presence, HTTP) on a free loopback port, served by two io threads.
struct ServerUnderTest {
  testing::TempDb db;
  std::unique_ptr<storage::Store> store = storage::open_sqlite_store(db.path);
  net::io_context io;
  net::thread_pool slow{1};
  NoEvents events;
  streams::StreamRegistry registry{io, *store, events, streams::RegistryOptions{"node-test"}};
  social::Friends friends{*store, events};
  auth::Sessions sessions{*store};
  auth::LoginThrottle throttle;
  presence::Presence presence{io, presence::ChannelLayerConfig{}, presence::Hooks{}};
  Services services{*store, sessions, throttle, friends, registry, presence, slow,
                    std::filesystem::temp_directory_path(), false, std::filesystem::temp_directory_path()};
  Server server{io, services};
  unsigned short port = 0;
  net::executor_work_guard<net::io_context::executor_type> guard = net::make_work_guard(io);
  std::vector<std::thread> threads;

  void start() {
    port = server.listen("127.0.0.1", 0);
    for (int i = 0; i < 2; ++i) threads.emplace_back([this] { io.run(); });
  }
  ~ServerUnderTest() {
    server.stop_accepting();
    presence.shutdown();
    guard.reset();
    io.stop();
    for (auto& t : threads) t.join();
    slow.join();
  }

  // One GET on a fresh connection: status and body.
  std::pair<unsigned, std::string> get(const std::string& target) {
    net::io_context cio;
    beast::tcp_stream s(cio);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    beast::http::request<beast::http::empty_body> req{beast::http::verb::get, target, 11};
    req.set(beast::http::field::host, "127.0.0.1");
    beast::http::write(s, req);
    beast::flat_buffer buf;
    beast::http::response<beast::http::string_body> res;
    beast::http::read(s, buf, res);
    return {res.result_int(), res.body()};
  }
};

TEST(HttpServer, AHandlerThatThrowsAnswers500AndTheServerGoesOn) {
  ServerUnderTest t;
  t.server.add_route(beast::http::verb::get, "/fail/std", false,
                     [](Request&, Respond&) { throw std::runtime_error("broken on purpose"); });
  t.server.add_route(beast::http::verb::get, "/fail/other", false, [](Request&, Respond&) { throw 42; });
  t.server.add_route(beast::http::verb::get, "/fail/json", false, [](Request&, Respond&) {
    json j = json::parse("{\"a\":1}");
    (void)j.at("missing");  // nlohmann's out_of_range
  });
  t.start();
  auto before = core::failure_counts()["http"];
  for (const char* path : {"/fail/std", "/fail/other", "/fail/json"}) {
    auto [status, body] = t.get(path);
    EXPECT_EQ(status, 500u) << path;
    auto j = json::parse(body);
    EXPECT_EQ(j["error"]["code"], "internal") << path;
  }
  EXPECT_EQ(core::failure_counts()["http"], before + 3);
  auto [status, body] = t.get("/api/csrf");
  EXPECT_EQ(status, 200u);
  EXPECT_EQ(json::parse(body)["csrf_token"].get<std::string>().size(), 64u);
}

TEST(HttpServer, AnErrorMessageEchoingInvalidUtf8IsStillValidJson) {
  ServerUnderTest t;
  t.server.add_route(beast::http::verb::get, "/fail/echo", false, [](Request&, Respond& respond) {
    respond(error_response(400, "invalid_field", std::string("bad bytes: \xff\xfe\xc3")));
  });
  t.start();
  auto [status, body] = t.get("/fail/echo");
  EXPECT_EQ(status, 400u);
  auto j = json::parse(body);  // throws if the body is not valid UTF-8 JSON
  EXPECT_EQ(j["error"]["message"], "bad bytes: \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

}  // namespace
}  // namespace fc25::http
