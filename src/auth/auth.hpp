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

// Events per key (a username, an address) in a sliding window. A key whose window has passed is forgotten: the
// whole map is swept whenever it has doubled since the last sweep, so any number of keys costs O(1) per event
// amortised and the memory held is that of the keys seen within one window.
class KeyedWindow {
 public:
  using clock = std::chrono::steady_clock;
  explicit KeyedWindow(std::chrono::seconds window) : window_(window) {}
  void add(const std::string& key, clock::time_point now);
  // Seconds (at least 1) until `key` has fewer than `n` events in the window; 0 when it has fewer now.
  int wait_below(const std::string& key, std::size_t n, clock::time_point now);
  // One step: when `key` has fewer than `n` events, counts one more and returns 0; else what wait_below says.
  int add_if_below(const std::string& key, std::size_t n, clock::time_point now);
  void forget(const std::string& key);
  std::size_t keys();

 private:
  using Events = std::deque<clock::time_point>;
  Events* events(const std::string& key, clock::time_point now);  // nullptr: none
  bool prune(Events& q, clock::time_point now) const;              // drops what has passed; true when empty
  int wait_locked(const std::string& key, std::size_t n, clock::time_point now);
  void add_locked(const std::string& key, clock::time_point now);
  void sweep(clock::time_point now);
  std::chrono::seconds window_;
  std::size_t sweep_at_ = 1024;
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<clock::time_point>> events_;
};

// Counts failed logins per key (username, address) in a sliding minute.
class LoginThrottle {
 public:
  explicit LoginThrottle(int max_failures = 10, std::chrono::seconds window = std::chrono::seconds(60))
      : max_(max_failures), failures_(window) {}
  // Seconds to wait when `key` is blocked now, else 0.
  int retry_after(const std::string& key);
  void record_failure(const std::string& key);
  void reset(const std::string& key);
  std::size_t keys() { return failures_.keys(); }

 private:
  int max_;
  KeyedWindow failures_;
};

// Allows at most `max_events` per key (e.g. registrations per address) in a sliding window; 0: no limit.
class RateLimit {
 public:
  RateLimit(int max_events, std::chrono::seconds window) : max_(max_events), events_(window) {}
  // Counts an event for `key` and returns 0; or, when `key` already had its `max_events` in the window, counts
  // nothing and returns the seconds until the next one is allowed (at least 1).
  int acquire(const std::string& key);
  std::size_t keys() { return events_.keys(); }

 private:
  int max_;
  KeyedWindow events_;
};

}  // namespace fc25::auth
