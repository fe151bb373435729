#pragma once
// What the fuzz targets share: a scratch directory for the process (under $TMPDIR, removed at exit), and a way to
// stop with a message when an answer breaks a rule (libFuzzer then saves the input as a crash).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace fc25::fuzz {

// Ends the run as a crash, saying which rule the input broke.
[[noreturn]] inline void fail(std::string_view what) {
  std::fprintf(stderr, "\n==fc25 fuzz== %.*s\n", static_cast<int>(what.size()), what.data());
  std::fflush(stderr);
  std::abort();
}

// One directory per fuzzing process.
inline const std::filesystem::path& scratch_dir() {
  struct Dir {
    std::filesystem::path path;
    Dir() {
      std::string tmpl = (std::filesystem::temp_directory_path() / "fc25-fuzz-XXXXXX").string();
      if (!::mkdtemp(tmpl.data())) fail("cannot create a scratch directory under " + tmpl);
      path = tmpl;
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Dir dir;
  return dir.path;
}

}  // namespace fc25::fuzz
