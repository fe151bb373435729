#pragma once
// Accounts: Argon2id passwords, session tokens (stored hashed), CSRF double-submit checks, username rules and
// login throttling. Pure logic over the store; the HTTP plane maps results to responses.
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "storage/store.hpp"

namespace fc25::auth {

// Argon2id (libsodium crypto_pwhash_str, interactive limits). Slow on purpose (~0.1 s): call off the io threads.
std::string hash_password(std::string_view password);
bool verify_password(const std::string& hash, std::string_view password);

// "" when valid, else the reason (for the error message).
std::string username_problem(std::string_view username);   // valid UTF-8, 3-30 of [a-z0-9_.-] after lower-casing
std::string password_problem(std::string_view password);   // 8-128 characters (code points); valid UTF-8
std::string normalise_username(std::string_view username); // lower-case

// Double-submit CSRF: the token sent in the header or form must equal the fc25_csrf cookie, both non-empty.
bool csrf_ok(std::string_view cookie_token, std::string_view sent_token);

inline constexpr std::int64_t kSessionLifetimeMs = 14LL * 24 * 3600 * 1000;

struct NewSession {
  std::string token;       // goes to the cookie, never stored
  std::int64_t expires_at;
};

class Sessions {
 public:
  explicit Sessions(storage::Store& store) : store_(store) {}
  NewSession create(std::int64_t user_id);
  std::optional<storage::User> user_for(std::string_view token);
  void destroy(std::string_view token);

 private:
  storage::Store& store_;
};

// Counts failed logins per key (username, address) in a sliding minute.
class LoginThrottle {
 public:
  explicit LoginThrottle(int max_failures = 10, std::chrono::seconds window = std::chrono::seconds(60))
      : max_(max_failures), window_(window) {}
  // Seconds to wait when `key` is blocked now, else 0.
  int retry_after(const std::string& key);
  void record_failure(const std::string& key);
  void reset(const std::string& key);

 private:
  using clock = std::chrono::steady_clock;
  void prune(std::deque<clock::time_point>& q, clock::time_point now);
  int max_;
  std::chrono::seconds window_;
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<clock::time_point>> failures_;
};

// Allows at most `max_events` per key (e.g. registrations per address) in a sliding window; 0: no limit.
class RateLimit {
 public:
  RateLimit(int max_events, std::chrono::seconds window) : max_(max_events), window_(window) {}
  // Counts an event for `key` and returns 0; or, when `key` already had its `max_events` in the window, counts
  // nothing and returns the seconds until the next one is allowed (at least 1).
  int acquire(const std::string& key);

 private:
  using clock = std::chrono::steady_clock;
  int max_;
  std::chrono::seconds window_;
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<clock::time_point>> events_;
};

}  // namespace fc25::auth
