#include <atomic>
#include <filesystem>
#include <functional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../support/temp_db.hpp"
#include "../support/temp_pg.hpp"

#include "core/crypto.hpp"
#include "storage/store.hpp"

namespace fc25::storage {
namespace {

using fc25::testing::TempDb;
using fc25::testing::TempPgSchema;

// The store's contract, run on both backends: every test opens an empty database of its own, and `open()` gives
// another store on the same database (a second server process).
class StoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") pg_ = std::make_unique<TempPgSchema>();
    s = open();
  }
  std::unique_ptr<Store> open() {
    if (GetParam() == "postgres") return open_postgres_store(pg_->url, 4);
    return open_sqlite_store(db_.path);
  }
  int schema_version() {
    return GetParam() == "postgres" ? postgres_schema_version(pg_->url) : sqlite_schema_version(db_.path);
  }
  TempDb db_;
  std::unique_ptr<TempPgSchema> pg_;
  std::unique_ptr<Store> s;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

// Runs `fn(i)` on `n` threads at once (released together), each with its own store on the same database.
template <typename Fn>
void race(StoreContract* t, int n, std::function<std::unique_ptr<Store>()> open, Fn fn) {
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < n; ++i) stores.push_back(open());
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      fn(*stores[i], i);
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  (void)t;
}

TEST(SqliteStore, CreatesAndMigratesANewFileOnceAndReopensIt) {
  TempDb db;
  { auto s = open_sqlite_store(db.path); s->create_user("alice", "h", 1); }
  EXPECT_EQ(sqlite_schema_version(db.path), 7);
  auto again = open_sqlite_store(db.path);  // migrations already applied: nothing lost
  ASSERT_TRUE(again->user_by_name("alice"));
  EXPECT_EQ(sqlite_schema_version(db.path), 7);
}

TEST(SqliteStore, RefusesAnUnopenablePathNamingIt) {
  try {
    open_sqlite_store("/nonexistent-dir/for/sure/fc25.sqlite3");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/for/sure/fc25.sqlite3"), std::string::npos) << e.what();
  }
}

TEST(PostgresStore, AnUnreachableServerIsUnavailableNamingItWithoutThePassword) {
  // Port 1 on loopback: nothing listens there.
  try {
    open_postgres_store("postgresql://fc25:s3cret@127.0.0.1:1/fc25", 2);
    FAIL() << "expected an error";
  } catch (const Unavailable& e) {
    std::string what = e.what();
    EXPECT_EQ(e.status(), 503);
    EXPECT_EQ(e.code(), "database_unavailable");
    EXPECT_NE(what.find("127.0.0.1:1"), std::string::npos) << what;
    EXPECT_EQ(what.find("s3cret"), std::string::npos) << "the password must not reach a log: " << what;
  }
}

TEST(PostgresStore, RefusesAUrlThatIsNotPostgres) {
  EXPECT_THROW(open_postgres_store("mysql://x@127.0.0.1/db", 1), std::runtime_error);
  EXPECT_TRUE(is_postgres_url("postgres://a@b/c"));
  EXPECT_FALSE(is_postgres_url("/var/lib/fc25/fc25.sqlite3"));
}

TEST_P(StoreContract, MigratesOnceAndASecondOpenKeepsEverything) {
  s->create_user("alice", "h", 1);
  EXPECT_EQ(schema_version(), 7);
  auto again = open();   // migrations already applied: nothing lost
  ASSERT_TRUE(again->user_by_name("alice"));
  EXPECT_EQ(schema_version(), 7);
}

TEST_P(StoreContract, UsernamesAreUniqueCaseInsensitively) {
  EXPECT_TRUE(s->create_user("alice", "h", 1));
  EXPECT_FALSE(s->create_user("ALICE", "h", 1));
  EXPECT_EQ(s->list_users().size(), 1u);
  ASSERT_TRUE(s->user_by_name("Alice"));
  EXPECT_EQ(s->user_by_name("Alice")->username, "alice");
}

TEST_P(StoreContract, OneOfManyConcurrentRegistrationsOfANameWins) {
  std::atomic<int> made{0};
  race(this, 6, [this] { return open(); }, [&](Store& st, int i) {
    if (st.create_user(i % 2 ? "Carol" : "carol", "h" + std::to_string(i), 1)) ++made;
  });
  EXPECT_EQ(made.load(), 1);
  EXPECT_EQ(s->list_users().size(), 1u);
}

