// What a listener's offer yields and what the answer to it says, on offers shaped as browsers write them.
#include "rtc/sdp.hpp"

#include <gtest/gtest.h>

#include <regex>

namespace fc25::rtc {
namespace {

// Chromium's offer for one recvonly audio transceiver (trimmed of its many rtpmaps).
const char* kChromiumOffer =
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0\r\n"
    "a=extmap-allow-mixed\r\n"
    "a=msid-semantic: WMS\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:x9cA\r\n"
    "a=ice-pwd:Zq5Wl0cK2x8cJfQ1n2m3o4p5\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 8B:10:2E:3F:5A:4C:91:7D:0E:22:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=recvonly\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:63 red/48000/2\r\n";

// Firefox's: session-level fingerprint and credentials, Opus at 109, a video section to refuse.
const char* kFirefoxOffer =
    "v=0\r\n"
    "o=mozilla...THIS_IS_SDPARTA-99.0 123 0 IN IP4 0.0.0.0\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "a=ice-options:trickle\r\n"
    "a=msid-semantic:WMS *\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 120\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=recvonly\r\n"
    "a=ice-pwd:1234567890abcdef1234567890abcdef\r\n"
    "a=ice-ufrag:f00dcafe\r\n"
    "a=mid:0\r\n"
    "a=rtpmap:120 VP8/90000\r\n"
    "a=setup:actpass\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=recvonly\r\n"
    "a=ice-pwd:1234567890abcdef1234567890abcdef\r\n"
    "a=ice-ufrag:f00dcafe\r\n"
    "a=mid:1\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:109 opus/48000/2\r\n"
    "a=setup:actpass\r\n";

TEST(ListenerOffer, ChromiumsOfferGivesItsCredentialsFingerprintMidAndOpus) {
  auto o = parse_listener_offer(kChromiumOffer);
  EXPECT_EQ(o.ice_ufrag, "x9cA");
  EXPECT_EQ(o.ice_pwd, "Zq5Wl0cK2x8cJfQ1n2m3o4p5");
  EXPECT_EQ(o.fingerprint.substr(0, 11), "sha-256 8B:");
  EXPECT_EQ(o.audio_mid, "0");
  EXPECT_EQ(o.opus_pt, 111);
  EXPECT_TRUE(o.bundle);
  EXPECT_EQ(o.sections.size(), 1u);
}

TEST(ListenerOffer, FirefoxsOfferTakesSessionLevelFingerprintAndAnswersTheAudioSection) {
  auto o = parse_listener_offer(kFirefoxOffer);
  EXPECT_EQ(o.audio_index, 1u);
  EXPECT_EQ(o.audio_mid, "1");
  EXPECT_EQ(o.opus_pt, 109);
  EXPECT_EQ(o.ice_ufrag, "f00dcafe");
  EXPECT_EQ(o.fingerprint.substr(0, 10), "sha-256 AA");
}

TEST(ListenerOffer, RefusesWhatAnIceLiteDtlsServerCannotAnswer) {
  std::string passive = std::regex_replace(std::string(kChromiumOffer), std::regex("a=setup:actpass"), "a=setup:passive");
  try {
    parse_listener_offer(passive);
    FAIL() << "a=setup:passive was accepted";
  } catch (const SdpError& e) {
    EXPECT_NE(std::string(e.what()).find("a=setup is 'passive'"), std::string::npos) << e.what();
  }
  std::string sendonly = std::regex_replace(std::string(kChromiumOffer), std::regex("a=recvonly"), "a=sendonly");
  EXPECT_THROW(parse_listener_offer(sendonly), SdpError);
  std::string no_opus = std::regex_replace(std::string(kChromiumOffer), std::regex("a=rtpmap:111 opus/48000/2\r\n"), "");
  EXPECT_THROW(parse_listener_offer(no_opus), SdpError);
  std::string no_fp = std::regex_replace(std::string(kChromiumOffer), std::regex("a=fingerprint:[^\r]*\r\n"), "");
  EXPECT_THROW(parse_listener_offer(no_fp), SdpError);
  std::string no_pwd = std::regex_replace(std::string(kChromiumOffer), std::regex("a=ice-pwd:[^\r]*\r\n"), "");
  EXPECT_THROW(parse_listener_offer(no_pwd), SdpError);
  EXPECT_THROW(parse_listener_offer(""), SdpError);
}

TEST(ListenerAnswer, IsIceLiteSendonlyOpusWithOurCredentialsAndEveryCandidate) {
  auto o = parse_listener_offer(kChromiumOffer);
  AnswerParams p{"uF00", "pwd-of-at-least-22-chars", "01:02:03", 12345, "fanout-7",
                 {{"10.0.0.1", 40000}, {"10.0.0.2", 40001}}};
  auto a = write_listener_answer(o, p);
  EXPECT_EQ(a.rfind("v=0\r\n", 0), 0u);
  for (const char* line :
       {"a=group:BUNDLE 0\r\n", "a=ice-lite\r\n", "m=audio 40000 UDP/TLS/RTP/SAVPF 111\r\n", "c=IN IP4 10.0.0.1\r\n",
        "a=ice-ufrag:uF00\r\n", "a=ice-pwd:pwd-of-at-least-22-chars\r\n", "a=fingerprint:sha-256 01:02:03\r\n",
        "a=setup:passive\r\n", "a=mid:0\r\n", "a=sendonly\r\n", "a=rtcp-mux\r\n", "a=rtpmap:111 opus/48000/2\r\n",
        "a=ssrc:12345 cname:fanout-7\r\n", " 10.0.0.1 40000 typ host\r\n", " 10.0.0.2 40001 typ host\r\n",
        "a=end-of-candidates\r\n"}) {
    EXPECT_NE(a.find(line), std::string::npos) << "missing " << line << " in\n" << a;
  }
  EXPECT_EQ(a.find("recvonly"), std::string::npos);
}

TEST(ListenerAnswer, RejectsEveryOtherSectionKeepingItsMid) {
  auto o = parse_listener_offer(kFirefoxOffer);
  auto a = write_listener_answer(o, AnswerParams{"u", "p", "f", 1, "c", {{"10.0.0.1", 5000}}});
  auto video = a.find("m=video 0 UDP/TLS/RTP/SAVPF 120\r\n");
  auto audio = a.find("m=audio 5000 UDP/TLS/RTP/SAVPF 109\r\n");
  ASSERT_NE(video, std::string::npos) << a;
  ASSERT_NE(audio, std::string::npos) << a;
  EXPECT_LT(video, audio);  // sections in the offer's order
  EXPECT_NE(a.find("a=mid:0\r\na=inactive\r\n"), std::string::npos) << a;
  EXPECT_NE(a.find("a=group:BUNDLE 1\r\n"), std::string::npos) << a;
}

TEST(IceStrings, AreOfTheAskedLengthAndAlphabetAndDiffer) {
  auto a = random_ice_string(24), b = random_ice_string(24);
  EXPECT_EQ(a.size(), 24u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(std::regex_match(a, std::regex("[A-Za-z0-9+/]{24}")));
}

}  // namespace
}  // namespace fc25::rtc
