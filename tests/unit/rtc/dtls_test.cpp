#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <srtp2/srtp.h>

#include "rtc/dtls.hpp"
#include "rtc/srtp.hpp"
#include "dtls_client.hpp"

namespace fc25::rtc {
namespace {

using namespace testing;

constexpr const char* kMismatch = "the listener's DTLS certificate does not match the fingerprint in its offer";

std::shared_ptr<const Certificate> server_certificate() {
  static auto cert = Certificate::generate();
  return cert;
}

// A server whose datagrams land in `to_client`.
struct Server {
  explicit Server(const std::string& fingerprint)
      : dtls(server_certificate(), fingerprint, [this](const std::uint8_t* d, std::size_t n) {
          to_client.emplace_back(d, d + n);
          largest = std::max(largest, n);
        }) {}
  Queue to_client;
  std::size_t largest = 0;  // the biggest datagram sent
  DtlsServer dtls;
};

// Delivers everything in flight, both ways and in order, until neither side has more to say.
void pump(Client& client, Server& server) {
  for (int round = 0; round < 50 && (!client.out.empty() || !server.to_client.empty()); ++round) {
    while (!server.to_client.empty()) {
      Datagram d = std::move(server.to_client.front());
      server.to_client.pop_front();
      client.receive(d);
    }
    while (!client.out.empty()) {
      Datagram d = std::move(client.out.front());
      client.out.pop_front();
      server.dtls.feed(d.data(), d.size());
    }
  }
}

// The client opens its handshake, and both sides talk until neither has more to say.
void handshake(Client& client, Server& server) {
  client.start();
  pump(client, server);
}

TEST(DtlsServer, HandshakeWithABrowserLikeClientAgreesOnKeysAndFingerprint) {
  Client client;
  Server server(client.fingerprint());
  handshake(client, server);
  ASSERT_EQ(server.dtls.state(), DtlsServer::State::connected) << server.dtls.error();
  ASSERT_TRUE(client.connected());
  EXPECT_TRUE(server.dtls.error().empty());
  EXPECT_GT(server.largest, 0u);
  EXPECT_LE(server.largest, 1200u);  // every datagram within the MTU

  // Both ends derive the same SRTP keys: what the server sends with is the client's "server write" half.
  EXPECT_EQ(server.dtls.keys().local, client.server_write_key());
  EXPECT_EQ(server.dtls.keys().remote, client.client_write_key());
  EXPECT_NE(server.dtls.keys().local, server.dtls.keys().remote);

  // What the client sees: DTLS 1.2, the SRTP profile, and the certificate the answer's fingerprint names.
  EXPECT_EQ(SSL_version(client.ssl()), DTLS1_2_VERSION);
  const SRTP_PROTECTION_PROFILE* profile = SSL_get_selected_srtp_profile(client.ssl());
  ASSERT_NE(profile, nullptr);
  EXPECT_EQ(profile->id, static_cast<unsigned long>(SRTP_AES128_CM_SHA1_80));
  EXPECT_NE(std::string(SSL_get_cipher_name(client.ssl())).find("ECDHE-ECDSA"), std::string::npos);
  X509* seen = SSL_get0_peer_certificate(client.ssl());
  ASSERT_NE(seen, nullptr);
  const std::string& fp = server_certificate()->fingerprint();
  EXPECT_EQ(digest_hex(seen, EVP_sha256()), fp);
  ASSERT_EQ(fp.size(), 32u * 3 - 1);
  for (std::size_t i = 0; i < fp.size(); ++i) {
    if (i % 3 == 2) {
      EXPECT_EQ(fp[i], ':');
    } else {
      EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(fp[i])) || (fp[i] >= 'A' && fp[i] <= 'F')) << fp;
    }
  }

  // The certificate itself: CN fc25, a P-256 key, valid from a day back for 30 days.
  char cn[64] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(seen), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "fc25");
  EVP_PKEY* pub = X509_get0_pubkey(seen);
  ASSERT_NE(pub, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(pub, "EC"));
  char group[64] = {};
  std::size_t group_len = 0;
  EXPECT_EQ(EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof group, &group_len), 1);
  EXPECT_STREQ(group, "prime256v1");
  std::time_t day_ago = std::time(nullptr) - 23 * 3600;
  EXPECT_LT(X509_cmp_time(X509_get0_notBefore(seen), &day_ago), 0);
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(seen), X509_get0_notAfter(seen)), 1);
  EXPECT_EQ(days, 31);
  EXPECT_EQ(X509_get_signature_nid(seen), NID_ecdsa_with_SHA256);
}

