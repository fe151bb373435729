#include "live/scheduler.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "core/guard.hpp"
#include "core/thread.hpp"
#include "core/time.hpp"

namespace fc25::live {
namespace {

// A frame that leaves the denoiser more than 30 ms after it arrived is late.
constexpr double kLateMs = 30.0;
// A pass every 10 ms when a worker is busy (and, when it is not, for a source that does not ring the doorbell).
constexpr auto kTick = std::chrono::milliseconds(10);

}  // namespace

Scheduler::Scheduler(const Config& cfg) : cfg_(cfg) {
  int n = std::max(1, cfg_.workers);
  for (int i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>());
    auto* w = workers_.back().get();
    w->thread = std::thread([this, w, i] { core::run_guarded("denoise worker", [&] { run_worker(*w, i); }); });
  }
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::add(const std::shared_ptr<Pipe>& p) {
  // Least loaded worker.
  std::size_t best = 0, best_n = SIZE_MAX;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    std::lock_guard lock(workers_[i]->mu);
    if (workers_[i]->pipes.size() < best_n) best = i, best_n = workers_[i]->pipes.size();
  }
  p->worker = static_cast<int>(best);
  p->ready = workers_[best]->ready;
  {
    std::lock_guard lock(workers_[best]->mu);
    workers_[best]->pipes.push_back(p);
  }
}

void Scheduler::remove(const std::shared_ptr<Pipe>& p) {
  auto& w = *workers_[static_cast<std::size_t>(p->worker)];
  std::lock_guard lock(w.mu);
  std::erase(w.pipes, p);
}

void Scheduler::replace_input(Pipe& p, std::shared_ptr<media::FrameRing> in) {
  std::lock_guard worker(workers_[static_cast<std::size_t>(p.worker)]->mu);
  p.in = std::move(in);
}

void Scheduler::stop() {
  stopping_ = true;
  for (auto& w : workers_) w->ready->ring();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

// Every pass advances the streams that have frames together, round by round: one batch per round, each weight
// read once for all of them. How a worker paces its passes depends on how many streams it serves:
// - up to Config::immediate_up_to: it sleeps until an ingest rings its doorbell (a packet decoded) and takes every
//   frame at once, so a packet's frames wait for nothing;
// - more: a pass every 10 ms (kTick), one frame per stream (a 20 ms packet's two frames go out 10 ms apart), so
//   that each pass is one full batch and the weights are read 100 times a second whatever the number of streams.
//   Taking frames as they come would read them once or twice per packet: at 24 streams a worker, thousands of
//   times a second, which the two cores cannot afford next to the streams' receive paths.
void Scheduler::run_worker(Worker& w, int index) {
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
  while (!stopping_.load(std::memory_order_relaxed)) {
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
    ticking = w.pipes.size() > cfg_.immediate_up_to;
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
void Scheduler::take(Worker& w, bool ticking, std::vector<Pipe*>& due,
                     std::vector<std::array<media::AudioFrame, kMaxPerPass>>& pending,
                     std::vector<std::size_t>& counts) {
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
      auto cap = static_cast<std::int64_t>(cfg_.media_timeout.count()) * (media::kSampleRate / 1000);
      p->pad_samples.store(std::clamp<std::int64_t>(pad, 0, cap));
    } else if (first.arrival_ns - p->prev_arrival_ns > std::chrono::nanoseconds(cfg_.gap_after).count()) {
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
void Scheduler::account(Pipe& p, const media::AudioFrame& in, Processed& out, std::int64_t done) {
  std::copy(in.samples.begin(), in.samples.end(), out.raw.begin());
  p.arrivals[p.frames % p.arrivals.size()] = in.packet_ns > 0 ? in.packet_ns : in.arrival_ns;
  ++p.frames;
  double ms = static_cast<double>(done - in.arrival_ns) / 1e6;
  p.latency.add_ms(ms);
  if (auto src = source_arrival(p, 1); src > 0) p.through.add_ms(static_cast<double>(done - src) / 1e6);
  if (ms > kLateMs) ++p.late;
}

// A limit set by set_atten_lim_db, taken between two frames.
void Scheduler::apply_settings(Pipe& p) {
  float lim = p.new_atten_lim.exchange(-1.0f, std::memory_order_acq_rel);
  if (lim >= 0.0f) p.denoiser->set_atten_lim_db(lim);
}

// The frame into the stream's noise meter; a reading every cfg_.meter_hops frames.
void Scheduler::measure(Pipe& p, const Processed& r, float lsnr) {
  if (!p.meter) return;
  p.meter->add(r.raw, r.clean, lsnr);
  if (p.frames % std::max<std::size_t>(1, cfg_.meter_hops) == 0) p.readings.push(p.meter->take());
}

// When the audio in the clean frame `back` frames before the newest arrived (the denoiser's delay earlier than
// that frame's input); 0 for the delay's opening frames, which carry no input yet.
std::int64_t Scheduler::source_arrival(const Pipe& p, std::size_t back) {
  std::uint64_t behind = back + p.delay_frames;
  if (p.frames < behind || behind > p.arrivals.size()) return 0;
  return p.arrivals[(p.frames - behind) % p.arrivals.size()];
}

// Workers ask for real-time scheduling (SCHED_FIFO, low priority), as audio servers do, so that a pass is not
// queued behind GStreamer's and the HTTP threads' work. Without the privilege (CAP_SYS_NICE or RLIMIT_RTPRIO)
// they run as normal threads.
void Scheduler::set_realtime(int index) {
  int rc = core::name_and_prioritise_thread("fc25-denoise-" + std::to_string(index), cfg_.realtime_priority);
  if (index == 0 && cfg_.realtime_priority > 0) {
    if (rc == 0) log_->info("denoise workers run with real-time priority {} (SCHED_FIFO)", cfg_.realtime_priority);
    else log_->info("denoise workers run at normal priority (real-time priority not permitted: {})",
                    std::strerror(rc));
  }
}

}  // namespace fc25::live
