#include "storage/detail/pg.hpp"

#include <regex>

#include "core/log.hpp"
#include "storage/store.hpp"

namespace fc25::storage::detail {
namespace {

// libpq's messages end in a newline; a log line or an error answer should not.
std::string trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Sensible limits unless the URL sets its own: give up connecting after 3 s, and on a connection whose peer
// vanished after 5 s without acknowledgement (rather than the kernel's 15 minutes).
std::string with_defaults(const std::string& url) {
  std::string out = url;
  auto add = [&](const std::string& key, const std::string& value) {
    if (out.find(key + "=") != std::string::npos) return;
    out += (out.find('?') == std::string::npos ? "?" : "&") + key + "=" + value;
  };
  add("connect_timeout", "3");
  add("tcp_user_timeout", "5000");
  add("application_name", "fc25");
  return out;
}

}  // namespace

std::string redact_conninfo(const std::string& url) {
  static const std::regex password(R"(^(postgres(?:ql)?://[^:/@]*):[^@]*@)");
  auto s = std::regex_replace(url, password, "$1:***@");
  static const std::regex param(R"(([?&]password=)[^&]*)");
  return std::regex_replace(s, param, "$1***");
}

PgConnection::PgConnection(std::string conninfo) : conninfo_(with_defaults(conninfo)) { reconnect(); }

PgConnection::~PgConnection() {
  if (c_) PQfinish(c_);
}

bool PgConnection::broken() const { return !c_ || PQstatus(c_) != CONNECTION_OK; }

void PgConnection::reconnect() {
  if (c_) PQfinish(c_);
  c_ = PQconnectdb(conninfo_.c_str());
  if (PQstatus(c_) != CONNECTION_OK) {
    auto why = trimmed(PQerrorMessage(c_));
    PQfinish(c_);
    c_ = nullptr;
    throw Unavailable("the database (" + redact_conninfo(conninfo_) + ") cannot be reached: " + why);
  }
  // Notices (e.g. "relation already exists, skipping") are for a DBA's terminal, not the server's log.
  PQsetNoticeProcessor(c_, [](void*, const char* m) { core::logger("storage")->debug("postgres: {}", trimmed(m)); },
                       nullptr);
}

PgResult PgConnection::check(PGresult* raw) {
  PgResult r(raw);
  auto status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
  if (broken()) {
    auto why = trimmed(PQerrorMessage(c_));
    throw Unavailable("the database connection was lost: " + why);
  }
  const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
  std::string sqlstate = state ? state : "";
  // Class 57 (operator intervention: shutdown, admin termination) and 08 (connection exception) are the database
  // going away, not a fault of the statement.
  if (sqlstate.rfind("57", 0) == 0 || sqlstate.rfind("08", 0) == 0) {
    throw Unavailable("the database is unavailable: " + trimmed(PQerrorMessage(c_)));
  }
  throw PgError("postgres: " + trimmed(PQerrorMessage(c_)), sqlstate);
}

PgResult PgConnection::run(const std::string& sql, const std::vector<PgParam>& params) {
  if (broken()) reconnect();
  std::vector<const char*> values;
  values.reserve(params.size());
  for (auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return check(PQexecParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                            nullptr, 0));
}

void PgConnection::exec_script(const std::string& sql) {
  if (broken()) reconnect();
  check(PQexec(c_, sql.c_str()));
}

PgTransaction::~PgTransaction() {
  if (done_ || c_.broken()) return;
  try {
    c_.exec_script("ROLLBACK");
  } catch (const std::exception& e) {
    core::logger("storage")->warn("rollback failed: {}", e.what());
  }
}

PgPool::PgPool(const std::string& conninfo, int size, std::chrono::milliseconds wait)
    : conninfo_(conninfo), wait_(wait), unopened_(size) {}

PgPool::Lease PgPool::take() {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, wait_, [&] { return !idle_.empty() || unopened_ > 0; })) {
    throw Unavailable("all database connections stayed busy for " + std::to_string(wait_.count()) + " ms");
  }
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    lock.unlock();
    if (c->broken()) {
      try {
        c->reconnect();
      } catch (...) {
        give_back(std::move(c));   // kept, to be tried again by the next caller
        throw;
      }
    }
    return Lease(*this, std::move(c));
  }
  --unopened_;
  lock.unlock();
  try {
    return Lease(*this, std::make_unique<PgConnection>(conninfo_));
  } catch (...) {
    std::lock_guard again(mu_);
    ++unopened_;
    cv_.notify_one();
    throw;
  }
}

void PgPool::give_back(std::unique_ptr<PgConnection> c) {
  {
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(c));
  }
  cv_.notify_one();
}

}  // namespace fc25::storage::detail
