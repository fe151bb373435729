#include "live/live.hpp"

#include <algorithm>
#include <map>
#include <mutex>

#include "core/log.hpp"
#include "live/pipe.hpp"
#include "live/recorder.hpp"
#include "live/scheduler.hpp"

namespace fc25::live {

// The facade: which streams are open (pipes, under mu), and the calls of LiveMedia's owner wired to the scheduler
// (scheduler.hpp: the denoise workers) and the recorder (recorder.hpp: the files and the watchdog).
struct LiveMedia::Impl {
  Impl(Config config, Callbacks callbacks)
      : cfg(checked(std::move(config))), cb(std::move(callbacks)), scheduler(cfg), recorder(cfg, cb) {}

  Config cfg;
  Callbacks cb;
  std::shared_ptr<spdlog::logger> log = core::logger("live");

  std::mutex open_mu;                                          // one open() at a time: its files, then its pipe
  mutable std::mutex mu;                                       // pipes (open/close/offer)
  std::map<std::int64_t, std::shared_ptr<Pipe>> pipes;

  // Started in this order (the workers, then the disk reserve and the recorder), stopped by ~LiveMedia.
  Scheduler scheduler;
  Recorder recorder;

  static Config checked(Config c) {
    if (c.backend == denoise::Backend::dfn3 && !c.model) {
      throw std::invalid_argument("the dfn3 denoiser needs a model");
    }
    return c;
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

LiveMedia::LiveMedia(Config config, Callbacks callbacks)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(callbacks))) {}

LiveMedia::~LiveMedia() {
  std::vector<std::int64_t> ids;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [id, p] : impl_->pipes) ids.push_back(id);
  }
  for (auto id : ids) close(id);
  impl_->scheduler.stop();
  impl_->recorder.stop();
}

std::string_view LiveMedia::backend_name() const { return denoise::to_string(impl_->cfg.backend); }

void LiveMedia::open(std::int64_t session_id, const std::string& username, std::int64_t started_at_ms,
                     StreamOptions options) {
  if (options.atten_lim_db && !(*options.atten_lim_db >= 0.0f && *options.atten_lim_db <= 100.0f)) {
    throw std::invalid_argument("atten_lim_db must be between 0 and 100");
  }
  std::lock_guard opening(impl_->open_mu);
  if (is_open(session_id)) return;  // already open (same tab pressed Go live again)
  impl_->recorder.make_reserve();    // again, after a full disk released it
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
    // The stream's packet length, both ways, decided before its page offers or anyone listens (live.hpp).
    p->packet_ms = impl_->cfg.packet_ms;
    if (p->packet_ms == 0) {
      const auto quick = static_cast<std::size_t>(std::max(1, impl_->cfg.workers)) * impl_->cfg.immediate_up_to;
      p->packet_ms = impl_->pipes.size() <= quick ? 10 : 20;
    }
  }
  impl_->scheduler.add(p);
  impl_->recorder.add(p);
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
  int packet_ms = 0;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->pipes.find(session_id);
    if (it == impl_->pipes.end()) throw NotOpen("session " + std::to_string(session_id) + " is not live");
    p = it->second;
    reconnect = p->ingest != nullptr;
    packet_ms = p->packet_ms;
  }
  media::IngestEvents ev;
  ev.answer = std::move(sink.answer);
  ev.local_candidate = std::move(sink.candidate);
  auto* impl = impl_.get();
  ev.failed = [impl, session_id](std::string why) {
    if (impl->cb.ended) impl->cb.ended(session_id, MediaEnd::webrtc_failed, why);
  };
  ev.connected = [impl, session_id, ms = packet_ms] {
    impl->log->info("media connected session={} packets={} ms", session_id, ms);
  };
  // A page reconnecting gets a ring of its own: the old ingest may still be handing over its last frames.
  auto ring = reconnect ? std::make_shared<media::FrameRing>(kInRing) : p->in;
  auto ingest = media::Ingest::create("ingest-" + std::to_string(session_id), sdp, media::AudioInput{ring, p->ready},
                                      impl_->cfg.ice, packet_ms, std::move(ev));
  std::shared_ptr<media::Ingest> old;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->pipes.find(session_id);
    if (it == impl_->pipes.end()) {
      ingest->close();
      throw NotOpen("session " + std::to_string(session_id) + " ended meanwhile");
    }
    old = std::move(p->ingest);
    if (ring != p->in) impl_->scheduler.replace_input(*p, ring);  // under the worker's mu too
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
                                          std::int64_t session_id, const Config& cfg) {
  auto it = pipes.find(session_id);
  if (it == pipes.end()) throw NotOpen("session " + std::to_string(session_id) + " is not live");
  auto fanout = std::atomic_load(&it->second->fanout);
  if (!fanout) {
    // Packets as long as its page is asked for.
    fanout = media::Fanout::create("fanout-" + std::to_string(session_id), cfg.realtime_priority,
                                   media::Packing{it->second->packet_ms, cfg.listener_low_delay});
    std::atomic_store(&it->second->fanout, fanout);
  }
  return fanout;
}
}  // namespace

const media::IceConfig& LiveMedia::ice() const { return impl_->cfg.ice; }

void LiveMedia::tap(std::int64_t session_id, const std::string& tap_id, media::Fanout::PacketTap tap) {
  std::lock_guard lock(impl_->mu);
  fanout_for(impl_->pipes, session_id, impl_->cfg)->add_tap(tap_id, std::move(tap));
}

void LiveMedia::listen(std::int64_t session_id, const std::string& listener_id, const std::string& sdp,
                       SignalSink sink, std::function<void(const std::string&)> failed) {
  std::shared_ptr<media::Fanout> fanout;
  {
    std::lock_guard lock(impl_->mu);
    fanout = fanout_for(impl_->pipes, session_id, impl_->cfg);
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
    impl_->log->info("fanout closed session={} {}", session_id, Recorder::latency_fields(f->latency()));
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
  impl_->scheduler.remove(p);  // each waits at most for its pass in progress
  impl_->recorder.remove(p);
  // Everything is ours now: what the recorder has not written, what the scheduler has not processed, the tail.
  Finished f;
  f.denoiser = p->denoiser_name;
  if (p->meter) {
    p->meter->take();  // the last part-window counts too
    f.noise_removed_db = p->meter->mean_removed_db();
  }
  impl_->recorder.finish(*p, f);
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
