// What every webrtcbin peer shares: GStreamer set-up, the media thread, offer checks, and the answer chain.
#include "media/detail/peer.hpp"

#include <gst/sdp/sdp.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "core/guard.hpp"
#include "core/log.hpp"
#include "rtc/srtp.hpp"

namespace fc25::media {
namespace {

std::atomic<std::size_t> g_live_pipelines{0};

class MediaThread {
 public:
  static MediaThread& get() {
    static MediaThread t;
    return t;
  }
  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }
  ~MediaThread() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  MediaThread() : thread_([this] { run(); }) {}
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything posted is done
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      core::guarded("media thread task", fn);
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

// libnice would otherwise try to open ports on the network's router (UPnP): a server must not.
void disable_upnp(GstElement* webrtc) {
  GObject* ice = nullptr;
  g_object_get(webrtc, "ice-agent", &ice, nullptr);
  if (!ice) return;
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent")) {
    GObject* agent = nullptr;
    g_object_get(ice, "agent", &agent, nullptr);
    if (agent) {
      if (g_object_class_find_property(G_OBJECT_GET_CLASS(agent), "upnp")) g_object_set(agent, "upnp", FALSE, nullptr);
      g_object_unref(agent);
    }
  }
  g_object_unref(ice);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

namespace detail {

void post_to_media_thread(std::function<void()> fn) { MediaThread::get().post(std::move(fn)); }
void pipeline_opened() { ++g_live_pipelines; }
void pipeline_closed() { --g_live_pipelines; }

Peer::Peer(std::string label, PeerEvents events)
    : label_(std::move(label)), ev_(std::move(events)), log_(core::logger("media")) {}

void Peer::start(const std::string& offer_sdp, int opus_pt, const IceConfig& ice, int ptime_ms) {
  public_address_ = ice.public_address;
  ptime_ms_ = ptime_ms;
  std::lock_guard life(life_mu_);
  // Closed before it could start (a listener removed, a stream ended, while its offer was being taken): nothing
  // is built, and nothing is left for a teardown that has already run.
  if (closed_) return;
  mids_ = sdp_mids(offer_sdp);
  pipeline_ = gst_pipeline_new(label_.c_str());
  webrtc_ = gst_element_factory_make("webrtcbin", "webrtc");
  if (!pipeline_ || !webrtc_) throw std::runtime_error("cannot create webrtcbin (is gstreamer1.0-plugins-bad installed?)");
  ++g_live_pipelines;
  g_object_set(webrtc_, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, "latency",
               static_cast<guint>(ice.jitter_ms), nullptr);
  if (!ice.stun.empty()) g_object_set(webrtc_, "stun-server", ice.stun.c_str(), nullptr);
  for (auto& t : ice.turn) {
    gboolean ok = FALSE;
    g_signal_emit_by_name(webrtc_, "add-turn-server", t.c_str(), &ok);
  }
  gst_bin_add(GST_BIN(pipeline_), webrtc_);
  disable_upnp(webrtc_);
  g_signal_connect(webrtc_, "on-ice-candidate", G_CALLBACK(&Peer::on_ice_candidate), this);
  g_signal_connect(webrtc_, "pad-added", G_CALLBACK(&Peer::on_pad_added), this);
  g_signal_connect(webrtc_, "notify::connection-state", G_CALLBACK(&Peer::on_connection_state), this);
  g_signal_connect(webrtc_, "notify::ice-connection-state", G_CALLBACK(&Peer::on_ice_state), this);
  GstBus* bus = gst_pipeline_get_bus(GST_PIPELINE(pipeline_));
  gst_bus_set_sync_handler(bus, &Peer::on_bus, this, nullptr);
  gst_object_unref(bus);

  add_elements(opus_pt);
  if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    throw std::runtime_error("cannot start the webrtcbin pipeline");
  }
  GstSDPMessage* sdp = nullptr;
  gst_sdp_message_new_from_text(offer_sdp.c_str(), &sdp);
  auto* offer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, sdp);
  GstPromise* p = gst_promise_new_with_change_func(&Peer::on_remote_set, keep_alive(), &Peer::drop_keep_alive);
  g_signal_emit_by_name(webrtc_, "set-remote-description", offer, p);
  gst_webrtc_session_description_free(offer);
}

void Peer::add_remote_candidate(const RemoteCandidate& c) {
  std::lock_guard life(life_mu_);  // mids_ and webrtc_ are start's until it is done
  auto mline = candidate_mline(c, mids_);
  if (closed_ || !webrtc_) return;
  g_signal_emit_by_name(webrtc_, "add-ice-candidate", mline, c.candidate.c_str());
}

void Peer::close() {
  if (closed_.exchange(true)) return;
  auto self = shared_from_this();
  post_to_media_thread([self] { self->teardown(); });
}

void Peer::teardown() {
  std::lock_guard life(life_mu_);  // a start still building finishes first
  if (!pipeline_) return;
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  GstBus* bus = gst_pipeline_get_bus(GST_PIPELINE(pipeline_));
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  gst_object_unref(bus);
  g_signal_handlers_disconnect_by_data(webrtc_, this);
  gst_object_unref(pipeline_);
  pipeline_ = nullptr;
  webrtc_ = nullptr;
  --g_live_pipelines;
  log_->debug("{} torn down ({} pipelines left)", label_, g_live_pipelines.load());
}

void Peer::fail(const std::string& why) {
  if (closed_ || failed_.exchange(true)) return;
  log_->info("{} failed: {}", label_, why);
  if (ev_.failed) ev_.failed(why);
}

// Promise callbacks hold a strong reference so the peer outlives every pending reply.
gpointer Peer::keep_alive() { return new std::shared_ptr<Peer>(shared_from_this()); }
void Peer::drop_keep_alive(gpointer p) { delete static_cast<std::shared_ptr<Peer>*>(p); }
Peer* Peer::from(gpointer p) { return static_cast<std::shared_ptr<Peer>*>(p)->get(); }

std::string Peer::promise_error(GstPromise* promise) {
  if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) return "no reply";  // already resolved: no wait
  const GstStructure* reply = gst_promise_get_reply(promise);
  if (reply && gst_structure_has_field(reply, "error")) {
    GError* err = nullptr;
    gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr);
    std::string m = err ? err->message : "unknown error";
    if (err) g_error_free(err);
    return m;
  }
  return {};
}

