#pragma once
// The recordings as the server keeps them: a file under data_dir/streamed_audios on the disk of the node that
// recorded it, and a row in the store naming that directory by its disk id: a random id the directory keeps in a
// file of its own (.disk-id), so that it outlives restarts of its node and is the same for every node that mounts
// one shared directory. Each node of a cluster says in its lease which disk it has. The library writes the row
// when a recording is finished,
// repairs the file of a stream that ended while its process was gone, removes files, and says where a recording is
// served from: this node's disk (its own, or a directory all nodes share), the node that holds it (proxied), or
// nowhere while that node is down. Files and rows only: no threads, no network.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "recording/recording.hpp"
#include "storage/store.hpp"

namespace fc25::recording {

// What a recording's file name says: `{username}_{session}.wav`, or `…_raw.wav` for its unprocessed twin.
struct FileName {
  std::string username;
  std::int64_t session_id = 0;
  bool raw = false;
};
// nullopt for any other name (no session number after the last '_', another extension, a session over 18 digits).
std::optional<FileName> parse_file_name(std::string_view name);

// Where a recording (or its raw twin) is to be read.
struct Location {
  enum class Kind {
    local,        // on this node's disk: `path`
    remote,       // on the disk `disk_id` of a node that is up, reached at `node_url`
    unavailable,  // on the disk `disk_id`, and no node with it is up
    missing,      // nowhere: the row's file is gone
  };
  Kind kind = Kind::missing;
  std::filesystem::path path;
  std::string disk_id;
  std::string node_url;
};

class Library {
 public:
  // The URL of a node of the cluster that is up with the disk `disk_id` (nullopt: none); null outside a cluster.
  using NodeUrl = std::function<std::optional<std::string>(const std::string& disk_id)>;

  // Creates the recordings directory and its disk id when they are not there yet. Throws RecordingError when it
  // cannot.
  explicit Library(std::filesystem::path data_dir, NodeUrl node_url = {});

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& disk_id() const { return disk_id_; }
  // Where a stream's recording is written here.
  std::filesystem::path file_for(const std::string& username, std::int64_t session_id) const;

  // The row of a finished recording, written here: `row` carries what the stream knew (session, user, noise
  // figures, strengths, gaps); the library adds its file, size, duration, this disk and the raw twin's size.
  // Idempotent per session (the store keeps the first row).
  storage::Recording finish(storage::Store& store, storage::Recording row, const Summary& saved) const;

  // The file of a stream whose process died while recording it, made playable (and its raw twin): nullopt when
  // there is none or it holds no audio (then it is removed). Throws RecordingError when it cannot be read.
  std::optional<Summary> repair_orphan(const std::string& username, std::int64_t session_id) const;
  // Recordings here whose header a crash left stale (their streams may since have been ended by another node).
  std::vector<FileName> stale_files() const;

  // Removes a recording's file and raw twin from this node's disk (either may already be gone). False when a file
  // was there and could not be removed.
  bool remove(const storage::Recording& r) const;
  // Whether the recording's files are this node's to keep: on its disk, or named by no disk.
  bool holds(const storage::Recording& r) const;
  // Whether the recording has an unprocessed twin (its row says so, or the file is here).
  bool has_raw(const storage::Recording& r) const;
  Location locate(const storage::Recording& r, bool raw) const;

 private:
  std::filesystem::path data_dir_;
  std::filesystem::path dir_;
  std::string disk_id_;
  NodeUrl node_url_;
};

}  // namespace fc25::recording
