// fc25-send: a broadcaster without a browser. Logs in (or registers) users, goes live over the HTTP API, signals
// WebRTC on the presence socket exactly as the page does, and sends Opus from a WAV file in real time through
// webrtcbin. Used by the integration tests to drive ingest and by the ingest benchmark as a load generator.
//
// The file is encoded to Opus once in 10 ms and once in 20 ms packets, and each stream sends the length its answer
// asks for (a=ptime, as a browser does; --packet-ms forces one). The same packets go on every stream, stamped by
// sample count (not arrival), so that N streams cost the sender little more than the network work.
#define GST_USE_UNSTABLE_API
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace websocket = beast::websocket;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  std::string port;
  std::string wav;
  std::string user = "sender";
  std::string password = "sender password";
  int streams = 1;
  int first = -1;             // with --first K: users NAME{K}..NAME{K+N-1}
  double seconds = 5;
  int packet_ms = 0;          // Opus packet length sent (10 or 20); 0: as the answer asks (a=ptime), else 20
  int cycles = 1;             // go live / stop this many times per stream, one after the other
  double pause = 0.2;         // between cycles
  double ramp = 0;            // spread the streams' starts over this many seconds
  int ramp_of = 0;            // ... as slots first..first+streams-1 of this many (several processes, one ramp)
  double start_at_ms = 0;     // begin (after logging in) at this wall-clock time, ms since the epoch
  bool register_users = false;
  bool stop = true;           // end each stream with POST /api/stream/stop (else leave it to the server)
  bool send_media = true;     // false: connect but send no audio (watchdog tests)
  bool noise_removal = true;
  double atten_lim = -1;      // dB; < 0: not sent
  bool bad_fingerprint = false;  // offer a DTLS fingerprint that is not ours (the handshake must fail)
  std::string listen;         // listen to this user's stream instead of broadcasting
  bool count_at_transport = false;  // listeners: count SRTP packets as they arrive, then drop them
  double after_end = 0;             // listeners the server ended: go on counting packets this long
  bool vanish_early = false;  // drop the media right after the offer (ICE can never complete)
  bool vanish = false;        // at the end, drop the media but keep the presence socket, and wait for the server
};

[[noreturn]] void usage(const std::string& why = {}) {
  if (!why.empty()) std::cerr << "fc25-send: " << why << "\n";
  std::cerr << R"(usage: fc25-send --port N --wav FILE [options]
  --host ADDR         server address (default 127.0.0.1)
  --user NAME         user name; with --streams N > 1, users NAME0..NAME{N-1}
  --password PW       (default "sender password")
  --register          register the users first (an existing user is logged in instead)
  --streams N         concurrent broadcasters (default 1)
  --first K           number the users from K: NAME{K}..NAME{K+N-1} (several processes sharing one set of users)
  --seconds S         how long each stream stays live (default 5)
  --packet-ms 10|20   Opus packet length sent (default: as the server's answer asks, a=ptime, as a browser
                      does; 20 where it asks nothing)
  --cycles N          go live and stop N times per broadcaster (default 1)
  --pause S           between cycles (default 0.2)
  --ramp S            start the broadcasters spread over S seconds (default 0: all at once)
  --ramp-of N         with --first K: take slots K.. of a ramp shared by N streams in several processes
  --start-at MS       once logged in, wait until this wall-clock time (ms since the epoch) to begin
  --no-stop           do not stop the streams; disconnect and let the server end them
  --no-media          connect WebRTC but send no audio
  --noise-removal 0|1 (default 1)
  --atten-lim DB      limit the noise reduction to DB decibels
  --bad-fingerprint   offer a DTLS fingerprint that is not this sender's (the server must fail the connection)
  --listen USER       listen to USER's live stream instead (the users must be USER's friends): --streams
                      listeners, each --seconds long, --cycles times; reports RTP packets received
  --count-at-transport  listeners count each audio packet as it arrives over ICE (still encrypted) and drop it
                      there instead of decrypting and jitter-buffering it: a third of the CPU per listener, so
                      one machine can hold many more of them in load tests
  --after-end S       a listener the server ends (listen_ended) keeps its connection S seconds more and reports
                      the packets that still arrived from 200 ms after the end (packets_after_end)
  --vanish-early      tear the WebRTC side down right after the offer: ICE cannot complete
  --vanish            at the end, tear the WebRTC side down without a word (keep the presence socket) and
                      wait up to 20 s for the server to end the stream; its reason is reported
Prints one JSON line per finished stream and a summary line.
)";
  std::exit(2);
}

// --- a tiny HTTP client with a cookie jar -----------------------------------------------------------------------
struct Http {
  std::string host, port;
  std::map<std::string, std::string> cookies;

  std::string cookie_header() const {
    std::string s;
    for (auto& [k, v] : cookies) s += (s.empty() ? "" : "; ") + k + "=" + v;
    return s;
  }

