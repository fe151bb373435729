#pragma once
// The listeners' side of WebRTC without a peer connection per listener: one ICE-lite agent on a few shared UDP
// sockets (one per local address), one I/O thread that answers every listener's connectivity checks, runs its DTLS
// handshake and reads its RTCP, and senders that protect each packet with a listener's SRTP keys and hand a whole
// stream's packets to the kernel in batches (sendmmsg). Threads do not grow with listeners: the I/O thread, the
// thread that sends a stream, and a fixed number of sender threads that share a large audience's copies with it.
// Sending never waits: a listener whose packets the kernel cannot take loses them alone. Nothing here knows about
// users, sessions or GStreamer.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rtc/sdp.hpp"

namespace fc25::rtc {

struct TransportConfig {
  std::uint16_t port = 0;          // every socket's UDP port; 0: one the kernel picks for each address
  std::string public_address;      // the address announced instead of the machine's own (behind a 1:1 NAT)
  std::vector<std::string> bind;   // IPv4 addresses to bind; empty: every one of the machine's interfaces but
                                   // loopback (loopback itself when it is the only one)
  int senders = -1;                // sender threads beside each stream's own; -1: one fewer than the cores
  std::size_t inline_listeners = 256;  // a stream's first listeners, sent to by its own thread with no hand-over
};

// Called on the transport's I/O thread: copy and post, never block.
struct ConnectionEvents {
  std::function<void()> connected;               // ICE and DTLS done: packets flow from now on
  std::function<void(std::string why)> failed;   // once; the connection sends nothing more
};

class Transport;
struct SendBatch;
struct SendLane;

// One listener's connection. Made by Transport::open, ended by Transport::close (or by failing).
class Connection {
 public:
  struct Counts {
    std::uint64_t sent = 0;     // packets the kernel took
    std::uint64_t dropped = 0;  // packets refused (the socket's buffer full, or SRTP refused them)
  };
  Counts counts() const { return {sent_.load(std::memory_order_relaxed), dropped_.load(std::memory_order_relaxed)}; }
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  const std::string& label() const { return label_; }

  struct Impl;
  Impl& impl() { return *impl_; }
  explicit Connection(std::string label);
  ~Connection();

 private:
  friend class Transport;
  friend class StreamSender;
  friend struct SendBatch;
  friend struct SendLane;
  std::string label_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> ready_{false};
  std::atomic<std::uint64_t> sent_{0}, dropped_{0};
};

class Transport {
 public:
  // Binds the sockets and starts the I/O thread. Throws std::runtime_error naming the address that failed.
  static std::shared_ptr<Transport> create(const TransportConfig& config);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // A listener's offer answered: the connection, the answer (every candidate in it), and the same candidates as a
  // page takes them trickled, for the answered m-line.
  struct Opened {
    std::shared_ptr<Connection> connection;
    std::string answer;
    unsigned mline = 0;
    std::string mid;
    std::vector<std::string> candidates;  // "candidate:…"
  };
  // `ssrc` and `cname` name the stream the connection will carry. Throws SdpError when the offer cannot be answered.
  Opened open(const std::string& label, const std::string& offer_sdp, std::uint32_t ssrc, const std::string& cname,
              ConnectionEvents events);
  // Ends a connection (DTLS close_notify when it was connected); no event follows. Idempotent, never blocks.
  void close(const std::shared_ptr<Connection>& connection);

  std::size_t connections() const;
  const std::vector<Candidate>& candidates() const;
  // Sender threads beside each stream's own (TransportConfig::senders).
  std::size_t senders() const;

  struct Impl;

 private:
  friend class StreamSender;
  Transport();
  std::unique_ptr<Impl> impl_;
};

// A stream's listeners, as a sender reads them: published whole, never changed.
using Listeners = std::vector<std::shared_ptr<Connection>>;

// A stream's packets to its listeners, called from one thread at a time. Every packet gets the stream's next
// sequence number and a timestamp from its place in the stream; each listener's copy is protected with its own
// keys. The calling thread sends to a stream's first listeners itself (TransportConfig::inline_listeners); a
// larger audience is spread evenly over it and the transport's sender threads. A listener keeps the thread it was
// given, so its packets leave in order and its keys are only ever used by one thread.
class StreamSender {
 public:
  explicit StreamSender(std::uint32_t ssrc);
  ~StreamSender();
  std::uint32_t ssrc() const { return ssrc_; }

  // One Opus packet (`pts_ns`: its place in the stream) to every ready connection in `to`, all of `via`. Also sends
  // each one an RTCP sender report every few seconds. `sent` runs once every copy is with the kernel (or refused),
  // on whichever thread finished last. Never throws, never waits: a sender thread too far behind loses the packet
  // for its own listeners.
  void send(Transport& via, std::shared_ptr<const Listeners> to, const std::uint8_t* payload, std::size_t size,
            std::uint64_t pts_ns, std::function<void()> sent = {});

 private:
  std::uint32_t ssrc_;
  std::uint16_t seq_;
  std::uint32_t ts_base_;
  std::unique_ptr<SendBatch> batch_;  // this thread's
  std::vector<std::size_t> per_lane_;  // listeners on each thread: this one's, then each sender thread's
};

}  // namespace fc25::rtc
