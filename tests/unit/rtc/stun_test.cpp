#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/un.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "rtc/stun.hpp"
#include "stun_reference.hpp"

namespace stun = fc25::rtc::stun;

namespace {

using namespace fc25::rtc::testing;

// RFC 5769 2.1 "Sample Request": SOFTWARE "STUN test client", PRIORITY, ICE-CONTROLLED, USERNAME "evtj:h6vY"
// (padded with spaces), MESSAGE-INTEGRITY at 76, FINGERPRINT at 100.
const Bytes kRequest = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
    0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f,
    0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
    0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};

// RFC 5769 2.2 "Sample IPv4 Response": SOFTWARE "test vector", XOR-MAPPED-ADDRESS 192.0.2.1:32853 at 36,
// MESSAGE-INTEGRITY at 48, FINGERPRINT at 72.
const Bytes kIpv4Response = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

// RFC 5769 2.3 "Sample IPv6 Response": XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853 at 36,
// MESSAGE-INTEGRITY at 60, FINGERPRINT at 84.
const Bytes kIpv6Response = {
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
    0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25,
    0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
    0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb,
    0x0b, 0x4c,
};

constexpr std::string_view kPassword = "VOkJxbRl1RmTxUk/WvJxBt";
constexpr std::array<std::uint8_t, 4> kCookie = {0x21, 0x12, 0xa4, 0x42};

std::uint16_t get16(const Bytes& b, std::size_t at) { return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]); }

std::uint32_t get32(const Bytes& b, std::size_t at) {
  return std::uint32_t{get16(b, at)} << 16 | get16(b, at + 2);
}

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

sockaddr_storage v4(const char* ip, std::uint16_t port) {
  sockaddr_storage ss{};
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET, ip, &in.sin_addr), 1);
  std::memcpy(&ss, &in, sizeof in);
  return ss;
}

sockaddr_storage v6(const char* ip, std::uint16_t port) {
  sockaddr_storage ss{};
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET6, ip, &in6.sin6_addr), 1);
  std::memcpy(&ss, &in6, sizeof in6);
  return ss;
}

std::optional<stun::BindingRequest> parse(const Bytes& b) { return stun::parse_binding_request(b.data(), b.size()); }

bool integrity(const Bytes& b, std::string_view password) {
  return stun::check_integrity(b.data(), b.size(), password);
}

Bytes success(const stun::BindingRequest& r, const sockaddr_storage& from, std::string_view password) {
  Bytes out(256);
  out.resize(stun::write_binding_success(r, from, password, out.data(), out.size()));
  return out;
}

}  // namespace

TEST(Stun, TheTestsOwnCrcAndHmacReproduceThePublishedValues) {
  const std::string check = "123456789";  // the CRC-32 catalogue's check input, 0xCBF43926
  EXPECT_EQ(crc32_bitwise(reinterpret_cast<const std::uint8_t*>(check.data()), check.size()), 0xCBF43926u);
  // Each RFC 5769 sample carries both values: this checks the transcription above and the helpers at once.
  struct Sample {
    const Bytes* msg;
    std::size_t mi, fp;
  };
  for (auto [msg, mi, fp] : {Sample{&kRequest, 76, 100}, Sample{&kIpv4Response, 48, 72},
                             Sample{&kIpv6Response, 60, 84}}) {
    SCOPED_TRACE(msg->size());
    EXPECT_EQ(get16(*msg, 2), msg->size() - 20);
    EXPECT_EQ(integrity_of(*msg, mi, kPassword), slice(*msg, mi + 4, 20));
    EXPECT_EQ(fingerprint_of(*msg, fp), get32(*msg, fp + 4));
  }
}

