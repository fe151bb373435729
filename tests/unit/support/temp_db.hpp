#pragma once
// A SQLite file path of its own for one test, removed with its WAL files afterwards.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace fc25::testing {

struct TempDb {
  std::filesystem::path path;
  explicit TempDb(const std::string& prefix = "fc25-test") {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".sqlite3");
  }
  ~TempDb() {
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
  }
};

}  // namespace fc25::testing
