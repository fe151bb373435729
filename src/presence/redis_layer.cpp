// Redis pub/sub channel layer (hiredis, synchronous API on two threads of its own so io threads never block):
// a publisher thread drains a queue and pipelines PUBLISH commands; a subscriber thread PSUBSCRIBEs to every
// fc25 group and hands messages to the io_context. Both reconnect with backoff; after the subscriber reconnects,
// on_reconnect lets presence send fresh snapshots, since events published during the outage were lost.
// A Redis that hangs (stopped, overloaded, a network that drops packets without a reset) is found by PING: a
// connection silent for kPingAfter is pinged, and one that has answered nothing for kDeadAfter is dropped and
// replaced, so a lost connection is noticed within 2 s even when no TCP error ever arrives.
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <boost/asio/post.hpp>
#include <hiredis/hiredis.h>

#include "core/guard.hpp"
#include "core/log.hpp"
#include "presence/channel_layer.hpp"

namespace fc25::presence {
namespace {

constexpr const char* kPrefix = "fc25:group:";
constexpr std::size_t kMaxQueued = 100000;
constexpr auto kPingAfter = std::chrono::milliseconds(500);     // silence after which a connection is pinged
constexpr auto kDeadAfter = std::chrono::milliseconds(1500);    // silence (PING unanswered) after which it is dropped
constexpr auto kPollEvery = std::chrono::milliseconds(250);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);
using Clock = std::chrono::steady_clock;

class RedisLayer final : public ChannelLayer {
 public:
  RedisLayer(boost::asio::io_context& io, std::string host, int port)
      : io_(io), host_(std::move(host)), port_(port), log_(core::logger("channel")) {}
  ~RedisLayer() override { stop(); }

  void start(Receiver on_message, Reconnected on_reconnect) override {
    receiver_ = std::move(on_message);
    reconnected_ = std::move(on_reconnect);
    running_ = true;
    publisher_ = std::thread([this] { core::run_guarded("redis publisher", [this] { publish_loop(); }); });
    subscriber_ = std::thread([this] { core::run_guarded("redis subscriber", [this] { subscribe_loop(); }); });
  }

  void publish(const std::string& group, std::string payload) override {
    {
      std::lock_guard lock(mu_);
      if (queue_.size() >= kMaxQueued) {
        log_->warn("channel send dropped group={}: {} messages already waiting for Redis", group, queue_.size());
        return;
      }
      queue_.emplace_back(kPrefix + group, std::move(payload));
    }
    cv_.notify_all();  // the subscriber's backoff waits on cv_ too: notify_one could wake only that one
  }

  void stop() override {
    gate_.close();  // handlers already posted to the io threads deliver nothing once stop() has returned
    if (!running_.exchange(false)) return;
    cv_.notify_all();
    {
      std::lock_guard lock(sub_mu_);
      if (sub_fd_ >= 0) ::shutdown(sub_fd_, SHUT_RDWR);  // wakes the blocked read
    }
    if (publisher_.joinable()) publisher_.join();
    if (subscriber_.joinable()) subscriber_.join();
  }

  const char* name() const override { return "redis"; }

 private:
  redisContext* connect(const char* role) {
    timeval tv{2, 0};
    redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, tv);
    if (!c || c->err) {
      log_->warn("redis {} connection to {}:{} failed: {}", role, host_, port_, c ? c->errstr : "out of memory");
      if (c) redisFree(c);
      return nullptr;
    }
    // Every blocking command has a deadline: a hung server accepts connections (the kernel does) but answers nothing.
    timeval deadline{static_cast<time_t>(kDeadAfter.count() / 1000),
                     static_cast<suseconds_t>(kDeadAfter.count() % 1000 * 1000)};
    redisSetTimeout(c, deadline);
    return c;
  }

