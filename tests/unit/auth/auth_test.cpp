#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "../support/temp_db.hpp"
#include <sodium.h>

#include "auth/auth.hpp"
#include "core/crypto.hpp"

namespace fc25::auth {
namespace {

using fc25::testing::TempDb;


class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_GE(sodium_init(), 0); }
};

TEST_F(AuthTest, PasswordHashIsArgon2idAndVerifiesOnlyTheRightPassword) {
  auto hash = hash_password("correct horse battery");
  EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
  EXPECT_TRUE(verify_password(hash, "correct horse battery"));
  EXPECT_FALSE(verify_password(hash, "correct horse batterY"));
  EXPECT_FALSE(verify_password(hash, ""));
  EXPECT_NE(hash, hash_password("correct horse battery")) << "each hash has its own salt";
}

TEST_F(AuthTest, UsernamesFollowTheRules) {
  EXPECT_EQ(username_problem("alice"), "");
  EXPECT_EQ(username_problem("Al.ic-e_9"), "");
  EXPECT_EQ(normalise_username("AlIcE"), "alice");
  EXPECT_NE(username_problem("al"), "");
  EXPECT_NE(username_problem(std::string(31, 'a')), "");
  EXPECT_EQ(username_problem(std::string(30, 'a')), "");
  EXPECT_NE(username_problem("has space"), "");
  EXPECT_NE(username_problem("semi;colon"), "");
  EXPECT_NE(password_problem("short"), "");
  EXPECT_EQ(password_problem("long enough"), "");
  EXPECT_NE(password_problem(std::string(129, 'x')), "");
}

TEST_F(AuthTest, PasswordLengthCountsCharactersNotBytes) {
  std::string e_acute = "\xc3\xa9";  // é: one character, two bytes
  std::string five, seven, eight, hundred, h129;
  for (int i = 0; i < 5; ++i) five += e_acute;
  for (int i = 0; i < 7; ++i) seven += e_acute;
  for (int i = 0; i < 8; ++i) eight += e_acute;
  for (int i = 0; i < 100; ++i) hundred += e_acute;
  for (int i = 0; i < 129; ++i) h129 += e_acute;
  EXPECT_NE(password_problem(five), "") << "5 characters (10 bytes) is too short";
  EXPECT_NE(password_problem(seven), "") << "7 characters (14 bytes) is too short";
  EXPECT_EQ(password_problem(eight), "");
  EXPECT_EQ(password_problem(hundred), "") << "100 characters (200 bytes) is allowed";
  EXPECT_NE(password_problem(h129), "");
  EXPECT_EQ(password_problem(std::string(128, 'x')), "");
  EXPECT_EQ(password_problem("\xf0\x9f\x8e\xb5\xf0\x9f\x8e\xb5\xf0\x9f\x8e\xb5\xf0\x9f\x8e\xb5"),
            "password must be at least 8 characters")
      << "four 4-byte characters (16 bytes) are four characters";
}

TEST_F(AuthTest, InvalidUtf8IsRefusedByName) {
  EXPECT_EQ(password_problem("abcdefgh\xff"), "password is not valid UTF-8");
  EXPECT_EQ(password_problem("abcdefgh\xc3"), "password is not valid UTF-8");
  EXPECT_EQ(password_problem("abcdefgh\xed\xa0\x80"), "password is not valid UTF-8");  // a surrogate
  EXPECT_EQ(username_problem("ali\xff" "ce"), "username is not valid UTF-8");
  EXPECT_EQ(username_problem("\xc0\xaf\x61\x62"), "username is not valid UTF-8");   // overlong '/'
}

