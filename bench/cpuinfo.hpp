// What a benchmark prints about the machine it ran on: a field of /proc/cpuinfo (the first processor's).
#pragma once

#include <fstream>
#include <string>

namespace fc25::bench {

// The value of `key` ("model name", "flags", ...) for the first processor, or "" where the file has no such field.
inline std::string cpuinfo(const char* key) {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0 && line.find(':') != std::string::npos) return line.substr(line.find(':') + 2);
  }
  return "";
}

// The processor's model as /proc/cpuinfo names it, or "unknown".
inline std::string cpu_model() {
  std::string m = cpuinfo("model name");
  return m.empty() ? "unknown" : m;
}

}  // namespace fc25::bench
