// The relay's wire format: what one node writes the other reads back exactly, and anything else is
// refused rather than misread.
#include <gtest/gtest.h>

#include <string>
#include <vector>

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

TEST(RelayMessages, ReadsWhatTheNodesSend) {
  auto ended = parse_origin_message(R"({"type":"ended","reason":"node_lost"})");
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->kind, OriginMessage::Kind::ended);
  EXPECT_EQ(ended->reason, "node_lost");
  EXPECT_EQ(parse_origin_message(R"({"type":"ended"})")->reason, "ended");
  auto refused = parse_origin_message(R"({"type":"refused","listen_id":"l7","code":"not_friends","message":"no"})");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->kind, OriginMessage::Kind::refused);
  EXPECT_EQ(refused->listen_id, "l7");
  EXPECT_EQ(refused->message, "no");
  auto listener = parse_relay_message(R"({"type":"listener","listen_id":"l7","user_id":42})");
  ASSERT_TRUE(listener);
  EXPECT_EQ(listener->kind, RelayMessage::Kind::listener);
  EXPECT_EQ(listener->user_id, 42);
  auto left = parse_relay_message(R"({"type":"listener_left","listen_id":"l7"})");
  ASSERT_TRUE(left);
  EXPECT_EQ(left->kind, RelayMessage::Kind::listener_left);
}

// Fields of another type once threw out of the socket's read handler (nlohmann's value() on a number).
TEST(RelayMessages, RefusesFieldsOfAnotherTypeOrSizeInsteadOfThrowing) {
  for (const auto& bad : std::vector<std::string>{R"({"type":"ended","reason":5})", R"({"type":1})", R"({"type":"refused","listen_id":3})",
                   R"({"type":"refused","listen_id":"l","code":[]})", R"({"type":"refused"})", "[]", "not json",
                   R"({"type":"ended","reason":")" + std::string(200, 'x') + R"("})", R"([[[[[[[[[[]]]]]]]]]])"}) {
    EXPECT_FALSE(parse_origin_message(bad)) << bad;
  }
  for (const auto& bad : std::vector<std::string>{R"({"type":"listener","listen_id":"l"})", R"({"type":"listener","listen_id":"l","user_id":"42"})",
                   R"({"type":"listener","listen_id":7,"user_id":1})", R"({"type":{},"listen_id":"l"})",
                   R"({"type":"listener_left"})", R"({"type":"ended","listen_id":"l"})"}) {
    EXPECT_FALSE(parse_relay_message(bad)) << bad;
  }
}

}  // namespace
}  // namespace fc25::relay
