// `fc25 serve`: wires the planes together, runs the io threads, and shuts down cleanly on SIGINT/SIGTERM:
// stop accepting, end every live stream (server_shutdown: rows written, friends told), close presence, exit 0.
#include <malloc.h>
#include <sys/resource.h>

#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <sodium.h>
#include <sqlite3.h>

#include "signalling/signalling.hpp"
#include "app/commands.hpp"
#include "app/config.hpp"
#include "app/retention.hpp"
#include "cluster/membership.hpp"
#include "auth/auth.hpp"
#include "core/crypto.hpp"
#include "core/events.hpp"
#include "core/guard.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "denoise/denoise.hpp"
#include "http/exchange.hpp"
#include "http/server.hpp"
#include "http/tls.hpp"
#include "rtc/transport.hpp"
#include "media/media.hpp"
#include "presence/presence.hpp"
#include "social/friends.hpp"
#include "storage/store.hpp"
#include "streams/registry.hpp"
#include "streams/status.hpp"

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
  json me = streams::status_json(self);
  me["client_id"] = self.is_streaming ? json(self.client_id) : json(nullptr);
  me["last_stream"] = streams::last_stream_json(store, user_id);
  json friends = json::array();
  for (auto& f : store.friends_of(user_id)) friends.push_back(streams::status_json(f));
  return {{"type", "snapshot"}, {"self", me}, {"friends", friends}, {"server_now", core::iso8601_ms(core::now_ms())}};
}

// The denoiser streams get: the configured backend, or classic (with a warning) when dfn3 has no usable model.
live::Config media_config(const Config& config) {
  auto log = core::logger("app");
  live::Config mc;
  mc.recordings_dir = config.data_dir / "streamed_audios";
  mc.backend = denoise::parse_backend(config.denoiser);
  if (mc.backend == denoise::Backend::dfn3) {
    auto dir = config.model_dir.empty() ? std::filesystem::path("models/DeepFilterNet3") : config.model_dir;
    try {
      mc.model = denoise::Model::load(dir, denoise::parse_precision(config.precision));
      log->info("denoiser dfn3 with the model in {} ({} weights)", dir.string(), config.precision);
    } catch (const denoise::ModelLoadError& e) {
      log->warn("no usable DeepFilterNet3 model ({}): streams use the classic noise suppressor. Get the model with "
                "scripts/fetch-model.sh and set FC25_MODEL_DIR.", e.what());
      mc.backend = denoise::Backend::classic;
    }
  } else {
    log->info("denoiser {}", config.denoiser);
  }
  mc.workers = config.denoise_workers;
  mc.realtime_priority = config.realtime_priority;
  mc.record_raw = config.record_raw;
  mc.media_timeout = std::chrono::milliseconds(config.media_timeout_ms);
  // Audio that stops mid-stream is the page's network, given the reconnect grace first (the registry ends the
  // stream when it runs out); the watchdog is the backstop.
  mc.stall_timeout = config.reconnect_grace_s > 0
                         ? std::max(mc.media_timeout, std::chrono::milliseconds(config.reconnect_grace_s * 1000 + 5000))
                         : mc.media_timeout;
  mc.packet_ms = config.packet_ms;
  mc.listener_low_delay = config.listener_opus == "lowdelay";
  mc.ice = media::IceConfig{config.stun, config.turn, config.jitter_ms, config.ingest_fec, config.media_address, nullptr};
  if (config.listener_transport == "shared") {
    rtc::TransportConfig tc;
    tc.port = static_cast<std::uint16_t>(config.listener_port);
    tc.public_address = config.media_address;
    tc.senders = config.listener_senders;
    mc.ice.listener_transport = rtc::Transport::create(tc);
  }
  mc.reserve_file = config.data_dir / "disk-reserve";  // released when the disk fills, for the database's last writes
  return mc;
}

