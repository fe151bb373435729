#include "app/config.hpp"

#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>

#include "core/log.hpp"
#include "storage/store.hpp"

#ifndef FC25_DEFAULT_WEB_DIR
#define FC25_DEFAULT_WEB_DIR "web"
#endif

namespace fc25::app {
namespace {

int parse_int(const std::string& name, const std::string& v, int lo, int hi) {
  try {
    std::size_t used = 0;
    long n = std::stol(v, &used);
    if (used != v.size() || n < lo || n > hi) throw std::out_of_range("range");
    return static_cast<int>(n);
  } catch (const std::exception&) {
    throw std::invalid_argument(name + ": '" + v + "' is not a whole number from " + std::to_string(lo) + " to " +
                                std::to_string(hi));
  }
}

bool parse_bool(const std::string& name, const std::string& v) {
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off" || v.empty()) return false;
  throw std::invalid_argument(name + ": '" + v + "' is not a boolean (expected 1 or 0)");
}

// An IPv4 or IPv6 address written out (no name, no port).
bool is_ip_address(const std::string& v) {
  unsigned char buf[16];
  return inet_pton(AF_INET, v.c_str(), buf) == 1 || inet_pton(AF_INET6, v.c_str(), buf) == 1;
}

void one_of(const std::string& name, const std::string& v, std::initializer_list<const char*> allowed) {
  std::string list;
  for (auto a : allowed) {
    if (v == a) return;
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  throw std::invalid_argument(name + ": '" + v + "' is not one of " + list);
}

struct Setting {
  const char* env;   // may be null
  const char* flag;
  std::function<void(Config&, const std::string& name, const std::string& value)> set;
  bool takes_value = true;
};

const std::vector<Setting>& settings() {
  static const std::vector<Setting> s = {
      {"FC25_BIND", "--bind", [](Config& c, auto&, auto& v) { c.bind = v; }},
      {"FC25_PORT", "--port", [](Config& c, auto& n, auto& v) { c.port = parse_int(n, v, 0, 65535); }},
      {nullptr, "--port-file", [](Config& c, auto&, auto& v) { c.port_file = v; }},
      {"FC25_DATA_DIR", "--data-dir", [](Config& c, auto&, auto& v) { c.data_dir = v; }},
      {"FC25_DB", "--db", [](Config& c, auto&, auto& v) { c.db = v; }},
      {"FC25_DATABASE_URL", "--database-url",
       [](Config& c, auto& n, auto& v) {
         if (!v.empty() && !storage::is_postgres_url(v)) {
           throw std::invalid_argument(n + ": '" + storage::redact_database_url(v) +
                                       "' is not postgresql://user:password@host:port/database");
         }
         c.database_url = v;
       }},
      {"FC25_DB_CONNECTIONS", "--db-connections",
       [](Config& c, auto& n, auto& v) { c.db_connections = parse_int(n, v, 1, 256); }},
      {"FC25_WEB_DIR", "--web-dir", [](Config& c, auto&, auto& v) { c.web_dir = v; }},
      {"FC25_MODEL_DIR", "--model-dir", [](Config& c, auto&, auto& v) { c.model_dir = v; }},
      {"FC25_DENOISER", "--denoiser",
       [](Config& c, auto& n, auto& v) { one_of(n, v, {"dfn3", "classic", "passthrough"}); c.denoiser = v; }},
      {"CHANNEL_BACKEND", "--channel-backend",
       [](Config& c, auto& n, auto& v) { one_of(n, v, {"memory", "redis"}); c.channel_backend = v; }},
      {"FC25_NODE_URL", "--node-url",
       [](Config& c, auto& n, auto& v) {
         if (!v.empty() && v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0) {
           throw std::invalid_argument(n + ": '" + v + "' must be an http:// or https:// URL");
         }
         c.node_url = v;
       }},
      {"FC25_CLUSTER_SECRET", "--cluster-secret",
       [](Config& c, auto& n, auto& v) {
         if (!v.empty() && v.size() < 16) throw std::invalid_argument(n + ": must be at least 16 characters");
         c.cluster_secret = v;
       }},
      {"REDIS_HOST", "--redis-host", [](Config& c, auto&, auto& v) { c.redis_host = v; }},
      {"REDIS_PORT", "--redis-port", [](Config& c, auto& n, auto& v) { c.redis_port = parse_int(n, v, 1, 65535); }},
      {"FC25_LOG_LEVEL", "--log-level",
       [](Config& c, auto& n, auto& v) {
         one_of(n, v, {"trace", "debug", "info", "warn", "error", "critical", "off"});
         c.log_level = v;
       }},
      {"FC25_THREADS", "--threads", [](Config& c, auto& n, auto& v) { c.threads = parse_int(n, v, 0, 256); }},
      {"FC25_SECURE_COOKIES", "--secure-cookies",
       [](Config& c, auto& n, auto& v) { c.secure_cookies = parse_bool(n, v); }},
      {"FC25_TLS_CERT", "--tls-cert", [](Config& c, auto&, auto& v) { c.tls_cert = v; }},
      {"FC25_TLS_KEY", "--tls-key", [](Config& c, auto&, auto& v) { c.tls_key = v; }},
      {"FC25_TRUSTED_PROXIES", "--trusted-proxies",
       [](Config& c, auto& n, auto& v) {
         c.trusted_proxies.clear();
         std::stringstream ss(v);
         std::string item;
         while (std::getline(ss, item, ',')) {
           if (item.empty()) continue;
           if (!is_ip_address(item)) {
             throw std::invalid_argument(n + ": '" + item + "' is not an IP address (a comma-separated list of them)");
           }
           c.trusted_proxies.push_back(item);
         }
       }},
      {"FC25_RECORD_RAW", "--record-raw", [](Config& c, auto& n, auto& v) { c.record_raw = parse_bool(n, v); }},
      {"FC25_MEDIA_ADDRESS", "--media-address",
       [](Config& c, auto& n, auto& v) {
         if (!v.empty() && !is_ip_address(v)) {
           throw std::invalid_argument(n + ": '" + v + "' is not an IP address");
         }
         c.media_address = v;
       }},
      {"FC25_STUN", "--stun",
       [](Config& c, auto& n, auto& v) {
         if (!v.empty() && v.rfind("stun://", 0) != 0) throw std::invalid_argument(n + ": '" + v + "' must start with stun://");
         c.stun = v;
       }},
      {"FC25_TURN", "--turn",
       [](Config& c, auto& n, auto& v) {
         c.turn.clear();
         std::stringstream ss(v);
         std::string item;
         while (std::getline(ss, item, ',')) {
           if (item.empty()) continue;
           if (item.rfind("turn://", 0) != 0 && item.rfind("turns://", 0) != 0) {
             throw std::invalid_argument(n + ": '" + item + "' must look like turn://user:password@host:port");
           }
           c.turn.push_back(item);
         }
       }},
      {"FC25_MEDIA_TIMEOUT_MS", "--media-timeout-ms",
       [](Config& c, auto& n, auto& v) { c.media_timeout_ms = parse_int(n, v, 500, 3600000); }},
      {"FC25_JITTER_MS", "--jitter-ms", [](Config& c, auto& n, auto& v) { c.jitter_ms = parse_int(n, v, 0, 2000); }},
      {"FC25_INGEST_FEC", "--ingest-fec", [](Config& c, auto& n, auto& v) { c.ingest_fec = parse_bool(n, v); }},
      {"FC25_PACKET_MS", "--packet-ms",
       [](Config& c, auto& n, auto& v) { one_of(n, v, {"auto", "10", "20"}); c.packet_ms = v == "auto" ? 0 : std::stoi(v); }},
      {"FC25_LISTENER_OPUS", "--listener-opus",
       [](Config& c, auto& n, auto& v) { one_of(n, v, {"lowdelay", "voice"}); c.listener_opus = v; }},
      {"FC25_LISTENER_TRANSPORT", "--listener-transport",
       [](Config& c, auto& n, auto& v) { one_of(n, v, {"shared", "webrtcbin"}); c.listener_transport = v; }},
      {"FC25_LISTENER_PORT", "--listener-port",
       [](Config& c, auto& n, auto& v) { c.listener_port = parse_int(n, v, 0, 65535); }},
      {"FC25_LISTENER_SENDERS", "--listener-senders",
       [](Config& c, auto& n, auto& v) { c.listener_senders = v == "auto" ? -1 : parse_int(n, v, 0, 64); }},
      {"FC25_RT_PRIORITY", "--rt-priority",
       [](Config& c, auto& n, auto& v) { c.realtime_priority = parse_int(n, v, 0, 99); }},
      {"FC25_DENOISE_WORKERS", "--denoise-workers",
       [](Config& c, auto& n, auto& v) { c.denoise_workers = parse_int(n, v, 0, 256); }},
      {"FC25_ISA", "--isa",
       [](Config& c, auto& n, auto& v) { one_of(n, v, {"auto", "avx512", "avx2", "portable"}); c.isa = v; }},
      {"FC25_PREFETCH", "--prefetch",
       [](Config& c, auto& n, auto& v) { one_of(n, v, {"auto", "on", "off"}); c.prefetch = v; }},
      {"FC25_BF16_DOT", "--bf16-dot",
       [](Config& c, auto& n, auto& v) { one_of(n, v, {"auto", "on", "off"}); c.bf16_dot = v; }},
      {"FC25_PRECISION", "--precision",
       [](Config& c, auto& n, auto& v) { one_of(n, v, {"fp32", "bf16"}); c.precision = v; }},
      {"FC25_MAX_SOCKETS_PER_USER", "--max-sockets-per-user",
       [](Config& c, auto& n, auto& v) { c.max_sockets_per_user = parse_int(n, v, 0, 1000000); }},
      {"FC25_REGISTRATIONS_PER_ADDRESS", "--registrations-per-address",
       [](Config& c, auto& n, auto& v) { c.registrations_per_address = parse_int(n, v, 0, 1000000); }},
      {"FC25_REGISTRATION_WINDOW_S", "--registration-window-s",
       [](Config& c, auto& n, auto& v) { c.registration_window_s = parse_int(n, v, 1, 86400 * 7); }},
      {"FC25_HTTP_TIMEOUT_S", "--http-timeout-s",
       [](Config& c, auto& n, auto& v) { c.http_timeout_s = parse_int(n, v, 1, 3600); }},
      {"FC25_MIN_FREE_MB", "--min-free-mb",
       [](Config& c, auto& n, auto& v) { c.min_free_mb = parse_int(n, v, 0, 1 << 24); }},
      {"FC25_RETENTION_DAYS", "--retention-days",
       [](Config& c, auto& n, auto& v) { c.retention_days = parse_int(n, v, 0, 365 * 100); }},
      {"FC25_RECONNECT_GRACE_S", "--reconnect-grace-s",
       [](Config& c, auto& n, auto& v) { c.reconnect_grace_s = parse_int(n, v, 0, 600); }},
      {"FC25_MIC_TEST_S", "--mic-test-s", [](Config& c, auto& n, auto& v) { c.mic_test_s = parse_int(n, v, 1, 600); }},
      {"FC25_QUOTA_MB", "--quota-mb", [](Config& c, auto& n, auto& v) { c.quota_mb = parse_int(n, v, 0, 1 << 30); }},
  };
  return s;
}

}  // namespace

Config load_config(const std::vector<std::string>& args) {
  Config c;
  c.web_dir = FC25_DEFAULT_WEB_DIR;
  for (auto& s : settings()) {
    if (!s.env) continue;
    if (const char* v = std::getenv(s.env); v && *v) s.set(c, s.env, v);
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], value;
    auto eq = a.find('=');
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    const Setting* found = nullptr;
    for (auto& s : settings())
      if (a == s.flag) found = &s;
    if (!found) throw std::invalid_argument("unknown option '" + args[i] + "' (see fc25 serve --help)");
    if (eq == std::string::npos) {
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
      value = args[++i];
    }
    found->set(c, a, value);
  }
  // The files themselves are read and checked by http::make_tls_context at start-up.
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    throw std::invalid_argument(std::string(c.tls_cert.empty() ? "FC25_TLS_CERT (--tls-cert)" : "FC25_TLS_KEY (--tls-key)") +
                                " is missing: HTTPS needs both a certificate (--tls-cert) and its key (--tls-key)");
  }
  if (!c.tls_cert.empty()) c.secure_cookies = true;
  if (c.db.empty()) c.db = c.data_dir / "fc25.sqlite3";
  if (c.threads == 0) c.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (c.denoise_workers == 0) c.denoise_workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return c;
}

