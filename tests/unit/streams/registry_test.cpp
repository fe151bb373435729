// The registry on a real SQLite file, with a sink that records what users would be told.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "core/api_error.hpp"
#include "core/crypto.hpp"
#include "core/time.hpp"
#include "streams/registry.hpp"

namespace fc25::streams {
namespace {

struct RecordingSink : core::EventSink {
  std::mutex mu;
  std::vector<std::pair<std::string, nlohmann::json>> events;
  void send_to_user(const std::string& username, const nlohmann::json& event) override {
    std::lock_guard lock(mu);
    events.emplace_back(username, event);
  }
  int count(const std::string& user, bool is_streaming) {
    std::lock_guard lock(mu);
    int n = 0;
    for (auto& [u, e] : events)
      if (u == user && e["type"] == "streaming_status" && e["is_streaming"] == is_streaming) ++n;
    return n;
  }
};

class RegistryTest : public ::testing::Test {
 public:
  void SetUp() override {
    store = storage::open_sqlite_store(path);
    alice = *store->create_user("alice", "h", 1);
    bob = *store->create_user("bob", "h", 1);
    auto r = store->create_request(alice.id, bob.id, 1);
    store->resolve_request(r->id, "accepted", 1);
    remake(std::chrono::milliseconds(300));
  }
  // A registry whose streams wait `grace` for their page to come back.
  void remake(std::chrono::milliseconds grace) {
    registry.reset();
    RegistryOptions o{"node-under-test"};
    o.reconnect_grace = grace;
    registry = std::make_unique<StreamRegistry>(io, *store, sink, o);
  }
  // The streaming_status states `user` was told of alice's stream, in order.
  std::vector<std::string> states(const std::string& user) {
    std::lock_guard lock(sink.mu);
    std::vector<std::string> out;
    for (auto& [u, e] : sink.events)
      if (u == user && e["type"] == "streaming_status" && e["username"] == "alice") out.push_back(e["state"]);
    return out;
  }
  void TearDown() override {
    registry.reset();
    store.reset();
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
  }
  void run_io_for(std::chrono::milliseconds d) {
    io.restart();
    io.run_for(d);
  }

  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("fc25-streams-" + std::to_string(::getpid()) + "-" + core::random_token_hex(4) + ".sqlite3");
  boost::asio::io_context io;
  RecordingSink sink;
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<StreamRegistry> registry;
  storage::User alice, bob;
};

TEST_F(RegistryTest, StartTellsFriendsAndOwnTabsAndRefusesASecondTab) {
  auto s = registry->start(alice, "tab1");
  EXPECT_TRUE(s.created);
  EXPECT_EQ(sink.count("bob", true), 1);
  EXPECT_EQ(sink.count("alice", true), 1);
  EXPECT_FALSE(registry->start(alice, "tab1").created);
  try {
    registry->start(alice, "tab2");
    FAIL() << "a second tab must be refused";
  } catch (const core::ApiError& e) {
    EXPECT_EQ(e.status(), 409);
    EXPECT_EQ(e.code(), "already_streaming");
  }
  EXPECT_THROW(registry->start(alice, "bad id!"), core::ApiError);
  EXPECT_EQ(registry->live_count(), 1u);
}

// Each stop path, called twice: one end in the store, one notice to friends.
TEST_F(RegistryTest, EveryStopPathIsIdempotent) {
  struct Path {
    const char* reason;
    std::function<void(RegistryTest&, std::int64_t session)> stop;
  };
  const Path paths[] = {
      {"user", [](RegistryTest& t, std::int64_t) { t.registry->stop_user(t.alice, std::nullopt, EndReason::user); }},
      {"page_unload",
       [](RegistryTest& t, std::int64_t s) { t.registry->stop_user(t.alice, s, EndReason::page_unload); }},
      {"socket_closed",
       [](RegistryTest& t, std::int64_t) {
         t.registry->on_socket_closed(t.alice.id, "tab1");
         t.run_io_for(std::chrono::milliseconds(1000));  // 250 ms for a beacon, then 300 ms of grace
       }},
      {"webrtc_failed", [](RegistryTest& t, std::int64_t s) { t.registry->stop_session(s, EndReason::webrtc_failed); }},
      {"media_timeout", [](RegistryTest& t, std::int64_t s) { t.registry->stop_session(s, EndReason::media_timeout); }},
      {"server_shutdown", [](RegistryTest& t, std::int64_t) { t.registry->stop_all(EndReason::server_shutdown); }},
  };
  int expected_stops = 0;
  for (auto& p : paths) {
    auto s = registry->start(alice, "tab1").stream.session_id;
    p.stop(*this, s);
    p.stop(*this, s);
    ++expected_stops;
    auto row = store->stream_session(s);
    ASSERT_TRUE(row && row->ended_at) << p.reason;
    EXPECT_EQ(row->end_reason, p.reason);
    EXPECT_FALSE(store->active_stream(alice.id)) << p.reason;
    EXPECT_FALSE(store->user_by_id(alice.id)->is_streaming) << p.reason;
    EXPECT_EQ(sink.count("bob", false), expected_stops) << p.reason << ": friends told exactly once";
    EXPECT_EQ(registry->live_count(), 0u) << p.reason;
  }
}

TEST_F(RegistryTest, AnotherTabClosingDoesNotStopTheStream) {
  registry->start(alice, "owner");
  registry->on_socket_closed(alice.id, "someone-else");
  run_io_for(std::chrono::milliseconds(400));
  EXPECT_TRUE(store->active_stream(alice.id));
  EXPECT_EQ(sink.count("bob", false), 0);
}

// A network blip: the owning tab's socket closes, friends see "reconnecting", the tab says it is back on a new
// socket, friends see it live again; the same session goes on and never ends.
TEST_F(RegistryTest, APageBackWithinTheGraceKeepsItsStream) {
  remake(std::chrono::milliseconds(1500));
  auto s = registry->start(alice, "tab1").stream.session_id;
  registry->on_socket_closed(alice.id, "tab1");
  run_io_for(std::chrono::milliseconds(400));
  auto a = store->active_stream(alice.id);
  ASSERT_TRUE(a && a->socket_lost_at);
  EXPECT_EQ(store->live_status(alice.id).reconnecting_since, a->socket_lost_at);
  EXPECT_EQ(states("bob"), (std::vector<std::string>{"live", "reconnecting"}));
  try {
    registry->resume(alice, "tab2", s);
    FAIL() << "another tab cannot resume the stream";
  } catch (const core::ApiError& e) {
    EXPECT_EQ(e.code(), "other_tab");
  }
  registry->resume(alice, "tab1", s);
  EXPECT_EQ(states("bob"), (std::vector<std::string>{"live", "reconnecting", "live"}));
  EXPECT_EQ(states("alice"), (std::vector<std::string>{"live", "reconnecting", "live"}));
  run_io_for(std::chrono::milliseconds(2000));
  a = store->active_stream(alice.id);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->session_id, s);
  EXPECT_FALSE(a->reconnecting_since());
  EXPECT_EQ(sink.count("bob", false), 0);
}

// Audio lost, then the socket too: when neither is back in time the stream ends, named by what was lost first.
TEST_F(RegistryTest, TroubleOutlastingTheGraceEndsTheStreamByItsFirstCause) {
  auto s = registry->start(alice, "tab1").stream.session_id;
  registry->lost(s, storage::Trouble::media);
  registry->lost(s, storage::Trouble::media);  // once is enough
  registry->on_socket_closed(alice.id, "tab1");
  run_io_for(std::chrono::milliseconds(1000));
  auto row = store->stream_session(s);
  ASSERT_TRUE(row && row->ended_at);
  EXPECT_EQ(row->end_reason, "webrtc_failed");
  EXPECT_EQ(states("bob"), (std::vector<std::string>{"live", "reconnecting", "offline"}));

  // Audio back in time: live again, nothing ends.
  remake(std::chrono::milliseconds(1500));
  auto s2 = registry->start(alice, "tab1").stream.session_id;
  registry->lost(s2, storage::Trouble::media);
  run_io_for(std::chrono::milliseconds(200));
  registry->back(s2, storage::Trouble::media);
  run_io_for(std::chrono::milliseconds(1800));
  EXPECT_TRUE(store->active_stream(alice.id));
  EXPECT_EQ(states("bob"), (std::vector<std::string>{"live", "reconnecting", "offline", "live", "reconnecting", "live"}));
}

// Without a grace, a closed socket ends the stream as soon as a beacon could have; silent audio is left to the media
// watchdog.
TEST_F(RegistryTest, WithoutAGraceTheSocketEndsTheStreamAtOnce) {
  remake(std::chrono::milliseconds(0));
  auto s = registry->start(alice, "tab1").stream.session_id;
  registry->lost(s, storage::Trouble::media);
  EXPECT_TRUE(store->active_stream(alice.id));
  registry->on_socket_closed(alice.id, "tab1");
  run_io_for(std::chrono::milliseconds(400));
  auto row = store->stream_session(s);
  ASSERT_TRUE(row && row->ended_at);
  EXPECT_EQ(row->end_reason, "socket_closed");
}

TEST_F(RegistryTest, AStaleSessionIdStopsNothing) {
  auto old_session = registry->start(alice, "tab1").stream.session_id;
  registry->stop_user(alice, std::nullopt, EndReason::user);
  registry->start(alice, "tab2");
  EXPECT_FALSE(registry->stop_user(alice, old_session, EndReason::page_unload));
  EXPECT_TRUE(store->active_stream(alice.id));
}

TEST_F(RegistryTest, RestartEndsStreamsOfDeadNodesOnlyTwiceSafely) {
  // A crashed process on this host (a pid that no longer exists) and a live sibling (this test's own pid).
  store->heartbeat({"crashed", [] { char b[256] = {0}; gethostname(b, 255); return std::string(b); }(), 999999, 1});
  store->heartbeat({"sibling", [] { char b[256] = {0}; gethostname(b, 255); return std::string(b); }(),
                    static_cast<std::int64_t>(::getpid()), std::numeric_limits<std::int64_t>::max() / 2});
  auto orphan = store->start_stream(alice.id, "t", 1, "crashed").stream.session_id;
  auto sibling = store->start_stream(bob.id, "t", 1, "sibling").stream.session_id;
  EXPECT_EQ(registry->recover_orphans(), 1u);
  EXPECT_EQ(registry->recover_orphans(), 0u);
  EXPECT_EQ(store->stream_session(orphan)->end_reason, "server_restart");
  EXPECT_FALSE(store->stream_session(sibling)->ended_at) << "a live sibling's stream is left alone";
  EXPECT_EQ(sink.count("bob", false), 1);
}

// A page's Stop, a media failure and a media timeout reach one stream from three io threads at once: it ends once,
// with one reason, and friends hear it once. (Under ThreadSanitizer this also checks that the stream's state is
// only touched under the registry's lock.)
TEST_F(RegistryTest, ConcurrentStopsOfOneStreamEndItOnce) {
  for (int round = 1; round <= 20; ++round) {
    auto s = registry->start(alice, "tab1").stream.session_id;
    std::atomic<int> won{0};
    std::vector<std::thread> threads;
    for (auto reason : {EndReason::user, EndReason::webrtc_failed, EndReason::media_timeout}) {
      threads.emplace_back([&, reason] {
        if (registry->stop_session(s, reason)) ++won;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(won.load(), 1) << "round " << round;
    EXPECT_EQ(registry->live_count(), 0u);
    EXPECT_FALSE(store->active_stream(alice.id));
    EXPECT_EQ(sink.count("bob", false), round);
  }
}

// The store cannot take the end of a stream (another writer holds the database past its busy timeout): the stream
// run here still ends at once (media finished, friends told, no other stop finds it half-stopped), and the end is
// written on the next heartbeat with the reason and the time it ended; the user can go live again.
TEST_F(RegistryTest, AStreamEndsWhenTheStoreCannotRecordItAndTheEndIsWrittenLater) {
  using namespace std::chrono_literals;
  registry = std::make_unique<StreamRegistry>(io, *store, sink, RegistryOptions{"node-locked", 250ms, 50ms});
  std::atomic<int> media_endings{0};
  MediaHooks hooks;
  hooks.ending = [&](const storage::ActiveStream&, EndReason, bool local) { media_endings += local ? 1 : 0; };
  registry->set_media_hooks(hooks);
  auto s = registry->start(alice, "tab1").stream.session_id;

  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto before = core::now_ms();
  auto stopped = registry->stop_user(alice, std::nullopt, EndReason::user);  // waits out the busy timeout
  EXPECT_TRUE(stopped);
  EXPECT_EQ(media_endings.load(), 1);
  EXPECT_EQ(registry->live_count(), 0u);
  EXPECT_EQ(sink.count("bob", false), 1);
  EXPECT_FALSE(registry->stop_session(s, EndReason::media_timeout)) << "it has ended; a second stop is no stop";
  EXPECT_EQ(media_endings.load(), 1);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);

  registry->start_housekeeping();  // its first beat runs now
  auto row = store->stream_session(s);
  ASSERT_TRUE(row && row->ended_at);
  EXPECT_EQ(row->end_reason, "user");
  EXPECT_GE(*row->ended_at, before);
  EXPECT_LT(*row->ended_at, before + 4000) << "the time it ended, not the time it was written";
  EXPECT_FALSE(store->active_stream(alice.id));
  EXPECT_EQ(sink.count("bob", false), 1) << "friends are told once";
  EXPECT_TRUE(registry->start(alice, "tab1").created);
}

bool has_node(storage::Store& store, const std::string& id) {
  for (auto& n : store.nodes())
    if (n.node_id == id) return true;
  return false;
}

// The heartbeat runs on an io thread while shutdown stops it from another: once stopped, the node is forgotten for
// good and nothing is left scheduled (the io thread runs out of work and returns).
TEST_F(RegistryTest, HousekeepingStopsCleanlyWhileBeatingOnAnotherThread) {
  using namespace std::chrono_literals;
  registry = std::make_unique<StreamRegistry>(io, *store, sink, RegistryOptions{"node-beating", 250ms, 1ms});
  registry->start_housekeeping();
  EXPECT_TRUE(has_node(*store, "node-beating"));
  io.restart();
  auto work = boost::asio::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });
  std::this_thread::sleep_for(100ms);  // many beats
  registry->stop_housekeeping();
  work.reset();
  io_thread.join();
  EXPECT_FALSE(has_node(*store, "node-beating"));
  registry->start_housekeeping();  // and it starts again
  EXPECT_TRUE(has_node(*store, "node-beating"));
  registry.reset();  // the destructor stops it
  EXPECT_FALSE(has_node(*store, "node-beating"));
}

}  // namespace
}  // namespace fc25::streams