TEST(DtlsServer, EveryOfferedFingerprintAlgorithmWorksInAnyCase) {
  struct Algo {
    const char* name;
    const EVP_MD* md;
  };
  for (Algo a : {Algo{"sha-1", EVP_sha1()}, Algo{"SHA-256", EVP_sha256()}, Algo{"sha-384", EVP_sha384()},
                 Algo{"Sha-512", EVP_sha512()}}) {
    Client client;
    // Lower-case hex, as some offers carry it.
    std::string fp = client.fingerprint(a.name, a.md);
    for (char& c : fp) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    Server server(fp);
    handshake(client, server);
    EXPECT_EQ(server.dtls.state(), DtlsServer::State::connected) << a.name << ": " << server.dtls.error();
    EXPECT_TRUE(client.connected()) << a.name;
  }
}

TEST(DtlsServer, AnotherCertificateThanTheOfferNamedIsRefused) {
  Client client;
  Client other;
  Server server(other.fingerprint());
  handshake(client, server);
  EXPECT_EQ(server.dtls.state(), DtlsServer::State::failed);
  EXPECT_EQ(server.dtls.error(), kMismatch);
  // The client is told (a fatal alert) and never gets to connected; no keys were made.
  EXPECT_TRUE(client.failed());
  EXPECT_FALSE(client.connected());
  EXPECT_EQ(server.dtls.keys().local, (std::array<std::uint8_t, 30>{}));
  // Nothing more happens once failed.
  Datagram junk = {22, 0xfe, 0xfd, 0, 0};
  EXPECT_EQ(server.dtls.feed(junk.data(), junk.size()), DtlsServer::State::failed);
  server.dtls.tick();
  EXPECT_TRUE(server.to_client.empty());
}

TEST(DtlsServer, ClientWithoutCertificateOrSrtpFails) {
  {
    Client client(ClientOptions{.srtp = true, .certificate = false});
    Server server(client.fingerprint());
    handshake(client, server);
    EXPECT_EQ(server.dtls.state(), DtlsServer::State::failed);
    EXPECT_NE(server.dtls.error().find("handshake failed"), std::string::npos) << server.dtls.error();
    EXPECT_FALSE(client.connected());
  }
  {
    Client client(ClientOptions{.srtp = false});
    Server server(client.fingerprint());
    handshake(client, server);
    EXPECT_EQ(server.dtls.state(), DtlsServer::State::failed);
    EXPECT_NE(server.dtls.error().find("SRTP"), std::string::npos) << server.dtls.error();
    // The client did finish its handshake; the server's close_notify tells it the connection is over.
    EXPECT_TRUE(client.got_close_notify());
  }
}

TEST(DtlsServer, MalformedFingerprintIsRefusedAtConstruction) {
  Client client;
  std::string good = client.fingerprint();
  std::string hex = good.substr(8);
  const std::string bad[] = {
      "",
      "sha-256",
      "sha-256 ",
      hex,                                         // no algorithm
      "md5 " + hex,                                // not one of ours
      "sha-256 " + hex.substr(0, hex.size() - 3),  // 31 bytes
      "sha-256 " + hex + ":AB",                    // 33 bytes
      "sha-1 " + hex,                              // length of another algorithm
      "sha-256 " + hex + ":",                      // trailing colon
      "sha-256 :" + hex,
      "sha-256 " + hex.substr(0, 2) + hex.substr(3),  // a missing colon
      "sha-256 " + hex.substr(0, 1) + "G" + hex.substr(2),
      "sha-256 " + hex.substr(0, 2) + "::" + hex.substr(3),
      "sha-256 " + hex.substr(0, 2) + " " + hex.substr(3),
  };
  for (const auto& fp : bad) {
    EXPECT_THROW(DtlsServer(server_certificate(), fp, [](const std::uint8_t*, std::size_t) {}), std::invalid_argument)
        << "'" << fp << "'";
  }
  // Space around it and between the two parts is fine.
  EXPECT_NO_THROW(
      DtlsServer(server_certificate(), "  sha-256 \t" + hex + "\r\n", [](const std::uint8_t*, std::size_t) {}));
  EXPECT_THROW(DtlsServer(nullptr, good, [](const std::uint8_t*, std::size_t) {}), std::invalid_argument);
  EXPECT_THROW(DtlsServer(server_certificate(), good, nullptr), std::invalid_argument);
}

