// The shared transport over real UDP sockets on loopback, with a listener made of the tests' own STUN requests, an
// OpenSSL DTLS client and libsrtp: it connects as a browser would, hears what the sender sends, and learns the end.
#include "rtc/transport.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <regex>
#include <thread>

#include "dtls_client.hpp"
#include "stun_reference.hpp"

namespace fc25::rtc {
namespace {

using namespace testing;

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string answer_field(const std::string& sdp, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(sdp, m, std::regex(key + "([^\r\n]+)"))) return "";
  return m[1];
}

std::string listener_offer(const std::string& fingerprint, const char* setup = "actpass") {
  return std::string("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n") +
         "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:lis1\r\n" +
         "a=ice-pwd:listenerpasswordlistener\r\na=fingerprint:" + fingerprint + "\r\na=setup:" + setup +
         "\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n";
}

// A listener's UDP socket on loopback, sending to the answer's candidate.
struct Udp {
  int fd = -1;
  sockaddr_in to{};
  std::uint16_t port = 0;
  explicit Udp(std::uint16_t server_port, int rcvbuf = 0) {
    fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in me{};
    me.sin_family = AF_INET;
    me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof me);
    socklen_t len = sizeof me;
    getsockname(fd, reinterpret_cast<sockaddr*>(&me), &len);
    port = ntohs(me.sin_port);
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(server_port);
  }
  ~Udp() { ::close(fd); }
  void send(const Datagram& d) const {
    ::sendto(fd, d.data(), d.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }
  std::optional<Datagram> receive(int timeout_ms) const {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
    Datagram d(2048);
    auto n = ::recv(fd, d.data(), d.size(), 0);
    if (n <= 0) return std::nullopt;
    d.resize(static_cast<std::size_t>(n));
    return d;
  }
};

// One listener connecting: its offer answered, its check answered, its DTLS handshake done.
struct Listener {
  Client dtls;
  Transport::Opened opened;
  std::unique_ptr<Udp> udp;
  std::string ufrag, pwd;
  std::atomic<int> connected{0}, failed{0};
  std::string why;

  Listener(Transport& t, std::uint32_t ssrc, int rcvbuf = 0) {
    ConnectionEvents ev{[this] { ++connected; },
                        [this](std::string w) {
                          why = std::move(w);
                          ++failed;
                        }};
    opened = t.open("test", listener_offer(dtls.fingerprint()), ssrc, "stream", std::move(ev));
    ufrag = answer_field(opened.answer, "a=ice-ufrag:");
    pwd = answer_field(opened.answer, "a=ice-pwd:");
    std::smatch m;
    std::regex_search(opened.answer, m, std::regex("a=candidate:\\S+ 1 udp \\d+ 127\\.0\\.0\\.1 (\\d+) typ host"));
    udp = std::make_unique<Udp>(static_cast<std::uint16_t>(std::stoi(m[1])), rcvbuf);
  }

  Bytes check(const std::string& password, bool nominate = true) const {
    std::vector<Attr> attrs{{0x0006, ufrag + ":lis1"}, {0x0024, be32(0x6e0001ff)}};
    if (nominate) attrs.push_back({0x0025, ""});
    return request(attrs, password, true);
  }

  // Check, then the handshake, as a browser does once the answer is in.
  bool connect() {
    udp->send(check(pwd));
    auto r = udp->receive(2000);
    if (!r || (*r)[0] != 0x01 || (*r)[1] != 0x01) return false;
    dtls.start();
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < end && !(dtls.connected() && connected)) {
      while (!dtls.out.empty()) {
        udp->send(dtls.out.front());
        dtls.out.pop_front();
      }
      if (auto d = udp->receive(50)) dtls.receive(*d);
    }
    return dtls.connected() && connected == 1;
  }
};

std::shared_ptr<Transport> loopback_transport(int senders = -1, std::size_t inline_listeners = 256) {
  TransportConfig c;
  c.bind = {"127.0.0.1"};
  c.senders = senders;
  c.inline_listeners = inline_listeners;
  return Transport::create(c);
}

// The sequence numbers of the RTP packets a listener has received so far, decrypted.
std::vector<std::uint16_t> heard_sequence(Listener& l, srtp_ctx_t* in, int timeout_ms) {
  std::vector<std::uint16_t> seqs;
  while (auto d = l.udp->receive(timeout_ms)) {
    int len = static_cast<int>(d->size());
    if ((*d)[1] == 200) continue;  // sender reports
    if (srtp_unprotect(in, d->data(), &len) != srtp_err_status_ok) continue;
    seqs.push_back(static_cast<std::uint16_t>((*d)[2] << 8 | (*d)[3]));
  }
  return seqs;
}