  std::pair<int, json> request(bhttp::verb method, const std::string& target, const json& body = nullptr) {
    net::io_context io;
    beast::tcp_stream stream(io);
    net::ip::tcp::resolver resolver(io);
    stream.connect(resolver.resolve(host, port));
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, host + ":" + port);
    if (!cookies.empty()) req.set(bhttp::field::cookie, cookie_header());
    if (cookies.count("fc25_csrf")) req.set("X-CSRF-Token", cookies["fc25_csrf"]);
    if (!body.is_null()) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = body.dump();
    }
    req.prepare_payload();
    bhttp::write(stream, req);
    beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(stream, buf, res);
    for (auto& f : res) {
      if (f.name() != bhttp::field::set_cookie) continue;
      std::string line(f.value());
      auto pair = line.substr(0, line.find(';'));
      auto eq = pair.find('=');
      cookies[pair.substr(0, eq)] = pair.substr(eq + 1);
    }
    beast::error_code ec;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
    json j;
    try {
      j = json::parse(res.body());
    } catch (...) {
      j = res.body();
    }
    return {res.result_int(), j};
  }
};

// --- the file, as Opus packets ----------------------------------------------------------------------------------
struct Packets {
  std::vector<std::vector<std::uint8_t>> data;   // packet_ms each
};

Packets encode_file(const std::string& wav, int packet_ms) {
  std::string desc = "filesrc name=src ! decodebin ! audioconvert ! audioresample ! "
                     "audio/x-raw,rate=48000,channels=1 ! opusenc frame-size=" + std::to_string(packet_ms) +
                     " inband-fec=true bitrate=48000 ! appsink name=sink sync=false";
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  if (!p || err) throw std::runtime_error(std::string("cannot build the encoder: ") + (err ? err->message : "?"));
  GstElement* src = gst_bin_get_by_name(GST_BIN(p), "src");
  g_object_set(src, "location", wav.c_str(), nullptr);
  gst_object_unref(src);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "sink");
  gst_element_set_state(p, GST_STATE_PLAYING);
  Packets out;
  while (GstSample* s = gst_app_sink_pull_sample(GST_APP_SINK(sink))) {
    GstBuffer* b = gst_sample_get_buffer(s);
    GstMapInfo m;
    if (gst_buffer_map(b, &m, GST_MAP_READ)) {
      out.data.emplace_back(m.data, m.data + m.size);
      gst_buffer_unmap(b, &m);
    }
    gst_sample_unref(s);
  }
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(sink);
  gst_object_unref(p);
  if (out.data.empty()) throw std::runtime_error("no audio could be read from " + wav);
  return out;
}

// --- one broadcaster --------------------------------------------------------------------------------------------
struct Sender {
  int index = 0;
  std::string name;
  Http http;
  GstElement* pipe = nullptr;
  GstElement* webrtc = nullptr;
  GstElement* appsrc = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  std::string offer;                 // set when ICE gathering completed
  std::string failure;
  std::atomic<bool> connected{false};
  std::atomic<bool> sending{false};
  std::uint64_t sent = 0;            // pacer thread only
  std::atomic<int> packet_ms{20};    // set from the answer before sending starts
  GstClockTime base_pts = GST_CLOCK_TIME_NONE;
};

// webrtcbin's offer, made the local description; without one, the failure for whoever waits on the peer's state
// (a Sender or a ListenState: each has webrtc, mu, cv and failure).
template <class Peer>
void offer_created(GstPromise* promise, gpointer data) {
  auto* s = static_cast<Peer*>(data);
  const GstStructure* reply = gst_promise_get_reply(promise);
  GstWebRTCSessionDescription* offer = nullptr;
  if (reply) gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, nullptr);
  gst_promise_unref(promise);
  if (!offer) {
    std::lock_guard lock(s->mu);
    s->failure = "webrtcbin made no offer";
    s->cv.notify_all();
    return;
  }
  g_signal_emit_by_name(s->webrtc, "set-local-description", offer, nullptr);
  gst_webrtc_session_description_free(offer);
}

