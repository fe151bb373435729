// Raw bytes as they arrive on one keep-alive connection: each request in them goes through what the server does
// with it. Beast's request_parser with the server's limits (body, headers), the answers the server gives for those
// limits, then the real router and handlers (http::Api) over real services: a SQLite store in a scratch
// directory, sessions, friends, the stream registry and presence (memory channel layer), password hashing on a
// thread pool. Every answer is serialised as the server sends it.
//
// A crash is: an exception escaping, a request never answered, a 500 (a handler failed), an answer that does not
// serialise, or a JSON answer that is not valid JSON (UTF-8).
//
// Fixtures the corpus relies on (re-made before each input when an input undid them):
//   user "fuzz"   logged in with  Cookie: fc25_session=<kSessionToken>; fc25_csrf=<kCsrfToken>
//                 (state-changing requests also send  X-CSRF-Token: <kCsrfToken>)
//   user "pal"    a friend of fuzz, password "palpassword", owner of recording 1 (/media/recordings/1.wav)
//   user "carol"  not a friend of fuzz, password "carolpassword"
#include <sodium.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "auth/auth.hpp"
#include "core/api_error.hpp"
#include "core/crypto.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "fuzz_support.hpp"
#include "http/api.hpp"
#include "http/exchange.hpp"
#include "http/server.hpp"
#include "presence/presence.hpp"
#include "recording/recording.hpp"
#include "social/friends.hpp"
#include "storage/store.hpp"
#include "streams/registry.hpp"

namespace {

using namespace fc25;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using nlohmann::json;

constexpr std::string_view kSessionToken = "5e55105e55105e55105e55105e55105e55105e55105e55105e55105e55105e55";
[[maybe_unused]] constexpr std::string_view kCsrfToken = "c5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rf";
constexpr std::size_t kMaxRequestsPerInput = 8;

class PresenceSink final : public core::EventSink {
 public:
  void send_to_user(const std::string& username, const json& event) override {
    if (presence) presence->send_to_user(username, event);
  }
  presence::Presence* presence = nullptr;
};

struct World {
  std::filesystem::path dir = fuzz::scratch_dir();
  std::unique_ptr<storage::Store> store;
  net::io_context io;
  net::thread_pool slow_work{1};
  PresenceSink sink;
  std::unique_ptr<streams::StreamRegistry> registry;
  std::unique_ptr<social::Friends> friends;
  std::unique_ptr<auth::Sessions> sessions;
  auth::LoginThrottle throttle;
  std::unique_ptr<presence::Presence> presence;
  std::unique_ptr<http::Services> services;
  std::unique_ptr<http::Api> api;
  storage::User fuzz, pal, carol;

  World() {
    if (sodium_init() < 0) fuzz::fail("libsodium failed to initialise");
    core::set_log_level("off");
    std::filesystem::create_directories(dir / "streamed_audios");
    store = storage::open_sqlite_store(dir / "fc25.sqlite3");
    registry = std::make_unique<streams::StreamRegistry>(io, *store, sink, streams::RegistryOptions{"fuzz-node"});
    friends = std::make_unique<social::Friends>(*store, sink);
    sessions = std::make_unique<auth::Sessions>(*store);
    presence = std::make_unique<presence::Presence>(io, presence::ChannelLayerConfig{}, presence::Hooks{});
    sink.presence = presence.get();
    services.reset(new http::Services{.store = *store,
                                      .sessions = *sessions,
                                      .throttle = throttle,
                                      .friends = *friends,
                                      .streams = *registry,
                                      .presence = *presence,
                                      .slow_work = slow_work,
                                      .web_dir = FC25_SOURCE_DIR "/web",
                                      .data_dir = dir});
    api = std::make_unique<http::Api>(*services);

    auto now = core::now_ms();
    fuzz = *store->create_user("fuzz", auth::hash_password("fuzzpassword"), now);
    pal = *store->create_user("pal", auth::hash_password("palpassword"), now);
    carol = *store->create_user("carol", auth::hash_password("carolpassword"), now);
    // pal's recording 1: a second of a tone, written as the server writes recordings.
    auto started = store->start_stream(pal.id, "paltab", now, "fuzz-node");
    store->end_stream(started.stream.session_id, "user", now + 1000);
    auto path = dir / "streamed_audios" / recording::file_name("pal", started.stream.session_id);
    auto writer = recording::WavWriter::create(path);
    std::vector<float> tone(recording::kSampleRate);
    for (std::size_t i = 0; i < tone.size(); ++i) tone[i] = 0.25F * static_cast<float>((i / 50) % 2) - 0.125F;
    writer->write(tone);
    auto summary = writer->finish();
    storage::Recording r;
    r.session_id = started.stream.session_id;
    r.user_id = pal.id;
    r.path = std::filesystem::relative(summary.path, dir).generic_string();
    r.duration_ms = 1000;
    r.bytes = summary.bytes;
    r.created_at = now;
    if (store->add_recording(r).id != 1) fuzz::fail("the fixture recording is not id 1");
    restore();
  }

  ~World() {
    presence->shutdown();
    io.restart();
    io.poll();
    slow_work.join();
  }

  // What an input may have undone: fuzz's session, the friendship with pal, pal not live.
  void restore() {
    auto now = core::now_ms();
    if (!sessions->user_for(kSessionToken)) {
      store->create_session(core::sha256_hex(kSessionToken), fuzz.id, now, now + auth::kSessionLifetimeMs);
    }
    if (!store->are_friends(fuzz.id, pal.id)) {
      auto req = store->pending_request(fuzz.id, pal.id);
      if (!req) req = store->pending_request(pal.id, fuzz.id);
      if (!req) req = store->create_request(fuzz.id, pal.id, now);
      store->resolve_request(req->id, "accepted", now);
      if (!store->are_friends(fuzz.id, pal.id)) fuzz::fail("cannot restore the friendship fuzz-pal");
    }
  }

