#pragma once
// Relays between the nodes of a cluster: a stream is ingested, denoised and encoded on one node (its origin); a node
// whose pages listen to it keeps one WebSocket to the origin (GET /internal/relay/{session}, the cluster secret as a
// Bearer token) over which the origin sends every Opus packet once, and fans them out to its own listeners itself.
// However many listen on a node, the stream crosses to it once; the relay ends when its last listener there leaves.
//
// On the wire, origin to relay: binary messages, one encoded packet each (encode_packet), and text messages
// {"type":"ended","reason":R} (the stream ended; the relay's listeners end with R) and
// {"type":"refused","listen_id":L,"code":C,"message":M} (the owner's node does not let that listener hear it).
// Relay to origin: {"type":"listener","listen_id":L,"user_id":U} for each listener, so that the owner's node
// checks the friendship again and counts it, and {"type":"listener_left","listen_id":L}.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/latency_histogram.hpp"
#include "media/media.hpp"

namespace fc25::relay {

// The path a relay asks for, followed by the session id (the HTTP plane reads it: http/server.cpp).
inline constexpr std::string_view kPathPrefix = "/internal/relay/";

// One packet as it travels: where it sits in the stream, how old its audio was when the origin sent it (so that
// the receiving node's latency figures start at the audio's arrival, whatever the two clocks say) and the origin's
// steady clock at sending (comparable with the receiver's only when both run on one host: the relay's transit).
struct Packet {
  std::uint64_t pts_ns = 0;
  std::int64_t age_ns = 0;
  std::int64_t sent_ns = 0;
  std::string_view opus;
};
std::string encode_packet(const Packet& p);
// nullopt when `bytes` is not a packet (wrong version, short, empty payload, or a payload over 4000 bytes).
std::optional<Packet> decode_packet(std::string_view bytes);

// The text messages, read strictly (core::parse_json's depth limit, each field of its type, ids at most 128
// bytes): nullopt for anything else, which is logged and ignored, whatever another node sends.
struct OriginMessage {           // origin to relay
  enum class Kind { ended, refused } kind = Kind::ended;
  std::string reason;            // ended (default "ended")
  std::string listen_id;         // refused
  std::string code;              // refused (default "not_friends")
  std::string message;           // refused
};
std::optional<OriginMessage> parse_origin_message(std::string_view text);
struct RelayMessage {            // relay to origin
  enum class Kind { listener, listener_left } kind = Kind::listener;
  std::string listen_id;
  std::int64_t user_id = 0;      // listener
};
std::optional<RelayMessage> parse_relay_message(std::string_view text);

// The node that ingests streams and sends them to the relays that ask.
struct OriginHooks {
  // Every packet of the live stream to `tap` (see live::LiveMedia::tap); throws when the stream is not live here.
  std::function<void(std::int64_t session_id, const std::string& tap_id, media::Fanout::PacketTap tap)> tap;
  std::function<void(std::int64_t session_id, const std::string& tap_id)> untap;
  // Whether `user_id` may hear `session_id` (a friend of its owner). May block (the store): run on blocking_work.
  std::function<bool(std::int64_t session_id, std::int64_t user_id)> may_listen;
  // The listeners the relays of `session_id` serve changed (on an io thread).
  std::function<void(std::int64_t session_id)> listeners_changed;
};

struct Stats {
  std::size_t relays = 0;             // WebSockets open (origin: relays sent; relay: streams received)
  std::uint64_t packets = 0;          // sent (origin) or received (relay)
  std::uint64_t dropped = 0;          // origin: packets a slow relay had no room for
  std::uint64_t listeners = 0;        // relay: listeners served from relays
  core::LatencyHistogram::Summary transit;  // relay: origin's sending to arrival here (one host's clock only)
};

class Origin {
 public:
  // `blocking_work`: where may_listen runs (null: inline). Relay sockets run on a thread of their own, at
  // `realtime_priority` (SCHED_FIFO when permitted; 0: normal); hooks run on `io`'s threads or blocking_work.
  Origin(boost::asio::io_context& io, OriginHooks hooks, boost::asio::thread_pool* blocking_work,
         int realtime_priority = 0);
  ~Origin();
  Origin(const Origin&) = delete;
  Origin& operator=(const Origin&) = delete;

  // A relay's upgrade request, already authenticated by the HTTP plane (the cluster secret). Takes the connection.
  void accept(boost::beast::tcp_stream stream, boost::beast::http::request<boost::beast::http::string_body> req,
              std::int64_t session_id);
  // The stream ended here: each of its relays is told why, then closed.
  void end(std::int64_t session_id, const std::string& reason);
  void close_all();
  Stats stats() const;
  // Listeners of `session_id` on other nodes (as their relays announced them and the owner's check let them in).
  std::size_t listeners(std::int64_t session_id) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

struct RelayOptions {
  std::string secret;                         // the cluster secret (Bearer token of the upgrade)
  std::string node_id;                        // this node, named to the origin
  media::IceConfig ice;                       // for the listeners' connections
  int realtime_priority = 0;                  // of the relays' thread and each relayed fan-out's sending thread
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds retry_every{1000};  // a lost relay: how often it is tried again
  std::chrono::milliseconds give_up{10000};     // ... and how long, before its listeners end ("relay_lost")
};

struct RelayHooks {
  // A listener of a relayed stream ends (on an io thread): the stream ended (its reason), the owner's node refused
  // it ("not_friends"), or the relay was lost for good ("relay_lost").
  std::function<void(const std::string& listen_id, const std::string& reason, const std::string& detail)> ended;
  // The reason `session_id` ended with, nullopt while it is live. May block (the store): run on blocking_work.
  std::function<std::optional<std::string>(std::int64_t session_id)> ended_reason;
};

// The listeners' side: one relay per stream heard here.
class Relays {
 public:
  Relays(boost::asio::io_context& io, RelayOptions options, RelayHooks hooks, boost::asio::thread_pool* blocking_work);
  ~Relays();
  Relays(const Relays&) = delete;
  Relays& operator=(const Relays&) = delete;

  // A listener here of a stream whose origin is `origin_url` (http://host:port): its own WebRTC connection from this
  // node, fed by the stream's relay (opened now when it is the first). Throws media::OfferError for a bad offer
  // (nothing is kept), std::invalid_argument for an origin URL this node cannot reach (not http://host:port).
  void join(std::int64_t session_id, const std::string& origin_url, const std::string& listen_id, std::int64_t user_id,
            const std::string& offer_sdp, media::PeerEvents events);
  void candidate(std::int64_t session_id, const std::string& listen_id, const media::RemoteCandidate& c);
  // The listener leaves; the relay closes with its last listener. False when it was not there.
  bool leave(std::int64_t session_id, const std::string& listen_id);
  media::Fanout::ListenerCounts counts(std::int64_t session_id, const std::string& listen_id) const;
  // The stream is known to have ended (e.g. this node ended a lost node's streams): its listeners here end now.
  void end(std::int64_t session_id, const std::string& reason);
  void close_all();
  Stats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace fc25::relay
