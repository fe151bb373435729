// The SQLite store: WAL mode, numbered migrations at start-up, every query parameterised, one connection per store
// guarded by a mutex (SQLite serialises writers anyway; queries here are sub-millisecond).
#include <cstdint>
#include <mutex>

#include "core/log.hpp"
#include "storage/detail/sqlite.hpp"
#include "storage/store.hpp"

namespace fc25::storage {
namespace {

using detail::Connection;
using detail::Statement;
using detail::Transaction;

// Each entry moves the schema from version i to i+1. Never edit a released migration; add a new one.
const char* const kMigrations[] = {
    // 1: accounts, friends, streams
    R"sql(
    CREATE TABLE users (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      username TEXT NOT NULL UNIQUE COLLATE NOCASE,
      password_hash TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      is_streaming INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE sessions (
      token_hash TEXT PRIMARY KEY,
      user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    CREATE TABLE friend_requests (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      from_user INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      to_user INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      created_at INTEGER NOT NULL,
      resolved_at INTEGER,
      status TEXT NOT NULL DEFAULT 'pending'
    );
    CREATE INDEX friend_requests_to ON friend_requests(to_user, status);
    CREATE INDEX friend_requests_from ON friend_requests(from_user, status);
    -- one row per direction, so "friends of X" is a single index range
    CREATE TABLE friendships (
      user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      friend_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (user_id, friend_id)
    );
    CREATE TABLE stream_sessions (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      client_id TEXT NOT NULL,
      started_at INTEGER NOT NULL,
      ended_at INTEGER,
      end_reason TEXT
    );
    CREATE INDEX stream_sessions_user ON stream_sessions(user_id, started_at);
    CREATE TABLE active_streams (
      user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
      session_id INTEGER NOT NULL UNIQUE REFERENCES stream_sessions(id),
      client_id TEXT NOT NULL,
      started_at INTEGER NOT NULL,
      node_id TEXT NOT NULL
    );
    CREATE TABLE nodes (
      node_id TEXT PRIMARY KEY,
      host TEXT NOT NULL,
      pid INTEGER NOT NULL,
      last_seen INTEGER NOT NULL
    );
    )sql",
    // 2: recordings of stream sessions
    R"sql(
    CREATE TABLE stream_recordings (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      session_id INTEGER NOT NULL UNIQUE REFERENCES stream_sessions(id) ON DELETE CASCADE,
      user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      path TEXT NOT NULL,
      duration_ms INTEGER NOT NULL,
      bytes INTEGER NOT NULL,
      created_at INTEGER NOT NULL
    );
    CREATE INDEX stream_recordings_user ON stream_recordings(user_id, created_at);
    )sql",
    // 3: what noise removal did, and the strengths chosen while live
    R"sql(
    ALTER TABLE stream_recordings ADD COLUMN noise_removed_db REAL;
    ALTER TABLE stream_recordings ADD COLUMN strength_log TEXT NOT NULL DEFAULT '[]';
    )sql",
    // 4: recordings named by their owners; retention finds old ones by age
    R"sql(
    ALTER TABLE stream_recordings ADD COLUMN title TEXT NOT NULL DEFAULT '';
    CREATE INDEX stream_recordings_created ON stream_recordings(created_at);
    )sql",
    // 5: live streams ride out network blips (reconnecting); recordings note the audio that was lost
    R"sql(
    ALTER TABLE active_streams ADD COLUMN socket_lost_at INTEGER;
    ALTER TABLE active_streams ADD COLUMN media_lost_at INTEGER;
    ALTER TABLE stream_recordings ADD COLUMN gaps TEXT NOT NULL DEFAULT '[]';
    )sql",
    // 6: at most one pending friend request between two users, either way (two requests at once keep one)
    R"sql(
    UPDATE friend_requests SET status = 'cancelled' WHERE status = 'pending' AND id NOT IN (
      SELECT MIN(id) FROM friend_requests WHERE status = 'pending'
      GROUP BY min(from_user, to_user), max(from_user, to_user));
    CREATE UNIQUE INDEX friend_requests_one_pending ON friend_requests(min(from_user, to_user), max(from_user, to_user))
      WHERE status = 'pending';
    )sql",
    // 7: in a cluster a recording's file is on the disk of the node that recorded it (named by its disk id, which
    // outlives restarts); its raw twin is known by its size
    R"sql(
    ALTER TABLE stream_recordings ADD COLUMN disk_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE stream_recordings ADD COLUMN raw_bytes INTEGER;
    )sql",
};
constexpr int kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

