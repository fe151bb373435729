// Fan-out: `appsrc (clean audio, 16-bit) ! opusenc ! appsink` once per stream; the encoder's thread hands every
// packet to each listener. A listener on the shared transport (rtc::Transport) gets it protected with its own keys
// in sendmmsg batches with the others (rtc::StreamSender: the encoder's thread for a small audience, shared with the
// transport's few sender threads for a large one); a listener with a webrtcbin of its own gets it pushed into its
// `rtpopuspay ! webrtcbin` through a pad of ours, restamped from that listener's own start. No thread per
// listener: neither send path waits, as each packet is made.
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <string_view>
#include <vector>

#include "core/guard.hpp"
#include "core/log.hpp"
#include "core/pcm.hpp"
#include "core/thread.hpp"
#include "media/detail/peer.hpp"
#include "rtc/transport.hpp"

namespace fc25::media {
namespace {

// A stream's packet latencies, shared by its listeners: over the whole stream and since the last report.
struct StreamLatency {
  core::LatencyHistogram total, window;
  void add(std::int64_t ns) {
    double ms = static_cast<double>(ns) / 1e6;
    total.add_ms(ms);
    window.add_ms(ms);
  }
};

class ListenerPeer final : public detail::Peer {
 public:
  ListenerPeer(std::string label, PeerEvents events, std::shared_ptr<StreamLatency> hist)
      : Peer(std::move(label), wrap(this, std::move(events))), hist_(std::move(hist)) {}

  // Encoder thread only. `arrival_ns`: when the packet's earliest audio arrived at ingest.
  void deliver(GstBuffer* packet, std::int64_t arrival_ns) {
    if (!connected_.load(std::memory_order_acquire) || closed_) return;
    // Held only while the pipeline is torn down (the listener closing): skip the packet, never wait for that.
    std::unique_lock life(life_mu_, std::try_to_lock);
    if (!life.owns_lock() || !pipeline_) return;
    if (base_rt_ == GST_CLOCK_TIME_NONE) {
      GstClock* clock = gst_element_get_clock(pipeline_);
      if (!clock) return;
      base_rt_ = gst_clock_get_time(clock) - gst_element_get_base_time(pipeline_);
      gst_object_unref(clock);
      first_pts_ = GST_BUFFER_PTS(packet);
    }
    if (!started_) {
      // The stream's opening events, now that the listener's pipeline is playing.
      gst_pad_push_event(src_, gst_event_new_stream_start(GST_OBJECT_NAME(pipeline_)));
      GstCaps* caps = gst_caps_from_string("audio/x-opus,channels=1,rate=48000,channel-mapping-family=0");
      gst_pad_push_event(src_, gst_event_new_caps(caps));
      gst_caps_unref(caps);
      GstSegment segment;
      gst_segment_init(&segment, GST_FORMAT_TIME);
      gst_pad_push_event(src_, gst_event_new_segment(&segment));
      started_ = true;
    }
    GstBuffer* b = gst_buffer_copy(packet);  // shares the encoded bytes
    GST_BUFFER_PTS(b) = base_rt_ + (GST_BUFFER_PTS(packet) - first_pts_);
    GST_BUFFER_DTS(b) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_OFFSET(b) = static_cast<guint64>(arrival_ns);  // read back at the payloader's input
    // Sent, or refused (the listener's pipeline stopping, or an error it reports on its bus).
    if (gst_pad_push(src_, b) == GST_FLOW_OK) sent_.fetch_add(1, std::memory_order_relaxed);
    else dropped_.fetch_add(1, std::memory_order_relaxed);
  }

  ~ListenerPeer() override {
    if (src_) {
      gst_pad_set_active(src_, FALSE);
      gst_object_unref(src_);
    }
  }

  Fanout::ListenerCounts counts() const { return {sent_.load(std::memory_order_relaxed), dropped_.load(std::memory_order_relaxed)}; }