// What pages put in RTCPeerConnection's iceServers.
json ice_servers_json(const Config& config) {
  json servers = json::array();
  if (!config.stun.empty()) servers.push_back({{"urls", "stun:" + config.stun.substr(7)}});
  for (auto& t : config.turn) {
    // turn://user:password@host:port -> {urls: "turn:host:port", username, credential}
    auto scheme = t.substr(0, t.find("://"));
    auto rest = t.substr(scheme.size() + 3);
    auto at = rest.rfind('@');
    json entry;
    if (at != std::string::npos) {
      auto cred = rest.substr(0, at);
      auto colon = cred.find(':');
      entry["username"] = http::url_decode(cred.substr(0, colon), http::Plus::literal);
      entry["credential"] =
          colon == std::string::npos ? "" : http::url_decode(cred.substr(colon + 1), http::Plus::literal);
      rest = rest.substr(at + 1);
    }
    entry["urls"] = scheme + ":" + rest;
    servers.push_back(entry);
  }
  return servers;
}

// A server that runs for weeks under bursts of streams: glibc's defaults suit a short program better. Its mmap
// threshold rises to the largest block ever freed (up to 32 MiB), after which per-stream buffers come from the arenas
// and fragment them; and it makes up to 8 arenas per core, each keeping what its threads freed. A fixed threshold
// and a few arenas keep the memory of an idle server where it was before the burst. MALLOC_MMAP_THRESHOLD_ and
// MALLOC_ARENA_MAX in the environment, when set, are left to glibc.
void tune_malloc() {
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  if (!std::getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 4);
}

// What malloc holds for the process, for /api/health: bytes in live allocations, and bytes taken from the system
// (arenas and mapped chunks). RSS can stay up with freed memory malloc keeps; the heap in use cannot without a leak.
json heap_figures() {
  const struct mallinfo2 m = mallinfo2();
  return json{{"heap_in_use_bytes", m.uordblks + m.hblkhd}, {"heap_held_bytes", m.arena + m.hblkhd}};
}

}  // namespace

std::unique_ptr<storage::Store> open_store(const Config& config) {
  if (!config.database_url.empty()) return storage::open_postgres_store(config.database_url, config.db_connections);
  if (!config.db.parent_path().empty()) std::filesystem::create_directories(config.db.parent_path());
  return storage::open_sqlite_store(config.db);
}