void Peer::on_remote_set(GstPromise* promise, gpointer data) {
  core::guarded("webrtc remote description", [&] {
    auto* self = from(data);
    auto err = promise_error(promise);
    gst_promise_unref(promise);
    if (self->closed_) return;
    if (!err.empty()) return self->fail("the offer was refused: " + err);
    GstPromise* p = gst_promise_new_with_change_func(&Peer::on_answer_created, self->keep_alive(), &Peer::drop_keep_alive);
    g_signal_emit_by_name(self->webrtc_, "create-answer", nullptr, p);
  });
}

void Peer::on_answer_created(GstPromise* promise, gpointer data) {
  core::guarded("webrtc answer", [&] {
    auto* self = from(data);
    auto err = promise_error(promise);
    GstWebRTCSessionDescription* answer = nullptr;
    if (err.empty()) {
      const GstStructure* reply = gst_promise_get_reply(promise);
      if (reply) gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, nullptr);
    }
    gst_promise_unref(promise);
    if (self->closed_) {
      if (answer) gst_webrtc_session_description_free(answer);
      return;
    }
    if (!answer) return self->fail("no answer could be made for the offer" + (err.empty() ? "" : ": " + err));
    // The packet length the page is to send (browsers take a=ptime from the answer as their encoder's frame).
    const std::string ptime = std::to_string(self->ptime_ms_);
    for (guint i = 0; self->ptime_ms_ > 0 && i < gst_sdp_message_medias_len(answer->sdp); ++i) {
      auto* media = const_cast<GstSDPMedia*>(gst_sdp_message_get_media(answer->sdp, i));
      const char* kind = gst_sdp_media_get_media(media);
      if (kind && std::string_view(kind) == "audio" && gst_sdp_media_get_port(media) != 0) {
        gst_sdp_media_add_attribute(media, "ptime", ptime.c_str());
      }
    }
    g_signal_emit_by_name(self->webrtc_, "set-local-description", answer, nullptr);
    gchar* text = gst_sdp_message_as_text(answer->sdp);
    std::string sdp = text ? text : "";
    g_free(text);
    gst_webrtc_session_description_free(answer);
    if (sdp.find("m=audio 0 ") != std::string::npos || sdp.find("a=inactive") != std::string::npos) {
      return self->fail("the offer's audio could not be accepted (Opus at 48 kHz is required)");
    }
    self->log_->debug("{} answer ready", self->label_);
    if (self->ev_.answer) self->ev_.answer(std::move(sdp));
  });
}

