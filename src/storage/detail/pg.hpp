#pragma once
// A thin RAII layer over libpq: results with typed reads, parameters as text, and a fixed pool of connections that
// reconnects a broken one when it is next taken. Blocking by design: the server calls the store off its io threads.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <libpq-fe.h>

namespace fc25::storage::detail {

// A statement PostgreSQL refused (bad SQL, a constraint): a fault of ours, not of the database's availability.
class PgError : public std::runtime_error {
 public:
  PgError(const std::string& what, std::string sqlstate) : std::runtime_error(what), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string sqlstate_;
};

class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r, &PQclear) {}
  int rows() const { return PQntuples(r_.get()); }
  bool empty() const { return rows() == 0; }
  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string text(int row, int col) const { return PQgetvalue(r_.get(), row, col); }
  std::int64_t i64(int row, int col) const { return std::stoll(PQgetvalue(r_.get(), row, col)); }
  double f64(int row, int col) const { return std::stod(PQgetvalue(r_.get(), row, col)); }
  bool boolean(int row, int col) const { return PQgetvalue(r_.get(), row, col)[0] == 't'; }
  std::optional<std::int64_t> opt_i64(int row, int col) const {
    return is_null(row, col) ? std::nullopt : std::optional<std::int64_t>(i64(row, col));
  }
  std::optional<double> opt_f64(int row, int col) const {
    return is_null(row, col) ? std::nullopt : std::optional<double>(f64(row, col));
  }
  // Rows a command changed (UPDATE, DELETE, INSERT).
  std::int64_t affected() const {
    const char* n = PQcmdTuples(r_.get());
    return *n ? std::stoll(n) : 0;
  }

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

// A parameter: text, or NULL.
using PgParam = std::optional<std::string>;
inline PgParam pg(const std::string& v) { return v; }
inline PgParam pg(const char* v) { return std::string(v); }
inline PgParam pg(std::int64_t v) { return std::to_string(v); }
inline PgParam pg(int v) { return std::to_string(v); }
inline PgParam pg(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.17g", v);
  return std::string(b);
}
template <typename T>
PgParam pg(const std::optional<T>& v) {
  return v ? pg(*v) : PgParam();
}

class PgConnection {
 public:
  // Throws storage::Unavailable (naming the server, never the password) when it cannot connect.
  explicit PgConnection(std::string conninfo);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // One statement with $1.. parameters. Throws PgError when the server refuses it, storage::Unavailable when the
  // connection is lost (the connection is then marked for a reconnect).
  template <typename... Args>
  PgResult query(const std::string& sql, const Args&... args) {
    return run(sql, {pg(args)...});
  }
  PgResult run(const std::string& sql, const std::vector<PgParam>& params);
  // Several statements, no parameters (migrations).
  void exec_script(const std::string& sql);
  bool broken() const;
  // Reconnects; throws storage::Unavailable when the server is still away.
  void reconnect();

 private:
  PgResult check(PGresult* r);
  std::string conninfo_;
  PGconn* c_ = nullptr;
};

// BEGIN on construction, ROLLBACK on destruction unless committed.
class PgTransaction {
 public:
  explicit PgTransaction(PgConnection& c) : c_(c) { c_.exec_script("BEGIN"); }
  ~PgTransaction();
  void commit() {
    c_.exec_script("COMMIT");
    done_ = true;
  }

 private:
  PgConnection& c_;
  bool done_ = false;
};

// A fixed number of connections; take() waits up to `wait` for a free one.
class PgPool {
 public:
  PgPool(const std::string& conninfo, int size, std::chrono::milliseconds wait);
  class Lease {
   public:
    Lease(PgPool& pool, std::unique_ptr<PgConnection> c) : pool_(&pool), c_(std::move(c)) {}
    Lease(Lease&& o) noexcept = default;
    ~Lease() { if (c_) pool_->give_back(std::move(c_)); }
    PgConnection& operator*() { return *c_; }
    PgConnection* operator->() { return c_.get(); }

   private:
    PgPool* pool_;
    std::unique_ptr<PgConnection> c_;
  };
  Lease take();
  const std::string& conninfo() const { return conninfo_; }

 private:
  void give_back(std::unique_ptr<PgConnection> c);
  std::string conninfo_;
  std::chrono::milliseconds wait_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  int unopened_ = 0;   // connections not made yet (made on first need, so a server can start while the database is away)
};

// "postgresql://user:***@host:port/db": a connection string safe to log.
std::string redact_conninfo(const std::string& url);

}  // namespace fc25::storage::detail