// The offer with its candidates: once ICE gathering has completed, or after 0.5 s with the candidates gathered
// by then (at least one UDP) (with many peers starting at once webrtcbin sometimes never reports "complete", although its
// host candidates are in the description within milliseconds). Polled rather than taken from the
// gathering-state notification, which can fire before the local description is readable.
// No UPnP port mapping attempts (libnice's default): every agent would search the network for a router and hold
// its gathering back for it.
void no_upnp(GstElement* webrtc) {
  GObject* ice = nullptr;
  g_object_get(webrtc, "ice-agent", &ice, nullptr);
  GObject* agent = nullptr;
  if (ice && g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent")) g_object_get(ice, "agent", &agent, nullptr);
  if (agent) {
    g_object_set(agent, "upnp", FALSE, nullptr);
    g_object_unref(agent);
  }
  if (ice) g_object_unref(ice);
}

// A host UDP candidate: what an answer from the server can connect to (a lone TCP one would not do).
bool has_udp_candidate(const std::string& sdp) {
  for (std::size_t at = 0; (at = sdp.find("a=candidate:", at)) != std::string::npos; ++at) {
    auto line = sdp.substr(at, sdp.find('\n', at) - at);
    std::transform(line.begin(), line.end(), line.begin(), [](unsigned char c) { return std::tolower(c); });
    if (line.find(" udp ") != std::string::npos) return true;
  }
  return false;
}

bool wait_offer(GstElement* webrtc, std::mutex& mu, std::condition_variable& cv, std::string& failure,
                std::string& offer, std::chrono::seconds limit) {
  auto start = Clock::now();
  std::unique_lock lock(mu);
  while (Clock::now() < start + limit) {
    if (!failure.empty()) return true;
    GstWebRTCICEGatheringState gs;
    g_object_get(webrtc, "ice-gathering-state", &gs, nullptr);
    GstWebRTCSessionDescription* local = nullptr;
    g_object_get(webrtc, "local-description", &local, nullptr);
    if (local) {
      gchar* text = gst_sdp_message_as_text(local->sdp);
      std::string sdp = text;
      g_free(text);
      gst_webrtc_session_description_free(local);
      bool enough = Clock::now() - start > std::chrono::milliseconds(500) && has_udp_candidate(sdp);
      if (gs == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE || enough) {
        offer = sdp;
        return true;
      }
    }
    cv.wait_for(lock, std::chrono::milliseconds(20));
  }
  return false;
}

void on_connection(GstElement* webrtc, GParamSpec*, gpointer data) {
  auto* s = static_cast<Sender*>(data);
  GstWebRTCPeerConnectionState st;
  g_object_get(webrtc, "connection-state", &st, nullptr);
  if (st == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) {
    s->connected = true;
    s->cv.notify_all();
  }
}

void on_negotiation_needed(GstElement* webrtc, gpointer data) {
  GstPromise* p = gst_promise_new_with_change_func(offer_created<Sender>, data, nullptr);
  g_signal_emit_by_name(webrtc, "create-offer", nullptr, p);
}

void make_pipeline(Sender& s) {
  s.pipe = gst_pipeline_new(("send-" + std::to_string(s.index)).c_str());
  s.appsrc = gst_element_factory_make("appsrc", nullptr);
  GstElement* pay = gst_element_factory_make("rtpopuspay", nullptr);
  GstElement* filter = gst_element_factory_make("capsfilter", nullptr);
  s.webrtc = gst_element_factory_make("webrtcbin", nullptr);
  GstCaps* caps = gst_caps_from_string("audio/x-opus,channels=1,rate=48000,channel-mapping-family=0");
  g_object_set(s.appsrc, "caps", caps, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", FALSE,
               "max-buffers", 50u, nullptr);
  gst_caps_unref(caps);
  g_object_set(pay, "pt", 111, nullptr);
  GstCaps* rtp = gst_caps_from_string("application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000");
  g_object_set(filter, "caps", rtp, nullptr);
  gst_caps_unref(rtp);
  g_object_set(s.webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
  no_upnp(s.webrtc);
  gst_bin_add_many(GST_BIN(s.pipe), s.appsrc, pay, filter, s.webrtc, nullptr);
  gst_element_link_many(s.appsrc, pay, filter, nullptr);
  GstPad* src = gst_element_get_static_pad(filter, "src");
  GstPad* sink = gst_element_request_pad_simple(s.webrtc, "sink_%u");
  gst_pad_link(src, sink);
  gst_object_unref(src);
  gst_object_unref(sink);
  g_signal_connect(s.webrtc, "on-negotiation-needed", G_CALLBACK(on_negotiation_needed), &s);
  g_signal_connect(s.webrtc, "notify::connection-state", G_CALLBACK(on_connection), &s);
  // Send-only: the transceiver made for the sink pad.
  GArray* trans = nullptr;
  g_signal_emit_by_name(s.webrtc, "get-transceivers", &trans);
  if (trans && trans->len > 0) {
    auto* t = g_array_index(trans, GstWebRTCRTPTransceiver*, 0);
    g_object_set(t, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, nullptr);
  }
  if (trans) g_array_unref(trans);
  gst_element_set_state(s.pipe, GST_STATE_PLAYING);
}

void drop_pipeline(Sender& s) {
  s.sending = false;
  if (!s.pipe) return;
  gst_element_set_state(s.pipe, GST_STATE_NULL);
  gst_object_unref(s.pipe);
  s.pipe = s.webrtc = s.appsrc = nullptr;
  s.connected = false;
  s.base_pts = GST_CLOCK_TIME_NONE;
  std::lock_guard lock(s.mu);
  s.offer.clear();
  s.failure.clear();
}

// Opens s's presence socket as client_id, as a page does (its session cookie, this origin), and reads the
// snapshot the server sends first.
void open_presence(net::io_context& io, websocket::stream<beast::tcp_stream>& ws, Sender& s, const Options& o,
                   const std::string& client_id) {
  net::ip::tcp::resolver resolver(io);
  beast::get_lowest_layer(ws).connect(resolver.resolve(o.host, o.port));
  ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
    req.set(bhttp::field::cookie, s.http.cookie_header());
    req.set(bhttp::field::origin, "http://" + o.host + ":" + o.port);
  }));
  ws.handshake(o.host + ":" + o.port, "/ws/presence/?client_id=" + client_id);
  beast::flat_buffer buf;
  ws.read(buf);  // snapshot
}

