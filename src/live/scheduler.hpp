#pragma once
// The denoise scheduler: it owns the worker threads ("fc25-denoise-N", SCHED_FIFO when permitted) and which streams
// each one serves. A worker takes its streams' frames from their input rings, denoises them in batches and pushes
// the clean frames to the stream's fan-out and output ring (for the recorder). Each worker's mutex is held for a
// pass; add, remove and replace_input are called by LiveMedia's threads and wait for at most the pass in progress.
// The worker threads touch the "worker only" fields of their streams' pipes (pipe.hpp), and nothing else of them.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/doorbell.hpp"
#include "core/log.hpp"
#include "live/live.hpp"
#include "live/pipe.hpp"

namespace fc25::live {

class Scheduler {
 public:
  // Starts Config::workers threads (at least one). `cfg` must outlive the scheduler.
  explicit Scheduler(const Config& cfg);
  ~Scheduler();  // stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // The least loaded worker takes the stream from its next pass on: sets p->worker and p->ready (its doorbell).
  void add(const std::shared_ptr<Pipe>& p);
  // The stream leaves its worker, once the pass in progress is over: the worker does not touch it again.
  void remove(const std::shared_ptr<Pipe>& p);
  // A new ingest's input ring replaces the stream's, between two passes of its worker (each ring has one producer).
  void replace_input(Pipe& p, std::shared_ptr<media::FrameRing> in);
  // Ends and joins the workers (their streams are left as they are). Idempotent.
  void stop();

 private:
  static constexpr std::size_t kMaxPerPass = 8;  // frames one stream may advance per pass (catching up after a burst)

  struct Worker {
    std::mutex mu;                                             // held for a pass; open/close wait at most one
    std::vector<std::shared_ptr<Pipe>> pipes;
    std::shared_ptr<core::Doorbell> ready = std::make_shared<core::Doorbell>();
    std::thread thread;
  };

  void run_worker(Worker& w, int index);
  void take(Worker& w, bool ticking, std::vector<Pipe*>& due,
            std::vector<std::array<media::AudioFrame, kMaxPerPass>>& pending, std::vector<std::size_t>& counts);
  void account(Pipe& p, const media::AudioFrame& in, Processed& out, std::int64_t done);
  void apply_settings(Pipe& p);
  void measure(Pipe& p, const Processed& r, float lsnr);
  static std::int64_t source_arrival(const Pipe& p, std::size_t back);
  void set_realtime(int index);

  const Config& cfg_;
  std::shared_ptr<spdlog::logger> log_ = core::logger("live");
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stopping_{false};
};

}  // namespace fc25::live