TEST_P(StoreContract, SessionsFindTheirUserUntilTheyExpireOrAreDeleted) {
  auto a = *s->create_user("alice", "h", 1);
  s->create_session("hash1", a.id, 10, 100);
  ASSERT_TRUE(s->user_by_session("hash1", 50));
  EXPECT_EQ(s->user_by_session("hash1", 50)->username, "alice");
  EXPECT_FALSE(s->user_by_session("hash1", 100)) << "expired at 100";
  EXPECT_FALSE(s->user_by_session("nope", 50));
  s->delete_session("hash1");
  EXPECT_FALSE(s->user_by_session("hash1", 50));
}

TEST_P(StoreContract, AcceptedRequestMakesFriendsBothWaysAndSettlesTheReverseRequest) {
  auto a = *s->create_user("alice", "h", 1), b = *s->create_user("bob", "h", 1), c = *s->create_user("carol", "h", 1);
  auto r1 = s->create_request(a.id, b.id, 2);
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->from_username, "alice");
  EXPECT_EQ(r1->to_username, "bob");
  EXPECT_EQ(r1->status, "pending");
  EXPECT_FALSE(s->create_request(b.id, a.id, 3)) << "one pending request between two users, either way";
  auto r3 = s->create_request(c.id, a.id, 3);
  ASSERT_TRUE(r3);
  EXPECT_EQ(s->incoming_requests(a.id).size(), 1u);
  EXPECT_EQ(s->outgoing_requests(a.id).size(), 1u);
  EXPECT_TRUE(s->resolve_request(r1->id, "accepted", 4));
  EXPECT_FALSE(s->resolve_request(r1->id, "declined", 5)) << "only pending requests change";
  EXPECT_TRUE(s->are_friends(a.id, b.id));
  EXPECT_TRUE(s->are_friends(b.id, a.id));
  EXPECT_EQ(s->friend_names(a.id), std::vector<std::string>{"bob"});
  EXPECT_TRUE(s->resolve_request(r3->id, "declined", 6));
  EXPECT_FALSE(s->are_friends(a.id, c.id));
  EXPECT_EQ(s->request_by_id(r3->id)->status, "declined");
  EXPECT_TRUE(s->create_request(a.id, c.id, 7)) << "a settled request does not block a new one";
  EXPECT_TRUE(s->remove_friendship(b.id, a.id));
  EXPECT_FALSE(s->remove_friendship(b.id, a.id));
  EXPECT_FALSE(s->are_friends(a.id, b.id));
}

TEST_P(StoreContract, RequestsSentBothWaysAtOnceLeaveOnePending) {
  auto a = *s->create_user("alice", "h", 1), b = *s->create_user("bob", "h", 1);
  std::atomic<int> made{0};
  race(this, 6, [this] { return open(); }, [&](Store& st, int i) {
    if (i % 2 ? st.create_request(a.id, b.id, 2) : st.create_request(b.id, a.id, 2)) ++made;
  });
  EXPECT_EQ(made.load(), 1);
  EXPECT_EQ(s->incoming_requests(a.id).size() + s->incoming_requests(b.id).size(), 1u);
}

TEST_P(StoreContract, ARequestIsResolvedOnceWhoeverRaces) {
  auto a = *s->create_user("alice", "h", 1), b = *s->create_user("bob", "h", 1);
  auto r = *s->create_request(a.id, b.id, 2);
  std::atomic<int> wins{0};
  race(this, 6, [this] { return open(); }, [&](Store& st, int i) {
    if (st.resolve_request(r.id, i % 2 ? "accepted" : "cancelled", 3)) ++wins;
  });
  EXPECT_EQ(wins.load(), 1);
  auto status = s->request_by_id(r.id)->status;
  EXPECT_EQ(s->are_friends(a.id, b.id), status == "accepted") << status;
}

TEST_P(StoreContract, OneLiveStreamPerUserAndExactlyOneEnderWins) {
  auto a = *s->create_user("alice", "h", 1);
  auto first = s->start_stream(a.id, "tab1", 10, "node");
  EXPECT_EQ(first.outcome, StartOutcome::started);
  EXPECT_EQ(first.stream.username, "alice");
  EXPECT_EQ(s->start_stream(a.id, "tab1", 11, "node").outcome, StartOutcome::already_live_same_client);
  auto elsewhere = s->start_stream(a.id, "tab2", 12, "node");
  EXPECT_EQ(elsewhere.outcome, StartOutcome::live_elsewhere);
  EXPECT_EQ(elsewhere.stream.session_id, first.stream.session_id);
  EXPECT_TRUE(s->user_by_id(a.id)->is_streaming);
  EXPECT_EQ(s->live_status(a.id).session_id, first.stream.session_id);

  // Six "processes" race to end it: one wins.
  std::atomic<int> wins{0};
  race(this, 6, [this] { return open(); }, [&](Store& st, int i) {
    if (st.end_stream(first.stream.session_id, i % 2 ? "user" : "socket_closed", 20)) ++wins;
  });
  EXPECT_EQ(wins.load(), 1);
  auto row = s->stream_session(first.stream.session_id);
  ASSERT_TRUE(row && row->ended_at);
  EXPECT_EQ(*row->ended_at, 20);
  EXPECT_TRUE(row->end_reason == "user" || row->end_reason == "socket_closed");
  EXPECT_FALSE(s->active_stream(a.id));
  EXPECT_FALSE(s->user_by_id(a.id)->is_streaming);
  EXPECT_FALSE(s->live_status(a.id).is_streaming);
  EXPECT_EQ(s->last_stream_session(a.id)->id, first.stream.session_id);
}

