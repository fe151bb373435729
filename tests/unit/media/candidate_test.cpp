// Host candidates announced at a public address (FC25_MEDIA_ADDRESS): only the address of a host candidate changes.
#include <gtest/gtest.h>

#include "media/media.hpp"

namespace fc25::media {
namespace {

TEST(AnnounceAt, AHostCandidateNamesThePublicAddress) {
  EXPECT_EQ(announce_at("candidate:1 1 UDP 2015363327 10.0.0.2 41234 typ host", "203.0.113.7"),
            "candidate:1 1 UDP 2015363327 203.0.113.7 41234 typ host");
  EXPECT_EQ(announce_at("candidate:3 1 TCP 1015021823 10.0.0.2 9 typ host tcptype active", "2001:db8::7"),
            "candidate:3 1 TCP 1015021823 2001:db8::7 9 typ host tcptype active");
}

TEST(AnnounceAt, OtherCandidatesAndOddTextStayAsTheyAre) {
  for (const char* c : {"candidate:2 1 UDP 1679819263 198.51.100.4 50000 typ srflx raddr 10.0.0.2 rport 41234",
                        "candidate:4 1 UDP 8331263 192.0.2.9 3478 typ relay raddr 198.51.100.4 rport 50000",
                        "", "candidate:1 1 UDP", "not a candidate at all", "candidate:1 1 UDP 1 10.0.0.2 1 host typ"}) {
    EXPECT_EQ(announce_at(c, "203.0.113.7"), c);
  }
}

}  // namespace
}  // namespace fc25::media