// One go-live cycle: start, signal, stay live, stop. Returns the JSON result line.
json run_cycle(Sender& s, const Options& o, int cycle) {
  json result{{"user", s.name}, {"cycle", cycle}};
  auto t0 = Clock::now();
  std::string client_id = "send" + std::to_string(s.index) + "c" + std::to_string(cycle) + "p" +
                          std::to_string(::getpid());
  net::io_context io;
  websocket::stream<beast::tcp_stream> ws(io);
  open_presence(io, ws, s, o, client_id);
  beast::flat_buffer buf;

  json start{{"client_id", client_id}, {"noise_removal", o.noise_removal}};
  if (o.atten_lim >= 0) start["atten_lim_db"] = o.atten_lim;
  auto [st, started] = s.http.request(bhttp::verb::post, "/api/stream/start", start);
  if (st != 201 && st != 200) throw std::runtime_error("start: " + std::to_string(st) + " " + started.dump());
  std::int64_t session = started["session_id"];
  result["session_id"] = session;
  result["denoiser"] = started.value("denoiser", "");

  make_pipeline(s);
  if (!wait_offer(s.webrtc, s.mu, s.cv, s.failure, s.offer, std::chrono::seconds(10))) {
    throw std::runtime_error("ICE gathering did not complete within 10 s");
  }
  if (!s.failure.empty()) throw std::runtime_error(s.failure);
  if (o.bad_fingerprint) {
    // Replace the hex digits of the fingerprint with others of the same form.
    auto p = s.offer.find("a=fingerprint:");
    if (p != std::string::npos) {
      auto sp = s.offer.find(' ', p), eol = s.offer.find_first_of("\r\n", p);
      for (auto i = sp + 1; i < eol; ++i)
        if (std::isxdigit(static_cast<unsigned char>(s.offer[i]))) s.offer[i] = s.offer[i] == 'A' ? 'B' : 'A';
    }
  }
  ws.text(true);
  ws.write(net::buffer(json{{"type", "webrtc_offer"}, {"session_id", session}, {"sdp", s.offer}}.dump()));
  auto offered = Clock::now();
  if (o.vanish_early) drop_pipeline(s);
  // Read the answer and the server's candidates until connected (or an error): every message is handled as it
  // comes, on this thread, while the loop also watches webrtcbin's connection state.
  std::string ended_reason, error;
  bool socket_closed = false;
  std::function<void()> read_next = [&] {
    ws.async_read(buf, [&](beast::error_code ec, std::size_t) {
      if (ec) {
        socket_closed = true;
        return;
      }
      auto msg = json::parse(beast::buffers_to_string(buf.data()), nullptr, false);
      buf.consume(buf.size());
      auto type = msg.is_object() ? msg.value("type", "") : std::string();
      if (type == "error") {
        error = "server: " + msg.dump();
      } else if (type == "webrtc_answer" && s.webrtc) {
        const std::string text = msg["sdp"].get<std::string>();
        // The packet length asked for, as a browser takes it; --packet-ms overrides.
        int ptime = 20;
        if (auto at = text.find("a=ptime:"); at != std::string::npos) ptime = std::atoi(text.c_str() + at + 8) <= 10 ? 10 : 20;
        s.packet_ms = o.packet_ms ? o.packet_ms : ptime;
        GstSDPMessage* sdp = nullptr;
        gst_sdp_message_new_from_text(text.c_str(), &sdp);
        auto* answer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
        g_signal_emit_by_name(s.webrtc, "set-remote-description", answer, nullptr);
        gst_webrtc_session_description_free(answer);
      } else if (type == "ice_candidate" && s.webrtc) {
        g_signal_emit_by_name(s.webrtc, "add-ice-candidate", msg.value("sdpMLineIndex", 0u),
                              msg["candidate"].get<std::string>().c_str());
      } else if (type == "streaming_status" && msg.value("username", "") == s.name &&
                 !msg.value("is_streaming", true)) {
        ended_reason = msg.value("end_reason", "");
      }
      read_next();
    });
  };
  read_next();
  auto connect_deadline = Clock::now() + std::chrono::seconds(o.bad_fingerprint || o.vanish_early ? 40 : 10);
  while ((!s.connected || o.bad_fingerprint || o.vanish_early) && error.empty() && ended_reason.empty() && !socket_closed && Clock::now() < connect_deadline) {
    io.run_one_for(std::chrono::milliseconds(20));
  }
  if (!error.empty()) throw std::runtime_error(error);
  if (!ended_reason.empty()) {
    if (o.bad_fingerprint || o.vanish_early) {
      result["ended_by_server"] = ended_reason;
      result["ended_after_offer_ms"] = std::chrono::duration<double, std::milli>(Clock::now() - offered).count();
      drop_pipeline(s);
      return result;
    }
    throw std::runtime_error("the stream ended before media connected: " + ended_reason);
  }
  if (!s.connected) throw std::runtime_error("media did not connect within 10 s");
  result["connect_ms"] = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  result["offer_to_connected_ms"] = std::chrono::duration<double, std::milli>(Clock::now() - offered).count();
  s.sent = 0;
  s.sending = o.send_media;

  // Live: keep reading the socket (pings, events) until the time is up or the server ends the stream.
  auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  while (Clock::now() < end && ended_reason.empty() && !socket_closed) io.run_one_until(end);
  s.sending = false;
  if (o.vanish && ended_reason.empty() && !socket_closed) {
    drop_pipeline(s);
    auto vanished = Clock::now();
    auto limit = vanished + std::chrono::seconds(20);
    while (ended_reason.empty() && !socket_closed && Clock::now() < limit) io.run_one_until(limit);
    result["ended_after_vanish_ms"] = std::chrono::duration<double, std::milli>(Clock::now() - vanished).count();
  }
  result["packets_sent"] = s.sent;
  result["packet_ms"] = s.packet_ms.load();
  if (!ended_reason.empty()) result["ended_by_server"] = ended_reason;
  if (o.stop && ended_reason.empty()) {
    auto [sst, stopped] = s.http.request(bhttp::verb::post, "/api/stream/stop", {{"session_id", session}});
    result["stop"] = stopped;
  }
  drop_pipeline(s);
  beast::error_code ec;
  beast::get_lowest_layer(ws).socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(ws).close();
  return result;
}