TEST_P(StoreContract, ManyTabsGoingLiveAtOnceMakeOneStream) {
  auto a = *s->create_user("alice", "h", 1);
  std::atomic<int> started{0};
  std::vector<std::int64_t> seen(8);
  race(this, 8, [this] { return open(); }, [&](Store& st, int i) {
    auto r = st.start_stream(a.id, "tab" + std::to_string(i), 10, "node");
    if (r.outcome == StartOutcome::started) ++started;
    seen[i] = r.stream.session_id;
  });
  EXPECT_EQ(started.load(), 1);
  for (auto id : seen) EXPECT_EQ(id, seen[0]) << "every tab is told of the one stream";
  EXPECT_EQ(s->all_active_streams().size(), 1u);
}

TEST_P(StoreContract, TroubleMarksKeepTheEarliestAndClear) {
  auto a = *s->create_user("alice", "h", 1), b = *s->create_user("bob", "h", 1);
  s->resolve_request(s->create_request(a.id, b.id, 1)->id, "accepted", 1);
  auto live = s->start_stream(a.id, "tab", 10, "node").stream;
  auto t = s->set_trouble(live.session_id, Trouble::socket, 100);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->socket_lost_at, 100);
  EXPECT_FALSE(t->media_lost_at);
  EXPECT_EQ(t->username, "alice");
  t = s->set_trouble(live.session_id, Trouble::socket, 150);
  EXPECT_EQ(t->socket_lost_at, 100) << "an earlier mark is kept";
  t = s->set_trouble(live.session_id, Trouble::media, 90);
  EXPECT_EQ(t->reconnecting_since(), 90);
  EXPECT_EQ(s->live_status(a.id).reconnecting_since, 90);
  auto friends = s->friends_of(b.id);
  ASSERT_EQ(friends.size(), 1u);
  EXPECT_TRUE(friends[0].is_streaming);
  EXPECT_EQ(friends[0].reconnecting_since, 90);
  t = s->set_trouble(live.session_id, Trouble::media, std::nullopt);
  EXPECT_EQ(t->reconnecting_since(), 100);
  t = s->set_trouble(live.session_id, Trouble::socket, std::nullopt);
  EXPECT_FALSE(t->reconnecting_since());
  EXPECT_FALSE(s->live_status(a.id).reconnecting_since);
  s->end_stream(live.session_id, "user", 200);
  EXPECT_FALSE(s->set_trouble(live.session_id, Trouble::socket, 300)) << "not live: nothing to mark";
}

TEST_P(StoreContract, NodesBeatAndStreamsAreFoundByTheirNode) {
  auto a = *s->create_user("alice", "h", 1), b = *s->create_user("bob", "h", 1);
  s->heartbeat({"n1", "host1", 11, 100});
  s->heartbeat({"n2", "host2", 22, 100});
  s->heartbeat({"n1", "host1", 11, 200});
  auto nodes = s->nodes();
  ASSERT_EQ(nodes.size(), 2u);
  auto n1 = nodes[0].node_id == "n1" ? nodes[0] : nodes[1];
  EXPECT_EQ(n1.last_seen, 200);
  EXPECT_EQ(n1.pid, 11);
  s->start_stream(a.id, "t", 10, "n1");
  s->start_stream(b.id, "t", 11, "n2");
  ASSERT_EQ(s->active_streams_of_node("n1").size(), 1u);
  EXPECT_EQ(s->active_streams_of_node("n1")[0].username, "alice");
  s->forget_node("n2");
  EXPECT_EQ(s->nodes().size(), 1u);
}

// alice with two ended streams (100-200 ended `user`, 300-400 ended `second_reason`).
struct TwoStreams {
  User alice;
  ActiveStream one, two;
};
TwoStreams two_ended_streams(Store& s, const std::string& second_reason) {
  TwoStreams t;
  t.alice = *s.create_user("alice", "h", 1);
  t.one = s.start_stream(t.alice.id, "tab", 100, "node").stream;
  s.end_stream(t.one.session_id, "user", 200);
  t.two = s.start_stream(t.alice.id, "tab", 300, "node").stream;
  s.end_stream(t.two.session_id, second_reason, 400);
  return t;
}