int run_serve(const std::vector<std::string>& args) {
  Config config;
  std::shared_ptr<boost::asio::ssl::context> tls;   // HTTPS when set
  try {
    config = load_config(args);
    core::set_log_level(config.log_level);
    if (!config.tls_cert.empty()) tls = http::make_tls_context(config.tls_cert, config.tls_key);
  } catch (const std::exception& e) {
    std::cerr << "fc25 serve: " << e.what() << "\n";
    return 2;
  }
  auto log = core::logger("app");
  try {
    init_libraries();
    if (config.isa != "auto") denoise::use_kernel_path(config.isa);
    denoise::use_prefetch(config.prefetch);
    denoise::use_bf16_dot(config.bf16_dot);
    log->info("fc25 {} starting: {} kernels={} prefetch={} bf16_dot={}", FC25_VERSION, config.describe(),
              denoise::kernel_path(), denoise::prefetch_mode(), denoise::bf16_dot_mode());
    std::filesystem::create_directories(config.data_dir / "streamed_audios");
    if (!std::filesystem::is_directory(config.web_dir)) {
      log->warn("web directory {} not found: pages will answer 404 (set FC25_WEB_DIR)", config.web_dir.string());
    }
    raise_fd_limit();
    tune_malloc();

    // PostgreSQL answers over the network: every call to it is made off the io threads, on threads of its own as
    // many as its connections (requests, each socket's messages in order, the registry's timers).
    const bool remote_store = !config.database_url.empty();
    auto store = open_store(config);
    std::optional<net::thread_pool> store_work;
    if (remote_store) store_work.emplace(config.db_connections);
    net::thread_pool* store_pool = store_work ? &*store_work : nullptr;
    net::io_context io(config.threads);
    // Password hashing, off the io threads: registrations (rare, throttled) on one thread, logins on two of their
    // own, so that a flood of registrations neither queues a login nor takes more than one core from it.
    net::thread_pool slow_work(1);
    net::thread_pool login_work(2);
    PresenceSink sink;
    streams::RegistryOptions registry_options{core::random_token_hex(8)};
    registry_options.reconnect_grace = std::chrono::seconds(config.reconnect_grace_s);
    registry_options.store_work = store_pool;
    if (config.channel_backend == "redis") registry_options.orphan_reason = streams::EndReason::node_lost;
    streams::StreamRegistry registry(io, *store, sink, registry_options);
    social::Friends friends(*store, sink);
    auth::Sessions sessions(*store);
    auth::LoginThrottle throttle;
    auth::RateLimit registrations(config.registrations_per_address,
                                  std::chrono::seconds(config.registration_window_s));
    presence::Hooks hooks;
    hooks.snapshot_for = [&store](std::int64_t user_id) { return snapshot_for(*store, user_id); };
    signalling::Signalling* broadcasts_ptr = nullptr;
    hooks.on_socket_closed = [&registry, &broadcasts_ptr](std::int64_t user_id, const std::string& client_id) {
      if (broadcasts_ptr) broadcasts_ptr->on_socket_closed(user_id, client_id);
      registry.on_socket_closed(user_id, client_id);
    };
    // A removed friendship ends listening in the process that serves it (the event reaches both users' sockets).
    hooks.on_delivered = [&broadcasts_ptr](const std::string& username, std::string_view type) {
      if (type == "friend_removed" && broadcasts_ptr) broadcasts_ptr->end_unfriended_listeners(username);
    };
    media::init();
    std::unique_ptr<cluster::Membership> membership;   // with Redis (started once listening)
    // Where another node is reached, while its lease in Redis is current.
    auto node_url = [&membership](const std::string& node_id) -> std::optional<std::string> {
      return membership ? membership->url_of_node(node_id) : std::nullopt;
    };
    auto disk_url = [&membership](const std::string& disk_id) -> std::optional<std::string> {
      return membership ? membership->url_of_disk(disk_id) : std::nullopt;
    };
    recording::Library library(config.data_dir,
                               config.channel_backend == "redis" ? recording::Library::NodeUrl(disk_url) : nullptr);
    auto live_config = media_config(config);
    auto listener_transport = live_config.ice.listener_transport;
    signalling::Signalling broadcasts(io, *store, registry, sink, library, std::move(live_config));
    broadcasts.set_mic_test_limit(std::chrono::seconds(config.mic_test_s));
    registry.set_media_hooks(broadcasts.hooks());
    broadcasts_ptr = &broadcasts;
    hooks.on_message = [&broadcasts](const presence::SocketUser& user, const std::string& client_id,
                                     const json& msg, presence::Reply reply) {
      broadcasts.on_message(user, client_id, msg, std::move(reply));
    };
    // A socket whose session was logged out elsewhere or expired is closed at the next check (every 5 s).
    hooks.session_valid = [&store](const std::string& session) {
      return store->user_by_session(session, core::now_ms()).has_value();
    };
    presence::Options presence_options;
    presence_options.max_sockets_per_user = config.max_sockets_per_user;
    presence_options.hook_work = store_pool;
    presence::Presence presence(io, {config.channel_backend, config.redis_host, config.redis_port}, hooks,
                                presence_options);
    sink.presence = &presence;

    // Streams a crashed predecessor left live are ended (server_restart) before anyone connects.
    registry.start_housekeeping();
    // Recordings of this node's streams that another node ended while this one was down (node_lost).
    broadcasts.recover_recordings();

    http::Services services{.store = *store,
                            .sessions = sessions,
                            .throttle = throttle,
                            .friends = friends,
                            .streams = registry,
                            .presence = presence,
                            .slow_work = slow_work,
                            .web_dir = config.web_dir,
                            .secure_cookies = config.secure_cookies,
                            .data_dir = config.data_dir,
                            .denoiser = std::string(broadcasts.denoiser()),
                            .ice_servers = ice_servers_json(config)};
    services.login_work = &login_work;
    services.store_work = store_pool;
    services.registrations = &registrations;
    services.timeout = std::chrono::seconds(config.http_timeout_s);
    services.min_free_bytes = static_cast<std::uint64_t>(config.min_free_mb) << 20;
    services.quota_bytes = static_cast<std::uint64_t>(config.quota_mb) << 20;
    services.tls = tls;
    for (auto& a : config.trusted_proxies) services.trusted_proxies.push_back(net::ip::make_address(a));
    services.library = &library;
    // In a cluster (Redis and a cluster secret) a friend's stream on another node reaches this one over a relay.
    if (config.channel_backend == "redis" && !config.cluster_secret.empty()) {
      signalling::Signalling::ClusterLinks links;
      links.secret = config.cluster_secret;
      links.store_work = store_pool;
      links.realtime_priority = config.realtime_priority;
      links.node_url = node_url;
      broadcasts.enable_relays(std::move(links));
      services.relay = [&broadcasts](boost::beast::tcp_stream&& stream, http::bhttp::request<http::bhttp::string_body>&& req,
                                     std::int64_t session_id) {
        broadcasts.accept_relay(std::move(stream), std::move(req), session_id);
      };
    }
    services.health = [&] {
      return json{{"node_id", registry_options.node_id},
                  {"cluster_nodes", membership ? membership->nodes().size() : 1},
                  {"listeners", broadcasts.listener_count()},
                  {"relays", broadcasts.relay_stats()},
                  {"live_streams", registry.live_count()},
                  {"media_streams", broadcasts.open_streams()},
                  {"media_pipelines", media::live_pipelines()},
                  {"listener_connections", listener_transport ? listener_transport->connections() : 0},
                  {"presence_sockets", presence.open_sockets()},
                  {"denoiser", broadcasts.denoiser()},
                  {"memory", heap_figures()}};
    };
    http::Server server(io, services);
    auto port = server.listen(config.bind, static_cast<unsigned short>(config.port));
    if (!config.port_file.empty()) {
      auto tmp = config.port_file.string() + ".tmp";
      std::ofstream(tmp) << port << "\n";
      std::filesystem::rename(tmp, config.port_file);
    }
    auto host = config.bind.find(':') != std::string::npos ? "[" + config.bind + "]" : config.bind;
    const char* scheme = tls ? "https" : "http";
    log->info("listening on {}://{}:{}", scheme, host, port);

    // With Redis, the node holds a lease there: the others see it up, and what it carries.
    if (config.channel_backend == "redis") {
      cluster::Options co;
      co.redis_host = config.redis_host;
      co.redis_port = config.redis_port;
      co.node_id = registry_options.node_id;
      co.media_address = config.media_address;
      co.disk_id = library.disk_id();
      co.url = config.node_url.empty() ? std::string(scheme) + "://" + host + ":" + std::to_string(port) : config.node_url;
      // A node whose lease lapsed is gone: its live streams end (node_lost), off the membership thread.
      co.on_left = [&registry, store_pool, &slow_work](const std::string& node_id) {
        net::post(store_pool ? *store_pool : slow_work, [&registry, node_id] {
          core::guarded("node lost", [&] { registry.end_streams_of_node(node_id, streams::EndReason::node_lost); });
        });
      };
      membership = std::make_unique<cluster::Membership>(co, [&registry, &broadcasts] {
        return cluster::Load{static_cast<std::int64_t>(registry.live_count()),
                             static_cast<std::int64_t>(broadcasts.listener_count())};
      });
      membership->start();
    }
    services.cluster_secret = config.cluster_secret;
    services.cluster = [&membership, &registry_options] {
      json nodes = json::array();
      if (membership) {
        for (auto& n : membership->nodes()) {
          nodes.push_back({{"node_id", n.node_id}, {"url", n.url}, {"media_address", n.media_address.empty() ? json(nullptr) : json(n.media_address)},
                           {"host", n.host}, {"pid", n.pid},
                           {"started_at", core::iso8601_ms(n.started_at)},
                           {"lease_renewed_at", core::iso8601_ms(n.renewed_at)},
                           {"load", {{"live_streams", n.live_streams}, {"listeners", n.listeners}}}});
        }
      }
      return json{{"mode", membership ? "redis" : "single"}, {"self", registry_options.node_id},
                  {"redis_connected", membership ? json(membership->connected()) : json(nullptr)},
                  {"nodes", nodes}};
    };

    // Streams, listeners and sockets come and go in bursts, each on GStreamer threads with malloc arenas of their
    // own; glibc keeps what they free. Handing it back now and then keeps a long-running server's memory at what
    // it uses, not at its busiest moment.
    net::steady_timer trim(io);
    std::function<void()> schedule_trim = [&] {
      trim.expires_after(std::chrono::seconds(30));
      trim.async_wait([&](const boost::system::error_code& ec) {
        if (ec) return;
        malloc_trim(0);
        schedule_trim();
      });
    };
    schedule_trim();

    // Recordings past their retention go now and every hour, off the io threads.
    net::steady_timer retention(io);
    std::function<void()> expire = [&] {
      if (config.retention_days <= 0) return;
      net::post(slow_work, [&] {
        core::run_guarded("retention", [&] {
          auto n = expire_recordings(*store, library, core::now_ms(), config.retention_days);
          if (n > 0) log->info("retention: {} recordings older than {} days deleted", n, config.retention_days);
        });
      });
      retention.expires_after(std::chrono::hours(1));
      retention.async_wait([&](const boost::system::error_code& ec) {
        if (!ec) expire();
      });
    };
    expire();

    net::signal_set signals(io, SIGINT, SIGTERM);
    net::steady_timer drain(io);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      log->info("received {}: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
      server.stop_accepting();
      trim.cancel();
      retention.cancel();
      registry.stop_all(streams::EndReason::server_shutdown);
      if (membership) membership->stop();   // the lease given up: the other nodes see this one go at once
      registry.stop_housekeeping();
      // Let the "stream ended" notices reach the sockets before they are closed.
      drain.expires_after(std::chrono::milliseconds(300));
      drain.async_wait([&](const boost::system::error_code&) {
        presence.shutdown();
        drain.expires_after(std::chrono::milliseconds(300));
        drain.async_wait([&](const boost::system::error_code&) { io.stop(); });
      });
    });

    // No exception may leave an io thread (it would end the process): one that escapes a handler is logged,
    // counted, and the thread goes on serving.
    auto serve_io = [&io, &log] {
      for (;;) {
        try {
          io.run();
          return;
        } catch (const std::exception& e) {
          core::count_failure("io");
          log->error("an io handler failed: {}", e.what());
        } catch (...) {
          core::count_failure("io");
          log->error("an io handler failed with an unknown exception");
        }
      }
    };
    std::vector<std::thread> threads;
    for (int i = 1; i < config.threads; ++i) threads.emplace_back(serve_io);
    serve_io();
    for (auto& t : threads) t.join();
    slow_work.join();
    login_work.join();
    if (store_work) store_work->join();
    broadcasts.close_all();
    log->info("stopped");
    return 0;
  } catch (const std::exception& e) {
    log->error("fc25 serve: {}", e.what());
    std::cerr << "fc25 serve: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace fc25::app