TEST(DtlsServer, CloseNotifyFromTheClientCloses) {
  Client client;
  Server server(client.fingerprint());
  handshake(client, server);
  ASSERT_EQ(server.dtls.state(), DtlsServer::State::connected);
  client.shutdown();
  ASSERT_EQ(client.out.size(), 1u);
  Datagram alert = client.out.front();
  client.out.clear();
  EXPECT_EQ(alert[0], 21);  // an alert record
  EXPECT_EQ(server.dtls.feed(alert.data(), alert.size()), DtlsServer::State::closed);
  EXPECT_EQ(server.dtls.state(), DtlsServer::State::closed);
  // The server answered with its own close_notify: the client's shutdown completes.
  ASSERT_EQ(server.to_client.size(), 1u);
  client.receive(server.to_client.front());
  EXPECT_EQ(client.shutdown_again(), 1);
  server.to_client.clear();
  server.dtls.close();  // already closed: nothing more sent
  EXPECT_TRUE(server.to_client.empty());
}

TEST(DtlsServer, CloseSendsCloseNotifyOnce) {
  Client client;
  Server server(client.fingerprint());
  handshake(client, server);
  ASSERT_EQ(server.dtls.state(), DtlsServer::State::connected);
  server.dtls.close();
  EXPECT_EQ(server.dtls.state(), DtlsServer::State::closed);
  ASSERT_EQ(server.to_client.size(), 1u);
  client.receive(server.to_client.front());
  EXPECT_TRUE(client.got_close_notify());
  server.to_client.clear();
  server.dtls.close();
  EXPECT_TRUE(server.to_client.empty());
  Datagram more = {23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 1, 0};
  EXPECT_EQ(server.dtls.feed(more.data(), more.size()), DtlsServer::State::closed);

  // Closing while still handshaking sends nothing (no session to close) and still ends it.
  Server fresh(client.fingerprint());
  fresh.dtls.close();
  EXPECT_EQ(fresh.dtls.state(), DtlsServer::State::closed);
  EXPECT_TRUE(fresh.to_client.empty());
}

TEST(DtlsServer, GarbageNeverConnectsNorCrashes) {
  std::mt19937 rng(2025);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 1500);
  for (int i = 0; i < 300; ++i) {
    Server server("sha-256 " + server_certificate()->fingerprint());
    for (int j = 0; j < 8; ++j) {
      Datagram d(static_cast<std::size_t>(length(rng)));
      for (auto& b : d) b = static_cast<std::uint8_t>(byte(rng));
      // Half of them shaped like a DTLS 1.2 epoch-0 record with a matching length, to reach the parsers.
      if (d.size() >= 13 && j % 2 == 0) {
        d[0] = static_cast<std::uint8_t>(20 + j % 4);
        d[1] = 0xfe;
        d[2] = 0xfd;
        d[3] = d[4] = 0;
        d[11] = static_cast<std::uint8_t>((d.size() - 13) >> 8);
        d[12] = static_cast<std::uint8_t>(d.size() - 13);
      }
      EXPECT_NE(server.dtls.feed(d.data(), d.size()), DtlsServer::State::connected);
      server.dtls.tick();
    }
    EXPECT_NE(server.dtls.state(), DtlsServer::State::connected);
  }
  Server server("sha-256 " + server_certificate()->fingerprint());
  EXPECT_EQ(server.dtls.feed(nullptr, 0), DtlsServer::State::handshaking);
}