void Peer::on_ice_candidate(GstElement*, guint mline, gchar* candidate, gpointer data) {
  core::guarded("webrtc local candidate", [&] {
    auto* self = static_cast<Peer*>(data);
    if (self->closed_ || !self->ev_.local_candidate) return;
    std::string c = candidate ? candidate : "";
    if (!self->public_address_.empty()) c = announce_at(c, self->public_address_);
    self->ev_.local_candidate(mline, mline < self->mids_.size() ? self->mids_[mline] : std::string(), c);
  });
}

void Peer::on_connection_state(GstElement* webrtc, GParamSpec*, gpointer data) {
  core::guarded("webrtc connection state", [&] {
    auto* self = static_cast<Peer*>(data);
    GstWebRTCPeerConnectionState state;
    g_object_get(webrtc, "connection-state", &state, nullptr);
    self->log_->debug("{} connection state {}", self->label_, static_cast<int>(state));
    if (state == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) {
      if (!self->closed_ && self->ev_.connected) self->ev_.connected();
    } else if (state == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED) {
      self->fail("the WebRTC connection failed");
    } else if (state == GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED) {
      self->fail("the WebRTC connection closed");
    }
  });
}

void Peer::on_ice_state(GstElement* webrtc, GParamSpec*, gpointer data) {
  core::guarded("webrtc ICE state", [&] {
    auto* self = static_cast<Peer*>(data);
    GstWebRTCICEConnectionState state;
    g_object_get(webrtc, "ice-connection-state", &state, nullptr);
    self->log_->debug("{} ICE state {}", self->label_, static_cast<int>(state));
    if (state == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED) self->fail("ICE failed: no network path to the page");
  });
}

GstBusSyncReply Peer::on_bus(GstBus*, GstMessage* msg, gpointer data) {
  auto* self = static_cast<Peer*>(data);
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError* err = nullptr;
    gchar* dbg = nullptr;
    gst_message_parse_error(msg, &err, &dbg);
    core::guarded("media pipeline error", [&] {
      std::string why = err ? err->message : "unknown";
      self->log_->debug("{} pipeline error: {} ({})", self->label_, why, dbg ? dbg : "");
      self->fail("media pipeline error: " + why);
    });
    if (err) g_error_free(err);
    g_free(dbg);
  }
  gst_message_unref(msg);
  return GST_BUS_DROP;
}

void Peer::on_pad_added(GstElement*, GstPad* pad, gpointer data) {
  core::guarded("webrtc incoming pad", [&] {
    auto* self = static_cast<Peer*>(data);
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC || self->closed_) return;
    self->on_src_pad(pad);
  });
}

}  // namespace detail

