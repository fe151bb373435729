#pragma once
// Logging by component. Operator-facing events (requests, channel-layer sends and receipts, stream start/stop with
// reason, recordings saved) at INFO; everything else at DEBUG. Level from FC25_LOG_LEVEL (set once at start-up).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace fc25::core {

// The logger for one component ("http", "presence", "streams", ...), created on first use and shared.
std::shared_ptr<spdlog::logger> logger(std::string_view component);

// Sets the level of every component's logger, now and for those created later. Accepts
// trace|debug|info|warn|error|critical|off; throws std::invalid_argument naming the bad value otherwise.
void set_log_level(std::string_view level);

// Failures caught at a boundary (a request handler, a WebSocket message, a thread's entry point) that would
// otherwise have ended the process: counted by place, shown in GET /api/health. Thread-safe.
void count_failure(std::string_view where);
std::map<std::string, std::uint64_t> failure_counts();

}  // namespace fc25::core
