#pragma once
// One webrtcbin peer connection that answers a page's offer: the pipeline, the negotiation chain (remote
// description -> answer -> local description) on webrtcbin's thread, trickled candidates, connection-state
// failures, and teardown on our own media thread. Ingest and listener pipelines add their elements around it.
#define GST_USE_UNSTABLE_API
#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/time.hpp"
#include "media/media.hpp"

namespace fc25::media::detail {

// Counts pipelines for live_pipelines() (peers count themselves; other pipelines call these).
void pipeline_opened();
void pipeline_closed();

// Runs work that must not run on a GStreamer thread (tearing pipelines down) on our own thread.
void post_to_media_thread(std::function<void()> fn);

class Peer : public std::enable_shared_from_this<Peer> {
 public:
  Peer(std::string label, PeerEvents events);
  virtual ~Peer() = default;

  // Builds the pipeline (webrtcbin plus what add_elements() adds), then answers `offer_sdp`. A peer closed before
  // or while it starts is never built, or is torn down once built: start and teardown exclude each other.
  // `ptime_ms` > 0: the answer asks the page to send packets of that length (a=ptime on its audio); a listener,
  // which sends nothing, is asked nothing (0).
  void start(const std::string& offer_sdp, int opus_pt, const IceConfig& ice, int ptime_ms);
  // Throws CandidateError when the candidate names no m-line of the offer.
  void add_remote_candidate(const RemoteCandidate& candidate);
  // Idempotent, never blocks: stops delivering, teardown on the media thread.
  void close();
  bool closed() const { return closed_.load(); }
  const std::string& label() const { return label_; }

 protected:
  // Called before the offer is applied: add and link elements, set up transceivers.
  virtual void add_elements(int opus_pt) = 0;
  // A source pad of webrtcbin appeared (media from the page).
  virtual void on_src_pad(GstPad*) {}
  void fail(const std::string& why);

  std::string label_;
  std::string public_address_;   // IceConfig::public_address, set by start() before any candidate
  int ptime_ms_ = 0;             // start()'s: asked of the page in the answer (a=ptime); 0: nothing asked
  PeerEvents ev_;
  std::shared_ptr<spdlog::logger> log_;
  GstElement* pipeline_ = nullptr;
  GstElement* webrtc_ = nullptr;
  std::atomic<bool> closed_{false};
  std::atomic<bool> failed_{false};
  // Held while pipeline_ and webrtc_ are made or unmade (start, teardown) and by callers from outside GStreamer's
  // threads that use them. Never taken on a GStreamer thread: teardown waits for webrtcbin's own thread to end.
  std::mutex life_mu_;
  std::vector<std::string> mids_;  // the offer's a=mid values by m-line (set by start, before any signalling)

 private:
  void teardown();
  gpointer keep_alive();
  static void drop_keep_alive(gpointer p);
  static Peer* from(gpointer p);
  static std::string promise_error(GstPromise* promise);
  static void on_remote_set(GstPromise* promise, gpointer data);
  static void on_answer_created(GstPromise* promise, gpointer data);
  static void on_ice_candidate(GstElement*, guint mline, gchar* candidate, gpointer data);
  static void on_connection_state(GstElement* webrtc, GParamSpec*, gpointer data);
  static void on_ice_state(GstElement* webrtc, GParamSpec*, gpointer data);
  static GstBusSyncReply on_bus(GstBus*, GstMessage* msg, gpointer data);
  static void on_pad_added(GstElement*, GstPad* pad, gpointer data);
};

}  // namespace fc25::media::detail
