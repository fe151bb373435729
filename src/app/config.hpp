#pragma once
// fc25 serve's configuration: one struct, filled once from the environment and then from flags (flags win),
// validated at start-up. Every field says what it is for.
#include <filesystem>
#include <string>
#include <vector>

namespace fc25::app {

struct Config {
  std::string bind = "127.0.0.1";          // FC25_BIND, --bind: address to listen on
  int port = 8000;                         // FC25_PORT, --port: 0 picks any free port
  std::filesystem::path port_file;         // --port-file: where to write the bound port once listening
  std::filesystem::path data_dir = "var";  // FC25_DATA_DIR, --data-dir: database, streamed_audios/, media
  std::filesystem::path db;                // FC25_DB, --db: SQLite file (default data_dir/fc25.sqlite3)
  std::string database_url;                // FC25_DATABASE_URL, --database-url: postgresql://... instead of SQLite
  int db_connections = 8;                  // FC25_DB_CONNECTIONS, --db-connections: PostgreSQL connections, and the
                                           // threads that make database calls off the io threads
  std::filesystem::path web_dir;           // FC25_WEB_DIR, --web-dir: pages and scripts (default: the checkout's web/)
  std::filesystem::path model_dir;         // FC25_MODEL_DIR, --model-dir: DeepFilterNet3 model directory
  std::string denoiser = "dfn3";           // FC25_DENOISER, --denoiser: dfn3 | classic | passthrough
  std::string channel_backend = "memory";  // CHANNEL_BACKEND, --channel-backend: memory | redis
  std::string node_url;                    // FC25_NODE_URL, --node-url: where the other nodes reach this one
                                           // (default http://BIND:PORT); shown in GET /api/cluster
  std::string cluster_secret;              // FC25_CLUSTER_SECRET, --cluster-secret: shared by a cluster's nodes;
                                           // GET /api/cluster wants it (without one: loopback clients only)
  std::string redis_host = "127.0.0.1";    // REDIS_HOST, --redis-host
  int redis_port = 6379;                   // REDIS_PORT, --redis-port
  std::string log_level = "info";          // FC25_LOG_LEVEL, --log-level
  int threads = 0;                         // FC25_THREADS, --threads: io threads (0: one per core)
  bool secure_cookies = false;             // FC25_SECURE_COOKIES, --secure-cookies: mark cookies Secure (behind a
                                           // proxy that terminates TLS; always on with tls_cert)
  std::filesystem::path tls_cert;          // FC25_TLS_CERT, --tls-cert: PEM certificate chain; serve HTTPS only
  std::vector<std::string> trusted_proxies;  // FC25_TRUSTED_PROXIES, --trusted-proxies: IP addresses (comma-separated)
                                           // whose X-Forwarded-For names the client (HAProxy in front of a node)
  std::filesystem::path tls_key;           // FC25_TLS_KEY, --tls-key: its PEM private key (both or neither)
  bool record_raw = false;                 // FC25_RECORD_RAW, --record-raw: also keep the unprocessed input
  std::string stun;                        // FC25_STUN, --stun: stun://host:port for server and pages
  std::string media_address;   // where pages reach this node's WebRTC ports (1:1 NAT); empty: its own addresses
  std::vector<std::string> turn;           // FC25_TURN, --turn: turn://user:pass@host:port (comma-separated)
  int media_timeout_ms = 10000;            // FC25_MEDIA_TIMEOUT_MS, --media-timeout-ms: no audio this long ends a stream
  int jitter_ms = 20;                      // FC25_JITTER_MS, --jitter-ms: receive jitter buffer for ingest
  bool ingest_fec = false;                 // FC25_INGEST_FEC, --ingest-fec: rebuild lost packets (+1 packet)
  int packet_ms = 0;                       // FC25_PACKET_MS, --packet-ms: audio packet length, both ways (10|20; 0: auto)
  std::string listener_opus = "lowdelay";  // FC25_LISTENER_OPUS, --listener-opus: lowdelay | voice
  std::string listener_transport = "shared";  // FC25_LISTENER_TRANSPORT, --listener-transport: shared | webrtcbin
  int listener_port = 0;                   // FC25_LISTENER_PORT, --listener-port: the shared transport's UDP port (0: any)
  int listener_senders = -1;               // FC25_LISTENER_SENDERS, --listener-senders: its sender threads (-1: auto)
  int realtime_priority = 10;              // FC25_RT_PRIORITY, --rt-priority: SCHED_FIFO priority of denoise workers (0: off)
  int denoise_workers = 0;                 // FC25_DENOISE_WORKERS, --denoise-workers: scheduler threads (0: one per core)
  std::string precision = "fp32";           // FC25_PRECISION, --precision: the engine's weights, fp32 | bf16
  std::string prefetch = "auto";            // FC25_PREFETCH, --prefetch: weights asked for ahead (auto: by vendor)
  std::string bf16_dot = "auto";            // FC25_BF16_DOT, --bf16-dot: bf16 GRU products by vdpbf16ps (auto: where present)
  std::string isa = "auto";                 // FC25_ISA, --isa: the engine's kernel path (auto: the best this CPU has)
  int max_sockets_per_user = 32;           // FC25_MAX_SOCKETS_PER_USER, --max-sockets-per-user: presence sockets (0: no limit)
  int registrations_per_address = 5;       // FC25_REGISTRATIONS_PER_ADDRESS, --registrations-per-address: per window (0: no limit)
  int registration_window_s = 600;         // FC25_REGISTRATION_WINDOW_S, --registration-window-s: that window, seconds
  int http_timeout_s = 30;                 // FC25_HTTP_TIMEOUT_S, --http-timeout-s: a request must arrive, and each part of an answer be taken, within this
  int min_free_mb = 256;                   // FC25_MIN_FREE_MB, --min-free-mb: free space a new stream needs (0: off)
  int retention_days = 0;                  // FC25_RETENTION_DAYS, --retention-days: recordings older go (0: kept)
  int reconnect_grace_s = 15;              // FC25_RECONNECT_GRACE_S, --reconnect-grace-s: how long a live stream waits
                                           // for its page to come back after a network blip (0: ends at once)
  int mic_test_s = 60;                     // FC25_MIC_TEST_S, --mic-test-s: how long a microphone test may run
  int quota_mb = 0;                        // FC25_QUOTA_MB, --quota-mb: a user's recordings may take this much (0: no quota)

  std::string describe() const;            // one line for the start-up log
};

// Reads the environment, then `args` (flags after the subcommand). Throws std::invalid_argument naming the
// variable or flag and what was expected. Unknown flags are errors.
Config load_config(const std::vector<std::string>& args);

// The usage text of `fc25 serve`.
std::string serve_usage();

}  // namespace fc25::app