void init() {
  static std::once_flag once;
  static std::string missing;
  std::call_once(once, [] {
    // libsrtp is set up here, on one thread before any other can touch it: first ours, then GStreamer's srtp
    // plugin (whose loading sets it up again) is loaded now rather than by the first ingest's webrtcbin, which
    // could run beside a listener's first SRTP session and leave that listener silent.
    rtc::init_srtp();
    gst_init(nullptr, nullptr);
    if (GstPlugin* srtp = gst_plugin_load_by_name("srtp")) gst_object_unref(srtp);
    for (const char* f : {"webrtcbin", "rtpopusdepay", "opusdec", "audioconvert", "audioresample", "appsink",
                          "nicesrc", "dtlsdec"}) {
      GstElementFactory* fac = gst_element_factory_find(f);
      if (!fac) missing += std::string(missing.empty() ? "" : ", ") + f;
      else gst_object_unref(fac);
    }
    if (missing.empty()) {
      // The first DTLS element makes the process's certificate (100-400 ms): pay that now, not on the first offer.
      GstElement* warm = gst_element_factory_make("dtlsdec", nullptr);
      if (warm) gst_object_unref(gst_object_ref_sink(warm));
      MediaThread::get();
    }
  });
  if (!missing.empty()) {
    throw std::runtime_error("GStreamer elements missing: " + missing +
                             " (install gstreamer1.0-plugins-base/-good/-bad and gstreamer1.0-nice)");
  }
}

std::size_t live_pipelines() { return g_live_pipelines.load(); }

namespace {

// A payload type as SDP writes it: decimal, 0-127 (RTP has seven bits for it).
std::optional<int> payload_type(std::string_view s) {
  if (s.empty() || s.size() > 3 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  int v = std::atoi(std::string(s).c_str());
  if (v > 127) return std::nullopt;
  return v;
}

// "a=fingerprint:<hash> <hex bytes separated by colons>" (RFC 8122), with as many bytes as the hash makes.
void check_fingerprint(const std::string& value) {
  static const std::pair<const char*, std::size_t> kHashes[] = {
      {"sha-1", 20}, {"sha-224", 28}, {"sha-256", 32}, {"sha-384", 48}, {"sha-512", 64}};
  auto sp = value.find(' ');
  if (sp == std::string::npos || sp == 0 || sp + 1 >= value.size()) {
    throw OfferError("the offer's DTLS fingerprint '" + value.substr(0, 120) +
                     "' is not '<hash> <hex bytes separated by colons>'");
  }
  auto hash = lower(value.substr(0, sp));
  auto hex = value.substr(sp + 1);
  std::size_t want = 0;
  for (auto& [name, bytes] : kHashes)
    if (hash == name) want = bytes;
  if (!want) {
    throw OfferError("the offer's DTLS fingerprint uses the hash '" + hash.substr(0, 40) +
                     "' (expected sha-1, sha-224, sha-256, sha-384 or sha-512)");
  }
  auto is_hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < hex.size(); i += 3) {
    if (i + 2 > hex.size() || !is_hex(hex[i]) || !is_hex(hex[i + 1]) || (i + 2 < hex.size() && hex[i + 2] != ':')) {
      throw OfferError("the offer's DTLS fingerprint '" + value.substr(0, 120) +
                       "' is not '<hash> <hex bytes separated by colons>'");
    }
    ++bytes;
  }
  if (hex.back() == ':' || bytes != want) {
    throw OfferError("the offer's DTLS fingerprint has " + std::to_string(bytes) + " bytes; " + hash + " needs " +
                     std::to_string(want) + " bytes");
  }
}

// ICE credentials are ice-chars (RFC 8839: letters, digits, '+' and '/'), at most 256 of them.
bool ice_chars(const char* v) {
  if (!v || !*v) return false;
  std::string_view s(v);
  return s.size() <= 256 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
         });
}

}  // namespace

