#include "cluster/membership.hpp"

#include <unistd.h>

#include <algorithm>

#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include "core/guard.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "core/time.hpp"

namespace fc25::cluster {
namespace {

constexpr const char* kKeyPrefix = "fc25:node:";

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

struct Reply {
  redisReply* r;
  explicit Reply(void* p) : r(static_cast<redisReply*>(p)) {}
  ~Reply() { if (r) freeReplyObject(r); }
  bool ok() const { return r && r->type != REDIS_REPLY_ERROR; }
};

}  // namespace

std::string lease_key(const std::string& node_id) { return kKeyPrefix + node_id; }

std::string lease_json(const NodeInfo& n) {
  return core::json_text(nlohmann::json{{"node_id", n.node_id},       {"url", n.url},
                                        {"media_address", n.media_address}, {"disk_id", n.disk_id},
                                        {"host", n.host},             {"pid", n.pid},
                                        {"started_at", n.started_at}, {"renewed_at", n.renewed_at},
                                        {"live_streams", n.live_streams}, {"listeners", n.listeners}});
}

std::optional<NodeInfo> parse_lease(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("node_id") || !j["node_id"].is_string()) return std::nullopt;
  try {
    NodeInfo n;
    n.node_id = j["node_id"].get<std::string>();
    n.url = j.value("url", "");
    n.media_address = j.value("media_address", "");
    n.disk_id = j.value("disk_id", "");
    n.host = j.value("host", "");
    n.pid = j.value("pid", std::int64_t{0});
    n.started_at = j.value("started_at", std::int64_t{0});
    n.renewed_at = j.value("renewed_at", std::int64_t{0});
    n.live_streams = j.value("live_streams", std::int64_t{0});
    n.listeners = j.value("listeners", std::int64_t{0});
    return n;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;   // a value of another shape (another version, or not ours): not a node we can use
  }
}

Membership::Membership(Options options, std::function<Load()> load)
    : options_(std::move(options)), load_(std::move(load)) {
  self_.node_id = options_.node_id;
  self_.url = options_.url;
  self_.media_address = options_.media_address;
  self_.disk_id = options_.disk_id;
  self_.host = hostname();
  self_.pid = ::getpid();
  self_.started_at = core::now_ms();
  nodes_ = {self()};
}

Membership::~Membership() { stop(); }

void Membership::start() {
  if (running_.exchange(true)) return;
  thread_ = std::thread([this] { core::run_guarded("cluster membership", [this] { loop(); }); });
}