 private:
  // The connected event also opens the tap.
  static PeerEvents wrap(ListenerPeer* self, PeerEvents ev) {
    auto connected = std::move(ev.connected);
    ev.connected = [self, connected] {
      self->connected_.store(true, std::memory_order_release);
      if (connected) connected();
    };
    return ev;
  }

  // A send-only Opus transceiver fed from a pad of our own, made before the listener's offer is applied.
  void add_elements(int opus_pt) override {
    GstElement* pay = gst_element_factory_make("rtpopuspay", nullptr);
    g_object_set(pay, "pt", static_cast<guint>(opus_pt), nullptr);
    gst_bin_add(GST_BIN(pipeline_), pay);
    GstPad* pay_in = gst_element_get_static_pad(pay, "sink");
    src_ = GST_PAD(gst_object_ref_sink(gst_pad_new("packets", GST_PAD_SRC)));
    gst_pad_link(src_, pay_in);
    gst_pad_set_active(src_, TRUE);
    gst_pad_add_probe(pay_in, GST_PAD_PROBE_TYPE_BUFFER, &ListenerPeer::on_payload, this, nullptr);
    gst_object_unref(pay_in);
    GstPad* src = gst_element_get_static_pad(pay, "src");
    GstPad* sink = gst_element_request_pad_simple(webrtc_, "sink_%u");
    gst_pad_link(src, sink);
    GstWebRTCRTPTransceiver* trans = nullptr;
    g_object_get(sink, "transceiver", &trans, nullptr);
    if (trans) {
      GstCaps* prefs = gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, "audio", "encoding-name",
                                           G_TYPE_STRING, "OPUS", "payload", G_TYPE_INT, opus_pt, "clock-rate",
                                           G_TYPE_INT, 48000, nullptr);
      g_object_set(trans, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, "codec-preferences", prefs,
                   nullptr);
      gst_caps_unref(prefs);
      gst_object_unref(trans);
    }
    gst_object_unref(src);
    gst_object_unref(sink);
    g_signal_connect(pipeline_, "deep-element-added", G_CALLBACK(&ListenerPeer::on_element_added), nullptr);
  }

  // Packets leave as soon as they are made. webrtcbin's send path holds each one to the pipeline clock (a
  // clocksync before the network sink) plus the pipeline's latency, which includes the 200 ms receive jitter
  // buffer of this send-only connection: every packet would wait ~200 ms and a busy listener overflow its queue.
  static void on_element_added(GstBin*, GstBin*, GstElement* element, gpointer) {
    core::guarded("listener element added", [&] {
      GstElementFactory* f = gst_element_get_factory(element);
      if (!f) return;
      std::string_view name = GST_OBJECT_NAME(f);
      if (name == "clocksync" || name == "nicesink") g_object_set(element, "sync", FALSE, nullptr);
    });
  }

  static GstPadProbeReturn on_payload(GstPad*, GstPadProbeInfo* info, gpointer data) {
    core::guarded("listener packet latency", [&] {
      auto* self = static_cast<ListenerPeer*>(data);
      GstBuffer* b = GST_PAD_PROBE_INFO_BUFFER(info);
      // OFFSET_NONE (no arrival stamp) reads as -1.
      if (auto arrival = b ? static_cast<std::int64_t>(GST_BUFFER_OFFSET(b)) : 0; arrival > 0) {
        self->hist_->add(core::steady_ns() - arrival);
      }
    });
    return GST_PAD_PROBE_OK;
  }

  std::shared_ptr<StreamLatency> hist_;
  GstPad* src_ = nullptr;   // ours, linked to the payloader; pushed by the encoder thread
  bool started_ = false;    // the encoder thread only
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> sent_{0}, dropped_{0};
  GstClockTime base_rt_ = GST_CLOCK_TIME_NONE;
  GstClockTime first_pts_ = GST_CLOCK_TIME_NONE;
};

// A listener: its own webrtcbin, or a connection on the shared transport.
struct Listener {
  std::shared_ptr<ListenerPeer> peer;
  std::shared_ptr<rtc::Connection> connection;
  std::vector<std::string> mids;  // the offer's, to check its trickled candidates against

