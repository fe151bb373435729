#pragma once
// WebRTC media with GStreamer's webrtcbin. Ingest terminates a broadcaster's peer connection (ICE, DTLS-SRTP, RTP,
// Opus), decodes to 48 kHz mono float and hands 10 ms frames to our code through a lock-free ring. Fan-out encodes
// a stream's clean audio once and sends the same packets to each listener: a connection on the shared listener
// transport (rtc/), or a send-only peer connection of its own. GStreamer's
// threads never wait on our locks; callbacks here only copy, push and post. Nothing here knows about users,
// sessions or the denoiser.
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/doorbell.hpp"
#include "core/latency_histogram.hpp"
#include "core/spsc_ring.hpp"

namespace fc25::rtc {
class Transport;
}

namespace fc25::media {

inline constexpr int kSampleRate = 48000;
inline constexpr std::size_t kFrameSamples = 480;  // 10 ms

struct AudioFrame {
  std::array<float, kFrameSamples> samples;
  std::int64_t arrival_ns = 0;  // steady clock, when the decoded frame was handed over
  // When the RTP packet it was decoded from left the receive jitter buffer (0: a source without packets), so that
  // the latency measured downstream can include decoding.
  std::int64_t packet_ns = 0;
};
using FrameRing = core::SpscRing<AudioFrame>;

// Where decoded audio enters a stream: frames go into the ring (one producer), then the doorbell of the thread that
// takes them is rung, once per batch of frames, so that they are taken at once.
struct AudioInput {
  std::shared_ptr<FrameRing> ring;
  std::shared_ptr<core::Doorbell> ready;  // may be null: the consumer then finds the frames on its next pass
  // Producer side: false when the ring is full (the frame is dropped).
  bool push(const AudioFrame& f) const { return ring->push(f); }
  void pushed() const {
    if (ready) ready->ring();
  }
};

// How a stream's audio is packed into Opus packets, both ways: the length senders are asked for (a=ptime in the
// answers) and the fan-out's encoder makes, and the encoder's mode. 10 ms packets and the low-delay mode take
// ~20 ms off mouth-to-ear (docs/benchmarks/latency.md); 10 ms packets cost twice the packets to receive, decode and
// send per listener (bench/fanout/opus_modes, docs/benchmarks/ingest.md).
struct Packing {
  int packet_ms = 20;      // 10 or 20
  bool low_delay = true;   // Opus restricted-lowdelay (2.5 ms lookahead, no in-band FEC) instead of voice (6.5 ms)
};

struct IceConfig {
  std::string stun;                // "stun://host:port" or empty
  std::vector<std::string> turn;   // "turn(s)://user:password@host:port"
  int jitter_ms = 20;              // receive jitter buffer
  // Ingest only: decode each packet one packet late, so that a lost packet is rebuilt from the redundancy its
  // successor carries (Opus in-band FEC) instead of concealed. Costs one packet (20 ms) of latency on every stream.
  bool decode_fec = false;
  // The address the server's own (host) candidates are announced at instead of the machine's addresses: its public
  // address behind a 1:1 NAT (a cloud machine's). Empty: the machine's own addresses.
  std::string public_address;
  // Listeners' connections on this shared ICE-lite transport (no pipeline or thread per listener); null: each
  // listener gets a webrtcbin of its own.
  std::shared_ptr<rtc::Transport> listener_transport;
};

// `candidate` (an a=candidate value) with its connection address replaced by `address` when it is a host candidate;
// as it was otherwise (server-reflexive and relayed candidates already name the outside address).
std::string announce_at(const std::string& candidate, const std::string& address);

// Initialises GStreamer once and checks the elements ingest needs. Throws std::runtime_error naming what is missing.
void init();

// Pipelines not yet torn down (for leak checks and logs).
std::size_t live_pipelines();

// The offer cannot be used: the message says what is wrong with it.
class OfferError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// One of a page's trickled ICE candidates. It names its m-line of the offer by sdpMid (one of the offer's a=mid
// values), by sdpMLineIndex, or both (sdpMid decides when it is given, as in the W3C's addIceCandidate).
struct RemoteCandidate {
  std::string candidate;
  std::optional<std::string> mid;
  std::optional<unsigned> mline;
};

// The candidate names no m-line of the offer: the message names the field and what the offer has.
class CandidateError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The a=mid value of each m-line of an SDP, in order ("" for a section without one; empty when it does not parse).
std::vector<std::string> sdp_mids(const std::string& sdp);

// The m-line index `c` belongs to, for an offer whose m-lines have the a=mid values `mids`. Throws CandidateError.
unsigned candidate_mline(const RemoteCandidate& c, const std::vector<std::string>& mids);

// What an offer must do with its audio: a broadcaster's must send it, a listener's must receive it.
enum class OfferDirection { sends, receives };

// Checks an SDP offer before any pipeline exists: it must parse, carry an audio section in the right direction
// that offers Opus at 48 kHz and has an a=mid, with ICE credentials and a DTLS fingerprint. Returns the Opus
// payload type.
int check_offer(const std::string& sdp, OfferDirection direction = OfferDirection::sends);

// Events from a peer connection, called on GStreamer threads: copy and post, never block.
struct PeerEvents {
  std::function<void(std::string sdp)> answer;
  // One of our candidates, with its m-line and that m-line's a=mid (the answer's mids are the offer's).
  std::function<void(unsigned mline, std::string mid, std::string candidate)> local_candidate;
  std::function<void(std::string why)> failed;     // negotiation error, ICE or connection failed/closed
  std::function<void()> connected;
};
using IngestEvents = PeerEvents;

class Ingest {
 public:
  // Starts answering `offer_sdp` (checked with check_offer first: throws OfferError, creating nothing), asking
  // the page for packets of `packet_ms` (10 or 20, Packing; a=ptime in the answer; else std::invalid_argument).
  // Decoded audio goes to `input` (frames that do not fit are dropped and counted); its doorbell is rung once per
  // decoded packet.
  static std::shared_ptr<Ingest> create(const std::string& label, const std::string& offer_sdp, AudioInput input,
                                        const IceConfig& ice, int packet_ms, IngestEvents events);
  virtual ~Ingest() = default;