int current_version(Connection& c) {
  c.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  auto st = c.prepare("SELECT version FROM schema_version");
  if (st.step()) return static_cast<int>(st.i64(0));
  return 0;
}

void migrate(Connection& c, const std::string& path) {
  auto log = core::logger("storage");
  Transaction tx(c);
  int v = current_version(c);
  if (v > kSchemaVersion) {
    throw detail::SqliteError("database '" + path + "' has schema version " + std::to_string(v) +
                              ", newer than this fc25 (" + std::to_string(kSchemaVersion) + ")");
  }
  for (int i = v; i < kSchemaVersion; ++i) {
    c.exec(kMigrations[i]);
    log->info("migrated {} to schema version {}", path, i + 1);
  }
  c.exec("DELETE FROM schema_version");
  c.prepare("INSERT INTO schema_version(version) VALUES (?)").bind_all(kSchemaVersion).run();
  tx.commit();
}

const char* kUserCols = "id, username, password_hash, created_at, is_streaming";
User read_user(const Statement& st) {
  return User{st.i64(0), st.text(1), st.text(2), st.i64(3), st.i64(4) != 0};
}

const char* kRequestSelect =
    "SELECT r.id, r.from_user, r.to_user, f.username, t.username, r.created_at, r.status "
    "FROM friend_requests r JOIN users f ON f.id = r.from_user JOIN users t ON t.id = r.to_user ";
FriendRequest read_request(const Statement& st) {
  return FriendRequest{st.i64(0), st.i64(1), st.i64(2), st.text(3), st.text(4), st.i64(5), st.text(6)};
}

const char* kActiveSelect =
    "SELECT a.session_id, a.user_id, u.username, a.client_id, a.started_at, a.node_id, a.socket_lost_at, "
    "a.media_lost_at FROM active_streams a JOIN users u ON u.id = a.user_id ";
std::optional<std::int64_t> opt_i64(const Statement& st, int col) {
  return st.is_null(col) ? std::nullopt : std::optional<std::int64_t>(st.i64(col));
}
ActiveStream read_active(const Statement& st) {
  return ActiveStream{st.i64(0), st.i64(1), st.text(2), st.text(3), st.i64(4), st.text(5), opt_i64(st, 6),
                      opt_i64(st, 7)};
}

const char* kRecordingSelect =
    "SELECT r.id, r.session_id, r.user_id, u.username, r.path, r.duration_ms, r.bytes, r.created_at, "
    "s.started_at, COALESCE(s.end_reason, ''), r.noise_removed_db, r.strength_log, r.title, "
    "r.gaps, r.disk_id, r.raw_bytes "
    "FROM stream_recordings r JOIN users u ON u.id = r.user_id JOIN stream_sessions s ON s.id = r.session_id ";
