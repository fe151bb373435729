#pragma once
// A directory of its own for one test, removed with its contents afterwards.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace fc25::testing {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "fc25-test") {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace fc25::testing