  // Throws CandidateError when the candidate names no m-line of the offer.
  virtual void add_remote_candidate(const RemoteCandidate& candidate) = 0;
  // Stops delivering frames and tears the pipeline down on the media thread. Idempotent, never blocks.
  virtual void close() = 0;

  virtual std::uint64_t frames_delivered() const = 0;
  virtual std::uint64_t frames_dropped() const = 0;
};

// A stream's fan-out: the clean audio is Opus-encoded once (Packing) and the same packets go to every listener, all from one thread: sending never waits for a listener (UDP), so none can hold up the others. A
// listener is a connection on the shared transport (IceConfig::listener_transport: the packet is protected with its
// keys and handed to the kernel in one batch with the others), or else a send-only webrtcbin of its own.
class Fanout {
 public:
  // `realtime_priority` > 0: the thread that encodes and sends asks for SCHED_FIFO at that priority (when
  // permitted), so that joins and other work on a busy machine do not hold up every listener's audio.
  static std::shared_ptr<Fanout> create(const std::string& label, int realtime_priority = 0, Packing packing = {});
  // A fan-out of a stream encoded elsewhere (another node): it takes Opus packets (push_packet) instead of audio,
  // and sends them to its listeners as they come, from a thread of its own.
  static std::shared_ptr<Fanout> create_relayed(const std::string& label, int realtime_priority = 0);
  virtual ~Fanout() = default;

  // One encoded packet of a relayed fan-out (any one thread; never waits). `pts_ns`: its place in the stream (as
  // the encoding side stamped it); `arrival_ns` (steady clock): when its earliest audio arrived, for the latency
  // figures. Throws std::logic_error on a fan-out that encodes its own.
  virtual void push_packet(const std::uint8_t* data, std::size_t size, std::uint64_t pts_ns, std::int64_t arrival_ns) = 0;

  // Taps see every encoded packet as it is made, before any listener, on the sending thread: they must copy what
  // they keep and never wait. `arrival_ns` as for push_packet. A tap added twice under one id replaces the first.
  using PacketTap = std::function<void(const std::uint8_t* data, std::size_t size, std::uint64_t pts_ns,
                                       std::int64_t arrival_ns)>;
  virtual void add_tap(const std::string& id, PacketTap tap) = 0;
  // After it returns the tap is called no more, unless a packet was being sent to it meanwhile; false when absent.
  virtual bool remove_tap(const std::string& id) = 0;
  virtual std::size_t taps() const = 0;

  // One clean 10 ms frame (our thread; never waits for a listener). `arrival_ns` (steady clock) is when the audio
  // it carries arrived (before the denoiser's delay), for the latency figures.
  virtual void push(const float* samples, std::int64_t arrival_ns) = 0;

  // A listener's offer (it must receive Opus: OfferError otherwise, creating nothing). Answers through `events`.
  virtual void add_listener(const std::string& id, const std::string& offer_sdp, const IceConfig& ice,
                            PeerEvents events) = 0;
  // Throws CandidateError when the candidate names no m-line of the listener's offer.
  virtual void add_remote_candidate(const std::string& id, const RemoteCandidate& candidate) = 0;
  // Closes one listener; false when it was not there.
  virtual bool remove_listener(const std::string& id) = 0;
  virtual std::size_t listeners() const = 0;
  // Packets handed to a listener's connection, and those it refused (its pipeline stopping or failed).
  struct ListenerCounts {
    std::uint64_t sent = 0;
    std::uint64_t dropped = 0;
  };
  virtual ListenerCounts listener_counts(const std::string& id) const = 0;
  // Closes every listener and the encoder. Idempotent, never blocks.
  virtual void close() = 0;

  // From a frame's arrival at ingest to its packet entering a listener's RTP payloader, over every packet sent.
  using Latency = core::LatencyHistogram::Summary;  // count = packets
  virtual Latency latency() const = 0;
  // The same over the packets since the previous call (for periodic reports).
  virtual Latency take_latency_window() = 0;
};

}  // namespace fc25::media
