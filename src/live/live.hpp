#pragma once
// The real-time path of live streams on this server: for each stream, the broadcaster's WebRTC ingest, a denoiser
// advanced by the scheduler, and the recording. Frames flow through lock-free rings:
//
//   ingest (GStreamer thread) ─ring, doorbell─▶ scheduler worker (batch denoise) ─ring─▶ recorder thread (WAV)
//                                                             └─▶ fan-out (Opus, listeners)
//
// Workers (one per core) advance every stream that has frames together with the engine's batch path, so each weight
// is read once per pass: as soon as an ingest rings (a packet decoded) while a worker serves a few streams, every
// 10 ms when it serves many. The recorder writes the clean (and optionally raw) audio, makes it durable once a second and
// watches for streams whose media stopped. Nothing here knows about HTTP, users' friends or the database: the
// owner opens and closes streams and is told (from our threads, so it must post) when media ends a stream.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "denoise/denoise.hpp"
#include "denoise/meter/meter.hpp"
#include "media/media.hpp"
#include "recording/recording.hpp"

namespace fc25::live {

struct Config {
  std::filesystem::path recordings_dir;            // streamed_audios/
  denoise::Backend backend = denoise::Backend::dfn3;
  std::shared_ptr<const denoise::Model> model;     // required for dfn3
  int workers = 2;                                 // scheduler threads
  // A worker serving up to this many streams takes each packet's frames as soon as they are decoded; one serving
  // more advances its streams every 10 ms, one frame each, so that each weight is read once per 10 ms for all.
  std::size_t immediate_up_to = 8;
  int realtime_priority = 10;                      // SCHED_FIFO priority of the workers when permitted; 0: off
  bool record_raw = false;                         // also keep {user}_{session}_raw.wav
  std::chrono::milliseconds media_timeout{10000};  // no audio this long after going live ends the stream
  std::chrono::milliseconds stall_after{1000};     // audio that stops this long is reported (Callbacks::audio)
  // Audio that stopped is reported flowing again once it has come steadily this long: the last packets of a
  // connection that was cut, queued on the way and let through when the link comes back, are a burst of a few
  // hundred milliseconds at most and then nothing; they must not show the stream live again while its page is
  // still reconnecting.
  std::chrono::milliseconds resume_after{300};
  std::chrono::milliseconds stall_timeout{10000};  // audio that stopped this long ends the stream (media_timeout)
  // Audio that stops this long and comes back (lost on the way, or a new connection) has the audio lost meanwhile
  // written as silence, so that the recording's time stays the time live; what comes in the next gap_hold (audio
  // queued on the way arrives in a burst) is counted before the silence is sized.
  std::chrono::milliseconds gap_after{400};
  std::chrono::milliseconds gap_hold{1000};
  std::chrono::milliseconds checkpoint_every{1000};
  std::size_t meter_hops = 25;                     // a noise meter reading every this many hops (250 ms)
  // A stream's packet length, both ways (media::Packing): 10 or 20 ms, or 0 (auto): a stream that opens while every
  // worker could still take each packet as it comes (at most workers × immediate_up_to streams open, itself
  // included) gets 10 ms packets; later ones 20 ms, which a batching worker would only wait for anyway, at half the
  // packets. Kept for the stream (a reconnect too).
  int packet_ms = 0;
  bool listener_low_delay = true;                  // the fan-out's encoder mode (media::Packing::low_delay)
  media::IceConfig ice;
  // Space kept in reserve on the recordings' disk (a file of this size, made at start and when a stream opens):
  // when the disk fills up it is released, so the database beside the recordings can still record how the
  // streams ended. Empty path: none.
  std::filesystem::path reserve_file;
  std::int64_t reserve_bytes = 1 << 20;
};

// Chosen by the page before going live.
struct StreamOptions {
  bool noise_removal = true;           // false: the audio passes untouched, and cannot be cleaned later on
  std::optional<float> atten_lim_db;   // 0..100; unset: no limit. 0 runs the denoiser without effect, so that a
                                       // limit set while live (set_atten_lim_db) can turn it on
  bool record = true;                  // false: no files (a microphone test); the audio only goes to listeners
};

// Why media ended a stream. recording_failed: its recording could not be written (the disk is full, or failing);
// what was written stays a valid WAV, and a full disk ends every stream recording on it.
enum class MediaEnd { webrtc_failed, media_timeout, recording_failed };

struct Stats {
  std::uint64_t frames = 0;           // 10 ms frames received and processed
  std::uint64_t dropped = 0;          // frames lost because a ring was full
  std::uint64_t late = 0;             // frames processed more than 30 ms after they arrived
  double latency_p50_ms = 0;          // frame arrival -> clean frame out of the denoiser (the server's wait and work)
  double latency_p99_ms = 0;
  double latency_max_ms = 0;
  double through_p50_ms = 0;          // arrival of the packet of the audio a clean frame carries, before decoding ->
  double through_p99_ms = 0;          // the clean frame is out (decoding and the denoiser's own delay included)
};

// Audio lost while live, written as silence: where in the recording (from its start) and how long.
struct Gap {
  std::int64_t at_ms = 0;
  std::int64_t ms = 0;
};

struct Finished {
  std::optional<recording::Summary> clean;   // nullopt: no audio was ever received (no file kept)
  std::optional<recording::Summary> raw;
  Stats stats;
  std::string denoiser;
  std::optional<float> noise_removed_db;     // the noise meter's mean over the stream (NoiseMeter)
  std::vector<Gap> gaps;
};

// The stream is not open here (never opened, or closed): thrown by offer and listen.
class NotOpen : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// What the owner hears back from a stream's media, on our threads.
struct Callbacks {
  std::function<void(std::int64_t session_id, MediaEnd why, const std::string& detail)> ended;
  // A noise meter reading of a stream, every Config::meter_hops hops of audio; must not block.
  std::function<void(std::int64_t session_id, const denoise::MeterReading& reading)> meter;
  // A stream's audio stopped for Config::stall_after (flowing = false), or flows again after that (true).
  std::function<void(std::int64_t session_id, bool flowing)> audio;
};

// Signalling replies for one ingest, on GStreamer threads (must not block).
struct SignalSink {
  std::function<void(const std::string& sdp)> answer;
  std::function<void(unsigned mline, const std::string& mid, const std::string& candidate)> candidate;
};

class LiveMedia {
 public:
  LiveMedia(Config config, Callbacks callbacks);
  ~LiveMedia();
  LiveMedia(const LiveMedia&) = delete;
  LiveMedia& operator=(const LiveMedia&) = delete;

