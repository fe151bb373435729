// Ingest: one pipeline per broadcaster, `webrtcbin` answering the page's offer with a receive-only Opus
// transceiver, then `rtpopusdepay ! opusdec ! audioconvert ! audioresample ! appsink` (48 kHz mono float) linked
// when RTP arrives. The appsink callback cuts 10 ms frames into the stream's ring, rings its doorbell and never waits.
#include <gst/app/gstappsink.h>

#include <array>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "core/guard.hpp"
#include "media/detail/peer.hpp"

namespace fc25::media {
namespace {

class IngestImpl final : public Ingest, public detail::Peer {
 public:
  IngestImpl(std::string label, AudioInput input, bool decode_fec, PeerEvents events)
      : Peer(std::move(label), std::move(events)), input_(std::move(input)), decode_fec_(decode_fec) {}

  void add_remote_candidate(const RemoteCandidate& candidate) override { Peer::add_remote_candidate(candidate); }
  void close() override { Peer::close(); }
  std::uint64_t frames_delivered() const override { return delivered_.load(std::memory_order_relaxed); }
  std::uint64_t frames_dropped() const override { return dropped_.load(std::memory_order_relaxed); }

 private:
  // A receive-only Opus transceiver first: without it webrtcbin finds nothing to answer the offer with.
  void add_elements(int opus_pt) override {
    GstCaps* caps = gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, "audio", "encoding-name",
                                        G_TYPE_STRING, "OPUS", "payload", G_TYPE_INT, opus_pt, "clock-rate",
                                        G_TYPE_INT, 48000, nullptr);
    GstWebRTCRTPTransceiver* trans = nullptr;
    g_signal_emit_by_name(webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &trans);
    gst_caps_unref(caps);
    if (trans) gst_object_unref(trans);
  }

  void on_src_pad(GstPad* pad) override {
    if (decoding_.exchange(true)) return;
    auto make = [](const char* f) { return gst_element_factory_make(f, nullptr); };
    GstElement* depay = make("rtpopusdepay");
    GstElement* dec = make("opusdec");
    GstElement* conv = make("audioconvert");
    GstElement* res = make("audioresample");
    GstElement* filter = make("capsfilter");
    GstElement* sink = make("appsink");
    // With in-band FEC the decoder holds every packet until the next one arrives (to rebuild it from that one if it
    // is lost): 20 ms on everything heard, so only when asked for. Loss is concealed either way.
    g_object_set(dec, "plc", TRUE, "use-inband-fec", decode_fec_ ? TRUE : FALSE, nullptr);
    GstCaps* caps = gst_caps_new_simple("audio/x-raw", "format", G_TYPE_STRING, "F32LE", "layout", G_TYPE_STRING,
                                        "interleaved", "rate", G_TYPE_INT, kSampleRate, "channels", G_TYPE_INT, 1,
                                        nullptr);
    g_object_set(filter, "caps", caps, nullptr);
    gst_caps_unref(caps);
    g_object_set(sink, "sync", FALSE, "async", FALSE, "emit-signals", FALSE, "max-buffers", 100u, nullptr);
    GstAppSinkCallbacks cb{};
    cb.new_sample = &IngestImpl::on_sample;
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cb, this, nullptr);
    gst_bin_add_many(GST_BIN(pipeline_), depay, dec, conv, res, filter, sink, nullptr);
    gst_element_link_many(depay, dec, conv, res, filter, sink, nullptr);
    for (GstElement* e : {sink, filter, res, conv, dec, depay}) gst_element_sync_state_with_parent(e);
    GstPad* sinkpad = gst_element_get_static_pad(depay, "sink");
    if (gst_pad_link(pad, sinkpad) != GST_PAD_LINK_OK) fail("cannot link the received audio to the decoder");
    gst_pad_add_probe(sinkpad, GST_PAD_PROBE_TYPE_BUFFER, &IngestImpl::on_packet, this, nullptr);
    gst_object_unref(sinkpad);
    log_->debug("{} receiving audio", label_);
  }

  // Each RTP packet as it leaves the jitter buffer, on the thread that then depayloads and decodes it and hands its
  // frames over: the stamp of the frames decoded from it, so that the latency measured downstream includes decoding.
  static GstPadProbeReturn on_packet(GstPad*, GstPadProbeInfo* info, gpointer data) {
    auto* self = static_cast<IngestImpl*>(data);
    GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
    const std::int64_t now = core::steady_ns();
    core::guarded("ingest packet stamp", [&] {
      std::lock_guard lock(self->stamps_mu_);
      self->stamps_[self->next_stamp_++ % self->stamps_.size()] = {buf ? GST_BUFFER_PTS(buf) : GST_CLOCK_TIME_NONE, now};
    });
    return GST_PAD_PROBE_OK;
  }

