#pragma once
// Retention: recordings older than FC25_RETENTION_DAYS go — file, raw twin and row — at start-up and every hour.
#include <cstdint>
#include <filesystem>

#include "recording/library.hpp"
#include "storage/store.hpp"

namespace fc25::app {

// Deletes every recording of this node (the library's) made before `now_ms` minus `days` days; returns how many
// went. Each is logged. In a cluster each node expires the recordings on its own disk.
std::size_t expire_recordings(storage::Store& store, const recording::Library& library, std::int64_t now_ms, int days);

}  // namespace fc25::app
