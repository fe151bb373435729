#include "live/live.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <array>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/guard.hpp"
#include "core/log.hpp"
#include "core/thread.hpp"
#include "core/spsc_ring.hpp"
#include "core/time.hpp"

namespace fc25::live {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kHop = media::kFrameSamples;
constexpr std::size_t kInRing = 256;    // 2.56 s of input
constexpr std::size_t kOutRing = 256;   // 2.56 s between scheduler and recorder
constexpr std::size_t kMaxPerPass = 8;  // frames one stream may advance per pass (catching up after a burst)
// A frame that leaves the denoiser more than 30 ms after it arrived is late.
constexpr double kLateMs = 30.0;
// A pass every 10 ms when a worker is busy (and, when it is not, for a source that does not ring the doorbell).
constexpr auto kTick = std::chrono::milliseconds(10);
constexpr auto kFanoutReportEvery = std::chrono::seconds(5);  // latency to listeners, logged while there are some

struct Processed {
  std::array<float, kHop> clean;
  std::array<float, kHop> raw;
  bool after_stall = false;      // the first frame after its stream's audio stopped for a while (Config::gap_after)
};

// One stream's media. Shared by: the worker (in ring pop, denoiser, out ring push, latency histogram), the
// recorder (out ring pop, files, watchdog) and close() (which owns everything once both have let go).
struct Pipe {
  std::int64_t session_id = 0;
  std::string username;
  std::int64_t started_at_ms = 0;
  std::string denoiser_name;
  // Replaced (under Impl::mu and the worker's mu) when a new ingest replaces the old one: each has one producer.
  std::shared_ptr<media::FrameRing> in = std::make_shared<media::FrameRing>(kInRing);
  std::shared_ptr<core::Doorbell> ready;            // the worker's, rung by whoever fills `in`
  core::SpscRing<Processed> out{kOutRing};
  std::unique_ptr<denoise::Denoiser> denoiser;
  std::atomic<float> new_atten_lim{-1.0f};          // set_atten_lim_db -> the worker, before its next pass
  std::optional<denoise::NoiseMeter> meter;         // worker only (then close())
  core::SpscRing<denoise::MeterReading> readings{8};  // worker -> recorder (which hands them on)
  std::shared_ptr<media::Ingest> ingest;            // guarded by Impl::mu
  std::uint64_t replaced_dropped = 0;               // frames dropped by ingests replaced since; Impl::mu
  std::shared_ptr<media::Fanout> fanout;            // made at the first listener (Impl::mu); read atomically

  // worker only
  bool first_seen = false;
  core::LatencyHistogram latency;                   // frame arrival -> its clean frame out of the denoiser
  core::LatencyHistogram through;                   // arrival of the packet of the audio a clean frame carries
                                                    // (before decoding) -> it is out
  std::size_t delay_frames = 0;                     // the denoiser's delay, in whole frames (rounded up)
  std::array<std::int64_t, 16> arrivals{};          // of the last input frames, by frame number (`frames`)
  std::uint64_t frames = 0, late = 0;
  std::uint64_t out_dropped = 0;
  std::int64_t prev_arrival_ns = 0;                 // of the last frame taken
  bool stall_pending = false;                       // the next frame out is the first after a stall

  // worker -> recorder
  std::atomic<std::int64_t> pad_samples{-1};        // silence before the first frame; -1 until it arrives
  std::atomic<std::int64_t> last_frame_ns{0};

  // recorder only (then close())
  std::unique_ptr<recording::WavWriter> clean_file, raw_file;
  std::int64_t clean_skip = 0;                      // denoiser latency still to drop from the clean output
  std::int64_t raw_samples = 0, clean_samples = 0;
  bool padded = false;
  Clock::time_point opened = Clock::now();
  Clock::time_point last_checkpoint = Clock::now();
  Clock::time_point last_fanout_report = Clock::now();
  bool timeout_reported = false;
  bool stalled = false;                             // its audio stopped for Config::stall_after (reported)
  // After a stall the recorder holds the frames for Config::gap_hold before it writes them: what arrives in that
  // time (a burst of audio queued on the way, then the live audio) tells how much was lost, written as silence.
  bool holding = false;
  Clock::time_point hold_started{};
  std::vector<Processed> held;
  std::vector<Gap> gaps;
  bool failed = false;                              // the recording could not be written: nothing more is tried
  Clock::time_point last_error_log{};               // other recorder errors: logged at most once a second
  int worker = 0;
};

}  // namespace

struct LiveMedia::Impl {
  Config cfg;
  Callbacks cb;
  std::shared_ptr<spdlog::logger> log = core::logger("live");

