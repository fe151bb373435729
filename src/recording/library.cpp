#include "recording/library.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "core/crypto.hpp"

#include "core/log.hpp"
#include "core/time.hpp"

namespace fc25::recording {

std::optional<FileName> parse_file_name(std::string_view name) {
  constexpr std::string_view kExt = ".wav", kRaw = "_raw";
  if (!name.ends_with(kExt)) return std::nullopt;
  auto stem = name.substr(0, name.size() - kExt.size());
  FileName f;
  if (stem.ends_with(kRaw)) {
    f.raw = true;
    stem.remove_suffix(kRaw.size());
  }
  // Usernames may hold '_': the session is what follows the last one.
  auto us = stem.rfind('_');
  if (us == std::string_view::npos || us == 0) return std::nullopt;
  auto digits = stem.substr(us + 1);
  if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  std::from_chars(digits.data(), digits.data() + digits.size(), f.session_id);
  if (f.session_id <= 0) return std::nullopt;
  f.username = std::string(stem.substr(0, us));
  return f;
}

namespace {

// The directory's id: read from its .disk-id, or made (random) and written there by whichever process comes first
// (O_EXCL), every other one reading what that one wrote.
std::string disk_id_of(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw RecordingError("cannot create " + dir.string() + ": " + ec.message(), ec.value());
  const auto file = dir / ".disk-id";
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[64];
      auto n = ::read(fd, buf, sizeof(buf));
      ::close(fd);
      std::string id(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
      while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
      if (!id.empty()) return id;
    } else if (errno == ENOENT) {
      auto tmp = dir / (".disk-id." + core::random_token_hex(6));
      {
        std::ofstream out(tmp);
        out << core::random_token_hex(8) << "\n";
        out.flush();
        if (!out) throw RecordingError("cannot write " + tmp.string(), errno);
      }
      // link() fails when another process put its id there first: then that one is read.
      if (::link(tmp.c_str(), file.c_str()) != 0 && errno != EEXIST) {
        auto err = errno;
        std::filesystem::remove(tmp, ec);
        throw RecordingError("cannot write " + file.string() + ": " + std::strerror(err), err);
      }
      std::filesystem::remove(tmp, ec);
      continue;
    } else {
      throw RecordingError("cannot read " + file.string() + ": " + std::strerror(errno), errno);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));   // empty: being written
  }
  throw RecordingError(file.string() + " holds no disk id");
}

}  // namespace

Library::Library(std::filesystem::path data_dir, NodeUrl node_url)
    : data_dir_(std::move(data_dir)),
      dir_(data_dir_ / "streamed_audios"),
      disk_id_(disk_id_of(dir_)),
      node_url_(std::move(node_url)) {}

std::filesystem::path Library::file_for(const std::string& username, std::int64_t session_id) const {
  return dir_ / file_name(username, session_id);
}

storage::Recording Library::finish(storage::Store& store, storage::Recording row, const Summary& saved) const {
  row.path = std::filesystem::relative(saved.path, data_dir_).generic_string();
  row.duration_ms = saved.samples * 1000 / kSampleRate;
  row.bytes = saved.bytes;
  if (row.created_at == 0) row.created_at = core::now_ms();
  row.disk_id = disk_id_;
  std::error_code ec;
  auto raw_size = std::filesystem::file_size(raw_twin(saved.path), ec);
  row.raw_bytes = ec ? std::nullopt : std::optional<std::int64_t>(static_cast<std::int64_t>(raw_size));
  return store.add_recording(row);
}

std::optional<Summary> Library::repair_orphan(const std::string& username, std::int64_t session_id) const {
  auto path = file_for(username, session_id);
  auto saved = repair(path);
  repair(raw_twin(path));
  if (saved && saved->samples == 0) {
    std::error_code ec;
    std::filesystem::remove(saved->path, ec);
    std::filesystem::remove(raw_twin(saved->path), ec);
    return std::nullopt;
  }
  if (saved) core::logger("recording")->info("repaired {} after a crash ({:.1f} s)", path.string(), saved->seconds());
  return saved;
}

std::vector<FileName> Library::stale_files() const {
  std::vector<FileName> out;
  std::error_code ec;
  for (auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    auto f = parse_file_name(entry.path().filename().string());
    if (f && !f->raw && header_stale(entry.path())) out.push_back(std::move(*f));
  }
  return out;
}

bool Library::remove(const storage::Recording& r) const { return remove_files(data_dir_ / r.path); }

bool Library::holds(const storage::Recording& r) const { return r.disk_id.empty() || r.disk_id == disk_id_; }

bool Library::has_raw(const storage::Recording& r) const {
  if (r.raw_bytes) return true;
  std::error_code ec;
  return std::filesystem::is_regular_file(raw_twin(data_dir_ / r.path), ec);
}

Location Library::locate(const storage::Recording& r, bool raw) const {
  Location l;
  l.disk_id = r.disk_id;
  auto path = raw ? raw_twin(data_dir_ / r.path) : data_dir_ / r.path;
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    l.kind = Location::Kind::local;
    l.path = std::move(path);
    return l;
  }
  if (holds(r) || !node_url_) return l;   // missing
  if (auto url = node_url_(r.disk_id)) {
    l.kind = Location::Kind::remote;
    l.node_url = *url;
  } else {
    l.kind = Location::Kind::unavailable;
  }
  return l;
}

}  // namespace fc25::recording