Recording read_recording(const Statement& st) {
  return Recording{st.i64(0), st.i64(1), st.i64(2), st.text(3), st.text(4), st.i64(5),
                   st.i64(6), st.i64(7), st.i64(8), st.text(9), st.opt_f64(10), st.text(11), st.text(12), st.text(13),
                   st.text(14), st.is_null(15) ? std::nullopt : std::optional<std::int64_t>(st.i64(15))};
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const std::filesystem::path& path) : path_(path.string()), c_(path_) {
    c_.exec("PRAGMA journal_mode=WAL");
    c_.exec("PRAGMA synchronous=NORMAL");
    c_.exec("PRAGMA foreign_keys=ON");
    migrate(c_, path_);
  }

  std::optional<User> create_user(const std::string& username, const std::string& hash, std::int64_t now) override {
    std::lock_guard lock(mu_);
    Transaction tx(c_);
    {
      auto st = c_.prepare("SELECT 1 FROM users WHERE username = ?");
      if (st.bind_all(username).step()) return std::nullopt;
    }
    c_.prepare("INSERT INTO users(username, password_hash, created_at) VALUES (?, ?, ?)")
        .bind_all(username, hash, now)
        .run();
    User u{c_.last_insert_id(), username, hash, now, false};
    tx.commit();
    return u;
  }

  std::optional<User> user_by_name(const std::string& username) override {
    std::lock_guard lock(mu_);
    auto st = c_.prepare(std::string("SELECT ") + kUserCols + " FROM users WHERE username = ?");
    if (st.bind_all(username).step()) return read_user(st);
    return std::nullopt;
  }

  std::optional<User> user_by_id(std::int64_t id) override {
    std::lock_guard lock(mu_);
    auto st = c_.prepare(std::string("SELECT ") + kUserCols + " FROM users WHERE id = ?");
    if (st.bind_all(id).step()) return read_user(st);
    return std::nullopt;
  }

  std::vector<User> list_users() override {
    std::lock_guard lock(mu_);
    std::vector<User> out;
    auto st = c_.prepare(std::string("SELECT ") + kUserCols + " FROM users ORDER BY username");
    while (st.step()) out.push_back(read_user(st));
    return out;
  }

  void create_session(const std::string& token_hash, std::int64_t user_id, std::int64_t now,
                      std::int64_t expires_at) override {
    std::lock_guard lock(mu_);
    c_.prepare("INSERT INTO sessions(token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
        .bind_all(token_hash, user_id, now, expires_at)
        .run();
  }

  std::optional<User> user_by_session(const std::string& token_hash, std::int64_t now) override {
    std::lock_guard lock(mu_);
    auto st = c_.prepare(
        "SELECT u.id, u.username, u.password_hash, u.created_at, u.is_streaming FROM sessions s "
        "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?");
    if (st.bind_all(token_hash, now).step()) return read_user(st);
    return std::nullopt;
  }

  void delete_session(const std::string& token_hash) override {
    std::lock_guard lock(mu_);
    c_.prepare("DELETE FROM sessions WHERE token_hash = ?").bind_all(token_hash).run();
  }

  bool are_friends(std::int64_t a, std::int64_t b) override {
    std::lock_guard lock(mu_);
    auto st = c_.prepare("SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?");
    return st.bind_all(a, b).step();
  }

  std::vector<LiveStatus> friends_of(std::int64_t user_id) override {
    std::lock_guard lock(mu_);
    std::vector<LiveStatus> out;
    auto st = c_.prepare(
        "SELECT u.username, a.session_id, a.started_at, a.client_id, "
        "MIN(COALESCE(a.socket_lost_at, a.media_lost_at), COALESCE(a.media_lost_at, a.socket_lost_at)) FROM friendships f "
        "JOIN users u ON u.id = f.friend_id LEFT JOIN active_streams a ON a.user_id = u.id "
        "WHERE f.user_id = ? ORDER BY u.username");
    st.bind_all(user_id);
    while (st.step()) {
      LiveStatus s;
      s.username = st.text(0);
      s.is_streaming = !st.is_null(1);
      if (s.is_streaming) { s.session_id = st.i64(1); s.started_at = st.i64(2); s.reconnecting_since = opt_i64(st, 4); }
      out.push_back(std::move(s));
    }
    return out;
  }

  std::vector<std::string> friend_names(std::int64_t user_id) override {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    auto st = c_.prepare(
        "SELECT u.username FROM friendships f JOIN users u ON u.id = f.friend_id WHERE f.user_id = ?");
    st.bind_all(user_id);
    while (st.step()) out.push_back(st.text(0));
    return out;
  }

  std::optional<FriendRequest> pending_request(std::int64_t from, std::int64_t to) override {
    std::lock_guard lock(mu_);
    auto st = c_.prepare(std::string(kRequestSelect) +
                         "WHERE r.from_user = ? AND r.to_user = ? AND r.status = 'pending'");
    if (st.bind_all(from, to).step()) return read_request(st);
    return std::nullopt;
  }

  std::optional<FriendRequest> create_request(std::int64_t from, std::int64_t to, std::int64_t now) override {
    std::lock_guard lock(mu_);
    c_.prepare("INSERT OR IGNORE INTO friend_requests(from_user, to_user, created_at) VALUES (?, ?, ?)")
        .bind_all(from, to, now)
        .run();
    if (c_.changes() != 1) return std::nullopt;
    auto id = c_.last_insert_id();
    auto st = c_.prepare(std::string(kRequestSelect) + "WHERE r.id = ?");
    st.bind_all(id).step();
    return read_request(st);
  }

  std::optional<FriendRequest> request_by_id(std::int64_t id) override {
    std::lock_guard lock(mu_);
    auto st = c_.prepare(std::string(kRequestSelect) + "WHERE r.id = ?");
    if (st.bind_all(id).step()) return read_request(st);
    return std::nullopt;
  }

  std::vector<FriendRequest> incoming_requests(std::int64_t user_id) override {
    return requests("WHERE r.to_user = ? AND r.status = 'pending' ORDER BY r.created_at", user_id);
  }
  std::vector<FriendRequest> outgoing_requests(std::int64_t user_id) override {
    return requests("WHERE r.from_user = ? AND r.status = 'pending' ORDER BY r.created_at", user_id);
  }

  bool resolve_request(std::int64_t id, const std::string& status, std::int64_t now) override {
    std::lock_guard lock(mu_);
    Transaction tx(c_);
    c_.prepare("UPDATE friend_requests SET status = ?, resolved_at = ? WHERE id = ? AND status = 'pending'")
        .bind_all(status, now, id)
        .run();
    if (c_.changes() != 1) return false;
    if (status == "accepted") {
      std::int64_t from = 0, to = 0;
      {
        auto st = c_.prepare("SELECT from_user, to_user FROM friend_requests WHERE id = ?");
        st.bind_all(id).step();
        from = st.i64(0);
        to = st.i64(1);
      }
      auto ins = "INSERT OR IGNORE INTO friendships(user_id, friend_id, created_at) VALUES (?, ?, ?)";
      c_.prepare(ins).bind_all(from, to, now).run();
      c_.prepare(ins).bind_all(to, from, now).run();
      // Any request the other way is settled by this friendship too.
      c_.prepare("UPDATE friend_requests SET status = 'accepted', resolved_at = ? "
                 "WHERE from_user = ? AND to_user = ? AND status = 'pending'")
          .bind_all(now, to, from)
          .run();
    }
    tx.commit();
    return true;
  }

  bool remove_friendship(std::int64_t a, std::int64_t b) override {
    std::lock_guard lock(mu_);
    Transaction tx(c_);
    c_.prepare("DELETE FROM friendships WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?)")
        .bind_all(a, b, b, a)
        .run();
    bool removed = c_.changes() > 0;
    tx.commit();
    return removed;
  }

  StartResult start_stream(std::int64_t user_id, const std::string& client_id, std::int64_t now,
                           const std::string& node_id) override {
    std::lock_guard lock(mu_);
    Transaction tx(c_);
    {
      auto st = c_.prepare(std::string(kActiveSelect) + "WHERE a.user_id = ?");
      if (st.bind_all(user_id).step()) {
        auto existing = read_active(st);
        auto outcome = existing.client_id == client_id ? StartOutcome::already_live_same_client
                                                       : StartOutcome::live_elsewhere;
        return StartResult{outcome, existing};
      }
    }
    c_.prepare("INSERT INTO stream_sessions(user_id, client_id, started_at) VALUES (?, ?, ?)")
        .bind_all(user_id, client_id, now)
        .run();
    auto session_id = c_.last_insert_id();
    c_.prepare("INSERT INTO active_streams(user_id, session_id, client_id, started_at, node_id) VALUES (?,?,?,?,?)")
        .bind_all(user_id, session_id, client_id, now, node_id)
        .run();
    c_.prepare("UPDATE users SET is_streaming = 1 WHERE id = ?").bind_all(user_id).run();
    std::string username;
    {
      auto st = c_.prepare("SELECT username FROM users WHERE id = ?");
      st.bind_all(user_id).step();
      username = st.text(0);
    }
    tx.commit();
    return StartResult{StartOutcome::started, ActiveStream{session_id, user_id, username, client_id, now, node_id, std::nullopt, std::nullopt}};
  }

  std::optional<ActiveStream> active_stream(std::int64_t user_id) override {
    std::lock_guard lock(mu_);
    auto st = c_.prepare(std::string(kActiveSelect) + "WHERE a.user_id = ?");
    if (st.bind_all(user_id).step()) return read_active(st);
    return std::nullopt;
  }

  std::optional<ActiveStream> active_stream_by_session(std::int64_t session_id) override {
    std::lock_guard lock(mu_);
    auto st = c_.prepare(std::string(kActiveSelect) + "WHERE a.session_id = ?");
    if (st.bind_all(session_id).step()) return read_active(st);
    return std::nullopt;
  }

  std::vector<ActiveStream> active_streams_of_node(const std::string& node_id) override {
    std::lock_guard lock(mu_);
    std::vector<ActiveStream> out;
    auto st = c_.prepare(std::string(kActiveSelect) + "WHERE a.node_id = ?");
    st.bind_all(node_id);
    while (st.step()) out.push_back(read_active(st));
    return out;
  }

  bool end_stream(std::int64_t session_id, const std::string& reason, std::int64_t now) override {
    std::lock_guard lock(mu_);
    Transaction tx(c_);
    std::int64_t user_id = 0;
    {
      auto st = c_.prepare("SELECT user_id FROM active_streams WHERE session_id = ?");
      if (!st.bind_all(session_id).step()) return false;
      user_id = st.i64(0);
    }
    c_.prepare("DELETE FROM active_streams WHERE session_id = ?").bind_all(session_id).run();
    if (c_.changes() != 1) return false;
    c_.prepare("UPDATE stream_sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL")
        .bind_all(now, reason, session_id)
        .run();
    c_.prepare("UPDATE users SET is_streaming = 0 WHERE id = ?").bind_all(user_id).run();
    tx.commit();
    return true;
  }

  Recording add_recording(const Recording& r) override {
    std::lock_guard lock(mu_);
    c_.prepare("INSERT OR IGNORE INTO stream_recordings(session_id, user_id, path, duration_ms, bytes, created_at, "
               "noise_removed_db, strength_log, gaps, disk_id, raw_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .bind_all(r.session_id, r.user_id, r.path, r.duration_ms, r.bytes, r.created_at, r.noise_removed_db,
                  r.strength_log, r.gaps, r.disk_id, r.raw_bytes)
        .run();
    auto st = c_.prepare(std::string(kRecordingSelect) + "WHERE r.session_id = ?");
    st.bind_all(r.session_id).step();
    return read_recording(st);
  }

  std::vector<Recording> recordings_of(std::int64_t user_id, int limit, std::optional<std::int64_t> before_id) override {
    std::lock_guard lock(mu_);
    std::vector<Recording> out;
    auto st = c_.prepare(std::string(kRecordingSelect) + "WHERE r.user_id = ? AND r.id < ? ORDER BY r.id DESC LIMIT ?");
    st.bind_all(user_id, before_id.value_or(INT64_MAX), static_cast<std::int64_t>(limit));
    while (st.step()) out.push_back(read_recording(st));
    return out;
  }

  bool set_recording_title(std::int64_t id, const std::string& title) override {
    std::lock_guard lock(mu_);
    c_.prepare("UPDATE stream_recordings SET title = ? WHERE id = ?").bind_all(title, id).run();
    return c_.changes() == 1;
  }

  std::int64_t recording_bytes_of(std::int64_t user_id) override {
    std::lock_guard lock(mu_);
    auto st = c_.prepare("SELECT COALESCE(SUM(bytes), 0) FROM stream_recordings WHERE user_id = ?");
    st.bind_all(user_id).step();
    return st.i64(0);
  }

  std::vector<Recording> recordings_created_before(std::int64_t created_before, int limit,
                                                   const std::string& disk_id) override {
    std::lock_guard lock(mu_);
    std::vector<Recording> out;
    auto st = c_.prepare(std::string(kRecordingSelect) +
                         "WHERE r.created_at < ? AND r.disk_id IN ('', ?) ORDER BY r.created_at, r.id LIMIT ?");
    st.bind_all(created_before, disk_id, static_cast<std::int64_t>(limit));
    while (st.step()) out.push_back(read_recording(st));
    return out;
  }

  std::optional<Recording> recording_by_id(std::int64_t id) override {
    std::lock_guard lock(mu_);
    auto st = c_.prepare(std::string(kRecordingSelect) + "WHERE r.id = ?");
    if (st.bind_all(id).step()) return read_recording(st);
    return std::nullopt;
  }

  bool delete_recording(std::int64_t id) override {
    std::lock_guard lock(mu_);
    c_.prepare("DELETE FROM stream_recordings WHERE id = ?").bind_all(id).run();
    return c_.changes() == 1;
  }

  std::optional<ActiveStream> set_trouble(std::int64_t session_id, Trouble trouble,
                                          std::optional<std::int64_t> since) override {
    std::lock_guard lock(mu_);
    const std::string col = trouble == Trouble::socket ? "socket_lost_at" : "media_lost_at";
    if (since) {
      c_.prepare("UPDATE active_streams SET " + col + " = COALESCE(" + col + ", ?) WHERE session_id = ?")
          .bind_all(*since, session_id)
          .run();
    } else {
      c_.prepare("UPDATE active_streams SET " + col + " = NULL WHERE session_id = ?").bind_all(session_id).run();
    }
    auto st = c_.prepare(std::string(kActiveSelect) + "WHERE a.session_id = ?");
    if (st.bind_all(session_id).step()) return read_active(st);
    return std::nullopt;
  }

  std::optional<StreamSession> stream_session(std::int64_t session_id) override {
    std::lock_guard lock(mu_);
    auto st = c_.prepare(
        "SELECT id, user_id, client_id, started_at, ended_at, end_reason FROM stream_sessions WHERE id = ?");
    if (!st.bind_all(session_id).step()) return std::nullopt;
    StreamSession s{st.i64(0), st.i64(1), st.text(2), st.i64(3), std::nullopt, st.text(5)};
    if (!st.is_null(4)) s.ended_at = st.i64(4);
    return s;
  }

  std::optional<StreamSession> last_stream_session(std::int64_t user_id) override {
    std::lock_guard lock(mu_);
    auto st = c_.prepare("SELECT id, user_id, client_id, started_at, ended_at, COALESCE(end_reason, '') "
                         "FROM stream_sessions WHERE user_id = ? ORDER BY id DESC LIMIT 1");
    if (!st.bind_all(user_id).step()) return std::nullopt;
    StreamSession s{st.i64(0), st.i64(1), st.text(2), st.i64(3), std::nullopt, st.text(5)};
    if (!st.is_null(4)) s.ended_at = st.i64(4);
    return s;
  }

  LiveStatus live_status(std::int64_t user_id) override {
    std::lock_guard lock(mu_);
    LiveStatus s;
    auto st = c_.prepare(
        "SELECT u.username, a.session_id, a.started_at, a.client_id, "
        "MIN(COALESCE(a.socket_lost_at, a.media_lost_at), COALESCE(a.media_lost_at, a.socket_lost_at)) FROM users u "
        "LEFT JOIN active_streams a ON a.user_id = u.id WHERE u.id = ?");
    if (st.bind_all(user_id).step()) {
      s.username = st.text(0);
      s.is_streaming = !st.is_null(1);
      if (s.is_streaming) {
        s.session_id = st.i64(1);
        s.started_at = st.i64(2);
        s.client_id = st.text(3);
        s.reconnecting_since = opt_i64(st, 4);
      }
    }
    return s;
  }

  std::vector<ActiveStream> all_active_streams() override {
    std::lock_guard lock(mu_);
    std::vector<ActiveStream> out;
    auto st = c_.prepare(std::string(kActiveSelect) + "ORDER BY a.started_at");
    while (st.step()) out.push_back(read_active(st));
    return out;
  }

  void heartbeat(const Node& n) override {
    std::lock_guard lock(mu_);
    c_.prepare("INSERT INTO nodes(node_id, host, pid, last_seen) VALUES (?, ?, ?, ?) "
               "ON CONFLICT(node_id) DO UPDATE SET last_seen = excluded.last_seen")
        .bind_all(n.node_id, n.host, n.pid, n.last_seen)
        .run();
  }

  void forget_node(const std::string& node_id) override {
    std::lock_guard lock(mu_);
    c_.prepare("DELETE FROM nodes WHERE node_id = ?").bind_all(node_id).run();
  }

  std::vector<Node> nodes() override {
    std::lock_guard lock(mu_);
    std::vector<Node> out;
    auto st = c_.prepare("SELECT node_id, host, pid, last_seen FROM nodes");
    while (st.step()) out.push_back(Node{st.text(0), st.text(1), st.i64(2), st.i64(3)});
    return out;
  }

 private:
  std::vector<FriendRequest> requests(const char* where, std::int64_t user_id) {
    std::lock_guard lock(mu_);
    std::vector<FriendRequest> out;
    auto st = c_.prepare(std::string(kRequestSelect) + where);
    st.bind_all(user_id);
    while (st.step()) out.push_back(read_request(st));
    return out;
  }

  std::string path_;
  std::mutex mu_;
  Connection c_;
};

}  // namespace

std::unique_ptr<Store> open_sqlite_store(const std::filesystem::path& path) {
  try {
    return std::make_unique<SqliteStore>(path);
  } catch (const detail::SqliteError& e) {
    throw std::runtime_error(std::string(e.what()));
  }
}

int sqlite_schema_version(const std::filesystem::path& path) {
  Connection c(path.string());
  return current_version(c);
}

}  // namespace fc25::storage