  std::mutex open_mu;                                          // one open() at a time: its files, then its pipe
  mutable std::mutex mu;                                       // pipes (open/close/offer)
  std::map<std::int64_t, std::shared_ptr<Pipe>> pipes;

  struct Worker {
    std::mutex mu;                                             // held for a pass; open/close wait at most one
    std::vector<std::shared_ptr<Pipe>> pipes;
    std::shared_ptr<core::Doorbell> ready = std::make_shared<core::Doorbell>();
    std::thread thread;
  };
  std::vector<std::unique_ptr<Worker>> workers;

  std::mutex rec_mu;                                           // held for a recorder pass
  std::vector<std::shared_ptr<Pipe>> rec_pipes;
  std::thread recorder;

  std::atomic<bool> stopping{false};
  std::mutex wake_mu;
  std::condition_variable wake;

  // --- scheduler ---------------------------------------------------------------------------------------------
  // Every pass advances the streams that have frames together, round by round: one batch per round, each weight
  // read once for all of them. How a worker paces its passes depends on how many streams it serves:
  // - up to Config::immediate_up_to: it sleeps until an ingest rings its doorbell (a packet decoded) and takes every
  //   frame at once, so a packet's frames wait for nothing;
  // - more: a pass every 10 ms (kTick), one frame per stream (a 20 ms packet's two frames go out 10 ms apart), so
  //   that each pass is one full batch and the weights are read 100 times a second whatever the number of streams.
  //   Taking frames as they come would read them once or twice per packet: at 24 streams a worker, thousands of
  //   times a second, which the two cores cannot afford next to the streams' receive paths.
  void run_worker(Worker& w, int index) {
    set_realtime(index);
    std::vector<Pipe*> due;
    std::vector<std::array<media::AudioFrame, kMaxPerPass>> pending;
    std::vector<std::size_t> counts;
    std::vector<denoise::Denoiser*> batch;
    std::vector<const float*> ins;
    std::vector<std::array<Processed, kMaxPerPass>> results;
    std::vector<float*> outs;
    std::vector<std::size_t> batch_index;
    std::vector<float> lsnr;
    bool ticking = false;
    auto next_tick = Clock::now();
    auto seen = w.ready->rung();
    while (!stopping.load(std::memory_order_relaxed)) {
      if (ticking) {
        next_tick += kTick;
        auto now = Clock::now();
        if (next_tick < now - 5 * kTick) next_tick = now;  // fell far behind (suspended): do not race
        std::this_thread::sleep_until(next_tick);
      } else {
        w.ready->wait(seen, kTick);
        next_tick = Clock::now();
      }
      seen = w.ready->rung();  // a ring from here on is for the next pass
      std::lock_guard lock(w.mu);
      ticking = w.pipes.size() > cfg.immediate_up_to;
      for (auto& p : w.pipes) apply_settings(*p);
      take(w, ticking, due, pending, counts);
      if (results.size() < due.size()) results.resize(due.size());
      for (std::size_t round = 0; round < kMaxPerPass; ++round) {
        batch.clear();
        ins.clear();
        outs.clear();
        batch_index.clear();
        for (std::size_t i = 0; i < due.size(); ++i) {
          if (counts[i] <= round) continue;
          batch.push_back(due[i]->denoiser.get());
          ins.push_back(pending[i][round].samples.data());
          outs.push_back(results[i][round].clean.data());
          batch_index.push_back(i);
        }
        if (batch.empty()) break;
        lsnr.resize(batch.size());
        denoise::process_batch(batch, ins, outs, lsnr);
        auto done = core::steady_ns();
        for (std::size_t b = 0; b < batch_index.size(); ++b) {
          std::size_t i = batch_index[b];
          account(*due[i], pending[i][round], results[i][round], done);
          measure(*due[i], results[i][round], lsnr[b]);
        }
      }
      // Each stream's clean frames in order, to its recording and its listeners.
      for (std::size_t i = 0; i < due.size(); ++i) {
        Pipe& p = *due[i];
        auto fanout = std::atomic_load(&p.fanout);
        for (std::size_t k = 0; k < counts[i]; ++k) {
          Processed& r = results[i][k];
          r.after_stall = k == 0 && std::exchange(p.stall_pending, false);
          if (fanout) fanout->push(r.clean.data(), source_arrival(p, counts[i] - k));
          if (!p.out.push(r)) ++p.out_dropped;
        }
      }
    }
  }