  Fanout::ListenerCounts counts() const {
    if (peer) return peer->counts();
    auto c = connection->counts();
    return {c.sent, c.dropped};
  }
};

// Who gets each packet, published whole on every change.
struct Receivers {
  std::vector<std::shared_ptr<ListenerPeer>> listeners;
  std::shared_ptr<rtc::Transport> transport;  // the connections'
  std::shared_ptr<const rtc::Listeners> connections = std::make_shared<const rtc::Listeners>();
  std::vector<std::shared_ptr<const Fanout::PacketTap>> taps;
};

class FanoutImpl final : public Fanout, public std::enable_shared_from_this<FanoutImpl> {
 public:
  FanoutImpl(std::string label, int realtime_priority, bool relayed, Packing packing = {})
      : label_(std::move(label)), rt_priority_(realtime_priority), relayed_(relayed), packing_(packing) {}

  // `appsrc (16-bit audio) ! opusenc ! appsink`, or for a relayed stream `appsrc (Opus) ! appsink`: the appsink's
  // streaming thread sends every packet, so a relayed stream's listeners are served as an encoded one's.
  void build() {
    pipe_ = gst_pipeline_new(label_.c_str());
    src_ = gst_element_factory_make("appsrc", nullptr);
    GstElement* enc = relayed_ ? nullptr : gst_element_factory_make("opusenc", nullptr);
    GstElement* sink = gst_element_factory_make("appsink", nullptr);
    if (!pipe_ || !src_ || (!relayed_ && !enc) || !sink) {
      throw std::runtime_error("cannot create the Opus encoder (gstreamer1.0-plugins-base)");
    }
    detail::pipeline_opened();
    GstCaps* caps = gst_caps_from_string(relayed_ ? "audio/x-opus,channels=1,rate=48000,channel-mapping-family=0"
                                                  : "audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=1");
    g_object_set(src_, "caps", caps, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", FALSE,
                 "max-buffers", static_cast<guint64>(50), "block", FALSE, nullptr);
    gst_caps_unref(caps);
    gst_util_set_object_arg(G_OBJECT(src_), "leaky-type", "downstream");
    g_object_set(sink, "sync", FALSE, "async", FALSE, "emit-signals", FALSE, "max-buffers", 50u, "drop", TRUE, nullptr);
    GstAppSinkCallbacks cb{};
    cb.new_sample = &FanoutImpl::on_encoded;
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cb, this, nullptr);
    if (enc) {
      gst_util_set_object_arg(G_OBJECT(enc), "frame-size", packing_.packet_ms == 10 ? "10" : "20");
      gst_util_set_object_arg(G_OBJECT(enc), "audio-type", packing_.low_delay ? "restricted-lowdelay" : "voice");
      // No in-band redundancy: libopus codes it only when told to expect loss, and then it was heard worse than
      // concealment at up to 10 % loss (docs/benchmarks/fanout.md); the low-delay mode cannot carry it at all.
      g_object_set(enc, "bitrate", 64000, nullptr);
      gst_bin_add_many(GST_BIN(pipe_), src_, enc, sink, nullptr);
      gst_element_link_many(src_, enc, sink, nullptr);
    } else {
      gst_bin_add_many(GST_BIN(pipe_), src_, sink, nullptr);
      gst_element_link(src_, sink);
    }
    gst_element_set_state(pipe_, GST_STATE_PLAYING);
  }

  void push_packet(const std::uint8_t* data, std::size_t size, std::uint64_t pts_ns, std::int64_t arrival_ns) override {
    if (!relayed_) throw std::logic_error(label_ + " encodes its own packets");
    if (closed_.load(std::memory_order_relaxed) || size == 0) return;
    GstBuffer* b = gst_buffer_new_memdup(data, size);
    GST_BUFFER_PTS(b) = pts_ns;
    GST_BUFFER_OFFSET(b) = static_cast<guint64>(arrival_ns);  // read back on the sending thread
    gst_app_src_push_buffer(GST_APP_SRC(src_), b);
  }

