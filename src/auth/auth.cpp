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

bool KeyedWindow::prune(Events& q, clock::time_point now) const {
  while (!q.empty() && now - q.front() >= window_) q.pop_front();
  return q.empty();
}

KeyedWindow::Events* KeyedWindow::events(const std::string& key, clock::time_point now) {
  auto it = events_.find(key);
  if (it == events_.end()) return nullptr;
  if (prune(it->second, now)) {
    events_.erase(it);
    return nullptr;
  }
  return &it->second;
}

void KeyedWindow::sweep(clock::time_point now) {
  for (auto it = events_.begin(); it != events_.end();) it = prune(it->second, now) ? events_.erase(it) : std::next(it);
  sweep_at_ = std::max<std::size_t>(1024, 2 * events_.size());
}

void KeyedWindow::add_locked(const std::string& key, clock::time_point now) {
  if (events_.size() >= sweep_at_) sweep(now);
  events_[key].push_back(now);
}

int KeyedWindow::wait_locked(const std::string& key, std::size_t n, clock::time_point now) {
  auto* q = events(key, now);
  if (!q || q->size() < n) return 0;
  // The event whose expiry brings the count below n.
  auto wait = std::chrono::duration_cast<std::chrono::seconds>((*q)[q->size() - n] + window_ - now).count();
  return static_cast<int>(std::max<std::int64_t>(1, wait + 1));
}

void KeyedWindow::add(const std::string& key, clock::time_point now) {
  std::lock_guard lock(mu_);
  add_locked(key, now);
}

int KeyedWindow::wait_below(const std::string& key, std::size_t n, clock::time_point now) {
  std::lock_guard lock(mu_);
  return wait_locked(key, n, now);
}

int KeyedWindow::add_if_below(const std::string& key, std::size_t n, clock::time_point now) {
  std::lock_guard lock(mu_);
  if (int wait = wait_locked(key, n, now)) return wait;
  add_locked(key, now);
  return 0;
}

void KeyedWindow::forget(const std::string& key) {
  std::lock_guard lock(mu_);
  events_.erase(key);
}

std::size_t KeyedWindow::keys() {
  std::lock_guard lock(mu_);
  return events_.size();
}

int LoginThrottle::retry_after(const std::string& key) {
  return failures_.wait_below(key, static_cast<std::size_t>(std::max(max_, 1)), KeyedWindow::clock::now());
}

void LoginThrottle::record_failure(const std::string& key) { failures_.add(key, KeyedWindow::clock::now()); }

void LoginThrottle::reset(const std::string& key) { failures_.forget(key); }

int RateLimit::acquire(const std::string& key) {
  if (max_ <= 0) return 0;
  return events_.add_if_below(key, static_cast<std::size_t>(max_), KeyedWindow::clock::now());
}

}  // namespace fc25::auth