  // The frames each of the worker's streams has now: all of them (at most kMaxPerPass), or when ticking one, unless
  // the stream fell more than two behind (it catches up at once).
  void take(Worker& w, bool ticking, std::vector<Pipe*>& due,
            std::vector<std::array<media::AudioFrame, kMaxPerPass>>& pending, std::vector<std::size_t>& counts) {
    due.clear();
    counts.clear();
    if (pending.size() < w.pipes.size()) pending.resize(w.pipes.size());
    for (auto& p : w.pipes) {
      std::size_t backlog = p->in->size();
      std::size_t limit = !ticking || backlog > 2 ? kMaxPerPass : 1;
      std::size_t k = 0;
      while (k < limit && p->in->pop(pending[due.size()][k])) ++k;
      if (k == 0) continue;
      const auto& first = pending[due.size()][0];
      if (!p->first_seen) {
        p->first_seen = true;
        // The recording's timeline starts when the stream went live (timer 00:00): silence until audio came.
        auto pad = (core::now_ms() - p->started_at_ms) * (media::kSampleRate / 1000) -
                   static_cast<std::int64_t>(k * kHop);
        auto cap = static_cast<std::int64_t>(cfg.media_timeout.count()) * (media::kSampleRate / 1000);
        p->pad_samples.store(std::clamp<std::int64_t>(pad, 0, cap));
      } else if (first.arrival_ns - p->prev_arrival_ns > std::chrono::nanoseconds(cfg.gap_after).count()) {
        p->stall_pending = true;
      }
      const std::int64_t last_arrival = pending[due.size()][k - 1].arrival_ns;
      p->prev_arrival_ns = last_arrival;
      p->last_frame_ns.store(last_arrival, std::memory_order_relaxed);
      due.push_back(p.get());
      counts.push_back(k);
    }
  }

  // One frame through the denoiser: its raw twin, and how long it took.
  void account(Pipe& p, const media::AudioFrame& in, Processed& out, std::int64_t done) {
    std::copy(in.samples.begin(), in.samples.end(), out.raw.begin());
    p.arrivals[p.frames % p.arrivals.size()] = in.packet_ns > 0 ? in.packet_ns : in.arrival_ns;
    ++p.frames;
    double ms = static_cast<double>(done - in.arrival_ns) / 1e6;
    p.latency.add_ms(ms);
    if (auto src = source_arrival(p, 1); src > 0) p.through.add_ms(static_cast<double>(done - src) / 1e6);
    if (ms > kLateMs) ++p.late;
  }

  // A limit set by set_atten_lim_db, taken between two frames.
  void apply_settings(Pipe& p) {
    float lim = p.new_atten_lim.exchange(-1.0f, std::memory_order_acq_rel);
    if (lim >= 0.0f) p.denoiser->set_atten_lim_db(lim);
  }

  // The frame into the stream's noise meter; a reading every cfg.meter_hops frames.
  void measure(Pipe& p, const Processed& r, float lsnr) {
    if (!p.meter) return;
    p.meter->add(r.raw, r.clean, lsnr);
    if (p.frames % std::max<std::size_t>(1, cfg.meter_hops) == 0) p.readings.push(p.meter->take());
  }

  // When the audio in the clean frame `back` frames before the newest arrived (the denoiser's delay earlier than
  // that frame's input); 0 for the delay's opening frames, which carry no input yet.
  static std::int64_t source_arrival(const Pipe& p, std::size_t back) {
    std::uint64_t behind = back + p.delay_frames;
    if (p.frames < behind || behind > p.arrivals.size()) return 0;
    return p.arrivals[(p.frames - behind) % p.arrivals.size()];
  }

  // Workers ask for real-time scheduling (SCHED_FIFO, low priority), as audio servers do, so that a pass is not
  // queued behind GStreamer's and the HTTP threads' work. Without the privilege (CAP_SYS_NICE or RLIMIT_RTPRIO)
  // they run as normal threads.
  void set_realtime(int index) {
    int rc = core::name_and_prioritise_thread("fc25-denoise-" + std::to_string(index), cfg.realtime_priority);
    if (index == 0 && cfg.realtime_priority > 0) {
      if (rc == 0) log->info("denoise workers run with real-time priority {} (SCHED_FIFO)", cfg.realtime_priority);
      else log->info("denoise workers run at normal priority (real-time priority not permitted: {})", std::strerror(rc));
    }
  }

