#include "app/retention.hpp"

#include "core/log.hpp"
#include "recording/recording.hpp"

namespace fc25::app {

std::size_t expire_recordings(storage::Store& store, const recording::Library& library, std::int64_t now_ms, int days) {
  if (days <= 0) return 0;
  auto log = core::logger("recording");
  const std::int64_t cutoff = now_ms - static_cast<std::int64_t>(days) * 86'400'000;
  std::size_t gone = 0;
  for (;;) {
    auto batch = store.recordings_created_before(cutoff, 100, library.disk_id());
    if (batch.empty()) break;
    std::size_t before = gone;
    for (const auto& r : batch) {
      if (!library.remove(r)) {
        log->error("retention: cannot remove {} (recording {}); kept", r.path, r.id);
        continue;
      }
      if (store.delete_recording(r.id)) ++gone;
      log->info("retention: deleted recording {} of {} ({}, {:.1f} s), older than {} days", r.id, r.username, r.path,
                static_cast<double>(r.duration_ms) / 1000.0, days);
    }
    if (gone == before) break;  // nothing of this batch could go: do not spin on it
  }
  return gone;
}

}  // namespace fc25::app
