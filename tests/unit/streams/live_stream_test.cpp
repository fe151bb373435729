#include <gtest/gtest.h>

#include "streams/live_stream.hpp"

namespace fc25::streams {
namespace {

TEST(LiveStream, GoesStartingLiveStoppingEnded) {
  LiveStream s({});
  EXPECT_EQ(s.state(), State::starting);
  EXPECT_TRUE(s.mark_live());
  EXPECT_EQ(s.state(), State::live);
  EXPECT_FALSE(s.mark_live()) << "live only once";
  EXPECT_FALSE(s.finish()) << "cannot end without stopping";
  EXPECT_TRUE(s.begin_stop(EndReason::user));
  EXPECT_EQ(s.state(), State::stopping);
  EXPECT_FALSE(s.mark_live()) << "a stopping stream never comes back";
  EXPECT_TRUE(s.finish());
  EXPECT_EQ(s.state(), State::ended);
  EXPECT_FALSE(s.finish());
  EXPECT_FALSE(s.begin_stop(EndReason::user));
}

TEST(LiveStream, CanStopWhileStarting) {
  LiveStream s({});
  EXPECT_TRUE(s.begin_stop(EndReason::webrtc_failed));
  EXPECT_EQ(s.state(), State::stopping);
  EXPECT_EQ(s.end_reason(), EndReason::webrtc_failed);
}

TEST(LiveStream, TheFirstStopFixesTheReasonForEveryPath) {
  const EndReason all[] = {EndReason::user, EndReason::page_unload, EndReason::socket_closed, EndReason::webrtc_failed,
                           EndReason::media_timeout, EndReason::server_shutdown, EndReason::server_restart};
  for (auto first : all) {
    LiveStream s({});
    s.mark_live();
    ASSERT_TRUE(s.begin_stop(first));
    for (auto later : all) EXPECT_FALSE(s.begin_stop(later)) << to_string(first) << " then " << to_string(later);
    EXPECT_EQ(s.end_reason(), first);
  }
}

TEST(LiveStream, ReasonNamesRoundTrip) {
  for (auto name : {"user", "page_unload", "socket_closed", "webrtc_failed", "media_timeout", "server_shutdown",
                    "server_restart"}) {
    auto r = parse_end_reason(name);
    ASSERT_TRUE(r) << name;
    EXPECT_EQ(to_string(*r), name);
  }
  EXPECT_FALSE(parse_end_reason("because"));
  EXPECT_FALSE(parse_end_reason(""));
}

}  // namespace
}  // namespace fc25::streams
