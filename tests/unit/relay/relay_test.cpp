// The relay's wire format: what one node writes the other reads back exactly, and anything else is
// refused rather than misread.
#include <gtest/gtest.h>

#include "relay/relay.hpp"

namespace fc25::relay {
namespace {

TEST(RelayPacket, RoundTripsEveryField) {
  std::string opus = "\xfc\x01\x02\x00\xff opus bytes";
  Packet p{123456789012345ull, 4500000, -7, opus};
  auto wire = encode_packet(p);
  EXPECT_EQ(wire.size(), 32 + opus.size());
  auto back = decode_packet(wire);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->pts_ns, 123456789012345ull);
  EXPECT_EQ(back->age_ns, 4500000);
  EXPECT_EQ(back->sent_ns, -7);
  EXPECT_EQ(back->opus, opus);
}

TEST(RelayPacket, RefusesWhatIsNotAPacket) {
  auto wire = encode_packet({1, 2, 3, "x"});
  EXPECT_FALSE(decode_packet(""));
  EXPECT_FALSE(decode_packet(wire.substr(0, 32))) << "a header without audio";
  EXPECT_FALSE(decode_packet(wire.substr(0, 20))) << "a short header";
  auto other = wire;
  other[0] = 2;
  EXPECT_FALSE(decode_packet(other)) << "another version";
  EXPECT_FALSE(decode_packet(encode_packet({1, 2, 3, std::string(4001, 'a')}))) << "larger than any Opus packet";
  EXPECT_TRUE(decode_packet(encode_packet({1, 2, 3, std::string(4000, 'a')})));
}

}  // namespace
}  // namespace fc25::relay
