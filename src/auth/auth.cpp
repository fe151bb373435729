#include "auth/auth.hpp"

#include <algorithm>
#include <cctype>

#include <sodium.h>

#include "core/crypto.hpp"
#include "core/text.hpp"
#include "core/time.hpp"

namespace fc25::auth {

std::string hash_password(std::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    throw std::runtime_error("password hashing ran out of memory");
  }
  return out;
}

bool verify_password(const std::string& hash, std::string_view password) {
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::string normalise_username(std::string_view username) {
  std::string out(username);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string username_problem(std::string_view username) {
  if (!core::is_valid_utf8(username)) return "username is not valid UTF-8";
  if (username.size() < 3) return "username must be at least 3 characters";
  if (username.size() > 30) return "username must be at most 30 characters";
  for (unsigned char c : normalise_username(username)) {
    if (!(std::islower(c) || std::isdigit(c) || c == '_' || c == '.' || c == '-')) {
      return "username may contain only letters a-z, digits and _ . -";
    }
  }
  return "";
}

std::string password_problem(std::string_view password) {
  // Characters (code points), not bytes: "ééééé" is five characters, a password of 100 "é" is a hundred.
  if (!core::is_valid_utf8(password)) return "password is not valid UTF-8";
  auto chars = core::utf8_length(password);
  if (chars < 8) return "password must be at least 8 characters";
  if (chars > 128) return "password must be at most 128 characters";
  return "";
}

bool csrf_ok(std::string_view cookie_token, std::string_view sent_token) {
  return !cookie_token.empty() && core::constant_time_equal(cookie_token, sent_token);
}

NewSession Sessions::create(std::int64_t user_id) {
  auto token = core::random_token_hex(32);
  auto now = core::now_ms();
  auto expires = now + kSessionLifetimeMs;
  store_.create_session(core::sha256_hex(token), user_id, now, expires);
  return {token, expires};
}

std::optional<storage::User> Sessions::user_for(std::string_view token) {
  if (token.size() != 64) return std::nullopt;
  return store_.user_by_session(core::sha256_hex(token), core::now_ms());
}

void Sessions::destroy(std::string_view token) { store_.delete_session(core::sha256_hex(token)); }

void LoginThrottle::prune(std::deque<clock::time_point>& q, clock::time_point now) {
  while (!q.empty() && now - q.front() >= window_) q.pop_front();
}

int LoginThrottle::retry_after(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  if (it == failures_.end()) return 0;
  auto now = clock::now();
  prune(it->second, now);
  if (static_cast<int>(it->second.size()) < max_) return 0;
  auto wait = std::chrono::duration_cast<std::chrono::seconds>(it->second.front() + window_ - now).count();
  return static_cast<int>(std::max<std::int64_t>(1, wait + 1));
}

void LoginThrottle::record_failure(const std::string& key) {
  std::lock_guard lock(mu_);
  auto& q = failures_[key];
  auto now = clock::now();
  prune(q, now);
  q.push_back(now);
}

void LoginThrottle::reset(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

int RateLimit::acquire(const std::string& key) {
  if (max_ <= 0) return 0;
  std::lock_guard lock(mu_);
  auto now = clock::now();
  auto expired = [&](std::deque<clock::time_point>& q) {
    while (!q.empty() && now - q.front() >= window_) q.pop_front();
    return q.empty();
  };
  if (events_.size() > 4096) {  // forget addresses whose window has passed
    for (auto it = events_.begin(); it != events_.end();) it = expired(it->second) ? events_.erase(it) : std::next(it);
  }
  auto& q = events_[key];
  expired(q);
  if (static_cast<int>(q.size()) >= max_) {
    auto wait = std::chrono::duration_cast<std::chrono::seconds>(q.front() + window_ - now).count();
    return static_cast<int>(std::max<std::int64_t>(1, wait + 1));
  }
  q.push_back(now);
  return 0;
}

}  // namespace fc25::auth