  void add_tap(const std::string& id, PacketTap tap) override {
    std::lock_guard lock(mu_);
    taps_[id] = std::make_shared<const PacketTap>(std::move(tap));
    publish();
  }

  bool remove_tap(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (!taps_.erase(id)) return false;
    publish();
    return true;
  }

  std::size_t taps() const override {
    std::lock_guard lock(mu_);
    return taps_.size();
  }

  void push(const float* samples, std::int64_t arrival_ns) override {
    if (relayed_) throw std::logic_error(label_ + " takes encoded packets");
    if (closed_.load(std::memory_order_relaxed)) return;
    arrivals_[frames_ % arrivals_.size()].store(arrival_ns, std::memory_order_relaxed);
    // opusenc takes 16-bit samples.
    GstBuffer* b = gst_buffer_new_allocate(nullptr, kFrameSamples * sizeof(std::int16_t), nullptr);
    GstMapInfo map;
    gst_buffer_map(b, &map, GST_MAP_WRITE);
    auto* out = reinterpret_cast<std::int16_t*>(map.data);
    for (std::size_t i = 0; i < kFrameSamples; ++i) out[i] = core::to_pcm16(samples[i]);
    gst_buffer_unmap(b, &map);
    GST_BUFFER_PTS(b) = frames_ * 10 * GST_MSECOND;
    GST_BUFFER_DURATION(b) = 10 * GST_MSECOND;
    ++frames_;
    gst_app_src_push_buffer(GST_APP_SRC(src_), b);
  }

