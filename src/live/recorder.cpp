#include "live/recorder.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <span>
#include <utility>

#include "core/guard.hpp"
#include "core/time.hpp"

namespace fc25::live {
namespace {

constexpr auto kFanoutReportEvery = std::chrono::seconds(5);  // latency to listeners, logged while there are some
// Frames further apart than this (as the recorder's 50 ms polls see them) are not yet audio flowing again.
constexpr auto kSteadyGap = std::chrono::milliseconds(100);

}  // namespace

Recorder::Recorder(const Config& cfg, const Callbacks& cb) : cfg_(cfg), cb_(cb) {
  make_reserve();
  thread_ = std::thread([this] { core::run_guarded("recorder", [this] { run_recorder(); }); });
}

Recorder::~Recorder() { stop(); }

void Recorder::add(const std::shared_ptr<Pipe>& p) {
  std::lock_guard lock(mu_);
  pipes_.push_back(p);
}

void Recorder::remove(const std::shared_ptr<Pipe>& p) {
  std::lock_guard lock(mu_);
  std::erase(pipes_, p);
}

void Recorder::stop() {
  stopping_ = true;
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// Writes what the scheduler produced. Called by the recorder thread, and by finish() (on close()'s thread) once the
// pipe is its own.
void Recorder::drain(Pipe& p, bool final) {
  if (!p.clean_file) {  // not recorded: what the listeners had is all there is
    Processed gone;
    while (p.out.pop(gone)) {
    }
    return;
  }
  auto pad = p.pad_samples.load();
  if (!p.padded) {
    if (pad < 0) return;  // no audio yet
    p.padded = true;
    if (pad > 0) {
      p.clean_file->write_silence(pad);
      if (p.raw_file) p.raw_file->write_silence(pad);
      p.raw_samples += pad;
      p.clean_samples += pad;
    }
  }
  Processed item;
  for (;;) {
    if (p.holding) {
      while (p.out.pop(item)) p.held.push_back(item);
      if (!final && Clock::now() - p.hold_started < cfg_.gap_hold) return;
      close_gap(p);
    }
    if (!p.out.pop(item)) return;
    if (item.after_stall) {
      p.holding = true;
      p.hold_started = Clock::now();
      p.held.push_back(item);
      continue;
    }
    write_processed(p, item);
  }
}

// The audio lost in a stall, sized once the frames after it are in: the time from going live to the newest
// frame's arrival, less what is written and what is held. That much silence, then the held frames.
void Recorder::close_gap(Pipe& p) {
  const std::int64_t per_ms = media::kSampleRate / 1000;
  auto since_newest_ms = (core::steady_ns() - p.last_frame_ns.load(std::memory_order_relaxed)) / 1000000;
  auto wall = (core::now_ms() - since_newest_ms - p.started_at_ms) * per_ms;
  auto gap = wall - p.raw_samples - static_cast<std::int64_t>(p.held.size() * kHop);
  if (gap > static_cast<std::int64_t>(cfg_.gap_after.count()) * per_ms) {
    p.gaps.push_back(Gap{p.raw_samples / per_ms, gap / per_ms});
    p.clean_file->write_silence(gap);
    if (p.raw_file) p.raw_file->write_silence(gap);
    p.raw_samples += gap;
    p.clean_samples += gap;
    log_->info("session={}: {} ms of audio lost at {:.1f} s, written as silence", p.session_id, gap / per_ms,
               static_cast<double>(p.gaps.back().at_ms) / 1000.0);
  }
  for (auto& h : p.held) write_processed(p, h);
  p.held.clear();
  p.holding = false;
}

void Recorder::write_processed(Pipe& p, const Processed& item) {
  if (p.raw_file) p.raw_file->write(item.raw);
  p.raw_samples += kHop;
  std::size_t from = 0;
  if (p.clean_skip > 0) {
    from = static_cast<std::size_t>(std::min<std::int64_t>(p.clean_skip, kHop));
    p.clean_skip -= static_cast<std::int64_t>(from);
  }
  if (from < kHop) {
    p.clean_file->write(std::span<const float>(item.clean.data() + from, kHop - from));
    p.clean_samples += static_cast<std::int64_t>(kHop - from);
  }
}

// How late a stream's packets reached its listeners, as log fields.
std::string Recorder::latency_fields(const media::Fanout::Latency& l) {
  return fmt::format("packets={} latency p50={:.2f}ms p99={:.2f}ms max={:.2f}ms", l.count, l.p50_ms, l.p99_ms,
                     l.max_ms);
}

// While a stream has listeners: over the last few seconds.
void Recorder::report_fanout(Pipe& p) {
  auto f = std::atomic_load(&p.fanout);
  if (!f) return;
  auto l = f->take_latency_window();
  if (l.count == 0) return;
  log_->info("fanout session={} listeners={} {} (last {} s)", p.session_id, f->listeners(), latency_fields(l),
             std::chrono::duration_cast<std::chrono::seconds>(kFanoutReportEvery).count());
}

// --- the disk reserve ---------------------------------------------------------------------------------------
void Recorder::make_reserve() {
  if (cfg_.reserve_file.empty() || cfg_.reserve_bytes <= 0) return;
  std::error_code ec;
  if (std::filesystem::exists(cfg_.reserve_file, ec)) return;
  int fd = ::open(cfg_.reserve_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return;
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(cfg_.reserve_bytes));
  ::close(fd);
  if (rc != 0) {
    std::filesystem::remove(cfg_.reserve_file, ec);
    log_->warn("cannot keep {} KiB in reserve at {}: {}", cfg_.reserve_bytes / 1024, cfg_.reserve_file.string(),
               std::strerror(rc));
  }
}

void Recorder::release_reserve() {
  if (cfg_.reserve_file.empty()) return;
  std::error_code ec;
  if (std::filesystem::remove(cfg_.reserve_file, ec)) {
    log_->warn("released the disk reserve {} ({} KiB) so that the ends of the streams can be recorded",
               cfg_.reserve_file.string(), cfg_.reserve_bytes / 1024);
  }
}

void Recorder::run_recorder() {
  while (!stopping_.load()) {
    {
      std::unique_lock lock(wake_mu_);
      wake_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stopping_.load(); });
    }
    std::vector<std::pair<std::int64_t, std::string>> timed_out, failed;
    std::vector<std::pair<std::int64_t, bool>> flowing;
    {
      std::lock_guard lock(mu_);
      auto now = Clock::now();
      bool disk_full = false;
      for (auto& p : pipes_) {
        if (p->failed) {
          Processed gone;
          while (p->out.pop(gone)) {
          }
          continue;  // its stream is being ended
        }
        try {
          drain(*p);
          if (p->padded && now - p->last_checkpoint >= cfg_.checkpoint_every) {
            p->clean_file->checkpoint();
            if (p->raw_file) p->raw_file->checkpoint();
            p->last_checkpoint = now;
          }
        } catch (const std::exception& e) {
          // Once per stream: it ends (recording_failed) with the audio that reached the disk.
          p->failed = true;
          auto* re = dynamic_cast<const recording::RecordingError*>(&e);
          int err = re ? re->error_number() : 0;
          if (err == ENOSPC || err == EDQUOT) disk_full = true;
          log_->error("recording session={} failed: {}; the stream ends (recording_failed)", p->session_id,
                      e.what());
          failed.emplace_back(p->session_id, e.what());
          continue;
        }
        denoise::MeterReading reading;
        while (p->readings.pop(reading)) {
          if (cb_.meter) cb_.meter(p->session_id, reading);
        }
        if (now - p->last_fanout_report >= kFanoutReportEvery) {
          p->last_fanout_report = now;
          try {
            report_fanout(*p);
          } catch (const std::exception& e) {
            if (now - p->last_error_log >= std::chrono::seconds(1)) {
              p->last_error_log = now;
              log_->error("fanout report of session={} failed: {}", p->session_id, e.what());
            }
          }
        }
        auto last_ns = p->last_frame_ns.load(std::memory_order_relaxed);
        auto since = last_ns ? std::chrono::nanoseconds(core::steady_ns() - last_ns)
                             : std::chrono::duration_cast<std::chrono::nanoseconds>(now - p->opened);
        if (last_ns && !p->stalled && since > cfg_.stall_after) {
          p->stalled = true;
          p->resuming = {};
          flowing.emplace_back(p->session_id, false);
        } else if (p->stalled) {
          // Flowing again once frames have kept coming (none more than kSteadyGap apart, as the poll sees them)
          // for resume_after.
          if (since > kSteadyGap) {
            p->resuming = {};
          } else if (p->resuming == Clock::time_point{}) {
            p->resuming = now;
          }
          if (p->resuming != Clock::time_point{} && now - p->resuming >= cfg_.resume_after) {
            p->stalled = false;
            p->resuming = {};
            flowing.emplace_back(p->session_id, true);
          }
        }
        auto limit = last_ns ? cfg_.stall_timeout : cfg_.media_timeout;
        if (!p->timeout_reported && since > limit) {
          p->timeout_reported = true;
          timed_out.emplace_back(p->session_id,
                                 last_ns ? "no audio for " + std::to_string(limit.count() / 1000) + " s"
                                         : "no audio arrived within " + std::to_string(limit.count() / 1000) +
                                               " s of going live");
        }
      }
      if (disk_full) {
        // Every recording on this disk would fail next: they all end now, and none eats the space released below.
        for (auto& p : pipes_) {
          if (p->failed) continue;
          p->failed = true;
          failed.emplace_back(p->session_id, "the disk of the recordings is full");
        }
        if (failed.size() > 1) log_->error("the disk of the recordings is full: {} streams end", failed.size());
      }
    }
    for (auto& [id, on] : flowing) {
      log_->info("session={}: audio {}", id, on ? "flows again" : "stopped");
      if (cb_.audio) cb_.audio(id, on);
    }
    if (!failed.empty()) release_reserve();
    for (auto& [id, why] : failed) {
      if (cb_.ended) cb_.ended(id, MediaEnd::recording_failed, why);
    }
    for (auto& [id, why] : timed_out) {
      log_->info("media watchdog: session={} {}", id, why);
      if (cb_.ended) cb_.ended(id, MediaEnd::media_timeout, why);
    }
  }
}