  // Runs whatever is ready on the io context (timers of the registry, presence deliveries).
  void poll() {
    io.restart();
    io.poll();
  }
};

World& world() {
  static World w;
  return w;
}

// The answer to one request, which may come from the slow-work thread.
struct Answer {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<http::Reply> reply;
  int count = 0;
};

void check_json_body(const std::string& body, unsigned status) {
  if (!core::is_valid_utf8(body)) fuzz::fail("a JSON answer (" + std::to_string(status) + ") is not valid UTF-8");
  try {
    (void)json::parse(body);
  } catch (const json::exception& e) {
    fuzz::fail("a JSON answer (" + std::to_string(status) + ") does not parse: " + e.what());
  }
}

// As HttpSession::send does, then every byte of the message through Beast's serializer.
template <class Body>
std::string serialise(bhttp::response<Body>& res, const http::Request& req, bool keep_alive) {
  res.set(bhttp::field::server, "fc25");
  res.keep_alive(keep_alive);
  if (req.set_csrf_cookie) {
    res.insert(bhttp::field::set_cookie, "fc25_csrf=" + req.csrf_token + "; Path=/; SameSite=Lax; Max-Age=31536000");
  }
  if (req.msg.method() != bhttp::verb::head) res.prepare_payload();
  auto status = res.result_int();
  if (status < 100 || status > 599) fuzz::fail("an answer has status " + std::to_string(status));
  if (status == 500) fuzz::fail("a request was answered 500 (a handler failed)");
  if constexpr (std::is_same_v<Body, bhttp::string_body>) {
    if (res[bhttp::field::content_type] == "application/json") check_json_body(res.body(), status);
  }
  bhttp::serializer<false, Body> sr{res};
  std::string out;
  beast::error_code ec;
  while (!sr.is_done()) {
    sr.next(ec, [&](beast::error_code&, const auto& buffers) {
      for (auto b : beast::buffers_range_ref(buffers)) out.append(static_cast<const char*>(b.data()), b.size());
      sr.consume(beast::buffer_bytes(buffers));
    });
    if (ec) fuzz::fail("an answer does not serialise: " + ec.message());
  }
  return out;
}

// This world is one process: no answer is another node's.
std::string serialise(http::Proxy& p, const http::Request&, bool) {
  fuzz::fail("a request was sent on to another node (" + p.host + ":" + p.port + ") outside a cluster");
}

// FC25_FUZZ_SHOW=1 prints each answer's head (to see what a corpus file reaches).
std::string write(http::Reply& reply, const http::Request& req, bool keep_alive) {
  auto out = std::visit([&](auto& res) { return serialise(res, req, keep_alive); }, reply.message);
  static const bool show = std::getenv("FC25_FUZZ_SHOW") != nullptr;
  if (show) std::fprintf(stderr, "%s\n----\n", core::printable(out.substr(0, 600), 600).c_str());
  return out;
}

// One request the parser completed: handled as HttpSession::on_read does.
void handle(World& w, bhttp::request<bhttp::string_body> msg, bool& keep_alive) {
  http::Request req;
  req.msg = std::move(msg);
  req.remote_address = "127.0.0.1";
  keep_alive = req.msg.keep_alive();
  if (beast::websocket::is_upgrade(req.msg)) {
    // The server's upgrade() starts with prepare(): a path or query that is not text is refused there.
    try {
      w.api->prepare(req);
    } catch (const core::ApiError& e) {
      http::Reply reply = http::error_response(e.status(), e.code(), e.message());
      write(reply, req, keep_alive);
    }
    keep_alive = false;  // the socket goes to presence or the answer is a refusal; either way nothing follows here
    return;
  }
  auto answer = std::make_shared<Answer>();
  w.api->handle(req, [answer](http::Reply r) {
    std::lock_guard lock(answer->mu);
    if (++answer->count == 1) answer->reply.emplace(std::move(r));
    answer->cv.notify_all();
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    w.poll();
    std::unique_lock lock(answer->mu);
    if (answer->reply) break;
    if (std::chrono::steady_clock::now() > deadline) fuzz::fail("a request got no answer within 5 s");
    answer->cv.wait_for(lock, std::chrono::milliseconds(1));
  }
  std::unique_lock lock(answer->mu);
  if (answer->count != 1) fuzz::fail("a request was answered " + std::to_string(answer->count) + " times");
  write(*answer->reply, req, keep_alive);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& w = world();
  w.restore();
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  bool keep_alive = true;
  for (std::size_t n = 0; n < kMaxRequestsPerInput && keep_alive && !rest.empty(); ++n) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(http::kMaxBodyBytes);
    parser.header_limit(16 * 1024);
    parser.eager(true);
    beast::error_code ec;
    while (!parser.is_done()) {
      auto used = parser.put(net::buffer(rest.data(), rest.size()), ec);
      rest.remove_prefix(used);
      if (ec == bhttp::error::need_more && used > 0) {
        ec = {};
        continue;
      }
      break;
    }
    if (ec == bhttp::error::body_limit || ec == bhttp::error::header_limit) {
      // The server answers these itself and closes the connection.
      http::Request req;
      bool big_body = ec == bhttp::error::body_limit;
      if (big_body) req.msg = parser.release();
      http::Reply reply = big_body ? http::error_response(413, "payload_too_large", "request body over 64 KiB")
                                   : http::error_response(431, "headers_too_large", "request headers over 16 KiB");
      write(reply, req, false);
      break;
    }
    if (ec || !parser.is_done()) break;  // malformed (the server closes) or incomplete (it would wait)
    handle(w, parser.release(), keep_alive);
  }
  w.poll();
  return 0;
}
