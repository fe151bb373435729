#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "../support/temp_db.hpp"

#include "core/crypto.hpp"
#include "storage/store.hpp"

namespace fc25::storage {
namespace {

using fc25::testing::TempDb;


TEST(Store, CreatesAndMigratesANewFileOnceAndReopensIt) {
  TempDb db;
  { auto s = open_sqlite_store(db.path); s->create_user("alice", "h", 1); }
  EXPECT_EQ(sqlite_schema_version(db.path), 5);
  auto again = open_sqlite_store(db.path);  // migrations already applied: nothing lost
  ASSERT_TRUE(again->user_by_name("alice"));
  EXPECT_EQ(sqlite_schema_version(db.path), 5);
}

TEST(Store, RefusesAnUnopenablePathNamingIt) {
  try {
    open_sqlite_store("/nonexistent-dir/for/sure/fc25.sqlite3");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/for/sure/fc25.sqlite3"), std::string::npos) << e.what();
  }
}

TEST(Store, UsernamesAreUniqueCaseInsensitively) {
  TempDb db;
  auto s = open_sqlite_store(db.path);
  EXPECT_TRUE(s->create_user("alice", "h", 1));
  EXPECT_FALSE(s->create_user("ALICE", "h", 1));
  EXPECT_EQ(s->list_users().size(), 1u);
}

TEST(Store, AcceptedRequestMakesFriendsBothWaysAndSettlesTheReverseRequest) {
  TempDb db;
  auto s = open_sqlite_store(db.path);
  auto a = *s->create_user("alice", "h", 1), b = *s->create_user("bob", "h", 1);
  auto r1 = s->create_request(a.id, b.id, 2);
  auto r2 = s->create_request(b.id, a.id, 3);
  EXPECT_TRUE(s->resolve_request(r1.id, "accepted", 4));
  EXPECT_FALSE(s->resolve_request(r1.id, "declined", 5)) << "only pending requests change";
  EXPECT_TRUE(s->are_friends(a.id, b.id));
  EXPECT_TRUE(s->are_friends(b.id, a.id));
  EXPECT_EQ(s->request_by_id(r2.id)->status, "accepted");
  EXPECT_TRUE(s->remove_friendship(b.id, a.id));
  EXPECT_FALSE(s->are_friends(a.id, b.id));
}

TEST(Store, OneLiveStreamPerUserAndExactlyOneEnderWins) {
  TempDb db;
  auto s = open_sqlite_store(db.path);
  auto a = *s->create_user("alice", "h", 1);
  auto first = s->start_stream(a.id, "tab1", 10, "node");
  EXPECT_EQ(first.outcome, StartOutcome::started);
  EXPECT_EQ(s->start_stream(a.id, "tab1", 11, "node").outcome, StartOutcome::already_live_same_client);
  EXPECT_EQ(s->start_stream(a.id, "tab2", 12, "node").outcome, StartOutcome::live_elsewhere);
  EXPECT_TRUE(s->user_by_id(a.id)->is_streaming);

  // Two "processes" (two connections to one file) race to end it: one wins.
  auto other = open_sqlite_store(db.path);
  int wins = 0;
  std::thread t1([&] { wins += s->end_stream(first.stream.session_id, "user", 20); });
  std::thread t2([&] { wins += other->end_stream(first.stream.session_id, "socket_closed", 20); });
  t1.join();
  t2.join();
  EXPECT_EQ(wins, 1);
  auto row = s->stream_session(first.stream.session_id);
  ASSERT_TRUE(row && row->ended_at);
  EXPECT_TRUE(row->end_reason == "user" || row->end_reason == "socket_closed");
  EXPECT_FALSE(s->active_stream(a.id));
  EXPECT_FALSE(s->user_by_id(a.id)->is_streaming);
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

TEST(Store, RecordingsOnePerSessionNewestFirstAndDeletable) {
  TempDb db;
  auto s = open_sqlite_store(db.path);
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
  EXPECT_TRUE(s->delete_recording(first.id));
  EXPECT_FALSE(s->delete_recording(first.id));
  EXPECT_FALSE(s->recording_by_id(first.id));
  ASSERT_TRUE(s->recording_by_id(second.id));
}

TEST(Store, ARecordingKeepsWhatNoiseRemovalDidOrSaysItWasNotMeasured) {
  TempDb db;
  auto s = open_sqlite_store(db.path);
  auto [a, one, two] = two_ended_streams(*s, "user");
  Recording r{0, one.session_id, a.id, "", "streamed_audios/alice_1.wav", 100, 9644, 210, 0, ""};
  r.noise_removed_db = 18.25;
  r.strength_log = R"([{"at_ms":0,"strength":"full"},{"at_ms":4100,"strength":"light"}])";
  auto measured = s->add_recording(r);
  ASSERT_TRUE(measured.noise_removed_db);
  EXPECT_DOUBLE_EQ(*measured.noise_removed_db, 18.25);
  EXPECT_EQ(s->recording_by_id(measured.id)->strength_log, r.strength_log);
  auto plain = s->add_recording({0, two.session_id, a.id, "", "streamed_audios/alice_2.wav", 50, 4844, 410, 0, ""});
  EXPECT_FALSE(plain.noise_removed_db) << "a repaired or unmeasured recording has no figure";
  EXPECT_EQ(plain.strength_log, "[]");
}

}  // namespace
}  // namespace fc25::storage