struct SrtpFree {
  void operator()(srtp_ctx_t* s) const { srtp_dealloc(s); }
};

TEST(Transport, AListenerConnectsHearsEveryPacketInOrderAndLearnsTheEnd) {
  auto t = loopback_transport();
  Listener l(*t, 0x11223344);
  EXPECT_EQ(t->connections(), 1u);
  EXPECT_NE(l.opened.answer.find("a=ice-lite"), std::string::npos);
  ASSERT_EQ(l.opened.candidates.size(), 1u);
  EXPECT_EQ(l.opened.mid, "0");

  // A check signed with another password is refused: 401.
  l.udp->send(l.check("not-the-password-at-all"));
  auto refused = l.udp->receive(2000);
  ASSERT_TRUE(refused);
  EXPECT_EQ((*refused)[0], 0x01);
  EXPECT_EQ((*refused)[1], 0x11);

  ASSERT_TRUE(l.connect());
  EXPECT_TRUE(l.opened.connection->ready());

  StreamSender sender(0x11223344);
  auto to = std::make_shared<const Listeners>(Listeners{l.opened.connection});
  for (std::uint8_t i = 0; i < 5; ++i) {
    std::vector<std::uint8_t> payload(60, i);
    sender.send(*t, to, payload.data(), payload.size(), std::uint64_t{i} * 20'000'000);
  }
  std::unique_ptr<srtp_ctx_t, SrtpFree> in(client_session(l.dtls.server_write_key(), ssrc_any_inbound));
  int heard = 0, reports = 0;
  std::uint16_t first_seq = 0;
  std::uint32_t first_ts = 0;
  while (auto d = l.udp->receive(500)) {
    int len = static_cast<int>(d->size());
    if ((*d)[1] == 200) {  // the sender report that goes with the first packet
      ASSERT_EQ(srtp_unprotect_rtcp(in.get(), d->data(), &len), srtp_err_status_ok);
      ++reports;
      continue;
    }
    ASSERT_EQ(srtp_unprotect(in.get(), d->data(), &len), srtp_err_status_ok);
    ASSERT_EQ(len, 12 + 60);
    const auto* p = d->data();
    std::uint16_t seq = static_cast<std::uint16_t>(p[2] << 8 | p[3]);
    std::uint32_t ts = std::uint32_t{p[4]} << 24 | std::uint32_t{p[5]} << 16 | std::uint32_t{p[6]} << 8 | p[7];
    std::uint32_t ssrc = std::uint32_t{p[8]} << 24 | std::uint32_t{p[9]} << 16 | std::uint32_t{p[10]} << 8 | p[11];
    if (heard == 0) first_seq = seq, first_ts = ts;
    EXPECT_EQ(p[0], 0x80);
    EXPECT_EQ(p[1], 111);
    EXPECT_EQ(ssrc, 0x11223344u);
    EXPECT_EQ(static_cast<std::uint16_t>(seq - first_seq), heard);
    EXPECT_EQ(ts - first_ts, static_cast<std::uint32_t>(960 * heard));  // 20 ms at 48 kHz
    EXPECT_EQ(p[12], heard);
    ++heard;
  }
  EXPECT_EQ(heard, 5);
  EXPECT_EQ(reports, 1);
  EXPECT_EQ(l.opened.connection->counts().sent, 5u);

  t->close(l.opened.connection);
  EXPECT_EQ(t->connections(), 0u);
  auto alert = l.udp->receive(2000);
  ASSERT_TRUE(alert);
  l.dtls.receive(*alert);
  EXPECT_TRUE(l.dtls.got_close_notify());
  EXPECT_EQ(l.failed, 0) << "closing is not a failure: " << l.why;
  // Packets to a closed connection go nowhere.
  std::vector<std::uint8_t> payload(60, 9);
  sender.send(*t, to, payload.data(), payload.size(), 200'000'000);
  EXPECT_EQ(l.opened.connection->counts().sent, 5u);
}