  // --- recorder and watchdog --------------------------------------------------------------------------------
  // Writes what the scheduler produced. Called by the recorder thread, and by close() once the pipe is its own.
  void drain(Pipe& p, bool final = false) {
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
        if (!final && Clock::now() - p.hold_started < cfg.gap_hold) return;
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
  void close_gap(Pipe& p) {
    const std::int64_t per_ms = media::kSampleRate / 1000;
    auto since_newest_ms = (core::steady_ns() - p.last_frame_ns.load(std::memory_order_relaxed)) / 1000000;
    auto wall = (core::now_ms() - since_newest_ms - p.started_at_ms) * per_ms;
    auto gap = wall - p.raw_samples - static_cast<std::int64_t>(p.held.size() * kHop);
    if (gap > static_cast<std::int64_t>(cfg.gap_after.count()) * per_ms) {
      p.gaps.push_back(Gap{p.raw_samples / per_ms, gap / per_ms});
      p.clean_file->write_silence(gap);
      if (p.raw_file) p.raw_file->write_silence(gap);
      p.raw_samples += gap;
      p.clean_samples += gap;
      log->info("session={}: {} ms of audio lost at {:.1f} s, written as silence", p.session_id, gap / per_ms,
                static_cast<double>(p.gaps.back().at_ms) / 1000.0);
    }
    for (auto& h : p.held) write_processed(p, h);
    p.held.clear();
    p.holding = false;
  }

  void write_processed(Pipe& p, const Processed& item) {
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
  static std::string latency_fields(const media::Fanout::Latency& l) {
    return fmt::format("packets={} latency p50={:.2f}ms p99={:.2f}ms max={:.2f}ms", l.count, l.p50_ms, l.p99_ms,
                       l.max_ms);
  }

  // While a stream has listeners: over the last few seconds.
  void report_fanout(Pipe& p) {
    auto f = std::atomic_load(&p.fanout);
    if (!f) return;
    auto l = f->take_latency_window();
    if (l.count == 0) return;
    log->info("fanout session={} listeners={} {} (last {} s)", p.session_id, f->listeners(), latency_fields(l),
              std::chrono::duration_cast<std::chrono::seconds>(kFanoutReportEvery).count());
  }

  // --- the disk reserve ---------------------------------------------------------------------------------------
  void make_reserve() {
    if (cfg.reserve_file.empty() || cfg.reserve_bytes <= 0) return;
    std::error_code ec;
    if (std::filesystem::exists(cfg.reserve_file, ec)) return;
    int fd = ::open(cfg.reserve_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return;
    int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(cfg.reserve_bytes));
    ::close(fd);
    if (rc != 0) {
      std::filesystem::remove(cfg.reserve_file, ec);
      log->warn("cannot keep {} KiB in reserve at {}: {}", cfg.reserve_bytes / 1024, cfg.reserve_file.string(),
                std::strerror(rc));
    }
  }

  void release_reserve() {
    if (cfg.reserve_file.empty()) return;
    std::error_code ec;
    if (std::filesystem::remove(cfg.reserve_file, ec)) {
      log->warn("released the disk reserve {} ({} KiB) so that the ends of the streams can be recorded",
                cfg.reserve_file.string(), cfg.reserve_bytes / 1024);
    }
  }

  void run_recorder() {
    while (!stopping.load()) {
      {
        std::unique_lock lock(wake_mu);
        wake.wait_for(lock, std::chrono::milliseconds(50), [this] { return stopping.load(); });
      }
      std::vector<std::pair<std::int64_t, std::string>> timed_out, failed;
      std::vector<std::pair<std::int64_t, bool>> flowing;
      {
        std::lock_guard lock(rec_mu);
        auto now = Clock::now();
        bool disk_full = false;
        for (auto& p : rec_pipes) {
          if (p->failed) {
            Processed gone;
            while (p->out.pop(gone)) {
            }
            continue;  // its stream is being ended
          }
          try {
            drain(*p);
            if (p->padded && now - p->last_checkpoint >= cfg.checkpoint_every) {
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
            log->error("recording session={} failed: {}; the stream ends (recording_failed)", p->session_id,
                       e.what());
            failed.emplace_back(p->session_id, e.what());
            continue;
          }
          denoise::MeterReading reading;
          while (p->readings.pop(reading)) {
            if (cb.meter) cb.meter(p->session_id, reading);
          }
          if (now - p->last_fanout_report >= kFanoutReportEvery) {
            p->last_fanout_report = now;
            try {
              report_fanout(*p);
            } catch (const std::exception& e) {
              if (now - p->last_error_log >= std::chrono::seconds(1)) {
                p->last_error_log = now;
                log->error("fanout report of session={} failed: {}", p->session_id, e.what());
              }
            }
          }
          auto last_ns = p->last_frame_ns.load(std::memory_order_relaxed);
          auto since = last_ns ? std::chrono::nanoseconds(core::steady_ns() - last_ns)
                               : std::chrono::duration_cast<std::chrono::nanoseconds>(now - p->opened);
          if (last_ns && (since > cfg.stall_after) != p->stalled) {
            p->stalled = !p->stalled;
            flowing.emplace_back(p->session_id, !p->stalled);
          }
          auto limit = last_ns ? cfg.stall_timeout : cfg.media_timeout;
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
          for (auto& p : rec_pipes) {
            if (p->failed) continue;
            p->failed = true;
            failed.emplace_back(p->session_id, "the disk of the recordings is full");
          }
          if (failed.size() > 1) log->error("the disk of the recordings is full: {} streams end", failed.size());
        }
      }
      for (auto& [id, on] : flowing) {
        log->info("session={}: audio {}", id, on ? "flows again" : "stopped");
        if (cb.audio) cb.audio(id, on);
      }
      if (!failed.empty()) release_reserve();
      for (auto& [id, why] : failed) {
        if (cb.ended) cb.ended(id, MediaEnd::recording_failed, why);
      }
      for (auto& [id, why] : timed_out) {
        log->info("media watchdog: session={} {}", id, why);
        if (cb.ended) cb.ended(id, MediaEnd::media_timeout, why);
      }
    }
  }

  std::unique_ptr<denoise::Denoiser> make_denoiser(const StreamOptions& o, std::string& name) {
    denoise::Options opt;
    if (o.atten_lim_db) opt.atten_lim_db = *o.atten_lim_db;
    if (!o.noise_removal) {
      name = "passthrough";
      return denoise::make_passthrough();
    }
    switch (cfg.backend) {
      case denoise::Backend::dfn3:
        name = "dfn3";
        return denoise::make_dfn3(cfg.model, opt);
      case denoise::Backend::classic:
        name = "classic";
        return denoise::make_classic(opt);
      case denoise::Backend::passthrough:
        break;
    }
    name = "passthrough";
    return denoise::make_passthrough();
  }

  static Stats stats_of(Pipe& p, std::uint64_t ingest_dropped) {
    Stats s;
    s.frames = p.frames;
    s.dropped = ingest_dropped + p.out_dropped;
    s.late = p.late;
    auto l = p.latency.summary();
    s.latency_p50_ms = l.p50_ms;
    s.latency_p99_ms = l.p99_ms;
    s.latency_max_ms = l.max_ms;
    auto t = p.through.summary();
    s.through_p50_ms = t.p50_ms;
    s.through_p99_ms = t.p99_ms;
    return s;
  }
};

LiveMedia::LiveMedia(Config config, Callbacks callbacks) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = std::move(config);
  impl_->cb = std::move(callbacks);
  if (impl_->cfg.backend == denoise::Backend::dfn3 && !impl_->cfg.model) {
    throw std::invalid_argument("the dfn3 denoiser needs a model");
  }
  int n = std::max(1, impl_->cfg.workers);
  for (int i = 0; i < n; ++i) {
    impl_->workers.push_back(std::make_unique<Impl::Worker>());
    auto* w = impl_->workers.back().get();
    w->thread = std::thread([this, w, i] { core::run_guarded("denoise worker", [&] { impl_->run_worker(*w, i); }); });
  }
  impl_->make_reserve();
  impl_->recorder = std::thread([this] { core::run_guarded("recorder", [this] { impl_->run_recorder(); }); });
}

LiveMedia::~LiveMedia() {
  std::vector<std::int64_t> ids;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [id, p] : impl_->pipes) ids.push_back(id);
  }
  for (auto id : ids) close(id);
  impl_->stopping = true;
  impl_->wake.notify_all();
  for (auto& w : impl_->workers) w->ready->ring();
  for (auto& w : impl_->workers) w->thread.join();
  impl_->recorder.join();
}

