// Channel layers with real parts: the in-memory one, and the Redis one against a real redis-server.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include "presence/channel_layer.hpp"

namespace fc25::presence {
namespace {

using namespace std::chrono_literals;

struct Inbox {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> got;
  std::atomic<int> reconnects{0};
  void add(const std::string& g, const std::string& p) {
    std::lock_guard lock(mu);
    got.emplace_back(g, p);
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      {
        std::lock_guard lock(mu);
        if (got.size() >= n) return true;
      }
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  std::size_t size() {
    std::lock_guard lock(mu);
    return got.size();
  }
};

// An io_context running on its own thread for the test's lifetime.
struct IoThread {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{io.get_executor()};
  std::thread t{[this] { io.run(); }};
  ~IoThread() {
    guard.reset();
    io.stop();
    t.join();
  }
};

TEST(MemoryLayer, DeliversEachMessageWithItsGroupLater) {
  IoThread io;
  Inbox inbox;
  auto layer = make_memory_layer(io.io);
  layer->start([&](const std::string& g, const std::string& p) { inbox.add(g, p); }, [] {});
  layer->publish("user.alice", R"({"type":"x"})");
  layer->publish("user.bob", R"({"type":"y"})");
  ASSERT_TRUE(inbox.wait_for(2, 2s));
  std::lock_guard lock(inbox.mu);
  EXPECT_EQ(inbox.got[0], (std::pair<std::string, std::string>{"user.alice", R"({"type":"x"})"}));
  EXPECT_EQ(inbox.got[1].first, "user.bob");
}

int free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

struct RedisServer {
  int port = free_port();
  pid_t pid = -1;
  void start() {
    pid = fork();
    if (pid == 0) {
      auto p = std::to_string(port);
      execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--loglevel", "warning", static_cast<char*>(nullptr));
      _exit(127);
    }
    // Wait until it accepts connections.
    for (int i = 0; i < 200; ++i) {
      boost::asio::io_context io;
      boost::asio::ip::tcp::socket s(io);
      boost::system::error_code ec;
      s.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)}, ec);
      if (!ec) return;
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) FAIL() << "redis-server exited (is it installed?)";
      std::this_thread::sleep_for(25ms);
    }
    FAIL() << "redis-server did not start on port " << port;
  }
  void kill_now() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
  ~RedisServer() { kill_now(); }
};

TEST(RedisLayer, TwoProcessesSeeEachOthersMessagesAndSurviveARedisRestart) {
  RedisServer redis;
  redis.start();
  IoThread io;
  Inbox a_in, b_in;
  auto a = make_redis_layer(io.io, "127.0.0.1", redis.port);
  auto b = make_redis_layer(io.io, "127.0.0.1", redis.port);
  a->start([&](auto& g, auto& p) { a_in.add(g, p); }, [&] { ++a_in.reconnects; });
  b->start([&](auto& g, auto& p) { b_in.add(g, p); }, [&] { ++b_in.reconnects; });
  std::this_thread::sleep_for(300ms);  // both subscribed

  a->publish("user.bob", R"({"type":"streaming_status","username":"alice"})");
  ASSERT_TRUE(b_in.wait_for(1, 3s));
  ASSERT_TRUE(a_in.wait_for(1, 3s)) << "every process hears every group; the hub filters by local members";
  {
    std::lock_guard lock(b_in.mu);
    EXPECT_EQ(b_in.got[0].first, "user.bob");
    EXPECT_EQ(b_in.got[0].second, R"({"type":"streaming_status","username":"alice"})");
  }

  redis.kill_now();
  std::this_thread::sleep_for(200ms);
  redis.start();  // same port
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((a_in.reconnects == 0 || b_in.reconnects == 0) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GE(a_in.reconnects.load(), 1);
  EXPECT_GE(b_in.reconnects.load(), 1);
  auto before = b_in.size();
  a->publish("user.bob", R"({"type":"after"})");
  EXPECT_TRUE(b_in.wait_for(before + 1, 3s)) << "messages flow again after the reconnect";
  a->stop();
  b->stop();
}

}  // namespace
}  // namespace fc25::presence
