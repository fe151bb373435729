// The flags of `fc25 serve` (the input split on NUL bytes into arguments) through app::load_config, with none of
// its environment variables set. A bad value is answered with std::invalid_argument naming the flag (fc25 prints
// it and exits 2); a configuration that loads must be one the server can start with.
//
// A crash is: any other exception, or a loaded configuration outside the documented ranges.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/config.hpp"
#include "fuzz_support.hpp"

extern char** environ;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The variables load_config reads (FC25_*, CHANNEL_BACKEND, REDIS_*) are unset: the flags alone decide.
  std::vector<std::string> names;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    auto name = kv.substr(0, kv.find('='));
    if (name.starts_with("FC25_") || name.starts_with("REDIS_") || name == "CHANNEL_BACKEND") names.emplace_back(name);
  }
  for (auto& n : names) ::unsetenv(n.c_str());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fc25;
  std::vector<std::string> args;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty() && args.size() < 64) {
    auto nul = rest.find('\0');
    args.emplace_back(rest.substr(0, nul));
    rest = nul == std::string_view::npos ? std::string_view{} : rest.substr(nul + 1);
  }
  app::Config c;
  try {
    c = app::load_config(args);
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).empty()) fuzz::fail("a refusal without a message");
    return 0;
  }
  auto in = [](int v, int lo, int hi) { return v >= lo && v <= hi; };
  if (!in(c.port, 0, 65535) || !in(c.redis_port, 1, 65535) || !in(c.threads, 1, 256) ||
      !in(c.denoise_workers, 1, 256) || !in(c.media_timeout_ms, 500, 3600000) || !in(c.jitter_ms, 0, 2000) ||
      !in(c.realtime_priority, 0, 99)) {
    fuzz::fail("a loaded configuration out of range: " + c.describe());
  }
  if (c.db.empty()) fuzz::fail("a loaded configuration without a database path");
  (void)c.describe();
  return 0;
}