std::string_view LiveMedia::backend_name() const { return denoise::to_string(impl_->cfg.backend); }

void LiveMedia::open(std::int64_t session_id, const std::string& username, std::int64_t started_at_ms,
                     StreamOptions options) {
  if (options.atten_lim_db && !(*options.atten_lim_db >= 0.0f && *options.atten_lim_db <= 100.0f)) {
    throw std::invalid_argument("atten_lim_db must be between 0 and 100");
  }
  std::lock_guard opening(impl_->open_mu);
  if (is_open(session_id)) return;  // already open (same tab pressed Go live again)
  impl_->make_reserve();             // again, after a full disk released it
  auto p = std::make_shared<Pipe>();
  p->session_id = session_id;
  p->username = username;
  p->started_at_ms = started_at_ms;
  p->denoiser = impl_->make_denoiser(options, p->denoiser_name);
  p->clean_skip = static_cast<std::int64_t>(p->denoiser->latency_samples());
  if (options.noise_removal) p->meter.emplace(p->denoiser->latency_samples(), p->denoiser_name == "dfn3");
  p->delay_frames = (p->denoiser->latency_samples() + kHop - 1) / kHop;
  // A file already there is never truncated: create() refuses it, and the stream does not start.
  if (options.record) {
    p->clean_file = recording::WavWriter::create(impl_->cfg.recordings_dir / recording::file_name(username, session_id));
  }
  if (options.record && impl_->cfg.record_raw) {
    try {
      p->raw_file = recording::WavWriter::create(recording::raw_twin(p->clean_file->path()));
    } catch (const recording::RecordingError&) {
      auto clean = p->clean_file->path();
      p->clean_file.reset();
      std::error_code ec;
      std::filesystem::remove(clean, ec);  // ours, and empty
      throw;
    }
  }
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->pipes.count(session_id)) return;  // already open (same tab pressed Go live again)
    impl_->pipes[session_id] = p;
  }
  // Least loaded worker.
  std::size_t best = 0, best_n = SIZE_MAX;
  for (std::size_t i = 0; i < impl_->workers.size(); ++i) {
    std::lock_guard lock(impl_->workers[i]->mu);
    if (impl_->workers[i]->pipes.size() < best_n) best = i, best_n = impl_->workers[i]->pipes.size();
  }
  p->worker = static_cast<int>(best);
  p->ready = impl_->workers[best]->ready;
  {
    std::lock_guard lock(impl_->workers[best]->mu);
    impl_->workers[best]->pipes.push_back(p);
  }
  {
    std::lock_guard lock(impl_->rec_mu);
    impl_->rec_pipes.push_back(p);
  }
  impl_->log->info("media open session={} user={} denoiser={} recording={}", session_id, username, p->denoiser_name,
                   p->clean_file ? p->clean_file->path().string() : std::string("none"));
}