std::string Config::describe() const {
  std::ostringstream o;
  o << "bind=" << bind << " port=" << port << " data_dir=" << data_dir.string() << " db="
    << (database_url.empty() ? db.string() : storage::redact_database_url(database_url) + " db_connections=" +
                                                 std::to_string(db_connections))
    << " web_dir=" << web_dir.string() << " model_dir=" << (model_dir.empty() ? "-" : model_dir.string())
    << " denoiser=" << denoiser << " channel_backend=" << channel_backend;
  if (channel_backend == "redis") o << " redis=" << redis_host << ":" << redis_port;
  o << " node_url=" << (node_url.empty() ? "-" : node_url) << " cluster_secret=" << (cluster_secret.empty() ? "-" : "set");
  o << " log_level=" << log_level << " threads=" << threads << " secure_cookies=" << (secure_cookies ? 1 : 0)
    << " tls=" << (tls_cert.empty() ? "-" : tls_cert.string())
    << " trusted_proxies=" << (trusted_proxies.empty() ? std::string("-") : std::to_string(trusted_proxies.size()))
    << " record_raw=" << (record_raw ? 1 : 0) << " media_address=" << (media_address.empty() ? "-" : media_address) << " stun=" << (stun.empty() ? "-" : stun) << " turn=" << turn.size()
    << " media_timeout_ms=" << media_timeout_ms << " jitter_ms=" << jitter_ms << " ingest_fec=" << (ingest_fec ? 1 : 0)
    << " packet_ms=" << (packet_ms ? std::to_string(packet_ms) : std::string("auto")) << " listener_opus=" << listener_opus
    << " listener_transport=" << listener_transport << " listener_port=" << listener_port
    << " listener_senders=" << (listener_senders < 0 ? std::string("auto") : std::to_string(listener_senders))
    << " denoise_workers=" << denoise_workers << " isa=" << isa << " prefetch=" << prefetch << " bf16_dot=" << bf16_dot << " precision=" << precision << " rt_priority=" << realtime_priority
    << " registrations_per_address=" << registrations_per_address << "/" << registration_window_s << "s"
    << " min_free_mb=" << min_free_mb << " http_timeout_s=" << http_timeout_s
    << " retention_days=" << (retention_days ? std::to_string(retention_days) : "-")
    << " quota_mb=" << (quota_mb ? std::to_string(quota_mb) : "-") << " mic_test_s=" << mic_test_s
    << " reconnect_grace_s=" << reconnect_grace_s;
  o << " max_sockets_per_user=" << max_sockets_per_user;
  return o.str();
}