// --- one listener ------------------------------------------------------------------------------------------------
struct ListenState {
  std::mutex mu;
  std::condition_variable cv;
  std::string offer, failure;
  std::atomic<bool> connected{false};
  std::atomic<std::uint64_t> packets{0};
  GstElement* pipe = nullptr;
  GstElement* webrtc = nullptr;
  bool at_transport = false;
};

// --count-at-transport: SRTP audio packets counted (and dropped) as they leave the ICE transport; DTLS, STUN and
// RTCP go on (RFC 7983: RTP/RTCP start with 128..191; RTCP packet types 192..223 in the second byte).
bool count_srtp(ListenState* st, GstBuffer* b) {
  guint8 head[2];
  if (gst_buffer_extract(b, 0, head, 2) != 2 || head[0] < 128 || head[0] > 191) return false;
  if (head[1] >= 192 && head[1] <= 223) return false;
  st->packets.fetch_add(1, std::memory_order_relaxed);
  return true;
}

GstPadProbeReturn transport_probe(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* st = static_cast<ListenState*>(data);
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) {
    return count_srtp(st, GST_PAD_PROBE_INFO_BUFFER(info)) ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
  }
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    GstBufferList* list = gst_buffer_list_make_writable(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
    GST_PAD_PROBE_INFO_DATA(info) = list;
    for (guint i = gst_buffer_list_length(list); i-- > 0;)
      if (count_srtp(st, gst_buffer_list_get(list, i))) gst_buffer_list_remove(list, i, 1);
    return gst_buffer_list_length(list) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
  }
  return GST_PAD_PROBE_OK;
}

void listen_element_added(GstBin*, GstBin*, GstElement* element, gpointer data) {
  GstElementFactory* f = gst_element_get_factory(element);
  if (!f || std::string_view(GST_OBJECT_NAME(f)) != "nicesrc") return;
  GstPad* src = gst_element_get_static_pad(element, "src");
  gst_pad_add_probe(src, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                    transport_probe, data, nullptr);
  gst_object_unref(src);
}

GstPadProbeReturn count_packet(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* st = static_cast<ListenState*>(data);
  if (st->at_transport) return GST_PAD_PROBE_OK;
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) st->packets.fetch_add(1, std::memory_order_relaxed);
  else if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST)
    st->packets.fetch_add(gst_buffer_list_length(GST_PAD_PROBE_INFO_BUFFER_LIST(info)), std::memory_order_relaxed);
  return GST_PAD_PROBE_OK;
}