void LiveMedia::set_atten_lim_db(std::int64_t session_id, float db) {
  if (!(db >= 0.0f && db <= 100.0f)) throw std::invalid_argument("atten_lim_db must be between 0 and 100");
  std::lock_guard lock(impl_->mu);
  auto it = impl_->pipes.find(session_id);
  if (it == impl_->pipes.end()) throw NotOpen("session " + std::to_string(session_id) + " is not live");
  it->second->new_atten_lim.store(db, std::memory_order_release);
  it->second->ready->ring();  // taken before the next frame, however the worker paces its passes
}

bool LiveMedia::is_open(std::int64_t session_id) const {
  std::lock_guard lock(impl_->mu);
  return impl_->pipes.count(session_id) > 0;
}

std::size_t LiveMedia::open_streams() const {
  std::lock_guard lock(impl_->mu);
  return impl_->pipes.size();
}

void LiveMedia::offer(std::int64_t session_id, const std::string& sdp, SignalSink sink) {
  std::shared_ptr<Pipe> p;
  bool reconnect = false;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->pipes.find(session_id);
    if (it == impl_->pipes.end()) throw NotOpen("session " + std::to_string(session_id) + " is not live");
    p = it->second;
    reconnect = p->ingest != nullptr;
  }
  media::IngestEvents ev;
  ev.answer = std::move(sink.answer);
  ev.local_candidate = std::move(sink.candidate);
  auto* impl = impl_.get();
  ev.failed = [impl, session_id](std::string why) {
    if (impl->cb.ended) impl->cb.ended(session_id, MediaEnd::webrtc_failed, why);
  };
  ev.connected = [impl, session_id] { impl->log->info("media connected session={}", session_id); };
  // A page reconnecting gets a ring of its own: the old ingest may still be handing over its last frames.
  auto ring = reconnect ? std::make_shared<media::FrameRing>(kInRing) : p->in;
  auto ingest = media::Ingest::create("ingest-" + std::to_string(session_id), sdp, media::AudioInput{ring, p->ready},
                                      impl_->cfg.ice, std::move(ev));
  std::shared_ptr<media::Ingest> old;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->pipes.find(session_id);
    if (it == impl_->pipes.end()) {
      ingest->close();
      throw NotOpen("session " + std::to_string(session_id) + " ended meanwhile");
    }
    old = std::move(p->ingest);
    if (ring != p->in) {
      std::lock_guard worker(impl_->workers[static_cast<std::size_t>(p->worker)]->mu);
      p->in = ring;
    }
    if (old) p->replaced_dropped += old->frames_dropped();
    p->ingest = std::move(ingest);
  }
  if (old) {
    old->close();  // its failure, if it comes now, is not reported: closed first
    impl_->log->info("media reconnecting session={}: a new connection replaces the old one", session_id);
  }
}