TEST(Stun, ParsesTheRfc5769SampleRequest) {
  auto r = parse(kRequest);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->username, "evtj:h6vY");
  EXPECT_EQ(r->priority, 0x6e0001ffu);
  EXPECT_FALSE(r->use_candidate);
  EXPECT_TRUE(r->has_integrity);
  EXPECT_TRUE(r->has_fingerprint);  // the RFC's FINGERPRINT matched our CRC-32
  EXPECT_EQ(Bytes(r->transaction.begin(), r->transaction.end()), slice(kRequest, 8, 12));
  EXPECT_TRUE(integrity(kRequest, kPassword));
  EXPECT_FALSE(integrity(kRequest, "VOkJxbRl1RmTxUk/WvJxBT"));
  EXPECT_FALSE(integrity(kRequest, ""));
}

TEST(Stun, EveryFlippedBitOfTheSampleIsNoticed) {
  for (std::size_t i = 0; i < kRequest.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes m = kRequest;
      m[i] ^= static_cast<std::uint8_t>(1 << bit);
      auto r = parse(m);
      bool accepted = r && integrity(m, kPassword);
      SCOPED_TRACE(testing::Message() << "byte " << i << " bit " << bit);
      if (i < 100) {
        EXPECT_FALSE(accepted);
      } else {
        // FINGERPRINT is outside MESSAGE-INTEGRITY: a damaged one either fails or is no FINGERPRINT any more.
        EXPECT_FALSE(accepted && r->has_fingerprint);
      }
    }
  }
}

TEST(Stun, IntegrityIgnoresFingerprintAndEveryByteOfItCounts) {
  Bytes m = slice(kRequest, 0, 100);  // the sample without its FINGERPRINT
  put16(m, 2, 100 - 20);
  auto r = parse(m);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_fingerprint);
  EXPECT_TRUE(integrity(m, kPassword));
  for (std::size_t i = 80; i < 100; ++i) {
    Bytes damaged = m;
    damaged[i] ^= 0x01;
    EXPECT_FALSE(integrity(damaged, kPassword)) << i;
  }
}

TEST(Stun, EveryTruncationIsRefused) {
  for (std::size_t n = 0; n < kRequest.size(); ++n) {
    Bytes m = slice(kRequest, 0, n);  // exactly n bytes on the heap, so a read past them is caught
    EXPECT_FALSE(parse(m)) << n;
    EXPECT_FALSE(integrity(m, kPassword)) << n;
    EXPECT_FALSE(stun::is_stun(m.data(), m.size())) << n;
  }
  EXPECT_FALSE(stun::parse_binding_request(nullptr, 0));
  EXPECT_FALSE(stun::check_integrity(nullptr, 0, kPassword));
  EXPECT_FALSE(stun::is_stun(nullptr, 0));
}

TEST(Stun, AnAttributeRunningPastTheEndIsRefused) {
  Bytes m = kRequest;
  put16(m, 62, 0x0100);  // USERNAME's length
  EXPECT_FALSE(parse(m));
  EXPECT_FALSE(integrity(m, kPassword));
  // Header and attribute both consistent with the datagram, but the value claims 4 bytes more than there are.
  Bytes short_value = {0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                       0x00, 0x24, 0x00, 0x08, 0, 0, 0, 1};
  EXPECT_FALSE(parse(short_value));
  // A bare attribute header cut in half.
  Bytes half = {0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                0x00, 0x25, 0x00, 0x04};
  EXPECT_FALSE(parse(half));
}

TEST(Stun, HeaderMistakesAreRefused) {
  auto changed = [](std::size_t at, std::uint8_t v) {
    Bytes m = kRequest;
    m[at] = v;
    return m;
  };
  EXPECT_FALSE(parse(changed(1, 0x11)));  // a Binding indication
  EXPECT_FALSE(parse(changed(0, 0x01)));  // a success response
  EXPECT_FALSE(parse(changed(4, 0x20)));  // the cookie
  Bytes longer = kRequest;
  longer.push_back(0);  // the length field no longer matches
  EXPECT_FALSE(parse(longer));
  Bytes odd = request({{0x0006, "ab"}}, "", false);
  odd.resize(odd.size() - 2);
  put16(odd, 2, odd.size() - 20);  // 6: not a multiple of 4
  EXPECT_FALSE(parse(odd));
}