std::string serve_usage() {
  return R"(usage: fc25 serve [options]

Serves the fc25 web app and API. Every option also has an environment variable; the option wins.

  --bind ADDR              FC25_BIND        address to listen on (default 127.0.0.1)
  --port N                 FC25_PORT        port (default 8000; 0 = any free port)
  --port-file PATH                          write the bound port to PATH once listening
  --data-dir DIR           FC25_DATA_DIR    database, streamed_audios/, media (default ./var)
  --db FILE                FC25_DB          SQLite database (default DATA_DIR/fc25.sqlite3)
  --database-url URL       FC25_DATABASE_URL  PostgreSQL instead of SQLite: postgresql://user:password@host:port/db
                           (several server processes or machines share it; migrations run at start)
  --db-connections N       FC25_DB_CONNECTIONS  PostgreSQL connections, and threads that use them (default 8)
  --web-dir DIR            FC25_WEB_DIR     pages and scripts (default: the checkout's web/)
  --model-dir DIR          FC25_MODEL_DIR   DeepFilterNet3 model directory
  --denoiser NAME          FC25_DENOISER    dfn3 | classic | passthrough (default dfn3)
  --channel-backend NAME   CHANNEL_BACKEND  memory | redis (default memory)
  --node-url URL           FC25_NODE_URL    where the other nodes of a cluster reach this one (default http://BIND:PORT)
  --cluster-secret S       FC25_CLUSTER_SECRET  shared by a cluster's nodes (16+ characters); GET /api/cluster asks
                           for it as "Authorization: Bearer S" (without one: loopback clients only)
  --redis-host HOST        REDIS_HOST       (default 127.0.0.1)
  --redis-port N           REDIS_PORT       (default 6379)
  --log-level LEVEL        FC25_LOG_LEVEL   trace | debug | info | warn | error (default info)
  --threads N              FC25_THREADS     io threads (default: one per core)
  --secure-cookies 0|1     FC25_SECURE_COOKIES  mark cookies Secure (behind a proxy that terminates TLS)
  --tls-cert FILE          FC25_TLS_CERT    serve HTTPS only, with this PEM certificate (chain); cookies are Secure
  --tls-key FILE           FC25_TLS_KEY     the certificate's PEM private key (unencrypted)
  --trusted-proxies ADDRS  FC25_TRUSTED_PROXIES  proxies (IP addresses, comma-separated) whose X-Forwarded-For
                           names the client, for the per-address limits (HAProxy in front of a node)
  --record-raw 0|1         FC25_RECORD_RAW  also keep each stream's unprocessed input ({user}_{session}_raw.wav)
  --media-address IP       FC25_MEDIA_ADDRESS  the address the server's WebRTC candidates announce (its public
                                              address behind a 1:1 NAT; default: the machine's own)
  --stun URL               FC25_STUN        stun://host:port, used by the server and handed to pages
  --turn URLS              FC25_TURN        turn://user:password@host:port[,...], likewise
  --media-timeout-ms N     FC25_MEDIA_TIMEOUT_MS  a live stream with no audio this long ends (default 10000)
  --jitter-ms N            FC25_JITTER_MS   receive jitter buffer of the ingest (default 20)
  --ingest-fec 0|1         FC25_INGEST_FEC  rebuild lost packets from the next one's redundancy instead of
                           concealing them; delays every stream by one packet (default 0)
  --packet-ms auto|10|20   FC25_PACKET_MS   audio packet length, asked of broadcasters' pages and sent to
                           listeners: 10 ms is heard ~10 ms sooner, 20 ms halves the packets; auto (default)
                           10 while the denoise workers take each packet as it comes, 20 once they batch
  --listener-opus M        FC25_LISTENER_OPUS  the listeners' encoder: lowdelay (default) | voice (4 ms later,
                           three times the encoding time, conceals lost packets a little better)
  --listener-transport T   FC25_LISTENER_TRANSPORT  shared (default: every listener a connection on one ICE-lite
                           transport) | webrtcbin (a GStreamer peer connection per listener)
  --listener-port N        FC25_LISTENER_PORT  the shared transport's UDP port (default 0: picked at start)
  --listener-senders N     FC25_LISTENER_SENDERS  threads that share a large audience's copies with its stream's
                           own (default auto: one fewer than the cores)
  --denoise-workers N      FC25_DENOISE_WORKERS  denoise scheduler threads (default: one per core)
  --isa NAME               FC25_ISA         the denoise engine's vector code: auto | avx512 | avx2 | portable (default auto:
                           the best this processor has)
  --prefetch M             FC25_PREFETCH    whether the engine asks for a GRU's weights ahead in software: auto | on |
                           off (default auto: off on AMD processors, on elsewhere; the audio is the same)
  --bf16-dot M             FC25_BF16_DOT    with bf16, whether the GRUs' products for a batch of streams run two
                           rows per AVX512-BF16 vdpbf16ps: auto | on | off (default auto: where the processor has it; the audio is the same)
  --precision P            FC25_PRECISION   the denoise engine's weights: fp32 | bf16 (default fp32; bf16 is faster,
                           its output 40 dB or more from fp32's on every test recording: docs/quality.md)
  --rt-priority N          FC25_RT_PRIORITY  real-time (SCHED_FIFO) priority for them when permitted (default 10; 0 off)
  --max-sockets-per-user N  FC25_MAX_SOCKETS_PER_USER  presence sockets one user may hold in a process (default 32;
                           0 no limit); one more is refused 429 too_many_sockets
  --registrations-per-address N  FC25_REGISTRATIONS_PER_ADDRESS  registrations one address may make per window
                           (default 5; 0 no limit); more answer 429 with Retry-After
  --registration-window-s N  FC25_REGISTRATION_WINDOW_S  that window in seconds (default 600)
  --http-timeout-s N       FC25_HTTP_TIMEOUT_S  a request must arrive, and a client take each part of an answer, within N s (default 30)
  --min-free-mb N          FC25_MIN_FREE_MB  free space in DATA_DIR needed to go live (default 256; 0 off); less: 507
  --retention-days N       FC25_RETENTION_DAYS  recordings older than N days are deleted, at start and hourly (default 0: kept)
  --mic-test-s N           FC25_MIC_TEST_S  how long a microphone test (Test microphone) may run (default 60)
  --quota-mb N             FC25_QUOTA_MB    a user whose recordings take N MB cannot go live until some are deleted
                           (default 0: no quota)
)";
}

}  // namespace fc25::app