  // The ICE settings listeners' connections get.
  const media::IceConfig& ice() const;

  // The backend new streams get when noise removal is on.
  std::string_view backend_name() const;

  // A stream went live: creates its recording file (unless options.record is false) and denoiser and starts its
  // media watchdog.
  // Throws recording::RecordingError when the file cannot be made; std::invalid_argument for bad options.
  void open(std::int64_t session_id, const std::string& username, std::int64_t started_at_ms, StreamOptions options);
  bool is_open(std::int64_t session_id) const;

  // Changes how far a stream's noise may be lowered, from its next frame on (0..100 dB; 100: no limit).
  // Throws std::invalid_argument for a bad limit, NotOpen when the stream is not open here.
  void set_atten_lim_db(std::int64_t session_id, float db);

  // The page's offer for an open stream: starts the ingest and answers through `sink`. An offer for a stream that
  // has an ingest already (the page reconnecting) replaces it: the same stream, denoiser and recording go on.
  // Throws media::OfferError (creating nothing, keeping the ingest there is) for a bad offer, NotOpen when the
  // stream is not open.
  void offer(std::int64_t session_id, const std::string& sdp, SignalSink sink);
  // Throws media::CandidateError when the candidate names no m-line of the offer.
  void remote_candidate(std::int64_t session_id, const media::RemoteCandidate& candidate);

  // A listener's offer for an open stream: the clean audio, encoded once for all listeners, goes to it over its
  // own peer connection. `failed` is called (from a GStreamer thread) when its connection fails. Throws
  // media::OfferError for a bad offer (creating nothing), NotOpen when the stream is not open (or closes meanwhile).
  void listen(std::int64_t session_id, const std::string& listener_id, const std::string& sdp, SignalSink sink,
              std::function<void(const std::string& why)> failed);
  void listener_candidate(std::int64_t session_id, const std::string& listener_id,
                          const media::RemoteCandidate& candidate);
  bool unlisten(std::int64_t session_id, const std::string& listener_id);
  // Every encoded packet of an open stream also goes to `tap` (on the sending thread: copy, never wait), e.g. to
  // relay it to another node. Throws NotOpen when the stream is not open. untap: false when it was not there.
  void tap(std::int64_t session_id, const std::string& tap_id, media::Fanout::PacketTap tap);
  bool untap(std::int64_t session_id, const std::string& tap_id);
  std::size_t listeners(std::int64_t session_id) const;
  media::Fanout::ListenerCounts listener_counts(std::int64_t session_id, const std::string& listener_id) const;

  // Where a stream's audio enters (what the ingest feeds). Another source may feed an open stream that has no
  // ingest, from one thread, ringing the doorbell after each batch of frames. nullopt when the stream is not open.
  std::optional<media::AudioInput> input(std::int64_t session_id) const;

  // Ends a stream's media: closes the ingest, denoises what is left and the denoiser's tail, finalises the files.
  // Exactly once per stream: nullopt when it is not open here.
  std::optional<Finished> close(std::int64_t session_id);

  std::size_t open_streams() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fc25::live