TEST(DtlsServer, TruncatedOrCorruptRecordsAreDroppedOrFailButNeverConnect) {
  Client client;
  client.start();
  ASSERT_EQ(client.out.size(), 1u);
  const Datagram hello = client.out.front();
  client.out.clear();

  // Every truncation of the ClientHello: an incomplete record is dropped, as UDP loss would be; then the real
  // one still gets a handshake through.
  Server server(client.fingerprint());
  for (std::size_t n = 1; n < hello.size(); ++n) {
    EXPECT_EQ(server.dtls.feed(hello.data(), n), DtlsServer::State::handshaking) << n;
  }
  EXPECT_TRUE(server.to_client.empty());
  server.dtls.feed(hello.data(), hello.size());
  pump(client, server);
  EXPECT_EQ(server.dtls.state(), DtlsServer::State::connected) << server.dtls.error();

  // One byte changed anywhere: never connected (usually dropped or a handshake failure).
  std::mt19937 rng(7);
  for (std::size_t pos = 0; pos < hello.size(); ++pos) {
    Server s(client.fingerprint());
    Datagram bent = hello;
    bent[pos] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    EXPECT_NE(s.dtls.feed(bent.data(), bent.size()), DtlsServer::State::connected);
  }
}

TEST(DtlsServer, ThrowingSendIsTakenAsALostDatagram) {
  Client client;
  client.start();
  int calls = 0;
  DtlsServer server(server_certificate(), client.fingerprint(), [&calls](const std::uint8_t*, std::size_t) {
    ++calls;
    throw std::runtime_error("socket gone");
  });
  const Datagram& hello = client.out.front();
  EXPECT_EQ(server.feed(hello.data(), hello.size()), DtlsServer::State::handshaking);
  EXPECT_GT(calls, 0);
}

