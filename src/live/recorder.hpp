#pragma once
// The recorder: it owns the recorder thread and which streams it serves. Every 50 ms the thread writes what the
// scheduler's workers produced (each stream's output ring) to the stream's WAV files, makes them durable once a
// second, hands the noise meter's readings on, reports the fan-out's latency, and is the media watchdog: audio
// that stops, never comes, or cannot be written is told to the owner through Callbacks (on this thread). Its mutex
// is held for a pass; add and remove are called by LiveMedia's threads and wait for at most the pass in progress.
// The thread touches the "recorder only" fields of its streams' pipes (pipe.hpp). Once a stream has left both the
// scheduler and the recorder, close() finishes its files on its own thread (finish). The disk reserve is made here
// too (at start, and again by open()) and released when a recording finds the disk full.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/log.hpp"
#include "live/live.hpp"
#include "live/pipe.hpp"

namespace fc25::live {

class Recorder {
 public:
  // Makes the disk reserve and starts the thread. `cfg` and `cb` must outlive the recorder.
  Recorder(const Config& cfg, const Callbacks& cb);
  ~Recorder();  // stop()
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // The recorder writes the stream from its next pass on.
  void add(const std::shared_ptr<Pipe>& p);
  // The stream leaves the recorder, once the pass in progress is over: the thread does not touch it again.
  void remove(const std::shared_ptr<Pipe>& p);
  // Ends and joins the thread. Idempotent.
  void stop();

  // On the closing thread, once the stream has left the scheduler and the recorder: writes what is still queued,
  // denoises what never reached the worker, flushes the denoiser's tail, and finishes the files into f.clean and
  // f.raw (removing them when no audio reached them).
  void finish(Pipe& p, Finished& f);

  // Space kept in reserve on the recordings' disk (Config::reserve_file), unless it is there already.
  void make_reserve();

  // How late a stream's packets reached its listeners, as log fields.
  static std::string latency_fields(const media::Fanout::Latency& l);

 private:
  void run_recorder();
  void drain(Pipe& p, bool final = false);
  void close_gap(Pipe& p);
  void write_processed(Pipe& p, const Processed& item);
  void report_fanout(Pipe& p);
  void release_reserve();

  const Config& cfg_;
  const Callbacks& cb_;
  std::shared_ptr<spdlog::logger> log_ = core::logger("live");

  std::mutex mu_;                                              // held for a recorder pass
  std::vector<std::shared_ptr<Pipe>> pipes_;
  std::thread thread_;

  std::atomic<bool> stopping_{false};
  std::mutex wake_mu_;
  std::condition_variable wake_;
};

}  // namespace fc25::live