void listen_pad_added(GstElement*, GstPad* pad, gpointer data) {
  auto* st = static_cast<ListenState*>(data);
  if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
  GstElement* sink = gst_element_factory_make("fakesink", nullptr);
  g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
  gst_bin_add(GST_BIN(st->pipe), sink);
  gst_element_sync_state_with_parent(sink);
  GstPad* sp = gst_element_get_static_pad(sink, "sink");
  gst_pad_link(pad, sp);
  gst_pad_add_probe(sp, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                    count_packet, st, nullptr);
  gst_object_unref(sp);
}

void listen_connection(GstElement* webrtc, GParamSpec*, gpointer data) {
  auto* st = static_cast<ListenState*>(data);
  GstWebRTCPeerConnectionState cs;
  g_object_get(webrtc, "connection-state", &cs, nullptr);
  if (cs == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) st->connected = true;
}

json run_listen(Sender& s, const Options& o, int cycle) {
  json result{{"user", s.name}, {"cycle", cycle}, {"listen", o.listen}};
  std::string client_id = "lis" + std::to_string(s.index) + "c" + std::to_string(cycle) + "p" + std::to_string(::getpid());
  net::io_context io;
  websocket::stream<beast::tcp_stream> ws(io);
  open_presence(io, ws, s, o, client_id);
  beast::flat_buffer buf;

  ListenState st;
  st.pipe = gst_pipeline_new(("listen-" + std::to_string(s.index)).c_str());
  st.webrtc = gst_element_factory_make("webrtcbin", nullptr);
  // A short jitter buffer: packets are counted as they leave it, and the count is read soon after the end.
  g_object_set(st.webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, "latency", 20u, nullptr);
  st.at_transport = o.count_at_transport;
  if (st.at_transport) g_signal_connect(st.pipe, "deep-element-added", G_CALLBACK(listen_element_added), &st);
  gst_bin_add(GST_BIN(st.pipe), st.webrtc);
  no_upnp(st.webrtc);
  g_signal_connect(st.webrtc, "pad-added", G_CALLBACK(listen_pad_added), &st);
  g_signal_connect(st.webrtc, "notify::connection-state", G_CALLBACK(listen_connection), &st);
  gst_element_set_state(st.pipe, GST_STATE_PLAYING);
  GstCaps* caps = gst_caps_from_string("application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000");
  GstWebRTCRTPTransceiver* trans = nullptr;
  g_signal_emit_by_name(st.webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &trans);
  gst_caps_unref(caps);
  if (trans) gst_object_unref(trans);
  g_signal_emit_by_name(st.webrtc, "create-offer", nullptr,
                        gst_promise_new_with_change_func(offer_created<ListenState>, &st, nullptr));
  auto teardown = [&] {
    gst_element_set_state(st.pipe, GST_STATE_NULL);
    gst_object_unref(st.pipe);
    st.pipe = nullptr;
  };
  if (!wait_offer(st.webrtc, st.mu, st.cv, st.failure, st.offer, std::chrono::seconds(10))) {
    teardown();
    throw std::runtime_error("ICE gathering did not complete within 10 s");
  }
  if (!st.failure.empty()) {
    teardown();
    throw std::runtime_error(st.failure);
  }
  ws.text(true);
  ws.write(net::buffer(json{{"type", "listen_offer"}, {"username", o.listen}, {"sdp", st.offer}}.dump()));
  auto offered = Clock::now();
  std::string listen_id, error, ended;
  std::chrono::system_clock::time_point ended_wall;
  bool socket_closed = false;
  int starting_answers = 0;
  std::optional<Clock::time_point> resend_at;
  std::function<void()> read_next = [&] {
    ws.async_read(buf, [&](beast::error_code ec, std::size_t) {
      if (ec) {
        socket_closed = true;
        return;
      }
      auto msg = json::parse(beast::buffers_to_string(buf.data()), nullptr, false);
      buf.consume(buf.size());
      auto type = msg.is_object() ? msg.value("type", "") : std::string();
      if (type == "error" && msg.contains("error") && msg["error"].is_object() &&
          msg["error"].value("code", "") == "starting" && ++starting_answers <= 25) {
        resend_at = Clock::now() + std::chrono::milliseconds(200);  // its media is still opening: ask again
      } else if (type == "error") {
        error = "server: " + msg.dump();
      } else if (type == "listen_answer") {
        listen_id = msg.value("listen_id", "");
        GstSDPMessage* sdp = nullptr;
        gst_sdp_message_new_from_text(msg["sdp"].get<std::string>().c_str(), &sdp);
        auto* answer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
        g_signal_emit_by_name(st.webrtc, "set-remote-description", answer, nullptr);
        gst_webrtc_session_description_free(answer);
      } else if (type == "ice_candidate" && msg.contains("listen_id")) {
        g_signal_emit_by_name(st.webrtc, "add-ice-candidate", msg.value("sdpMLineIndex", 0u),
                              msg["candidate"].get<std::string>().c_str());
      } else if (type == "listen_ended") {
        ended = msg.value("reason", "");
        ended_wall = std::chrono::system_clock::now();
      }
      read_next();
    });
  };
  read_next();
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (st.packets == 0 && error.empty() && ended.empty() && !socket_closed && Clock::now() < deadline) {
    io.run_one_for(std::chrono::milliseconds(10));
    if (resend_at && Clock::now() >= *resend_at) {
      resend_at.reset();
      ws.write(net::buffer(json{{"type", "listen_offer"}, {"username", o.listen}, {"sdp", st.offer}}.dump()));
    }
  }
  if (!error.empty() || st.packets == 0) {
    teardown();
    throw std::runtime_error(!error.empty() ? error : !ended.empty() ? "the stream ended: " + ended
                                                                      : "no audio within 10 s");
  }
  auto first = Clock::now();
  result["listen_id"] = listen_id;
  result["first_packet_ms"] = std::chrono::duration<double, std::milli>(first - offered).count();
  auto end = first + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  while (Clock::now() < end && ended.empty() && !socket_closed) io.run_one_until(end);
  auto listened = std::chrono::duration<double>(Clock::now() - first).count();
  if (ended.empty() && !socket_closed) {
    ws.write(net::buffer(json{{"type", "listen_stop"}, {"listen_id", listen_id}}.dump()));
    // Wait for the server's confirmation (its packet count is logged then).
    auto limit = Clock::now() + std::chrono::seconds(3);
    while (ended.empty() && !socket_closed && Clock::now() < limit) io.run_one_until(limit);
  } else {
    result["ended_by_server"] = ended;
    result["ended_at_ms"] = std::chrono::duration<double, std::milli>(ended_wall.time_since_epoch()).count();
    if (o.after_end > 0) {
      // What the server sends after it said "ended" (it should send nothing once its peer is released).
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      auto at = st.packets.load();
      std::this_thread::sleep_for(std::chrono::duration<double>(o.after_end));
      result["packets_after_end"] = st.packets.load() - at;
    }
  }
  // Whatever the server sent before it stopped is through the jitter buffer by now.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  auto received = st.packets.load();
  result["packets_received"] = received;
  result["listened_s"] = listened;
  teardown();
  beast::error_code ec;
  beast::get_lowest_layer(ws).socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(ws).close();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<std::string> a(argv + 1, argv + argc);
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto val = [&]() -> std::string {
      if (i + 1 >= a.size()) usage(a[i] + " needs a value");
      return a[++i];
    };
    if (a[i] == "--host") o.host = val();
    else if (a[i] == "--port") o.port = val();
    else if (a[i] == "--wav") o.wav = val();
    else if (a[i] == "--user") o.user = val();
    else if (a[i] == "--password") o.password = val();
    else if (a[i] == "--streams") o.streams = std::stoi(val());
    else if (a[i] == "--first") o.first = std::stoi(val());
    else if (a[i] == "--seconds") o.seconds = std::stod(val());
    else if (a[i] == "--packet-ms") {
      o.packet_ms = std::stoi(val());
      if (o.packet_ms != 10 && o.packet_ms != 20) usage("--packet-ms: 10 or 20");
    }
    else if (a[i] == "--cycles") o.cycles = std::stoi(val());
    else if (a[i] == "--ramp") o.ramp = std::stod(val());
    else if (a[i] == "--ramp-of") o.ramp_of = std::stoi(val());
    else if (a[i] == "--start-at") o.start_at_ms = std::stod(val());
    else if (a[i] == "--pause") o.pause = std::stod(val());
    else if (a[i] == "--register") o.register_users = true;
    else if (a[i] == "--no-stop") o.stop = false;
    else if (a[i] == "--no-media") o.send_media = false;
    else if (a[i] == "--vanish") o.vanish = true;
    else if (a[i] == "--vanish-early") o.vanish_early = true;
    else if (a[i] == "--listen") o.listen = val();
    else if (a[i] == "--count-at-transport") o.count_at_transport = true;
    else if (a[i] == "--after-end") o.after_end = std::stod(val());
    else if (a[i] == "--bad-fingerprint") o.bad_fingerprint = true;
    else if (a[i] == "--noise-removal") o.noise_removal = val() != "0";
    else if (a[i] == "--atten-lim") o.atten_lim = std::stod(val());
    else if (a[i] == "--help" || a[i] == "-h") usage();
    else usage("unknown option " + a[i]);
  }
  if (o.port.empty() || (o.wav.empty() && o.listen.empty())) usage("--port and --wav (or --listen) are required");
  gst_init(&argc, &argv);
  Packets packets10, packets20;  // the file in 10 and in 20 ms packets
  try {
    if (o.listen.empty()) packets10 = encode_file(o.wav, 10), packets20 = encode_file(o.wav, 20);
  } catch (const std::exception& e) {
    std::cerr << "fc25-send: " << e.what() << "\n";
    return 1;
  }

  std::vector<std::unique_ptr<Sender>> senders;
  for (int i = 0; i < o.streams; ++i) {
    auto s = std::make_unique<Sender>();
    s->index = i;
    s->name = o.first >= 0 ? o.user + std::to_string(o.first + i) : o.streams == 1 ? o.user : o.user + std::to_string(i);
    s->http = Http{o.host, o.port, {}};
    senders.push_back(std::move(s));
  }
  // Log in everyone first (registering when asked), eight at a time: each login is a deliberately slow
  // password check on the server.
  {
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex err_mu;
    std::vector<std::thread> pool;
    for (int t = 0; t < std::min(8, o.streams); ++t) {
      pool.emplace_back([&] {
        for (std::size_t i; !failed && (i = next++) < senders.size();) {
          auto& s = *senders[i];
          try {
            s.http.request(bhttp::verb::get, "/api/csrf");
            json cred{{"username", s.name}, {"password", o.password}};
            auto [st, body] = s.http.request(bhttp::verb::post, "/api/auth/login", cred);
            if (st != 200 && o.register_users) std::tie(st, body) = s.http.request(bhttp::verb::post, "/api/auth/register", cred);
            if (st != 200 && st != 201) throw std::runtime_error(std::to_string(st) + " " + body.dump());
          } catch (const std::exception& e) {
            std::lock_guard lock(err_mu);
            if (!failed.exchange(true)) std::cerr << "fc25-send: cannot log in " << s.name << ": " << e.what() << "\n";
          }
        }
      });
    }
    for (auto& t : pool) t.join();
    if (failed) return 1;
  }

  // The pacer: every 10 ms, the next packet to every stream that is sending and due (a stream of 20 ms packets every
  // other tick), stamped by packet count.
  std::atomic<bool> done{false};
  std::thread pacer([&] {
    auto next = Clock::now();
    std::uint64_t tick = 0;
    while (!done) {
      next += std::chrono::milliseconds(10);
      ++tick;
      std::this_thread::sleep_until(next);
      for (auto& s : senders) {
        const int ms = s->packet_ms.load();
        if (!s->sending || !s->appsrc || (ms == 20 && tick % 2)) continue;
        if (s->base_pts == GST_CLOCK_TIME_NONE) {
          GstClock* clock = gst_element_get_clock(s->pipe);
          if (!clock) continue;
          s->base_pts = gst_clock_get_time(clock) - gst_element_get_base_time(s->pipe);
          gst_object_unref(clock);
        }
        const auto& data = (ms == 10 ? packets10 : packets20).data;
        const auto& pkt = data[s->sent % data.size()];
        GstBuffer* b = gst_buffer_new_memdup(pkt.data(), pkt.size());
        GST_BUFFER_PTS(b) = s->base_pts + s->sent * ms * GST_MSECOND;
        GST_BUFFER_DURATION(b) = ms * GST_MSECOND;
        gst_app_src_push_buffer(GST_APP_SRC(s->appsrc), b);
        ++s->sent;
      }
    }
  });

  std::mutex out_mu;
  int failures = 0;
  if (o.start_at_ms > 0) {
    std::this_thread::sleep_until(std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double, std::milli>(o.start_at_ms))));
  }
  std::vector<std::thread> threads;
  for (auto& sp : senders) {
    threads.emplace_back([&, s = sp.get()] {
      const double slot = o.ramp_of > 0 ? static_cast<double>(std::max(o.first, 0) + s->index) / o.ramp_of
                                        : static_cast<double>(s->index) / o.streams;
      if (o.ramp > 0) std::this_thread::sleep_for(std::chrono::duration<double>(o.ramp * slot));
      for (int c = 0; c < o.cycles; ++c) {
        json r;
        try {
          r = o.listen.empty() ? run_cycle(*s, o, c) : run_listen(*s, o, c);
        } catch (const std::exception& e) {
          drop_pipeline(*s);
          r = {{"user", s->name}, {"cycle", c}, {"error", e.what()}};
        }
        {
          std::lock_guard lock(out_mu);
          if (r.contains("error")) ++failures;
          std::cout << r.dump() << std::endl;
        }
        if (c + 1 < o.cycles) std::this_thread::sleep_for(std::chrono::duration<double>(o.pause));
      }
    });
  }
  for (auto& t : threads) t.join();
  done = true;
  pacer.join();
  std::cout << json{{"summary", true}, {"streams", o.streams}, {"cycles", o.cycles}, {"failures", failures}}.dump()
            << std::endl;
  return failures == 0 ? 0 : 1;
}
