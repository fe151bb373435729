#pragma once
// The store: every durable fact of fc25 (users, sessions, friendships, streams) behind one interface: SQLite (one
// file, the embedded default) or PostgreSQL (several nodes). Every method is one transaction; methods are
// thread-safe and may block for a database round trip (the server calls them off its io threads). Times are epoch
// milliseconds.
#include <cstdint>
#include <filesystem>
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/api_error.hpp"

namespace fc25::storage {

// The database cannot be reached (stopped, restarting, network): the request fails with 503 and may be retried;
// nothing was changed.
class Unavailable : public core::ApiError {
 public:
  explicit Unavailable(const std::string& why) : core::ApiError(503, "database_unavailable", why) {}
};

struct User {
  std::int64_t id = 0;
  std::string username;
  std::string password_hash;
  std::int64_t created_at = 0;
  bool is_streaming = false;
};

// A user's live status as friends see it.
struct LiveStatus {
  std::string username;
  bool is_streaming = false;
  std::int64_t session_id = 0;   // 0 when not streaming
  std::int64_t started_at = 0;
  std::string client_id;         // the tab that owns the stream (shown to the owner only)
  std::optional<std::int64_t> reconnecting_since;  // live, but its page's connection is lost (the grace runs)
};

struct FriendRequest {
  std::int64_t id = 0;
  std::int64_t from_user = 0;
  std::int64_t to_user = 0;
  std::string from_username;
  std::string to_username;
  std::int64_t created_at = 0;
  std::string status;  // pending | accepted | declined | cancelled
};

struct ActiveStream {
  std::int64_t session_id = 0;
  std::int64_t user_id = 0;
  std::string username;
  std::string client_id;
  std::int64_t started_at = 0;
  std::string node_id;
  // Its page lost its presence socket / its audio stopped at these times (reconnecting); unset once back.
  std::optional<std::int64_t> socket_lost_at;
  std::optional<std::int64_t> media_lost_at;
  std::optional<std::int64_t> reconnecting_since() const {
    if (socket_lost_at && media_lost_at) return std::min(*socket_lost_at, *media_lost_at);
    return socket_lost_at ? socket_lost_at : media_lost_at;
  }
};

// What a live stream's page may lose for a while without the stream ending.
enum class Trouble { socket, media };

struct StreamSession {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string client_id;
  std::int64_t started_at = 0;
  std::optional<std::int64_t> ended_at;
  std::string end_reason;
};

// The recording of one stream session (one WAV file under streamed_audios/).
struct Recording {
  std::int64_t id = 0;
  std::int64_t session_id = 0;
  std::int64_t user_id = 0;
  std::string username;
  std::string path;            // as stored: relative to the data directory
  std::int64_t duration_ms = 0;
  std::int64_t bytes = 0;
  std::int64_t created_at = 0;
  std::int64_t started_at = 0; // of the session
  std::string end_reason;      // of the session (empty while it is live)
  std::optional<double> noise_removed_db;   // mean of the noise meter over the stream (null: not measured)
  std::string strength_log = "[]";          // JSON: [{"at_ms": offset in the recording, "strength": name}], the
                                            // noise removal strength at the start and each change while live
  std::string title;                        // the owner's name for it (empty: none given)
  std::string gaps = "[]";                  // JSON: [{"at_ms": offset in the recording, "ms": length}], where
                                            // the page's audio was lost and silence keeps the wall-clock time
  std::string disk_id;                      // the recordings directory that holds the file (recording::Library;
                                            // empty: made before clusters)
  std::optional<std::int64_t> raw_bytes;    // size of the unprocessed twin when one was kept (null: none known)
};

// A server process sharing this store.
struct Node {
  std::string node_id;
  std::string host;
  std::int64_t pid = 0;
  std::int64_t last_seen = 0;
};

enum class StartOutcome { started, already_live_same_client, live_elsewhere };
struct StartResult {
  StartOutcome outcome;
  ActiveStream stream;  // the new stream, or the one already live
};

class Store {
 public:
  virtual ~Store() = default;

  // Users
  virtual std::optional<User> create_user(const std::string& username, const std::string& password_hash,
                                          std::int64_t now) = 0;  // nullopt: username taken
  virtual std::optional<User> user_by_name(const std::string& username) = 0;
  virtual std::optional<User> user_by_id(std::int64_t id) = 0;
  virtual std::vector<User> list_users() = 0;

  // Sessions (only the token's hash is stored)
  virtual void create_session(const std::string& token_hash, std::int64_t user_id, std::int64_t now,
                              std::int64_t expires_at) = 0;
  virtual std::optional<User> user_by_session(const std::string& token_hash, std::int64_t now) = 0;
  virtual void delete_session(const std::string& token_hash) = 0;