namespace {
// The stream's fan-out, made at its first listener or tap. Under Impl::mu.
std::shared_ptr<media::Fanout> fanout_for(const std::map<std::int64_t, std::shared_ptr<Pipe>>& pipes,
                                          std::int64_t session_id, int realtime_priority) {
  auto it = pipes.find(session_id);
  if (it == pipes.end()) throw NotOpen("session " + std::to_string(session_id) + " is not live");
  auto fanout = std::atomic_load(&it->second->fanout);
  if (!fanout) {
    fanout = media::Fanout::create("fanout-" + std::to_string(session_id), realtime_priority);
    std::atomic_store(&it->second->fanout, fanout);
  }
  return fanout;
}
}  // namespace

const media::IceConfig& LiveMedia::ice() const { return impl_->cfg.ice; }

void LiveMedia::tap(std::int64_t session_id, const std::string& tap_id, media::Fanout::PacketTap tap) {
  std::lock_guard lock(impl_->mu);
  fanout_for(impl_->pipes, session_id, impl_->cfg.realtime_priority)->add_tap(tap_id, std::move(tap));
}

void LiveMedia::listen(std::int64_t session_id, const std::string& listener_id, const std::string& sdp,
                       SignalSink sink, std::function<void(const std::string&)> failed) {
  std::shared_ptr<media::Fanout> fanout;
  {
    std::lock_guard lock(impl_->mu);
    fanout = fanout_for(impl_->pipes, session_id, impl_->cfg.realtime_priority);
  }
  media::PeerEvents ev;
  ev.answer = std::move(sink.answer);
  ev.local_candidate = std::move(sink.candidate);
  ev.failed = std::move(failed);
  auto* impl = impl_.get();
  ev.connected = [impl, session_id, listener_id] {
    impl->log->info("listener connected session={} listener={}", session_id, listener_id);
  };
  try {
    fanout->add_listener(listener_id, sdp, impl_->cfg.ice, std::move(ev));
  } catch (const media::OfferError&) {
    throw;
  } catch (const std::logic_error&) {
    if (is_open(session_id)) throw;
    throw NotOpen("session " + std::to_string(session_id) + " ended meanwhile");  // the fan-out closed with it
  }
}

namespace {
std::shared_ptr<media::Fanout> fanout_of(const std::map<std::int64_t, std::shared_ptr<Pipe>>& pipes,
                                         std::int64_t session_id) {
  auto it = pipes.find(session_id);
  return it == pipes.end() ? nullptr : std::atomic_load(&it->second->fanout);
}
}  // namespace

void LiveMedia::listener_candidate(std::int64_t session_id, const std::string& listener_id,
                                   const media::RemoteCandidate& candidate) {
  std::shared_ptr<media::Fanout> f;
  {
    std::lock_guard lock(impl_->mu);
    f = fanout_of(impl_->pipes, session_id);
  }
  if (f) f->add_remote_candidate(listener_id, candidate);
}

bool LiveMedia::unlisten(std::int64_t session_id, const std::string& listener_id) {
  std::shared_ptr<media::Fanout> f;
  {
    std::lock_guard lock(impl_->mu);
    f = fanout_of(impl_->pipes, session_id);
  }
  return f && f->remove_listener(listener_id);
}

bool LiveMedia::untap(std::int64_t session_id, const std::string& tap_id) {
  std::shared_ptr<media::Fanout> f;
  {
    std::lock_guard lock(impl_->mu);
    f = fanout_of(impl_->pipes, session_id);
  }
  return f && f->remove_tap(tap_id);
}

std::size_t LiveMedia::listeners(std::int64_t session_id) const {
  std::lock_guard lock(impl_->mu);
  auto f = fanout_of(impl_->pipes, session_id);
  return f ? f->listeners() : 0;
}

media::Fanout::ListenerCounts LiveMedia::listener_counts(std::int64_t session_id, const std::string& listener_id) const {
  std::lock_guard lock(impl_->mu);
  auto f = fanout_of(impl_->pipes, session_id);
  return f ? f->listener_counts(listener_id) : media::Fanout::ListenerCounts{};
}

std::optional<media::AudioInput> LiveMedia::input(std::int64_t session_id) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->pipes.find(session_id);
  if (it == impl_->pipes.end()) return std::nullopt;
  return media::AudioInput{it->second->in, it->second->ready};
}