std::vector<std::string> sdp_mids(const std::string& sdp) {
  std::vector<std::string> mids;
  std::size_t at = 0;
  while (at < sdp.size()) {
    auto end = sdp.find('\n', at);
    if (end == std::string::npos) end = sdp.size();
    std::string_view line(sdp.data() + at, end - at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.rfind("m=", 0) == 0) {
      mids.emplace_back();
    } else if (line.rfind("a=mid:", 0) == 0 && !mids.empty() && mids.back().empty()) {
      mids.back() = std::string(line.substr(6));
    }
    at = end + 1;
  }
  return mids;
}

std::string announce_at(const std::string& candidate, const std::string& address) {
  // candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
  std::vector<std::string> f;
  std::size_t at = 0;
  while (at < candidate.size()) {
    auto sp = candidate.find(' ', at);
    f.push_back(candidate.substr(at, sp == std::string::npos ? std::string::npos : sp - at));
    if (sp == std::string::npos) break;
    at = sp + 1;
  }
  if (f.size() < 8 || f[6] != "typ" || f[7] != "host") return candidate;
  f[4] = address;
  std::string out;
  for (auto& x : f) out += (out.empty() ? "" : " ") + x;
  return out;
}

unsigned candidate_mline(const RemoteCandidate& c, const std::vector<std::string>& mids) {
  std::string why;
  if (c.mid) {
    for (std::size_t i = 0; i < mids.size(); ++i)
      if (!mids[i].empty() && mids[i] == *c.mid) return static_cast<unsigned>(i);
    std::string known;
    for (auto& m : mids)
      if (!m.empty()) known += (known.empty() ? "'" : ", '") + m.substr(0, 64) + "'";
    why = "field 'sdpMid' '" + c.mid->substr(0, 64) + "' is not an a=mid of the offer (it has " +
          (known.empty() ? std::string("none") : known) + ")";
  }
  if (c.mline) {
    if (*c.mline < mids.size()) return *c.mline;
    why += (why.empty() ? "" : ", and ") + std::string("field 'sdpMLineIndex' ") + std::to_string(*c.mline) +
           " is not an m-line of the offer (it has " + std::to_string(mids.size()) + ")";
  }
  if (!c.mid && !c.mline) why = "an ICE candidate needs 'sdpMid' (an a=mid of the offer) or 'sdpMLineIndex'";
  throw CandidateError(why);
}

