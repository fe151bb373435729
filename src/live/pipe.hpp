#pragma once
// One stream's media (Pipe) and a frame on its way from the denoiser to the recording (Processed): what the
// scheduler (scheduler.hpp), the recorder (recorder.hpp) and LiveMedia's facade (live.cpp) share. Each field says
// who touches it: a scheduler worker, the recorder thread, or the thread calling LiveMedia (under Impl::mu, the
// facade's mutex in live.cpp, where noted). close() owns the whole pipe once the worker and the recorder have let
// go. Internal to src/live: nothing outside includes it.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/doorbell.hpp"
#include "core/latency_histogram.hpp"
#include "core/spsc_ring.hpp"
#include "denoise/denoise.hpp"
#include "denoise/meter/meter.hpp"
#include "live/live.hpp"
#include "media/media.hpp"
#include "recording/recording.hpp"

namespace fc25::live {

using Clock = std::chrono::steady_clock;
inline constexpr std::size_t kHop = media::kFrameSamples;
inline constexpr std::size_t kInRing = 256;    // 2.56 s of input
inline constexpr std::size_t kOutRing = 256;   // 2.56 s between scheduler and recorder

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
  int packet_ms = 20;                               // both ways, set when the stream opens (live.hpp); Impl::mu

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
  Clock::time_point resuming{};                     // stalled, audio arriving again since (0: none arriving)
  // After a stall the recorder holds the frames for Config::gap_hold before it writes them: what arrives in that
  // time (a burst of audio queued on the way, then the live audio) tells how much was lost, written as silence.
  bool holding = false;
  Clock::time_point hold_started{};
  std::vector<Processed> held;
  std::vector<Gap> gaps;
  bool failed = false;                              // the recording could not be written: nothing more is tried
  Clock::time_point last_error_log{};               // other recorder errors: logged at most once a second
  int worker = 0;                                   // the scheduler's worker serving it (set by Scheduler::add)
};

}  // namespace fc25::live