void LiveMedia::remote_candidate(std::int64_t session_id, const media::RemoteCandidate& candidate) {
  std::shared_ptr<media::Ingest> ingest;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->pipes.find(session_id);
    if (it == impl_->pipes.end() || !it->second->ingest) return;
    ingest = it->second->ingest;
  }
  ingest->add_remote_candidate(candidate);
}

std::optional<Finished> LiveMedia::close(std::int64_t session_id) {
  std::shared_ptr<Pipe> p;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->pipes.find(session_id);
    if (it == impl_->pipes.end()) return std::nullopt;
    p = it->second;
    impl_->pipes.erase(it);
  }
  std::uint64_t ingest_dropped = 0;
  if (auto f = std::atomic_load(&p->fanout)) {
    impl_->log->info("fanout closed session={} {}", session_id, Impl::latency_fields(f->latency()));
    f->close();  // every listener is let go
  }
  if (p->ingest) {
    p->ingest->close();
    ingest_dropped = p->ingest->frames_dropped();
  }
  {
    std::lock_guard lock(impl_->mu);
    ingest_dropped += p->replaced_dropped;
  }
  {
    auto& w = *impl_->workers[static_cast<std::size_t>(p->worker)];
    std::lock_guard lock(w.mu);
    std::erase(w.pipes, p);
  }
  {
    std::lock_guard lock(impl_->rec_mu);
    std::erase(impl_->rec_pipes, p);
  }
  // Everything is ours now: what the recorder has not written, what the scheduler has not processed, the tail.
  Finished f;
  f.denoiser = p->denoiser_name;
  if (p->meter) {
    p->meter->take();  // the last part-window counts too
    f.noise_removed_db = p->meter->mean_removed_db();
  }
  try {
    if (!p->clean_file) {
      // Not recorded: nothing to finish.
    } else if (!p->failed) {
      try {
        impl_->drain(*p, true);
        media::AudioFrame frame;
        Processed item;
        while (p->in->pop(frame)) {
          if (!p->padded) {
            p->pad_samples.store(0);
            impl_->drain(*p, true);
          }
          p->denoiser->process(frame.samples, item.clean);
          item.raw = frame.samples;
          impl_->write_processed(*p, item);
          ++p->frames;
        }
        if (p->padded) {
          // The denoiser's tail: feed silence until the clean file is as long as the input.
          std::array<float, kHop> zeros{};
          std::array<float, kHop> out{};
          while (p->clean_samples < p->raw_samples) {
            p->denoiser->process(zeros, out);
            std::size_t from = 0;
            if (p->clean_skip > 0) {
              from = static_cast<std::size_t>(std::min<std::int64_t>(p->clean_skip, kHop));
              p->clean_skip -= static_cast<std::int64_t>(from);
            }
            auto n = std::min<std::int64_t>(static_cast<std::int64_t>(kHop - from),
                                            p->raw_samples - p->clean_samples);
            p->clean_file->write(std::span<const float>(out.data() + from, static_cast<std::size_t>(n)));
            p->clean_samples += n;
          }
        }
      } catch (const std::exception& e) {
        p->failed = true;  // finish() below keeps what reached the disk
        impl_->log->error("recording session={} failed: {}", session_id, e.what());
      }
    }
    auto clean = p->clean_file ? p->clean_file->finish() : recording::Summary{};
    std::optional<recording::Summary> raw;
    if (p->raw_file) raw = p->raw_file->finish();
    if (!p->clean_file) {
      // Not recorded.
    } else if (p->padded && clean.samples > 0) {
      f.clean = clean;
      f.raw = raw;
    } else {
      // Nothing was ever received (or none of it reached the disk): an empty file is not a recording.
      std::error_code ec;
      std::filesystem::remove(clean.path, ec);
      if (raw) std::filesystem::remove(raw->path, ec);
    }
  } catch (const std::exception& e) {
    impl_->log->error("finishing the recording of session={} failed: {}", session_id, e.what());
  }
  f.gaps = p->gaps;
  f.stats = Impl::stats_of(*p, ingest_dropped);
  impl_->log->info(
      "media closed session={} denoiser={} frames={} dropped={} late={} latency p50={:.2f}ms p99={:.2f}ms "
      "max={:.2f}ms through_p50={:.2f}ms through_p99={:.2f}ms",
      session_id, f.denoiser, f.stats.frames, f.stats.dropped, f.stats.late, f.stats.latency_p50_ms,
      f.stats.latency_p99_ms, f.stats.latency_max_ms, f.stats.through_p50_ms, f.stats.through_p99_ms);
  return f;
}

}  // namespace fc25::live