  void add_listener(const std::string& id, const std::string& offer_sdp, const IceConfig& ice,
                    PeerEvents events) override {
    int pt = check_offer(offer_sdp, OfferDirection::receives);
    if (ice.listener_transport) return add_connection(id, offer_sdp, ice.listener_transport, std::move(events));
    auto l = std::make_shared<ListenerPeer>(label_ + "-" + id, std::move(events), hist_);
    {
      std::lock_guard lock(mu_);
      if (closed_) throw std::logic_error("the stream has ended");
      if (listeners_.count(id)) throw std::logic_error("listener " + id + " already exists");
      listeners_[id] = Listener{l, nullptr, {}};
      publish();
    }
    const auto t0 = std::chrono::steady_clock::now();
    try {
      l->start(offer_sdp, pt, ice, 0);
    } catch (...) {
      remove_listener(id);
      throw;
    }
    core::logger("media")->debug("{}-{} pipeline started in {} ms", label_, id,
                                 std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
  }

  // A listener on the shared transport: the answer is made at once (it carries every candidate) and handed over
  // from the media thread, as webrtcbin's would be, so the caller's locks are never held when it arrives.
  void add_connection(const std::string& id, const std::string& offer_sdp,
                      const std::shared_ptr<rtc::Transport>& transport, PeerEvents events) {
    rtc::ConnectionEvents ev{events.connected, events.failed};
    rtc::Transport::Opened o;
    try {
      o = transport->open(label_ + "-" + id, offer_sdp, sender_.ssrc(), label_, std::move(ev));
    } catch (const std::invalid_argument& e) {
      throw OfferError(e.what());
    }
    {
      std::lock_guard lock(mu_);
      if (closed_ || listeners_.count(id) || (transport_ && transport_ != transport)) {
        transport->close(o.connection);
        throw std::logic_error(closed_                  ? "the stream has ended"
                               : listeners_.count(id) ? "listener " + id + " already exists"
                                                      : "a stream's listeners share one transport");
      }
      transport_ = transport;
      listeners_[id] = Listener{nullptr, o.connection, sdp_mids(offer_sdp)};
      publish();
    }
    // The candidates are in the answer; they are also sent as a page takes them trickled, so that signalling is
    // the same whichever kind of listener answers.
    detail::post_to_media_thread([o = std::move(o), answer = std::move(events.answer),
                                  candidate = std::move(events.local_candidate)] {
      if (answer) answer(o.answer);
      if (candidate)
        for (const auto& c : o.candidates) candidate(o.mline, o.mid, c);
    });
  }

  void add_remote_candidate(const std::string& id, const RemoteCandidate& candidate) override {
    Listener l;
    {
      std::lock_guard lock(mu_);
      auto it = listeners_.find(id);
      if (it == listeners_.end()) return;
      l = it->second;
    }
    // An ICE-lite agent learns the listener's address from its checks: its candidates are only checked.
    if (l.peer) l.peer->add_remote_candidate(candidate);
    else candidate_mline(candidate, l.mids);
  }

  bool remove_listener(const std::string& id) override {
    Listener l;
    {
      std::lock_guard lock(mu_);
      auto it = listeners_.find(id);
      if (it == listeners_.end()) return false;
      l = it->second;
      listeners_.erase(it);
      publish();
    }
    close_listener(l);
    return true;
  }

  std::size_t listeners() const override {
    std::lock_guard lock(mu_);
    return listeners_.size();
  }

  Latency latency() const override { return hist_->total.summary(); }
  Latency take_latency_window() override { return hist_->window.summary(true); }

  ListenerCounts listener_counts(const std::string& id) const override {
    std::lock_guard lock(mu_);
    auto it = listeners_.find(id);
    return it == listeners_.end() ? ListenerCounts{} : it->second.counts();
  }

  void close() override {
    std::map<std::string, Listener> all;
    {
      std::lock_guard lock(mu_);
      if (closed_.exchange(true)) return;
      all.swap(listeners_);
      taps_.clear();
      publish();
    }
    for (auto& [id, l] : all) {
      core::logger("media")->debug("{}: listener {} was sent {} packets", label_, id, l.counts().sent);
      close_listener(l);
    }
    core::logger("media")->debug("{}: {} frames in, {} packets encoded", label_, frames_, encoded_.load());
    auto self = shared_from_this();
    detail::post_to_media_thread([self] {
      if (!self->pipe_) return;
      gst_element_set_state(self->pipe_, GST_STATE_NULL);
      gst_object_unref(self->pipe_);
      self->pipe_ = nullptr;
      detail::pipeline_closed();
    });
  }

 private:
  void close_listener(const Listener& l) {
    if (l.peer) l.peer->close();
    else transport_->close(l.connection);  // set before any connection was added
  }

  // The encoder thread reads the listener list without a lock: a new list is published on every change.
  void publish() {
    auto list = std::make_shared<Receivers>();
    auto connections = std::make_shared<rtc::Listeners>();
    for (auto& [id, l] : listeners_) {
      if (l.peer) list->listeners.push_back(l.peer);
      else connections->push_back(l.connection);
    }
    list->transport = transport_;
    list->connections = std::move(connections);
    for (auto& [id, t] : taps_) list->taps.push_back(t);
    std::atomic_store(&snapshot_, std::shared_ptr<const Receivers>(std::move(list)));
  }

  static GstFlowReturn on_encoded(GstAppSink* sink, gpointer data) {
    auto* self = static_cast<FanoutImpl*>(data);
    if (!self->thread_named_) {
      // GStreamer's streaming thread of this encoder: it sends to every listener, so it runs like the denoise
      // workers (real-time when permitted, otherwise as it was).
      self->thread_named_ = true;
      core::guarded("fan-out thread setup", [&] {
        int rc = core::name_and_prioritise_thread("fc25-fanout", self->rt_priority_);
        if (self->rt_priority_ > 0) {
          core::logger("media")->debug("{}: sender thread at real-time priority {}: {}", self->label_,
                                       self->rt_priority_, rc == 0 ? "yes" : std::strerror(rc));
        }
      });
    }
    GstSample* sample = gst_app_sink_pull_sample(sink);
    if (!sample) return GST_FLOW_EOS;
    GstBuffer* buf = gst_sample_get_buffer(sample);
    self->encoded_.fetch_add(1, std::memory_order_relaxed);
    auto list = std::atomic_load(&self->snapshot_);
    if (buf && list && !(list->listeners.empty() && list->connections->empty() && list->taps.empty())) {
      std::int64_t arrival = 0;
      if (self->relayed_) {
        arrival = static_cast<std::int64_t>(GST_BUFFER_OFFSET(buf));  // stamped by push_packet
      } else {
        // Measured from when the packet's earliest audio reached the server. The encoder stamps a packet its
        // lookahead (6.5 ms, or 2.5 in the low-delay mode) before its first input frame: rounding up finds it.
        auto first_frame = (GST_BUFFER_PTS(buf) + 10 * GST_MSECOND - 1) / (10 * GST_MSECOND);
        arrival = self->arrivals_[first_frame % self->arrivals_.size()].load(std::memory_order_relaxed);
      }
      if (!list->taps.empty() || !list->connections->empty()) {
        GstMapInfo map;
        if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
          for (auto& t : list->taps) {
            core::guarded("packet tap", [&] { (*t)(map.data, map.size, GST_BUFFER_PTS(buf), arrival); });
          }
          if (!list->connections->empty()) {
            // Measured once the last listener's copy is with the kernel, on whichever thread sent it.
            std::function<void()> sent;
            if (arrival > 0) sent = [hist = self->hist_, arrival] { hist->add(core::steady_ns() - arrival); };
            self->sender_.send(*list->transport, list->connections, map.data, map.size, GST_BUFFER_PTS(buf),
                               std::move(sent));
          }
          gst_buffer_unmap(buf, &map);
        }
      }
      // One listener's failure is that listener's: the others still get the packet.
      for (auto& l : list->listeners) core::guarded("listener send", [&] { l->deliver(buf, arrival); });
    }
    gst_sample_unref(sample);
    return GST_FLOW_OK;
  }

