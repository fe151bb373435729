#pragma once
// Retention: recordings older than FC25_RETENTION_DAYS go — file, raw twin and row — at start-up and every hour.
#include <cstdint>
#include <filesystem>

#include "storage/store.hpp"

namespace fc25::app {

// Deletes every recording made before `now_ms` minus `days` days; returns how many went. Each is logged.
std::size_t expire_recordings(storage::Store& store, const std::filesystem::path& data_dir, std::int64_t now_ms,
                              int days);

}  // namespace fc25::app