TEST(Stun, ARequestSignedWithAnotherPasswordFailsIntegrity) {
  auto m = request({{0x0006, "ours:theirs"}, {0x0024, be32(0x7e7f00ff)}, {0x0025, ""}}, "another password", true);
  auto r = parse(m);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->username, "ours:theirs");
  EXPECT_EQ(r->priority, 0x7e7f00ffu);
  EXPECT_TRUE(r->use_candidate);
  EXPECT_TRUE(r->has_integrity);
  EXPECT_TRUE(r->has_fingerprint);
  EXPECT_TRUE(integrity(m, "another password"));
  EXPECT_FALSE(integrity(m, kPassword));
}

TEST(Stun, WhatFollowsIntegrityIsIgnoredAndFingerprintMustBeLast) {
  auto m = request({{0x0006, "a:b"}}, kPassword, true, {{0x0025, ""}, {0x0024, be32(5)}});
  auto r = parse(m);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->use_candidate);
  EXPECT_EQ(r->priority, 0u);
  EXPECT_TRUE(integrity(m, kPassword));

  Bytes after = kRequest;  // an attribute after a FINGERPRINT that is right for the header as it now is
  after.insert(after.end(), {0x00, 0x25, 0x00, 0x00});
  put16(after, 2, after.size() - 20);
  std::uint32_t fp = fingerprint_of(after, 100);
  put16(after, 104, fp >> 16);
  put16(after, 106, fp & 0xFFFF);
  EXPECT_FALSE(parse(after));

  Bytes wrong = kRequest;
  wrong.back() ^= 1;
  EXPECT_FALSE(parse(wrong));

  auto unsigned_request = request({{0x0006, "a:b"}}, "", false);
  auto u = parse(unsigned_request);
  ASSERT_TRUE(u);
  EXPECT_FALSE(u->has_integrity);
  EXPECT_FALSE(u->has_fingerprint);
  EXPECT_FALSE(integrity(unsigned_request, kPassword));
}

TEST(Stun, MalformedKnownAttributesAreRefused) {
  EXPECT_FALSE(parse(request({{0x0024, "abc"}}, "", false)));                  // PRIORITY not 4 bytes
  EXPECT_FALSE(parse(request({{0x0006, std::string(513, 'u')}}, "", false)));  // USERNAME too long
  EXPECT_TRUE(parse(request({{0x0006, std::string(512, 'u')}}, "", false)));
  EXPECT_FALSE(parse(request({{0x0008, std::string(16, 'm')}}, "", false)));  // MESSAGE-INTEGRITY not 20 bytes
  EXPECT_FALSE(parse(request({{0x8028, std::string(8, 'f')}}, "", false)));   // FINGERPRINT not 4 bytes
}

TEST(Stun, SuccessForTheRfc5769Ipv4Sample) {
  auto r = parse(kRequest);
  ASSERT_TRUE(r);
  auto out = success(*r, v4("192.0.2.1", 32853), kPassword);
  ASSERT_EQ(out.size(), 64u);
  EXPECT_TRUE(stun::is_stun(out.data(), out.size()));
  EXPECT_EQ(get16(out, 0), 0x0101);
  EXPECT_EQ(get16(out, 2), 44);
  EXPECT_EQ(slice(out, 4, 16), slice(kRequest, 4, 16));  // cookie and transaction id

  // XOR-MAPPED-ADDRESS: the RFC's bytes, and decoded by hand.
  EXPECT_EQ(slice(out, 20, 12), slice(kIpv4Response, 36, 12));
  EXPECT_EQ(get16(out, 20), 0x0020);
  EXPECT_EQ(get16(out, 22), 8);
  EXPECT_EQ(out[25], 0x01);
  EXPECT_EQ(get16(out, 26) ^ 0x2112, 32853);
  Bytes ip;
  for (int i = 0; i < 4; ++i) ip.push_back(out[28 + i] ^ kCookie[i]);
  EXPECT_EQ(ip, (Bytes{192, 0, 2, 1}));

  EXPECT_EQ(get16(out, 32), 0x0008);
  EXPECT_EQ(get16(out, 34), 20);
  EXPECT_EQ(slice(out, 36, 20), integrity_of(out, 32, kPassword));
  EXPECT_EQ(get16(out, 56), 0x8028);
  EXPECT_EQ(get16(out, 58), 4);
  EXPECT_EQ(get32(out, 60), fingerprint_of(out, 56));
  EXPECT_TRUE(integrity(out, kPassword));
}

