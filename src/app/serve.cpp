// `fc25 serve`: wires the planes together, runs the io threads, and shuts down cleanly on SIGINT/SIGTERM:
// stop accepting, end every live stream (server_shutdown: rows written, friends told), close presence, exit 0.
#include <sys/resource.h>

#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <sodium.h>
#include <sqlite3.h>

#include "app/commands.hpp"
#include "app/config.hpp"
#include "auth/auth.hpp"
#include "core/crypto.hpp"
#include "core/events.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "http/server.hpp"
#include "presence/presence.hpp"
#include "social/friends.hpp"
#include "storage/store.hpp"
#include "streams/registry.hpp"

namespace fc25::app {

namespace net = boost::asio;
using nlohmann::json;

void init_libraries() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
    sqlite3_initialize();
  });
}

namespace {

// Social and streams send events to users; presence delivers them.
class PresenceSink final : public core::EventSink {
 public:
  void send_to_user(const std::string& username, const json& event) override {
    if (presence) presence->send_to_user(username, event);
  }
  presence::Presence* presence = nullptr;
};

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

json snapshot_for(storage::Store& store, std::int64_t user_id) {
  auto self = store.live_status(user_id);
  json me = social::status_json(self);
  me["client_id"] = self.is_streaming ? json(self.client_id) : json(nullptr);
  json friends = json::array();
  for (auto& f : store.friends_of(user_id)) friends.push_back(social::status_json(f));
  return {{"type", "snapshot"}, {"self", me}, {"friends", friends}, {"server_now", core::iso8601_ms(core::now_ms())}};
}

}  // namespace

int run_serve(const std::vector<std::string>& args) {
  Config config;
  try {
    config = load_config(args);
    core::set_log_level(config.log_level);
  } catch (const std::exception& e) {
    std::cerr << "fc25 serve: " << e.what() << "\n";
    return 2;
  }
  auto log = core::logger("app");
  try {
    init_libraries();
    log->info("fc25 {} starting: {}", FC25_VERSION, config.describe());
    std::filesystem::create_directories(config.data_dir / "streamed_audios");
    if (!config.db.parent_path().empty()) std::filesystem::create_directories(config.db.parent_path());
    if (!std::filesystem::is_directory(config.web_dir)) {
      log->warn("web directory {} not found: pages will answer 404 (set FC25_WEB_DIR)", config.web_dir.string());
    }
    raise_fd_limit();

    auto store = storage::open_sqlite_store(config.db);
    net::io_context io(config.threads);
    net::thread_pool slow_work(2);
    PresenceSink sink;
    streams::StreamRegistry registry(io, *store, sink, streams::RegistryOptions{core::random_token_hex(8)});
    social::Friends friends(*store, sink);
    auth::Sessions sessions(*store);
    auth::LoginThrottle throttle;
    presence::Hooks hooks;
    hooks.snapshot_for = [&store](std::int64_t user_id) { return snapshot_for(*store, user_id); };
    hooks.on_socket_closed = [&registry](std::int64_t user_id, const std::string& client_id) {
      registry.on_socket_closed(user_id, client_id);
    };
    presence::Presence presence(io, {config.channel_backend, config.redis_host, config.redis_port}, hooks);
    sink.presence = &presence;

    // Streams a crashed predecessor left live are ended (server_restart) before anyone connects.
    registry.start_housekeeping();

    http::Services services{*store, sessions, throttle, friends, registry, presence, slow_work,
                            config.web_dir, config.secure_cookies};
    http::Server server(io, services);
    auto port = server.listen(config.bind, static_cast<unsigned short>(config.port));
    if (!config.port_file.empty()) {
      auto tmp = config.port_file.string() + ".tmp";
      std::ofstream(tmp) << port << "\n";
      std::filesystem::rename(tmp, config.port_file);
    }
    log->info("listening on http://{}:{}", config.bind.find(':') != std::string::npos ? "[" + config.bind + "]" : config.bind, port);

    net::signal_set signals(io, SIGINT, SIGTERM);
    net::steady_timer drain(io);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      log->info("received {}: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
      server.stop_accepting();
      registry.stop_all(streams::EndReason::server_shutdown);
      registry.stop_housekeeping();
      // Let the "stream ended" notices reach the sockets before they are closed.
      drain.expires_after(std::chrono::milliseconds(300));
      drain.async_wait([&](const boost::system::error_code&) {
        presence.shutdown();
        drain.expires_after(std::chrono::milliseconds(300));
        drain.async_wait([&](const boost::system::error_code&) { io.stop(); });
      });
    });

    std::vector<std::thread> threads;
    for (int i = 1; i < config.threads; ++i) threads.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : threads) t.join();
    slow_work.join();
    log->info("stopped");
    return 0;
  } catch (const std::exception& e) {
    log->error("fc25 serve: {}", e.what());
    std::cerr << "fc25 serve: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace fc25::app