void Recorder::finish(Pipe& p, Finished& f) {
  try {
    if (!p.clean_file) {
      // Not recorded: nothing to finish.
    } else if (!p.failed) {
      try {
        drain(p, true);
        media::AudioFrame frame;
        Processed item;
        while (p.in->pop(frame)) {
          if (!p.padded) {
            p.pad_samples.store(0);
            drain(p, true);
          }
          p.denoiser->process(frame.samples, item.clean);
          item.raw = frame.samples;
          write_processed(p, item);
          ++p.frames;
        }
        if (p.padded) {
          // The denoiser's tail: feed silence until the clean file is as long as the input.
          std::array<float, kHop> zeros{};
          std::array<float, kHop> out{};
          while (p.clean_samples < p.raw_samples) {
            p.denoiser->process(zeros, out);
            std::size_t from = 0;
            if (p.clean_skip > 0) {
              from = static_cast<std::size_t>(std::min<std::int64_t>(p.clean_skip, kHop));
              p.clean_skip -= static_cast<std::int64_t>(from);
            }
            auto n = std::min<std::int64_t>(static_cast<std::int64_t>(kHop - from),
                                            p.raw_samples - p.clean_samples);
            p.clean_file->write(std::span<const float>(out.data() + from, static_cast<std::size_t>(n)));
            p.clean_samples += n;
          }
        }
      } catch (const std::exception& e) {
        p.failed = true;  // finish() below keeps what reached the disk
        log_->error("recording session={} failed: {}", p.session_id, e.what());
      }
    }
    auto clean = p.clean_file ? p.clean_file->finish() : recording::Summary{};
    std::optional<recording::Summary> raw;
    if (p.raw_file) raw = p.raw_file->finish();
    if (!p.clean_file) {
      // Not recorded.
    } else if (p.padded && clean.samples > 0) {
      f.clean = clean;
      f.raw = raw;
    } else {
      // Nothing was ever received (or none of it reached the disk): an empty file is not a recording.
      std::error_code ec;
      std::filesystem::remove(clean.path, ec);
      if (raw) std::filesystem::remove(raw->path, ec);
    }
  } catch (const std::exception& e) {
    log_->error("finishing the recording of session={} failed: {}", p.session_id, e.what());
  }
}

}  // namespace fc25::live
