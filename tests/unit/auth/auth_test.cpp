#include <filesystem>

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

}  // namespace
}  // namespace fc25::auth