TEST_P(StoreContract, RecordingsOnePerSessionNewestFirstPagedAndDeletable) {
  auto [a, one, two] = two_ended_streams(*s, "server_restart");

  Recording r{0, one.session_id, a.id, "", "streamed_audios/alice_1.wav", 100, 9644, 210, 0, ""};
  auto first = s->add_recording(r);
  EXPECT_GT(first.id, 0);
  EXPECT_EQ(first.username, "alice");
  EXPECT_EQ(first.started_at, 100);
  EXPECT_EQ(first.end_reason, "user");
  // A second add for the same session (two processes repairing one crash) keeps the first row.
  r.duration_ms = 999;
  auto again = s->add_recording(r);
  EXPECT_EQ(again.id, first.id);
  EXPECT_EQ(again.duration_ms, 100);
  auto second = s->add_recording({0, two.session_id, a.id, "", "streamed_audios/alice_2.wav", 50, 4844, 410, 0, ""});

  auto list = s->recordings_of(a.id, 10);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, second.id);
  EXPECT_EQ(list[0].end_reason, "server_restart");
  EXPECT_EQ(s->recordings_of(a.id, 1).size(), 1u);
  auto next_page = s->recordings_of(a.id, 10, second.id);
  ASSERT_EQ(next_page.size(), 1u);
  EXPECT_EQ(next_page[0].id, first.id);
  EXPECT_EQ(s->recording_bytes_of(a.id), 9644 + 4844);
  auto old = s->recordings_created_before(300, 10, "disk-a");
  ASSERT_EQ(old.size(), 1u);
  EXPECT_EQ(old[0].id, first.id);
  EXPECT_TRUE(s->set_recording_title(second.id, "Evening ☕ talk"));
  EXPECT_EQ(s->recording_by_id(second.id)->title, "Evening ☕ talk");
  EXPECT_FALSE(s->set_recording_title(second.id + 100, "x"));
  EXPECT_TRUE(s->delete_recording(first.id));
  EXPECT_FALSE(s->delete_recording(first.id));
  EXPECT_FALSE(s->recording_by_id(first.id));
  ASSERT_TRUE(s->recording_by_id(second.id));
}

TEST_P(StoreContract, ARecordingKeepsWhatNoiseRemovalDidOrSaysItWasNotMeasured) {
  auto [a, one, two] = two_ended_streams(*s, "user");
  Recording r{0, one.session_id, a.id, "", "streamed_audios/alice_1.wav", 100, 9644, 210, 0, ""};
  r.noise_removed_db = 18.25;
  r.strength_log = R"([{"at_ms":0,"strength":"full"},{"at_ms":4100,"strength":"light"}])";
  r.gaps = R"([{"at_ms":3000,"ms":2800}])";
  auto measured = s->add_recording(r);
  ASSERT_TRUE(measured.noise_removed_db);
  EXPECT_DOUBLE_EQ(*measured.noise_removed_db, 18.25);
  EXPECT_EQ(s->recording_by_id(measured.id)->strength_log, r.strength_log);
  EXPECT_EQ(s->recording_by_id(measured.id)->gaps, r.gaps);
  auto plain = s->add_recording({0, two.session_id, a.id, "", "streamed_audios/alice_2.wav", 50, 4844, 410, 0, ""});
  EXPECT_FALSE(plain.noise_removed_db) << "a repaired or unmeasured recording has no figure";
  EXPECT_EQ(plain.strength_log, "[]");
  EXPECT_EQ(plain.gaps, "[]");
  EXPECT_EQ(plain.disk_id, "");
  EXPECT_FALSE(plain.raw_bytes);
}

TEST_P(StoreContract, ARecordingNamesTheDiskThatHoldsItAndItsRawTwin) {
  auto [a, one, two] = two_ended_streams(*s, "node_lost");
  Recording r{0, one.session_id, a.id, "", "streamed_audios/alice_1.wav", 100, 9644, 210, 0, ""};
  r.disk_id = "disk-a";
  r.raw_bytes = 9644;
  auto made = s->add_recording(r);
  EXPECT_EQ(made.disk_id, "disk-a");
  ASSERT_TRUE(made.raw_bytes);
  EXPECT_EQ(*made.raw_bytes, 9644);
  auto listed = s->recordings_of(a.id, 10);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].disk_id, "disk-a");
  EXPECT_EQ(s->recordings_created_before(1000, 10, "disk-a").at(0).disk_id, "disk-a");
  EXPECT_TRUE(s->recordings_created_before(1000, 10, "disk-b").empty()) << "disk-a's file is its node's to expire";
}

}  // namespace
}  // namespace fc25::storage