void Membership::stop() {
  if (!running_.exchange(false)) return;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

NodeInfo Membership::self() const {
  NodeInfo n = self_;
  n.renewed_at = core::now_ms();
  if (load_) {
    core::guarded("cluster load", [&] {
      auto l = load_();
      n.live_streams = l.live_streams;
      n.listeners = l.listeners;
    });
  }
  return n;
}

std::vector<NodeInfo> Membership::nodes() const {
  std::lock_guard lock(mu_);
  return nodes_;
}

std::optional<std::string> Membership::url_of_node(const std::string& node_id) const {
  std::lock_guard lock(mu_);
  for (const auto& n : nodes_)
    if (n.node_id == node_id) return n.url;
  return std::nullopt;
}

std::optional<std::string> Membership::url_of_disk(const std::string& disk_id) const {
  std::lock_guard lock(mu_);
  const NodeInfo* newest = nullptr;
  for (const auto& n : nodes_)
    if (n.disk_id == disk_id && (!newest || n.started_at > newest->started_at)) newest = &n;
  return newest ? std::optional<std::string>(newest->url) : std::nullopt;
}

void Membership::loop() {
  auto log = core::logger("cluster");
  redisContext* c = nullptr;
  auto drop = [&](const char* why) {
    if (connected_.exchange(false)) {
      log->warn("cluster membership lost Redis {}:{}: {}; this node's lease lapses unless it is back within {} ms",
                options_.redis_host, options_.redis_port, why, options_.lease.count());
    }
    if (c) redisFree(c);
    c = nullptr;
  };
  const auto key = lease_key(options_.node_id);
  while (running_) {
    if (!c) {
      timeval tv{1, 0};
      c = redisConnectWithTimeout(options_.redis_host.c_str(), options_.redis_port, tv);
      if (!c || c->err) {
        if (c) redisFree(c);
        c = nullptr;
        if (connected_.exchange(false)) log->warn("cluster membership cannot reach Redis");
      } else {
        timeval deadline{1, 0};
        redisSetTimeout(c, deadline);
      }
    }
    if (c) {
      auto me = self();
      auto value = lease_json(me);
      Reply set(redisCommand(c, "SET %b %b PX %lld", key.data(), key.size(), value.data(), value.size(),
                             static_cast<long long>(options_.lease.count())));
      std::vector<NodeInfo> seen{me};
      bool ok = set.ok();
      // Every lease there is: SCAN (never KEYS, which blocks Redis) then MGET.
      std::vector<std::string> keys;
      std::string cursor = "0";
      while (ok) {
        Reply scan(redisCommand(c, "SCAN %s MATCH %s* COUNT 200", cursor.c_str(), kKeyPrefix));
        if (!scan.ok() || scan.r->type != REDIS_REPLY_ARRAY || scan.r->elements != 2) { ok = false; break; }
        cursor.assign(scan.r->element[0]->str, scan.r->element[0]->len);
        auto* list = scan.r->element[1];
        for (std::size_t i = 0; i < list->elements; ++i) keys.emplace_back(list->element[i]->str, list->element[i]->len);
        if (cursor == "0") break;
      }
      if (ok && !keys.empty()) {
        std::vector<const char*> argv{"MGET"};
        std::vector<std::size_t> lens{4};
        for (auto& k : keys) { argv.push_back(k.data()); lens.push_back(k.size()); }
        Reply got(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
        if (!got.ok() || got.r->type != REDIS_REPLY_ARRAY) {
          ok = false;
        } else {
          for (std::size_t i = 0; i < got.r->elements; ++i) {
            auto* e = got.r->element[i];
            if (e->type != REDIS_REPLY_STRING) continue;   // lapsed between SCAN and MGET
            auto n = parse_lease(std::string(e->str, e->len));
            if (n && n->node_id != me.node_id) seen.push_back(std::move(*n));
          }
        }
      }
      if (ok) {
        std::sort(seen.begin() + 1, seen.end(), [](auto& a, auto& b) { return a.node_id < b.node_id; });
        if (!connected_.exchange(true)) {
          log->info("cluster membership: node {} holds a lease in Redis {}:{} ({} nodes up)", me.node_id,
                    options_.redis_host, options_.redis_port, seen.size());
        }
        std::vector<std::string> before;
        {
          std::lock_guard lock(mu_);
          for (auto& n : nodes_) before.push_back(n.node_id);
          nodes_ = seen;
        }
        for (auto& n : seen)
          if (std::find(before.begin(), before.end(), n.node_id) == before.end())
            log->info("cluster: node {} joined ({})", n.node_id, n.url);
        for (auto& id : before) {
          if (std::any_of(seen.begin(), seen.end(), [&](auto& n) { return n.node_id == id; })) continue;
          log->info("cluster: node {} left (its lease lapsed or was given up)", id);
          if (options_.on_left) core::guarded("cluster node left", [&] { options_.on_left(id); });
        }
      } else {
        drop(c && c->err ? c->errstr : "a command failed");
        std::lock_guard lock(mu_);
        nodes_ = {me};
      }
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, options_.renew, [this] { return !running_; });
  }
  // A clean stop gives the lease up, so that the others see it go at once.
  if (c) {
    Reply del(redisCommand(c, "DEL %b", key.data(), key.size()));
    redisFree(c);
  }
}

}  // namespace fc25::cluster