  std::string label_;
  int rt_priority_ = 0;
  bool relayed_ = false;       // takes Opus packets (push_packet), not audio
  Packing packing_;
  bool thread_named_ = false;  // the encoder thread only
  GstElement* pipe_ = nullptr;
  GstElement* src_ = nullptr;
  std::uint64_t frames_ = 0;  // the pushing thread only
  std::atomic<bool> closed_{false};
  std::atomic<std::uint64_t> encoded_{0};
  std::array<std::atomic<std::int64_t>, 256> arrivals_{};           // by frame number
  std::shared_ptr<StreamLatency> hist_ = std::make_shared<StreamLatency>();
  mutable std::mutex mu_;     // the control path only; never taken by GStreamer threads
  std::map<std::string, Listener> listeners_;
  std::shared_ptr<rtc::Transport> transport_;  // the shared transport's listeners', once one has joined
  rtc::StreamSender sender_{randombytes_random()};  // the encoder thread only
  std::map<std::string, std::shared_ptr<const PacketTap>> taps_;
  std::shared_ptr<const Receivers> snapshot_ = std::make_shared<const Receivers>();
};

}  // namespace

std::shared_ptr<Fanout> Fanout::create(const std::string& label, int realtime_priority, Packing packing) {
  if (packing.packet_ms != 10 && packing.packet_ms != 20) {
    throw std::invalid_argument("packets of " + std::to_string(packing.packet_ms) + " ms: 10 or 20 expected");
  }
  init();
  auto f = std::make_shared<FanoutImpl>(label, realtime_priority, false, packing);
  f->build();
  return f;
}

std::shared_ptr<Fanout> Fanout::create_relayed(const std::string& label, int realtime_priority) {
  init();
  auto f = std::make_shared<FanoutImpl>(label, realtime_priority, true);
  f->build();
  return f;
}

}  // namespace fc25::media