TEST(Stun, SuccessForTheRfc5769Ipv6Sample) {
  auto r = parse(kRequest);
  ASSERT_TRUE(r);
  auto out = success(*r, v6("2001:db8:1234:5678:11:2233:4455:6677", 32853), kPassword);
  ASSERT_EQ(out.size(), 76u);
  EXPECT_TRUE(stun::is_stun(out.data(), out.size()));
  EXPECT_EQ(get16(out, 0), 0x0101);
  EXPECT_EQ(get16(out, 2), 56);
  EXPECT_EQ(slice(out, 4, 16), slice(kRequest, 4, 16));

  EXPECT_EQ(slice(out, 20, 24), slice(kIpv6Response, 36, 24));
  EXPECT_EQ(get16(out, 20), 0x0020);
  EXPECT_EQ(get16(out, 22), 20);
  EXPECT_EQ(out[25], 0x02);
  EXPECT_EQ(get16(out, 26) ^ 0x2112, 32853);
  Bytes ip;
  for (int i = 0; i < 16; ++i) ip.push_back(out[28 + i] ^ kRequest[4 + i]);  // cookie then transaction id
  EXPECT_EQ(ip, (Bytes{0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
                       0x77}));

  EXPECT_EQ(get16(out, 44), 0x0008);
  EXPECT_EQ(get16(out, 46), 20);
  EXPECT_EQ(slice(out, 48, 20), integrity_of(out, 44, kPassword));
  EXPECT_EQ(get16(out, 68), 0x8028);
  EXPECT_EQ(get16(out, 70), 4);
  EXPECT_EQ(get32(out, 72), fingerprint_of(out, 68));
  EXPECT_TRUE(integrity(out, kPassword));
}

TEST(Stun, AnIpv4MappedPeerIsAnsweredWithItsIpv4Address) {
  auto r = parse(kRequest);
  ASSERT_TRUE(r);
  auto out = success(*r, v6("::ffff:192.0.2.1", 32853), kPassword);
  ASSERT_EQ(out.size(), 64u);
  EXPECT_EQ(slice(out, 20, 12), slice(kIpv4Response, 36, 12));
}

TEST(Stun, SuccessNeedsRoomAndAKnownFamily) {
  auto r = parse(kRequest);
  ASSERT_TRUE(r);
  auto from = v4("192.0.2.1", 32853);
  Bytes out(64);
  for (std::size_t cap = 0; cap < 64; ++cap) {
    EXPECT_EQ(stun::write_binding_success(*r, from, kPassword, out.data(), cap), 0u) << cap;
  }
  EXPECT_EQ(stun::write_binding_success(*r, from, kPassword, out.data(), 64), 64u);
  auto from6 = v6("2001:db8::1", 1);
  out.resize(76);
  EXPECT_EQ(stun::write_binding_success(*r, from6, kPassword, out.data(), 75), 0u);
  EXPECT_EQ(stun::write_binding_success(*r, from6, kPassword, out.data(), 76), 76u);
  sockaddr_storage unix_socket{};
  unix_socket.ss_family = AF_UNIX;
  EXPECT_EQ(stun::write_binding_success(*r, unix_socket, kPassword, out.data(), out.size()), 0u);
}