TEST_F(AuthTest, RateLimitAllowsMaxEventsPerKeyInTheWindow) {
  RateLimit limit(3, std::chrono::seconds(600));
  EXPECT_EQ(limit.acquire("addr:127.0.0.1"), 0);
  EXPECT_EQ(limit.acquire("addr:127.0.0.1"), 0);
  EXPECT_EQ(limit.acquire("addr:127.0.0.1"), 0);
  int wait = limit.acquire("addr:127.0.0.1");
  EXPECT_GE(wait, 599);
  EXPECT_LE(wait, 601);
  EXPECT_EQ(limit.acquire("addr:127.0.0.2"), 0) << "another address has its own budget";
  RateLimit none(0, std::chrono::seconds(600));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(none.acquire("a"), 0);
  RateLimit brief(1, std::chrono::seconds(1));
  EXPECT_EQ(brief.acquire("a"), 0);
  EXPECT_GT(brief.acquire("a"), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(brief.acquire("a"), 0) << "the window slides";
}

TEST_F(AuthTest, CsrfNeedsTheSameNonEmptyToken) {
  auto token = core::random_token_hex(32);
  EXPECT_TRUE(csrf_ok(token, token));
  EXPECT_FALSE(csrf_ok(token, ""));
  EXPECT_FALSE(csrf_ok("", ""));
  EXPECT_FALSE(csrf_ok(token, core::random_token_hex(32)));
  EXPECT_FALSE(csrf_ok(token, token.substr(0, 63)));
}

TEST_F(AuthTest, SessionTokensAre256BitRandomAndStoredOnlyAsTheirHash) {
  TempDb db;
  auto store = storage::open_sqlite_store(db.path);
  auto user = store->create_user("alice", hash_password("whatever1"), 1);
  ASSERT_TRUE(user);
  Sessions sessions(*store);
  auto a = sessions.create(user->id);
  auto b = sessions.create(user->id);
  EXPECT_EQ(a.token.size(), 64u);   // 32 random bytes in hex
  EXPECT_NE(a.token, b.token);
  EXPECT_TRUE(store->user_by_session(core::sha256_hex(a.token), 2));
  EXPECT_FALSE(store->user_by_session(a.token, 2)) << "the raw token must not be a key in the store";
  ASSERT_TRUE(sessions.user_for(a.token));
  EXPECT_EQ(sessions.user_for(a.token)->username, "alice");
  EXPECT_FALSE(sessions.user_for(core::random_token_hex(32)));
  sessions.destroy(a.token);
  EXPECT_FALSE(sessions.user_for(a.token));
  EXPECT_TRUE(sessions.user_for(b.token));
}

TEST_F(AuthTest, ThrottleBlocksAfterTenFailuresPerKeyAndResets) {
  LoginThrottle t(10, std::chrono::seconds(60));
  for (int i = 0; i < 9; ++i) t.record_failure("user:alice");
  EXPECT_EQ(t.retry_after("user:alice"), 0);
  t.record_failure("user:alice");
  EXPECT_GT(t.retry_after("user:alice"), 0);
  EXPECT_LE(t.retry_after("user:alice"), 61);
  EXPECT_EQ(t.retry_after("user:bob"), 0) << "keys are independent";
  t.reset("user:alice");
  EXPECT_EQ(t.retry_after("user:alice"), 0);
}

TEST_F(AuthTest, ThrottleForgetsFailuresOutsideTheWindow) {
  LoginThrottle t(2, std::chrono::seconds(1));
  t.record_failure("k");
  t.record_failure("k");
  EXPECT_GT(t.retry_after("k"), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(t.retry_after("k"), 0);
}

// Failed logins under thousands of made-up usernames, or registrations from thousands of addresses: what the
// throttles hold is the keys of one window, not every key ever seen (the login throttle kept them all for good).
TEST_F(AuthTest, ThrottlesForgetKeysWhoseWindowHasPassed) {
  LoginThrottle logins(10, std::chrono::seconds(1));
  RateLimit registrations(1, std::chrono::seconds(1));
  for (int i = 0; i < 5000; ++i) {
    logins.record_failure("user:ghost" + std::to_string(i));
    EXPECT_EQ(registrations.acquire("addr:" + std::to_string(i)), 0);
  }
  EXPECT_EQ(logins.keys(), 5000u);
  EXPECT_GT(registrations.acquire("addr:7"), 0) << "one per window";
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  for (int i = 0; i < 5000; ++i) {
    logins.record_failure("user:other" + std::to_string(i));
    registrations.acquire("addr:x" + std::to_string(i));
  }
  EXPECT_LE(logins.keys(), 5000u) << "the first 5000 have been forgotten";
  EXPECT_LE(registrations.keys(), 5000u);
  EXPECT_EQ(logins.retry_after("user:ghost1"), 0);
  EXPECT_EQ(registrations.acquire("addr:7"), 0);
}

}  // namespace
}  // namespace fc25::auth
