#include "core/log.hpp"

#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace fc25::core {
namespace {
std::mutex g_mutex;
spdlog::level::level_enum g_level = spdlog::level::info;
std::unordered_map<std::string, std::shared_ptr<spdlog::logger>>& registry() {
  static std::unordered_map<std::string, std::shared_ptr<spdlog::logger>> r;
  return r;
}
spdlog::sink_ptr shared_sink() {
  static auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  return sink;
}
}  // namespace

std::shared_ptr<spdlog::logger> logger(std::string_view component) {
  std::lock_guard lock(g_mutex);
  auto& r = registry();
  auto it = r.find(std::string(component));
  if (it != r.end()) return it->second;
  auto l = std::make_shared<spdlog::logger>(std::string(component), shared_sink());
  l->set_level(g_level);
  l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  r.emplace(std::string(component), l);
  return l;
}

void set_log_level(std::string_view level) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    throw std::invalid_argument("FC25_LOG_LEVEL: unknown level '" + std::string(level) +
                                "' (expected trace|debug|info|warn|error|critical|off)");
  }
  std::lock_guard lock(g_mutex);
  g_level = lvl;
  for (auto& [name, l] : registry()) l->set_level(lvl);
}

namespace {
std::mutex g_failures_mutex;
std::map<std::string, std::uint64_t> g_failures;
}  // namespace

void count_failure(std::string_view where) {
  std::lock_guard lock(g_failures_mutex);
  ++g_failures[std::string(where)];
}

std::map<std::string, std::uint64_t> failure_counts() {
  std::lock_guard lock(g_failures_mutex);
  return g_failures;
}

}  // namespace fc25::core
