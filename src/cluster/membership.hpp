#pragma once
// Cluster membership: which fc25 nodes are up and what each holds. Each node keeps a lease in Redis
// (fc25:node:<id>, a JSON value with a TTL of a few seconds, renewed every second); a node whose lease lapsed has
// stopped or lost Redis. Reads and writes happen on a thread of its own (hiredis, blocking, with deadlines), so
// nothing here ever waits on Redis for a caller: nodes() answers from the last read.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace fc25::cluster {

// What a node says of itself in its lease.
struct NodeInfo {
  std::string node_id;
  std::string url;               // where other nodes reach it (FC25_NODE_URL)
  std::string media_address;     // where pages reach its WebRTC ports (FC25_MEDIA_ADDRESS; empty: its own)
  std::string disk_id;           // its recordings directory (recording::Library::disk_id): whose files it serves
  std::string host;
  std::int64_t pid = 0;
  std::int64_t started_at = 0;   // epoch ms
  std::int64_t renewed_at = 0;   // epoch ms of the lease's last renewal
  std::int64_t live_streams = 0;
  std::int64_t listeners = 0;
};

struct Load {
  std::int64_t live_streams = 0;
  std::int64_t listeners = 0;
};

struct Options {
  std::string redis_host = "127.0.0.1";
  int redis_port = 6379;
  std::string node_id;
  std::string url;
  std::string media_address;
  std::string disk_id;
  std::chrono::milliseconds lease{5000};   // the lease's TTL
  std::chrono::milliseconds renew{1000};   // how often it is renewed (and the others read)
  // A node seen before is gone from a read (its lease lapsed, or it gave it up stopping cleanly). Called on the
  // membership thread; not after a read of this node's own failed (it then knows nothing of the others).
  std::function<void(const std::string& node_id)> on_left;
};

class Membership {
 public:
  // `load` is asked once per renewal, on the membership thread.
  Membership(Options options, std::function<Load()> load);
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  void start();
  // Ends the thread and gives up the lease at once (a clean stop is not a lapse). Idempotent.
  void stop();

  // The nodes whose lease was current at the last read, this one first; when Redis has not been reached yet,
  // only this one.
  std::vector<NodeInfo> nodes() const;
  // The URL of the node with this id, as last read; nullopt when it holds no lease.
  std::optional<std::string> url_of_node(const std::string& node_id) const;
  // The URL of the node serving this recordings disk: the newest with it (a node restarted on its disk replaces its
  // predecessor, whose lease may not have lapsed yet; nodes sharing one directory are all as good).
  std::optional<std::string> url_of_disk(const std::string& disk_id) const;
  // Whether the last renewal reached Redis.
  bool connected() const { return connected_.load(); }
  const Options& options() const { return options_; }

 private:
  void loop();
  NodeInfo self() const;

  Options options_;
  std::function<Load()> load_;
  NodeInfo self_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<NodeInfo> nodes_;
  std::atomic<bool> running_{false};
  std::atomic<bool> connected_{false};
  std::thread thread_;
};

// The lease's key and value (for tests and the reader).
std::string lease_key(const std::string& node_id);
std::string lease_json(const NodeInfo& n);
std::optional<NodeInfo> parse_lease(const std::string& json);

}  // namespace fc25::cluster