int check_offer(const std::string& sdp_text, OfferDirection direction) {
  if (sdp_text.empty()) throw OfferError("the offer is empty");
  if (sdp_text.size() > 32 * 1024) throw OfferError("the offer is larger than 32 KiB");
  if (sdp_text.rfind("v=0", 0) != 0) throw OfferError("the offer is not SDP (it must start with \"v=0\")");
  GstSDPMessage* msg = nullptr;
  gst_sdp_message_new(&msg);
  if (gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(sdp_text.data()),
                                   static_cast<guint>(sdp_text.size()), msg) != GST_SDP_OK) {
    gst_sdp_message_free(msg);
    throw OfferError("the offer is not valid SDP");
  }
  std::unique_ptr<GstSDPMessage, decltype(&gst_sdp_message_free)> owned(msg, &gst_sdp_message_free);
  int pt = -1;
  bool audio = false, ufrag = false, pwd = false, fingerprint = false, sends = false, mid = false;
  std::string codecs;
  // Every credential, fingerprint and setup role, at session or media level, must be one webrtcbin can use: one it
  // cannot take fails the connection after the answer, which ends the stream.
  auto check_common = [&](const char* key, const char* value) {
    std::string v = value ? value : "";
    if (std::strcmp(key, "ice-ufrag") == 0) {
      if (!ice_chars(value)) throw OfferError("the offer's a=ice-ufrag is not 1-256 letters, digits, '+' or '/'");
      ufrag = true;
    } else if (std::strcmp(key, "ice-pwd") == 0) {
      if (!ice_chars(value)) throw OfferError("the offer's a=ice-pwd is not 1-256 letters, digits, '+' or '/'");
      pwd = true;
    } else if (std::strcmp(key, "fingerprint") == 0) {
      check_fingerprint(v);
      fingerprint = true;
    } else if (std::strcmp(key, "setup") == 0) {
      if (v != "actpass" && v != "active" && v != "passive") {
        throw OfferError("the offer's a=setup '" + v.substr(0, 40) + "' is not actpass, active or passive");
      }
    }
  };
  for (guint a = 0; a < gst_sdp_message_attributes_len(msg); ++a) {
    const GstSDPAttribute* at = gst_sdp_message_get_attribute(msg, a);
    if (at && at->key) check_common(at->key, at->value);
  }
  for (guint i = 0; i < gst_sdp_message_medias_len(msg); ++i) {
    const GstSDPMedia* m = gst_sdp_message_get_media(msg, i);
    if (!gst_sdp_media_get_media(m) || std::strcmp(gst_sdp_media_get_media(m), "audio") != 0) continue;
    audio = true;
    if (gst_sdp_media_get_attribute_val(m, "mid")) mid = true;
    std::vector<int> listed;
    for (guint f = 0; f < gst_sdp_media_formats_len(m); ++f) {
      const char* fmt = gst_sdp_media_get_format(m, f);
      auto v = payload_type(fmt ? fmt : "");
      if (!v) {
        throw OfferError("the offer's m=audio line lists payload type '" + std::string(fmt ? fmt : "").substr(0, 40) +
                         "' (payload types are numbers 0-127)");
      }
      listed.push_back(*v);
    }
    bool inactive = gst_sdp_media_get_attribute_val(m, "inactive") || gst_sdp_media_get_port(m) == 0;
    bool no_send = inactive || gst_sdp_media_get_attribute_val(m, "recvonly");
    bool no_receive = inactive || gst_sdp_media_get_attribute_val(m, "sendonly");
    if (direction == OfferDirection::sends ? !no_send : !no_receive) sends = true;
    for (guint a = 0; a < gst_sdp_media_attributes_len(m); ++a) {
      const GstSDPAttribute* at = gst_sdp_media_get_attribute(m, a);
      if (!at || !at->key) continue;
      check_common(at->key, at->value);
      if (std::strcmp(at->key, "rtpmap") != 0) continue;
      std::string v = at->value ? at->value : "";
      auto sp = v.find(' ');
      auto type = payload_type(std::string_view(v).substr(0, sp));
      if (!type) {
        throw OfferError("the offer's a=rtpmap has payload type '" + v.substr(0, std::min<std::size_t>(sp, 40)) +
                         "' (payload types are numbers 0-127)");
      }
      if (sp == std::string::npos) continue;
      auto codec = lower(v.substr(sp + 1));
      codecs += (codecs.empty() ? "" : ", ") + v.substr(sp + 1);
      if (pt < 0 && codec.rfind("opus/48000", 0) == 0) {
        if (std::find(listed.begin(), listed.end(), *type) == listed.end()) {
          throw OfferError("the offer's Opus payload type " + std::to_string(*type) +
                           " is not listed on its m=audio line");
        }
        pt = *type;
      }
    }
  }
  if (!audio) throw OfferError("the offer has no audio section (m=audio)");
  if (!sends) {
    throw OfferError(direction == OfferDirection::sends
                         ? "the offer's audio section does not send (it is recvonly, inactive or port 0)"
                         : "the offer's audio section does not receive (it is sendonly, inactive or port 0)");
  }
  if (pt < 0) {
    throw OfferError("the offer's audio does not include Opus at 48 kHz (offered: " +
                     (codecs.empty() ? std::string("none") : codecs) + ")");
  }
  if (!ufrag) throw OfferError("the offer has no ICE credentials (a=ice-ufrag)");
  if (!pwd) throw OfferError("the offer has no ICE password (a=ice-pwd)");
  if (!fingerprint) throw OfferError("the offer has no DTLS fingerprint (a=fingerprint)");
  // Candidates name their m-line by it (sdpMid), both ways.
  if (!mid) throw OfferError("the offer's audio section has no a=mid");
  return pt;
}

}  // namespace fc25::media