// A libsrtp session as the client would have it.
Datagram rtp_packet(std::uint16_t seq) {
  Datagram p(12 + 40);
  p[0] = 0x80;
  p[1] = 111;  // Opus
  p[2] = static_cast<std::uint8_t>(seq >> 8);
  p[3] = static_cast<std::uint8_t>(seq);
  std::uint32_t ts = 960u * seq, ssrc = 0x11223344;
  for (int i = 0; i < 4; ++i) {
    p[4 + i] = static_cast<std::uint8_t>(ts >> (24 - 8 * i));
    p[8 + i] = static_cast<std::uint8_t>(ssrc >> (24 - 8 * i));
  }
  for (std::size_t i = 12; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(i * 7 + seq);
  return p;
}

TEST(SrtpSession, WhatTheServerProtectsTheClientReadsAndTheOtherWayRound) {
  Client client;
  Server server(client.fingerprint());
  handshake(client, server);
  ASSERT_EQ(server.dtls.state(), DtlsServer::State::connected);

  SrtpSession srtp(server.dtls.keys());  // first: it initialises libsrtp for the sessions below too
  std::unique_ptr<srtp_ctx_t, SrtpFree> client_in(client_session(client.server_write_key(), ssrc_any_inbound));
  std::unique_ptr<srtp_ctx_t, SrtpFree> client_out(client_session(client.client_write_key(), ssrc_any_outbound));
  ASSERT_TRUE(client_in && client_out);

  for (std::uint16_t seq = 1; seq <= 3; ++seq) {
    Datagram plain = rtp_packet(seq);
    Datagram buf = plain;
    buf.resize(plain.size() + SrtpSession::kMaxOverhead);
    std::size_t n = srtp.protect_rtp(buf.data(), plain.size());
    ASSERT_EQ(n, plain.size() + 10) << seq;                                       // 80-bit tag
    EXPECT_TRUE(std::equal(plain.begin(), plain.begin() + 12, buf.begin()));      // header in the clear
    EXPECT_FALSE(std::equal(plain.begin() + 12, plain.end(), buf.begin() + 12));  // payload is not
    int len = static_cast<int>(n);
    ASSERT_EQ(srtp_unprotect(client_in.get(), buf.data(), &len), srtp_err_status_ok) << seq;
    ASSERT_EQ(static_cast<std::size_t>(len), plain.size());
    buf.resize(plain.size());
    EXPECT_EQ(buf, plain) << seq;
  }

  // A packet changed on the way does not authenticate; the genuine one still does afterwards.
  Datagram plain = rtp_packet(4);
  Datagram buf = plain;
  buf.resize(plain.size() + SrtpSession::kMaxOverhead);
  std::size_t n = srtp.protect_rtp(buf.data(), plain.size());
  ASSERT_GT(n, 0u);
  Datagram tampered(buf.begin(), buf.begin() + static_cast<long>(n));
  tampered[20] ^= 0x01;
  int len = static_cast<int>(tampered.size());
  EXPECT_EQ(srtp_unprotect(client_in.get(), tampered.data(), &len), srtp_err_status_auth_fail);
  len = static_cast<int>(n);
  EXPECT_EQ(srtp_unprotect(client_in.get(), buf.data(), &len), srtp_err_status_ok);

  // A retransmission (same sequence number, same payload) is protected again, not refused.
  Datagram again = plain;
  again.resize(plain.size() + SrtpSession::kMaxOverhead);
  EXPECT_EQ(srtp.protect_rtp(again.data(), plain.size()), n);

  // Not RTP at all: refused with 0.
  Datagram tiny = {0x80, 111, 0, 5};
  tiny.resize(tiny.size() + SrtpSession::kMaxOverhead);
  EXPECT_EQ(srtp.protect_rtp(tiny.data(), 4), 0u);
  EXPECT_EQ(srtp.protect_rtp(tiny.data(), 0), 0u);

  // RTCP from the client (a receiver report) comes out as it went in, once.
  Datagram rr(32);
  rr[0] = 0x81;  // V=2, one report block
  rr[1] = 201;
  rr[3] = 7;  // length in words minus one
  for (std::size_t i = 4; i < rr.size(); ++i) rr[i] = static_cast<std::uint8_t>(i * 13);
  Datagram wire = rr;
  wire.resize(rr.size() + SrtpSession::kMaxOverhead);
  len = static_cast<int>(rr.size());
  ASSERT_EQ(srtp_protect_rtcp(client_out.get(), wire.data(), &len), srtp_err_status_ok);
  ASSERT_EQ(len, static_cast<int>(rr.size() + 14));  // E flag + index, 80-bit tag
  wire.resize(static_cast<std::size_t>(len));
  Datagram replay = wire;
  Datagram bent = wire;
  bent[10] ^= 0x80;
  EXPECT_EQ(srtp.unprotect_rtcp(bent.data(), bent.size()), 0u);
  ASSERT_EQ(srtp.unprotect_rtcp(wire.data(), wire.size()), rr.size());
  wire.resize(rr.size());
  EXPECT_EQ(wire, rr);
  EXPECT_EQ(srtp.unprotect_rtcp(replay.data(), replay.size()), 0u);

  // RTCP from the server (a sender report) reaches the client.
  Datagram sr(28);
  sr[0] = 0x80;
  sr[1] = 200;
  sr[3] = 6;
  for (std::size_t i = 4; i < sr.size(); ++i) sr[i] = static_cast<std::uint8_t>(i * 3);
  Datagram out = sr;
  out.resize(sr.size() + SrtpSession::kMaxOverhead);
  std::size_t m = srtp.protect_rtcp(out.data(), sr.size());
  ASSERT_EQ(m, sr.size() + 14);
  len = static_cast<int>(m);
  ASSERT_EQ(srtp_unprotect_rtcp(client_in.get(), out.data(), &len), srtp_err_status_ok);
  out.resize(static_cast<std::size_t>(len));
  EXPECT_EQ(out, sr);
}

TEST(SrtpSession, PacketsStillDecryptAcrossTheSequenceNumbersWrapAndWithCsrcsAndExtensions) {
  Client client;
  Server server(client.fingerprint());
  handshake(client, server);
  ASSERT_EQ(server.dtls.state(), DtlsServer::State::connected);
  SrtpSession srtp(server.dtls.keys());
  std::unique_ptr<srtp_ctx_t, SrtpFree> client_in(client_session(client.server_write_key(), ssrc_any_inbound));
  ASSERT_TRUE(client_in);

  // A listener joining late in a long stream: its first packet near the end of the sequence space, then the wrap
  // (the rollover counter goes to 1 and the keystream changes with it).
  auto check = [&](const Datagram& plain, const char* what) {
    Datagram buf = plain;
    buf.resize(plain.size() + SrtpSession::kMaxOverhead);
    std::size_t n = srtp.protect_rtp(buf.data(), plain.size());
    ASSERT_EQ(n, plain.size() + 10) << what;
    int len = static_cast<int>(n);
    ASSERT_EQ(srtp_unprotect(client_in.get(), buf.data(), &len), srtp_err_status_ok) << what;
    buf.resize(static_cast<std::size_t>(len));
    EXPECT_EQ(buf, plain) << what;
  };
  for (std::uint32_t k = 0; k < 12; ++k) {
    std::uint16_t seq = static_cast<std::uint16_t>(65530 + k);
    check(rtp_packet(seq), ("sequence number " + std::to_string(seq)).c_str());
  }
  // Two CSRCs and a one-word header extension: both stay in the clear, the payload after them is encrypted.
  Datagram p = rtp_packet(7);
  p[0] = 0x80 | 0x10 | 2;
  Datagram ext = {0, 0, 0, 1, 0, 0, 0, 2, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0};
  p.insert(p.begin() + 12, ext.begin(), ext.end());
  check(p, "CSRCs and an extension");
  Datagram cut = p;
  cut.resize(12 + 8 + 2);  // the extension's header cut short
  cut.resize(cut.size() + SrtpSession::kMaxOverhead);
  EXPECT_EQ(srtp.protect_rtp(cut.data(), 12 + 8 + 2), 0u);
}

TEST(DtlsServer, TickResendsALostFlightAfterTheTimer) {
  Client client;
  Server server(client.fingerprint());
  client.start();
  const Datagram hello = client.out.front();
  client.out.clear();
  auto sent_at = std::chrono::steady_clock::now();
  server.dtls.feed(hello.data(), hello.size());
  ASSERT_FALSE(server.to_client.empty());
  server.to_client.clear();  // the first flight is lost

  server.dtls.tick();  // too early: nothing
  EXPECT_TRUE(server.to_client.empty());
  while (server.to_client.empty() && std::chrono::steady_clock::now() - sent_at < std::chrono::seconds(3)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    server.dtls.tick();
  }
  auto waited = std::chrono::steady_clock::now() - sent_at;
  ASSERT_FALSE(server.to_client.empty());
  EXPECT_GE(waited, std::chrono::milliseconds(900));  // OpenSSL's first timeout is 1 s
  // The resent flight starts with the ServerHello (handshake record, message type 2).
  const Datagram& first = server.to_client.front();
  ASSERT_GT(first.size(), 13u);
  EXPECT_EQ(first[0], 22);
  EXPECT_EQ(first[13], 2);

  pump(client, server);
  EXPECT_EQ(server.dtls.state(), DtlsServer::State::connected) << server.dtls.error();
  EXPECT_TRUE(client.connected());
  EXPECT_EQ(server.dtls.keys().local, client.server_write_key());
}

TEST(DtlsServer, LostFinalFlightIsResentWhenTheClientRepeatsItsFinished) {
  Client client(ClientOptions{.fast_timer = true});
  Server server(client.fingerprint());
  client.start();
  // ClientHello → server's flight → the client's second flight.
  server.dtls.feed(client.out.front().data(), client.out.front().size());
  client.out.pop_front();
  while (!server.to_client.empty()) {
    client.receive(server.to_client.front());
    server.to_client.pop_front();
  }
  ASSERT_FALSE(client.out.empty());
  while (!client.out.empty()) {
    server.dtls.feed(client.out.front().data(), client.out.front().size());
    client.out.pop_front();
  }
  ASSERT_EQ(server.dtls.state(), DtlsServer::State::connected) << server.dtls.error();
  ASSERT_FALSE(server.to_client.empty());
  server.to_client.clear();  // the server's ChangeCipherSpec and Finished are lost
  EXPECT_FALSE(client.connected());

  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  ASSERT_TRUE(client.retransmit_if_due());
  ASSERT_FALSE(client.out.empty());
  pump(client, server);
  EXPECT_EQ(server.dtls.state(), DtlsServer::State::connected) << server.dtls.error();
  EXPECT_TRUE(client.connected());
  EXPECT_EQ(server.dtls.keys().local, client.server_write_key());
  EXPECT_EQ(server.dtls.keys().remote, client.client_write_key());
}

}  // namespace
}  // namespace fc25::rtc
