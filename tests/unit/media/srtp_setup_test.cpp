// libsrtp is shared with GStreamer's srtp elements, and its set-up is not safe beside any other use of it: media's
// start-up does both set-ups on one thread, so that an ingest's first webrtcbin cannot race a listener's first SRTP
// session (which left that listener silent).
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "media/media.hpp"
#include "rtc/srtp.hpp"

namespace fc25 {
namespace {

TEST(SrtpSetup, StartUpLoadsGStreamersSrtpPluginAfterOursAndSessionsStillWork) {
  media::init();
  GstPlugin* plugin = gst_registry_find_plugin(gst_registry_get(), "srtp");
  ASSERT_NE(plugin, nullptr) << "gstreamer1.0-plugins-bad's srtp plugin";
  EXPECT_TRUE(gst_plugin_is_loaded(plugin)) << "loaded at start-up, not by the first webrtcbin";
  gst_object_unref(plugin);

  // Listeners' sessions made on two threads while webrtcbin's srtp elements are made and dropped on a third.
  rtc::SrtpKeys keys;
  for (std::size_t i = 0; i < keys.local.size(); ++i) {
    keys.local[i] = static_cast<std::uint8_t>(i);
    keys.remote[i] = static_cast<std::uint8_t>(255 - i);
  }
  std::atomic<int> made{0}, failed{0};
  auto sessions = [&] {
    for (int i = 0; i < 200; ++i) {
      try {
        rtc::SrtpSession s(keys);
        std::vector<std::uint8_t> rtp(12 + 40 + rtc::SrtpSession::kMaxOverhead, 0);
        rtp[0] = 0x80;
        rtp[1] = 111;
        rtp[3] = static_cast<std::uint8_t>(i);
        if (s.protect_rtp(rtp.data(), 52) == 62) ++made;
        else ++failed;
      } catch (...) {
        ++failed;
      }
    }
  };
  std::thread a(sessions), b(sessions);
  for (int i = 0; i < 50; ++i) {
    for (const char* f : {"srtpenc", "srtpdec"}) {
      GstElement* e = gst_element_factory_make(f, nullptr);
      ASSERT_NE(e, nullptr) << f;
      gst_object_unref(gst_object_ref_sink(e));
    }
  }
  a.join();
  b.join();
  EXPECT_EQ(made.load(), 400);
  EXPECT_EQ(failed.load(), 0);
}

}  // namespace
}  // namespace fc25