  // The stamp of the packet a decoded buffer came from: the one whose presentation time is nearest the buffer's
  // (with in-band FEC that is the packet before the newest), else the newest.
  std::int64_t packet_stamp(GstClockTime pts) {
    std::lock_guard lock(stamps_mu_);
    const Stamp& newest = stamps_[(next_stamp_ + stamps_.size() - 1) % stamps_.size()];
    if (!GST_CLOCK_TIME_IS_VALID(pts)) return newest.ns;
    const Stamp* best = nullptr;
    GstClockTime best_gap = 15 * GST_MSECOND;   // nearer than a packet and a half
    for (const Stamp& s : stamps_) {
      if (!GST_CLOCK_TIME_IS_VALID(s.pts)) continue;
      const GstClockTime gap = s.pts > pts ? s.pts - pts : pts - s.pts;
      if (gap < best_gap) best = &s, best_gap = gap;
    }
    return best ? best->ns : newest.ns;
  }

  // GStreamer's streaming thread, every decoded buffer: behind the failure boundary like every callback from C.
  static GstFlowReturn on_sample(GstAppSink* sink, gpointer data) {
    auto* self = static_cast<IngestImpl*>(data);
    GstSample* sample = gst_app_sink_pull_sample(sink);
    if (!sample) return GST_FLOW_EOS;
    core::guarded("ingest audio", [&] {
      if (self->closed_) return;
      GstBuffer* buf = gst_sample_get_buffer(sample);
      GstMapInfo map;
      if (buf && gst_buffer_map(buf, &map, GST_MAP_READ)) {
        const std::int64_t packet_ns = self->packet_stamp(GST_BUFFER_PTS(buf));
        if (self->accept(reinterpret_cast<const float*>(map.data), map.size / sizeof(float), packet_ns)) {
          self->input_.pushed();
        }
        gst_buffer_unmap(buf, &map);
      }
    });
    gst_sample_unref(sample);
    return GST_FLOW_OK;
  }

  // Appsink thread only: cut the decoded audio into 10 ms frames. True when a frame was handed over.
  bool accept(const float* s, std::size_t n, std::int64_t packet_ns) {
    bool any = false;
    while (n > 0) {
      std::size_t k = std::min(n, kFrameSamples - fill_);
      std::memcpy(pending_.samples.data() + fill_, s, k * sizeof(float));
      fill_ += k;
      s += k;
      n -= k;
      if (fill_ == kFrameSamples) {
        pending_.packet_ns = packet_ns;
        pending_.arrival_ns = core::steady_ns();
        if (input_.push(pending_)) {
          delivered_.fetch_add(1, std::memory_order_relaxed);
          any = true;
        } else {
          dropped_.fetch_add(1, std::memory_order_relaxed);
        }
        fill_ = 0;
      }
    }
    return any;
  }

  AudioInput input_;
  bool decode_fec_ = false;
  // The last packets' stamps by presentation time, written and read on the streaming thread that runs the
  // depayloader, decoder and appsink (locked: GStreamer may hand that role to another thread under locks a race
  // detector cannot see).
  struct Stamp {
    GstClockTime pts = GST_CLOCK_TIME_NONE;
    std::int64_t ns = 0;
  };
  std::mutex stamps_mu_;
  std::array<Stamp, 8> stamps_{};
  std::size_t next_stamp_ = 0;
  std::atomic<bool> decoding_{false};
  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint64_t> dropped_{0};
  AudioFrame pending_{};
  std::size_t fill_ = 0;
};

}  // namespace

std::shared_ptr<Ingest> Ingest::create(const std::string& label, const std::string& offer_sdp, AudioInput input,
                                       const IceConfig& ice, int packet_ms, IngestEvents events) {
  if (packet_ms != 10 && packet_ms != 20) {
    throw std::invalid_argument("packets of " + std::to_string(packet_ms) + " ms: 10 or 20 expected");
  }
  init();
  int pt = check_offer(offer_sdp, OfferDirection::sends);
  auto ingest = std::make_shared<IngestImpl>(label, std::move(input), ice.decode_fec, std::move(events));
  try {
    ingest->start(offer_sdp, pt, ice, packet_ms);
  } catch (...) {
    ingest->Peer::close();
    throw;
  }
  return ingest;
}

}  // namespace fc25::media