  // Friends
  virtual bool are_friends(std::int64_t a, std::int64_t b) = 0;
  virtual std::vector<LiveStatus> friends_of(std::int64_t user_id) = 0;
  virtual std::vector<std::string> friend_names(std::int64_t user_id) = 0;
  virtual std::optional<FriendRequest> pending_request(std::int64_t from, std::int64_t to) = 0;
  // nullopt: a request between the two is already pending (either way); at most one is, whatever the races.
  virtual std::optional<FriendRequest> create_request(std::int64_t from, std::int64_t to, std::int64_t now) = 0;
  virtual std::optional<FriendRequest> request_by_id(std::int64_t id) = 0;
  virtual std::vector<FriendRequest> incoming_requests(std::int64_t user_id) = 0;
  virtual std::vector<FriendRequest> outgoing_requests(std::int64_t user_id) = 0;
  // Marks a pending request `status`; with "accepted" the friendship is made in the same transaction.
  // Returns false when the request was no longer pending.
  virtual bool resolve_request(std::int64_t id, const std::string& status, std::int64_t now) = 0;
  virtual bool remove_friendship(std::int64_t a, std::int64_t b) = 0;

  // Streams
  virtual StartResult start_stream(std::int64_t user_id, const std::string& client_id, std::int64_t now,
                                   const std::string& node_id) = 0;
  virtual std::optional<ActiveStream> active_stream(std::int64_t user_id) = 0;
  virtual std::optional<ActiveStream> active_stream_by_session(std::int64_t session_id) = 0;
  virtual std::vector<ActiveStream> active_streams_of_node(const std::string& node_id) = 0;
  // Ends a live session: exactly one caller wins (true); later or concurrent callers get false.
  virtual bool end_stream(std::int64_t session_id, const std::string& reason, std::int64_t now) = 0;
  // Marks (`since`) or clears (nullopt) one trouble of a live session; an earlier mark is kept. Returns the
  // stream as it now is (nullopt: not live).
  virtual std::optional<ActiveStream> set_trouble(std::int64_t session_id, Trouble trouble,
                                                  std::optional<std::int64_t> since) = 0;
  virtual std::optional<StreamSession> stream_session(std::int64_t session_id) = 0;
  // The user's newest stream session (live or ended), nullopt when none.
  virtual std::optional<StreamSession> last_stream_session(std::int64_t user_id) = 0;
  virtual LiveStatus live_status(std::int64_t user_id) = 0;

  virtual std::vector<ActiveStream> all_active_streams() = 0;

  // Recordings. add_recording is idempotent per session (a second call returns the first row).
  virtual Recording add_recording(const Recording& r) = 0;
  // Newest first (by id); with `before_id`, only those older than that one (the next page).
  virtual std::vector<Recording> recordings_of(std::int64_t user_id, int limit,
                                               std::optional<std::int64_t> before_id = std::nullopt) = 0;
  virtual std::optional<Recording> recording_by_id(std::int64_t id) = 0;
  virtual bool delete_recording(std::int64_t id) = 0;
  // False when there is no such recording.
  virtual bool set_recording_title(std::int64_t id, const std::string& title) = 0;
  // Bytes of all of a user's recordings (their quota's use).
  virtual std::int64_t recording_bytes_of(std::int64_t user_id) = 0;
  // Recordings made before `created_before` (epoch ms) whose files are in the directory `disk_id` (or that name
  // none), oldest first, at most `limit` (retention: each node expires what it holds).
  virtual std::vector<Recording> recordings_created_before(std::int64_t created_before, int limit,
                                                           const std::string& disk_id) = 0;

  // Nodes: each server process beats; streams of a node that stopped beating were left by a crash.
  virtual void heartbeat(const Node& node) = 0;
  virtual void forget_node(const std::string& node_id) = 0;
  virtual std::vector<Node> nodes() = 0;
};

// Opens (creating if needed) the SQLite database at `path` and runs pending migrations.
// Throws std::runtime_error naming the file on failure.
std::unique_ptr<Store> open_sqlite_store(const std::filesystem::path& path);

// Schema version after migrations (for tests and logs).
int sqlite_schema_version(const std::filesystem::path& path);

// Connects to PostgreSQL (`postgresql://user:password@host:port/db`) with a pool of `connections` and runs
// pending migrations (one node at a time, under an advisory lock). Throws Unavailable when the server cannot be
// reached, std::runtime_error for a database newer than this fc25.
std::unique_ptr<Store> open_postgres_store(const std::string& url, int connections);
int postgres_schema_version(const std::string& url);

// Whether `url` looks like a PostgreSQL URL (postgres:// or postgresql://).
bool is_postgres_url(const std::string& url);
// The URL with its password replaced by ***, for logs.
std::string redact_database_url(const std::string& url);

}  // namespace fc25::storage