TEST(Stun, ErrorResponses) {
  std::array<std::uint8_t, 12> tx{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  Bytes out(128);
  out.resize(stun::write_binding_error(tx, 401, "Unauthorized", out.data(), out.size()));
  ASSERT_EQ(out.size(), 20u + 4 + 16 + 8);
  EXPECT_TRUE(stun::is_stun(out.data(), out.size()));
  EXPECT_EQ(get16(out, 0), 0x0111);
  EXPECT_EQ(get16(out, 2), out.size() - 20);
  EXPECT_EQ(get32(out, 4), stun::kMagicCookie);
  EXPECT_EQ(slice(out, 8, 12), Bytes(tx.begin(), tx.end()));
  EXPECT_EQ(slice(out, 20, 8), (Bytes{0x00, 0x09, 0x00, 0x10, 0x00, 0x00, 4, 1}));
  EXPECT_EQ(std::string(out.begin() + 28, out.begin() + 40), "Unauthorized");
  EXPECT_EQ(get16(out, 40), 0x8028);
  EXPECT_EQ(get32(out, 44), fingerprint_of(out, 40));
  EXPECT_FALSE(integrity(out, kPassword));

  Bytes bad(128);
  bad.resize(stun::write_binding_error(tx, 400, "Bad Request", bad.data(), bad.size()));
  ASSERT_EQ(bad.size(), 20u + 4 + 16 + 8);
  EXPECT_EQ(slice(bad, 20, 8), (Bytes{0x00, 0x09, 0x00, 0x0f, 0x00, 0x00, 4, 0}));
  EXPECT_EQ(slice(bad, 28, 12), (Bytes{'B', 'a', 'd', ' ', 'R', 'e', 'q', 'u', 'e', 's', 't', 0}));
  EXPECT_EQ(get32(bad, 44), fingerprint_of(bad, 40));

  Bytes small(47);
  EXPECT_EQ(stun::write_binding_error(tx, 401, "Unauthorized", small.data(), small.size()), 0u);
  EXPECT_EQ(stun::write_binding_error(tx, 200, "OK", out.data(), out.size()), 0u);

  // A phrase past RFC 5389's 763 bytes is cut, and not inside a character.
  std::string long_reason(762, 'x');
  long_reason += "\xc3\xa9\xc3\xa9";  // the first "é" straddles byte 763
  Bytes big(1024);
  big.resize(stun::write_binding_error(tx, 500, long_reason, big.data(), big.size()));
  ASSERT_FALSE(big.empty());
  EXPECT_EQ(get16(big, 22), 4 + 762);
  EXPECT_EQ(get32(big, big.size() - 4), fingerprint_of(big, big.size() - 8));
}

TEST(Stun, IsStunTellsStunFromDtlsAndRtp) {
  EXPECT_TRUE(stun::is_stun(kRequest.data(), kRequest.size()));
  EXPECT_TRUE(stun::is_stun(kIpv4Response.data(), kIpv4Response.size()));
  Bytes dtls = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x9c, 1, 0, 0, 0x90, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_FALSE(stun::is_stun(dtls.data(), dtls.size()));
  Bytes rtp = {0x80, 0x6f, 0x12, 0x34, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_FALSE(stun::is_stun(rtp.data(), rtp.size()));  // even with the cookie where STUN has it
  Bytes top_bits = kRequest;
  top_bits[0] |= 0x40;
  EXPECT_FALSE(stun::is_stun(top_bits.data(), top_bits.size()));
}

TEST(Stun, RandomDamageNeverReadsOutOfBounds) {
  std::mt19937 rng(5769);
  const auto sample = request({{0x0006, "user:name"}, {0x0024, be32(1)}, {0x0025, ""}}, kPassword, true);
  for (const Bytes* base : {&kRequest, &sample}) {
    for (int round = 0; round < 20000; ++round) {
      Bytes m = *base;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) m[20 + rng() % (m.size() - 20)] = static_cast<std::uint8_t>(rng());
      if (rng() % 4 == 0) m.resize(20 + 4 * (rng() % ((m.size() - 20) / 4 + 1)));
      put16(m, 2, m.size() - 20);  // keep the header plausible so the attribute walk is exercised
      m.shrink_to_fit();
      (void)parse(m);
      (void)integrity(m, kPassword);
    }
  }
}