  void backoff(std::chrono::milliseconds& delay) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, delay, [this] { return !running_; });
    delay = std::min(delay * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kMaxBackoff));
  }

  static bool send_batch(redisContext* c, const std::deque<std::pair<std::string, std::string>>& batch) {
    for (auto& [channel, payload] : batch) {
      redisAppendCommand(c, "PUBLISH %b %b", channel.data(), channel.size(), payload.data(), payload.size());
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      void* reply = nullptr;
      if (redisGetReply(c, &reply) != REDIS_OK) return false;
      freeReplyObject(reply);
    }
    return true;
  }

  void publish_loop() {
    redisContext* c = nullptr;
    auto delay = std::chrono::milliseconds(100);
    auto last_answer = Clock::now();
    // On stop, what is queued is still sent (a shutdown's "stream ended" notices), if Redis is there.
    while (true) {
      bool idle = false;
      {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, kPingAfter, [this] { return !queue_.empty() || !running_; });
        if (queue_.empty() && !running_) break;
        idle = queue_.empty();
      }
      if (idle) {
        // Nothing to send: an open connection silent this long is pinged (answer within kDeadAfter, or dropped).
        if (c && Clock::now() - last_answer >= kPingAfter) {
          auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
          if (r) {
            freeReplyObject(r);
            last_answer = Clock::now();
          } else {
            log_->warn("redis publisher lost its connection: {}; reconnecting when there is something to send",
                       c->err ? c->errstr : "no answer to PING");
            redisFree(c);
            c = nullptr;
          }
        }
        continue;
      }
      if (!c) {
        c = connect("publisher");
        if (!c) {
          if (!running_) break;
          backoff(delay);
          continue;
        }
        delay = std::chrono::milliseconds(100);
      }
      std::deque<std::pair<std::string, std::string>> batch;
      {
        std::lock_guard lock(mu_);
        batch.swap(queue_);
      }
      // A connection found dead while sending is replaced and the batch sent once more on the new one.
      bool sent = send_batch(c, batch);
      if (sent) last_answer = Clock::now();
      if (!sent) {
        redisFree(c);
        c = connect("publisher");
        sent = c && send_batch(c, batch);
        if (sent) last_answer = Clock::now();
      }
      if (!sent) {
        log_->warn("redis publisher lost its connection; {} events not delivered, clients get a snapshot "
                   "after reconnect", batch.size());
        if (c) redisFree(c);
        c = nullptr;
      }
    }
    if (c) redisFree(c);
  }

  void subscribe_loop() {
    auto delay = std::chrono::milliseconds(100);
    bool first = true;
    while (running_) {
      redisContext* c = connect("subscriber");
      if (!c) { backoff(delay); continue; }
      {
        std::lock_guard lock(sub_mu_);
        sub_fd_ = c->fd;
      }
      void* r = redisCommand(c, "PSUBSCRIBE %s*", kPrefix);
      if (!r) {
        log_->debug("redis subscriber could not subscribe: {}", c->errstr);
        {
          std::lock_guard lock(sub_mu_);
          sub_fd_ = -1;
        }
        redisFree(c);
        backoff(delay);
        continue;
      }
      freeReplyObject(r);
      delay = std::chrono::milliseconds(100);
      log_->info("redis channel layer connected to {}:{}", host_, port_);
      if (!first && reconnected_) {
        boost::asio::post(io_, gate_.wrap(reconnected_));
      }
      first = false;
      std::string lost = read_messages(c);
      {
        std::lock_guard lock(sub_mu_);
        sub_fd_ = -1;
      }
      if (running_) log_->warn("redis subscriber lost its connection: {}; reconnecting", lost);
      redisFree(c);
    }
  }

  // Hands every message of a subscribed connection to the io_context until the connection fails, goes silent
  // (no answer to PING within kDeadAfter) or the layer stops; returns why it ended.
  std::string read_messages(redisContext* c) {
    auto last_answer = Clock::now();
    bool pinged = false;
    while (running_) {
      void* reply = nullptr;
      if (redisGetReplyFromReader(c, &reply) != REDIS_OK) return c->errstr;
      if (!reply) {
        // Nothing complete buffered: wait for bytes, at most kPollEvery at a time.
        pollfd p{c->fd, POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(kPollEvery.count()));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::string("poll failed: ") + std::strerror(errno);
        if (n == 0) {
          auto silent = Clock::now() - last_answer;
          if (silent >= kDeadAfter) {
            return "no answer to PING within " +
                   std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()) + " ms";
          }
          if (silent >= kPingAfter && !pinged) {
            // Allowed on a subscribed connection; answered by ["pong", ""].
            redisAppendCommand(c, "PING");
            int done = 0;
            while (!done)
              if (redisBufferWrite(c, &done) != REDIS_OK) return c->errstr;
            pinged = true;
          }
          continue;
        }
        if (redisBufferRead(c) != REDIS_OK) return c->errstr;  // also a closed connection
        continue;
      }
      last_answer = Clock::now();
      pinged = false;
      {
        auto* rep = static_cast<redisReply*>(reply);
        // pmessage: [ "pmessage", pattern, channel, payload ]
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 4 && rep->element[2]->type == REDIS_REPLY_STRING) {
          std::string channel(rep->element[2]->str, rep->element[2]->len);
          std::string payload(rep->element[3]->str, rep->element[3]->len);
          if (channel.rfind(kPrefix, 0) == 0) {
            boost::asio::post(io_, gate_.wrap([recv = receiver_, g = channel.substr(std::strlen(kPrefix)),
                                               p = std::move(payload)] { recv(g, p); }));
          }
        }
        freeReplyObject(reply);
      }
    }
    return "the layer stopped";
  }

  boost::asio::io_context& io_;
  std::string host_;
  int port_;
  std::shared_ptr<spdlog::logger> log_;
  Receiver receiver_;
  Reconnected reconnected_;
  DeliveryGate gate_;
  std::atomic<bool> running_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::string>> queue_;
  std::mutex sub_mu_;
  int sub_fd_ = -1;
  std::thread publisher_, subscriber_;
};

}  // namespace

std::unique_ptr<ChannelLayer> make_redis_layer(boost::asio::io_context& io, std::string host, int port) {
  return std::make_unique<RedisLayer>(io, std::move(host), port);
}

}  // namespace fc25::presence