TEST(Transport, AListenerThatStopsReadingLosesAloneTheOthersLoseNothing) {
  auto t = loopback_transport();
  Listener reading(*t, 7), stuck(*t, 7, 4096);  // the second never reads, with the smallest socket buffer
  ASSERT_TRUE(reading.connect());
  ASSERT_TRUE(stuck.connect());
  StreamSender sender(7);
  auto to = std::make_shared<const Listeners>(Listeners{stuck.opened.connection, reading.opened.connection});
  std::vector<std::uint8_t> payload(120, 1);
  int heard = 0;
  for (int i = 0; i < 400; ++i) {
    sender.send(*t, to, payload.data(), payload.size(), std::uint64_t(i) * 20'000'000);
    while (auto d = reading.udp->receive(0))
      if ((*d)[1] != 200) ++heard;
  }
  while (auto d = reading.udp->receive(200))
    if ((*d)[1] != 200) ++heard;
  EXPECT_EQ(heard, 400);
  EXPECT_EQ(reading.opened.connection->counts().sent, 400u);
  EXPECT_EQ(stuck.opened.connection->counts().sent + stuck.opened.connection->counts().dropped, 400u);
}

TEST(Transport, ALargeAudienceIsSharedWithTheSenderThreadsAndEachListenerHearsEveryPacketInOrder) {
  constexpr std::size_t kInline = 20;
  auto t = loopback_transport(2, kInline);
  EXPECT_EQ(t->senders(), 2u);
  constexpr std::size_t kListeners = kInline + 40;  // 20 on the stream's thread, 40 shared by it and two others
  std::vector<std::unique_ptr<Listener>> ls;
  Listeners conns;
  for (std::size_t i = 0; i < kListeners; ++i) {
    ls.push_back(std::make_unique<Listener>(*t, 5, 1 << 20));
    ASSERT_TRUE(ls.back()->connect()) << "listener " << i;
    conns.push_back(ls.back()->opened.connection);
  }
  auto to = std::make_shared<const Listeners>(std::move(conns));
  StreamSender sender(5);
  constexpr int kPackets = 30;
  // When a packet is reported sent, every listener's copy of it is with the kernel.
  std::atomic<int> reported{0}, early{0};
  std::vector<std::uint8_t> payload(80, 3);
  for (int i = 0; i < kPackets; ++i) {
    sender.send(*t, to, payload.data(), payload.size(), std::uint64_t(i) * 20'000'000, [&, i] {
      for (const auto& c : *to) early += c->counts().sent < static_cast<std::uint64_t>(i + 1) ? 1 : 0;
      ++reported;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (int w = 0; w < 200 && reported < kPackets; ++w) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(reported, kPackets);
  EXPECT_EQ(early, 0);
  for (std::size_t i = 0; i < kListeners; ++i) {
    std::unique_ptr<srtp_ctx_t, SrtpFree> in(client_session(ls[i]->dtls.server_write_key(), ssrc_any_inbound));
    auto seqs = heard_sequence(*ls[i], in.get(), 0);  // on loopback, all delivered by the time it was reported
    ASSERT_EQ(seqs.size(), static_cast<std::size_t>(kPackets)) << "listener " << i;
    for (std::size_t k = 1; k < seqs.size(); ++k) {
      EXPECT_EQ(static_cast<std::uint16_t>(seqs[k] - seqs[0]), k) << "listener " << i << " packet " << k;
    }
    EXPECT_EQ(ls[i]->opened.connection->counts().sent, static_cast<std::uint64_t>(kPackets));
  }
}

TEST(Transport, OffersItCannotAnswerAreRefusedAndHoldNothing) {
  auto t = loopback_transport();
  Client c;
  EXPECT_THROW(t->open("x", listener_offer(c.fingerprint(), "passive"), 1, "s", {}), SdpError);
  EXPECT_THROW(t->open("x", listener_offer("sha-256 00:11"), 1, "s", {}), std::invalid_argument);
  EXPECT_THROW(t->open("x", "v=0\r\n", 1, "s", {}), SdpError);
  EXPECT_EQ(t->connections(), 0u);
}

TEST(Transport, ChecksForNoConnectionAreRefused) {
  auto t = loopback_transport();
  Listener l(*t, 1);
  t->close(l.opened.connection);
  l.udp->send(l.check(l.pwd));
  auto r = l.udp->receive(2000);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[1], 0x11) << "a closed connection's ufrag is unknown: 401";
}

}  // namespace
}  // namespace fc25::rtc
