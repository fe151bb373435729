// One ICE-lite agent for every listener: the I/O thread reads the shared sockets and tells datagrams apart by their
// first byte (RFC 7983: 0-3 STUN, 20-63 DTLS, 128-191 RTP/RTCP). A connectivity check finds its connection by our
// ufrag and teaches us the listener's address; DTLS and RTCP find theirs by that address. Senders only read what
// the I/O thread published before a connection became ready.
#include "rtc/transport.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <sodium.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/guard.hpp"
#include "core/log.hpp"
#include "core/thread.hpp"
#include "core/time.hpp"
#include "rtc/bytes.hpp"
#include "rtc/dtls.hpp"
#include "rtc/srtp.hpp"
#include "rtc/stun.hpp"

namespace fc25::rtc {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
// A connection that has not finished ICE and DTLS by then has failed; one that sent no check for as long has gone
// (browsers refresh consent every ~5 s, RFC 7675).
constexpr std::int64_t kSetupTimeout = 30 * kSecond;
constexpr std::int64_t kConsentTimeout = 30 * kSecond;
constexpr std::int64_t kSenderReportEvery = 5 * kSecond / 2;
constexpr std::size_t kMaxPacket = 1500;

std::shared_ptr<spdlog::logger> log() { return core::logger("rtc"); }

std::string addr_text(const sockaddr_storage& a) {
  char host[INET6_ADDRSTRLEN] = "?";
  std::uint16_t port = 0;
  if (a.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

// (socket, IPv4 address, port) of a listener as the I/O thread sees it.
using AddrKey = std::tuple<int, std::uint32_t, std::uint16_t>;
AddrKey key_of(int fd, const sockaddr_storage& a) {
  auto* in = reinterpret_cast<const sockaddr_in*>(&a);
  return {fd, in->sin_addr.s_addr, in->sin_port};
}

using bytes::put16, bytes::put32;

}  // namespace

struct Connection::Impl {
  // Set by open, read-only afterwards.
  std::string local_ufrag, local_pwd, remote_ufrag, peer_fingerprint;
  int pt = 111;
  std::uint32_t ssrc = 0;
  std::string cname;
  ConnectionEvents events;
  std::int64_t opened_ns = 0;
  // The I/O thread's; fd and remote are published to senders by ready_ (release) and never change after.
  int fd = -1;
  sockaddr_storage remote{};
  bool has_remote = false;
  std::unique_ptr<DtlsServer> dtls;
  std::unique_ptr<SrtpSession> srtp;  // protect_*: senders; unprotect_rtcp: the I/O thread
  std::int64_t last_check_ns = 0;
  bool ended = false;                 // failed or closed: nothing more happens
  std::uint64_t rtcp_in = 0;
  // The sending thread's.
  std::uint64_t packets = 0, octets = 0;
  std::int64_t next_report_ns = 0;
  // The thread that sends to it (0: the stream's own, k: sender thread k), set once by the stream's thread.
  std::atomic<int> lane{-1};
};

Connection::Connection(std::string label) : label_(std::move(label)), impl_(std::make_unique<Impl>()) {}
Connection::~Connection() = default;

// ---- sending ----

// One packet of a stream, shared by the threads sending it.
struct OutPacket {
  std::array<std::uint8_t, kMaxPacket> payload;
  std::size_t size = 0;
  std::uint16_t seq = 0;
  std::uint32_t ts = 0, ssrc = 0;
  std::int64_t now = 0;
  std::shared_ptr<const Listeners> to;
  std::atomic<int> left{0};  // threads still sending it
  std::function<void()> sent;

  void done() {
    if (left.fetch_sub(1, std::memory_order_acq_rel) == 1 && sent) core::guarded("packet sent", [&] { sent(); });
  }
};

// Copies on their way to the kernel, for one thread.
struct SendBatch {
  static constexpr std::size_t kSize = 64;
  std::array<std::array<std::uint8_t, kMaxPacket>, kSize> buf;
  std::array<iovec, kSize> iov;
  std::array<mmsghdr, kSize> msg;
  std::array<Connection*, kSize> who;
  std::size_t n = 0;
  int fd = -1;

  void flush() {
    std::size_t done = 0;
    while (done < n) {
      int k = ::sendmmsg(fd, &msg[done], static_cast<unsigned>(n - done), MSG_DONTWAIT);
      if (k < 0) {
        // The first message failed (its socket buffer full, or its destination unreachable): it alone is lost.
        who[done]->dropped_.fetch_add(1, std::memory_order_relaxed);
        ++done;
        continue;
      }
      for (int i = 0; i < k; ++i) who[done + i]->sent_.fetch_add(1, std::memory_order_relaxed);
      done += static_cast<std::size_t>(k);
    }
    n = 0;
  }

  // The packet, protected with c's keys, into the batch (and c's sender report when one is due).
  void add(Connection& c, const OutPacket& p) {
    auto& im = *c.impl_;
    if (n && fd != im.fd) flush();
    fd = im.fd;
    auto* d = buf[n].data();
    d[0] = 0x80;
    d[1] = static_cast<std::uint8_t>(im.pt & 0x7f);
    put16(d + 2, p.seq);
    put32(d + 4, p.ts);
    put32(d + 8, p.ssrc);
    std::memcpy(d + 12, p.payload.data(), p.size);
    std::size_t len = im.srtp->protect_rtp(d, 12 + p.size);
    if (len == 0) {
      c.dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    iov[n] = {d, len};
    msg[n] = {};
    msg[n].msg_hdr.msg_name = &im.remote;
    msg[n].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    msg[n].msg_hdr.msg_iov = &iov[n];
    msg[n].msg_hdr.msg_iovlen = 1;
    who[n] = &c;
    ++n;
    ++im.packets;
    im.octets += p.size;
    if (n == kSize) flush();
    if (p.now >= im.next_report_ns) {
      im.next_report_ns = p.now + kSenderReportEvery;
      sender_report(c, p);
    }
  }

  // Sender report + SDES CNAME (RFC 3550 6.4.1, 6.5), so the listener can place the stream on a wall clock.
  static void sender_report(Connection& c, const OutPacket& p) {
    auto& im = *c.impl_;
    std::array<std::uint8_t, 128 + SrtpSession::kMaxOverhead> r{};
    auto wall = std::chrono::system_clock::now().time_since_epoch();
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count();
    std::uint64_t secs = static_cast<std::uint64_t>(ns / kSecond) + 2208988800ULL;  // NTP era from 1900
    std::uint64_t frac = (static_cast<std::uint64_t>(ns % kSecond) << 32) / kSecond;
    r[0] = 0x80; r[1] = 200; put16(&r[2], 6);
    put32(&r[4], p.ssrc);
    put32(&r[8], static_cast<std::uint32_t>(secs));
    put32(&r[12], static_cast<std::uint32_t>(frac));
    put32(&r[16], p.ts);
    put32(&r[20], static_cast<std::uint32_t>(im.packets));
    put32(&r[24], static_cast<std::uint32_t>(im.octets));
    std::size_t at = 28;
    const std::size_t name = std::min<std::size_t>(im.cname.size(), 64);
    std::size_t chunk = 4 + 2 + name + 1;             // SSRC, type + length, text, end of items
    std::size_t padded = (chunk + 3) / 4 * 4;
    r[at] = 0x81; r[at + 1] = 202; put16(&r[at + 2], static_cast<std::uint16_t>(padded / 4));
    put32(&r[at + 4], p.ssrc);
    r[at + 8] = 1;
    r[at + 9] = static_cast<std::uint8_t>(name);
    std::memcpy(&r[at + 10], im.cname.data(), name);
    at += 4 + padded;
    if (auto n = im.srtp->protect_rtcp(r.data(), at)) {
      ::sendto(im.fd, r.data(), n, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&im.remote), sizeof(sockaddr_in));
    }
  }

  // Every ready listener of the packet's that is sent to by `lane`.
  void send(const OutPacket& p, int lane) {
    for (const auto& c : *p.to) {
      if (c && c->ready() && c->impl_->lane.load(std::memory_order_relaxed) == lane) add(*c, p);
    }
    if (n) flush();
  }
};

// A sender thread: packets of any stream, in the order they were handed over, to the listeners it was given.
struct SendLane {
  static constexpr std::size_t kQueue = 50;  // one second of one stream: a lane further behind drops, not queues
  int index = 0;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<OutPacket>> queue;
  bool stopping = false;
  std::thread thread;
  SendBatch batch;  // the thread's own

  bool post(std::shared_ptr<OutPacket> p) {
    {
      std::lock_guard lock(mu);
      if (queue.size() >= kQueue) return false;
      queue.push_back(std::move(p));
    }
    cv.notify_one();
    return true;
  }

  void run() {
    for (;;) {
      std::shared_ptr<OutPacket> p;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        p = std::move(queue.front());
        queue.pop_front();
      }
      core::guarded("listener send", [&] { batch.send(*p, index); });
      p->done();
    }
  }

  // The packet lost for this lane's listeners: counted as each one's.
  static void refuse(OutPacket& p, int lane) {
    for (const auto& c : *p.to) {
      if (c && c->ready() && c->impl_->lane.load(std::memory_order_relaxed) == lane) {
        c->dropped_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    p.done();
  }
};


struct Transport::Impl {
  struct Socket {
    int fd = -1;
    Candidate candidate;
  };
  std::vector<Socket> sockets;
  std::vector<Candidate> candidates;
  int epfd = -1, wake = -1, timer = -1;
  std::thread io;
  std::atomic<bool> stopping{false};
  std::shared_ptr<const Certificate> certificate;
  std::vector<std::unique_ptr<SendLane>> lanes;
  std::size_t inline_listeners = 0;

  mutable std::mutex mu;  // the maps and the command queue; never held while calling out
  std::unordered_map<std::string, std::shared_ptr<Connection>> by_ufrag;
  std::map<AddrKey, std::shared_ptr<Connection>> by_addr;
  std::vector<std::shared_ptr<Connection>> to_close;

  ~Impl() {
    stopping = true;
    if (wake >= 0) {
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(wake, &one, sizeof one);
    }
    if (io.joinable()) io.join();
    for (auto& l : lanes) {
      {
        std::lock_guard lock(l->mu);
        l->stopping = true;
      }
      l->cv.notify_one();
      if (l->thread.joinable()) l->thread.join();
    }
    for (auto& s : sockets) ::close(s.fd);
    for (int fd : {epfd, wake, timer})
      if (fd >= 0) ::close(fd);
  }

  void bind_all(const TransportConfig& cfg) {
    std::vector<std::string> addrs = cfg.bind;
    if (addrs.empty()) {
      ifaddrs* list = nullptr;
      if (getifaddrs(&list) == 0) {
        for (auto* i = list; i; i = i->ifa_next) {
          if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP)) continue;
          if (i->ifa_flags & IFF_LOOPBACK) continue;
          char host[INET_ADDRSTRLEN];
          inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, host, sizeof host);
          if (std::find(addrs.begin(), addrs.end(), host) == addrs.end()) addrs.push_back(host);
        }
        freeifaddrs(list);
      }
      if (addrs.empty()) addrs.push_back("127.0.0.1");
    }
    for (const auto& a : addrs) {
      sockaddr_in in{};
      in.sin_family = AF_INET;
      in.sin_port = htons(cfg.port);
      if (inet_pton(AF_INET, a.c_str(), &in.sin_addr) != 1) {
        throw std::runtime_error("the listeners' media address '" + a + "' is not an IPv4 address");
      }
      int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) throw std::runtime_error(std::string("cannot open a UDP socket: ") + std::strerror(errno));
      // Room for a burst of one packet to every listener of several streams: the kernel, not we, queues them.
      int sndbuf = 8 << 20, rcvbuf = 2 << 20;
      if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      }
      if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
      }
      if (::bind(fd, reinterpret_cast<sockaddr*>(&in), sizeof in) != 0) {
        int e = errno;
        ::close(fd);
        throw std::runtime_error("cannot bind the listeners' media socket to " + a + ":" + std::to_string(cfg.port) +
                                 ": " + std::strerror(e));
      }
      socklen_t len = sizeof in;
      getsockname(fd, reinterpret_cast<sockaddr*>(&in), &len);
      Socket s{fd, Candidate{cfg.public_address.empty() ? a : cfg.public_address, ntohs(in.sin_port)}};
      sockets.push_back(s);
      // Behind a 1:1 NAT every socket is reached at the one public address: announce the first.
      if (cfg.public_address.empty() || candidates.empty()) candidates.push_back(s.candidate);
    }
  }

  void start(const TransportConfig& cfg) {
    inline_listeners = cfg.inline_listeners;
    int n = cfg.senders >= 0 ? cfg.senders : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) - 1;
    for (int i = 1; i <= n; ++i) {
      auto lane = std::make_unique<SendLane>();
      lane->index = i;
      // Normal scheduling: a large audience's copies must not starve signalling and joins (the stream's own
      // thread, which sends to its first listeners, keeps its real-time priority).
      lane->thread = std::thread([l = lane.get()] {
        core::guarded("rtc sender setup", [&] { core::name_and_prioritise_thread("fc25-send-" + std::to_string(l->index), 0); });
        core::run_guarded("rtc sender", [l] { l->run(); });
      });
      lanes.push_back(std::move(lane));
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (epfd < 0 || wake < 0 || timer < 0) throw std::runtime_error("cannot create the media I/O thread's descriptors");
    itimerspec every{{0, 50'000'000}, {0, 50'000'000}};
    timerfd_settime(timer, 0, &every, nullptr);
    auto add = [&](int fd) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    };
    for (auto& s : sockets) add(s.fd);
    add(wake);
    add(timer);
    io = std::thread([this] {
      core::guarded("rtc thread setup", [] { core::name_and_prioritise_thread("fc25-rtc-io", 0); });
      core::run_guarded("rtc I/O loop", [this] { loop(); });
    });
  }

  void loop() {
    std::array<epoll_event, 16> events;
    std::int64_t next_sweep = 0;
    while (!stopping) {
      int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), 200);
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == wake || fd == timer) {
          std::uint64_t v;
          [[maybe_unused]] auto r = ::read(fd, &v, sizeof v);
          if (fd == wake) run_closes();
          else tick(next_sweep);
        } else {
          read_socket(fd);
        }
      }
    }
  }

  void read_socket(int fd) {
    std::array<std::uint8_t, 2048> buf;
    for (int budget = 256; budget > 0; --budget) {
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) return;  // EAGAIN: all read
      if (n == 0 || from.ss_family != AF_INET) continue;
      core::guarded("rtc datagram", [&] { datagram(fd, from, buf.data(), static_cast<std::size_t>(n)); });
    }
  }

  std::shared_ptr<Connection> by_address(int fd, const sockaddr_storage& from) {
    std::lock_guard lock(mu);
    auto it = by_addr.find(key_of(fd, from));
    return it == by_addr.end() ? nullptr : it->second;
  }

  void datagram(int fd, const sockaddr_storage& from, std::uint8_t* data, std::size_t size) {
    std::uint8_t first = data[0];
    if (first <= 3) {
      stun(fd, from, data, size);
    } else if (first >= 20 && first <= 63) {
      if (auto c = by_address(fd, from)) dtls(*c, data, size);
    } else if (first >= 128 && first <= 191 && size >= 8 && data[1] >= 192 && data[1] <= 223) {
      // RTCP from the listener (receiver reports): authenticated, then only counted.
      auto c = by_address(fd, from);
      if (c && c->ready() && c->impl_->srtp->unprotect_rtcp(data, size) > 0) ++c->impl_->rtcp_in;
    }
  }

  void stun(int fd, const sockaddr_storage& from, const std::uint8_t* data, std::size_t size) {
    auto req = stun::parse_binding_request(data, size);
    if (!req) return;
    std::array<std::uint8_t, 512> out;
    auto colon = req->username.find(':');
    std::shared_ptr<Connection> c;
    if (colon != std::string::npos) {
      std::lock_guard lock(mu);
      auto it = by_ufrag.find(req->username.substr(0, colon));
      if (it != by_ufrag.end()) c = it->second;
    }
    if (!c || req->username.substr(colon + 1) != c->impl_->remote_ufrag ||
        !stun::check_integrity(data, size, c->impl_->local_pwd)) {
      // RFC 8445 7.3: a request that is not ours is answered 401 (no connection, or a wrong signature).
      if (auto n = stun::write_binding_error(req->transaction, 401, "Unauthorized", out.data(), out.size())) {
        ::sendto(fd, out.data(), n, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&from), sizeof(sockaddr_in));
      }
      return;
    }
    auto& im = *c->impl_;
    if (auto n = stun::write_binding_success(*req, from, im.local_pwd, out.data(), out.size())) {
      ::sendto(fd, out.data(), n, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&from), sizeof(sockaddr_in));
    }
    im.last_check_ns = core::steady_ns();
    // The address a listener's checks come from is where its media goes: the first one, or the one it nominates,
    // until DTLS starts. A connection that is ready keeps its address.
    if (im.ended || c->ready() || (im.has_remote && !req->use_candidate)) return;
    std::lock_guard lock(mu);
    if (im.has_remote) by_addr.erase(key_of(im.fd, im.remote));
    im.fd = fd;
    im.remote = from;
    im.has_remote = true;
    by_addr[key_of(fd, from)] = c;
    log()->debug("{}: checks from {}{}", c->label(), addr_text(from), req->use_candidate ? " (nominated)" : "");
  }

  void dtls(Connection& c, const std::uint8_t* data, std::size_t size) {
    auto& im = *c.impl_;
    if (im.ended) return;
    auto state = im.dtls->feed(data, size);
    if (state == DtlsServer::State::connected && !im.srtp) {
      try {
        im.srtp = std::make_unique<SrtpSession>(im.dtls->keys());
      } catch (const std::exception& e) {
        // Ended and told, not left connected with nothing to send through.
        log()->warn("{}: no SRTP session: {}", c.label(), e.what());
        fail(c, std::string("SRTP could not be set up: ") + e.what());
        return;
      }
      c.ready_.store(true, std::memory_order_release);
      log()->debug("{}: DTLS done with {}", c.label(), addr_text(im.remote));
      if (im.events.connected) core::guarded("rtc connected event", [&] { im.events.connected(); });
    } else if (state == DtlsServer::State::failed) {
      fail(c, "DTLS failed: " + im.dtls->error());
    } else if (state == DtlsServer::State::closed) {
      fail(c, "the listener closed its connection");
    }
  }

  // The connection's end from our side of the wire: no more events after this one.
  void fail(Connection& c, const std::string& why) {
    auto& im = *c.impl_;
    if (im.ended) return;
    im.ended = true;
    c.ready_.store(false, std::memory_order_release);
    forget(c);
    log()->debug("{}: {}", c.label(), why);
    if (im.events.failed) core::guarded("rtc failed event", [&] { im.events.failed(why); });
  }

  void forget(Connection& c) {
    auto& im = *c.impl_;
    std::lock_guard lock(mu);
    auto it = by_ufrag.find(im.local_ufrag);
    if (it != by_ufrag.end() && it->second.get() == &c) by_ufrag.erase(it);
    if (im.has_remote) {
      auto a = by_addr.find(key_of(im.fd, im.remote));
      if (a != by_addr.end() && a->second.get() == &c) by_addr.erase(a);
    }
  }

  void run_closes() {
    std::vector<std::shared_ptr<Connection>> closing;
    {
      std::lock_guard lock(mu);
      closing.swap(to_close);
    }
    for (auto& c : closing) {
      auto& im = *c->impl_;
      if (im.dtls && !im.ended) im.dtls->close();
      im.ended = true;
    }
  }

  void tick(std::int64_t& next_sweep) {
    std::vector<std::shared_ptr<Connection>> all;
    {
      std::lock_guard lock(mu);
      all.reserve(by_ufrag.size());
      for (auto& [u, c] : by_ufrag) all.push_back(c);
    }
    auto now = core::steady_ns();
    bool sweep = now >= next_sweep;
    if (sweep) next_sweep = now + kSecond;
    for (auto& c : all) {
      auto& im = *c->impl_;
      if (im.ended) continue;
      if (!c->ready() && im.has_remote) im.dtls->tick();
      if (!sweep) continue;
      if (!c->ready() && now - im.opened_ns > kSetupTimeout) {
        fail(*c, "ICE and DTLS did not complete within 30 s");
      } else if (c->ready() && now - im.last_check_ns > kConsentTimeout) {
        fail(*c, "the listener stopped its connectivity checks (no consent for 30 s)");
      }
    }
  }
};

std::shared_ptr<Transport> Transport::create(const TransportConfig& config) {
  std::shared_ptr<Transport> t(new Transport());
  t->impl_->certificate = Certificate::generate();
  t->impl_->bind_all(config);
  t->impl_->start(config);
  std::string where;
  for (auto& c : t->impl_->candidates) where += (where.empty() ? "" : ", ") + c.address + ":" + std::to_string(c.port);
  log()->info("listeners' media on udp {}, {} sender thread(s) beside each stream's own", where, t->impl_->lanes.size());
  return t;
}

Transport::Transport() : impl_(std::make_unique<Impl>()) {}
Transport::~Transport() = default;

Transport::Opened Transport::open(const std::string& label, const std::string& offer_sdp, std::uint32_t ssrc,
                                  const std::string& cname, ConnectionEvents events) {
  auto offer = parse_listener_offer(offer_sdp);
  auto c = std::make_shared<Connection>(label);
  auto& im = *c->impl_;
  im.local_pwd = random_ice_string(24);
  im.remote_ufrag = offer.ice_ufrag;
  im.peer_fingerprint = offer.fingerprint;
  im.pt = offer.opus_pt;
  im.ssrc = ssrc;
  im.cname = cname;
  im.events = std::move(events);
  im.opened_ns = core::steady_ns();
  // Made here, so that a fingerprint it cannot use is refused with the offer; used by the I/O thread only, once
  // the page's checks have told it where the listener is.
  auto* where = &im;
  im.dtls = std::make_unique<DtlsServer>(impl_->certificate, offer.fingerprint, [where](const std::uint8_t* d, std::size_t n) {
    ::sendto(where->fd, d, n, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&where->remote), sizeof(sockaddr_in));
  });
  {
    std::lock_guard lock(impl_->mu);
    do im.local_ufrag = random_ice_string(8);
    while (impl_->by_ufrag.count(im.local_ufrag));
    impl_->by_ufrag[im.local_ufrag] = c;
  }
  Opened out{c, write_listener_answer(offer, AnswerParams{im.local_ufrag, im.local_pwd, impl_->certificate->fingerprint(),
                                                          ssrc, cname, impl_->candidates}),
             offer.audio_index, offer.audio_mid, {}};
  unsigned foundation = 1;
  for (const auto& cand : impl_->candidates) out.candidates.push_back(candidate_attribute(foundation++, cand));
  return out;
}

void Transport::close(const std::shared_ptr<Connection>& c) {
  if (!c) return;
  c->ready_.store(false, std::memory_order_release);
  impl_->forget(*c);
  {
    std::lock_guard lock(impl_->mu);
    impl_->to_close.push_back(c);
  }
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(impl_->wake, &one, sizeof one);
}

std::size_t Transport::connections() const {
  std::lock_guard lock(impl_->mu);
  return impl_->by_ufrag.size();
}

const std::vector<Candidate>& Transport::candidates() const { return impl_->candidates; }
std::size_t Transport::senders() const { return impl_->lanes.size(); }

StreamSender::StreamSender(std::uint32_t ssrc)
    : ssrc_(ssrc), seq_(static_cast<std::uint16_t>(randombytes_random())), ts_base_(randombytes_random()),
      batch_(std::make_unique<SendBatch>()) {}
StreamSender::~StreamSender() = default;

void StreamSender::send(Transport& via, std::shared_ptr<const Listeners> to, const std::uint8_t* payload,
                        std::size_t size, std::uint64_t pts_ns, std::function<void()> sent) {
  auto p = std::make_shared<OutPacket>();
  p->seq = seq_++;  // a packet too large for the wire still takes its number: the listeners see a gap, not a jump
  if (!to || size + 12 + SrtpSession::kMaxOverhead > kMaxPacket) return;
  std::memcpy(p->payload.data(), payload, size);
  p->size = size;
  p->ts = static_cast<std::uint32_t>(ts_base_ + pts_ns / 1000 * 48 / 1000);
  p->ssrc = ssrc_;
  p->now = core::steady_ns();
  p->to = std::move(to);
  p->sent = std::move(sent);

  // Who sends to whom: this thread its first listeners, then every new listener to the least busy thread.
  auto& lanes = via.impl_->lanes;
  const std::size_t first = via.impl_->inline_listeners;
  per_lane_.assign(1 + lanes.size(), 0);
  for (const auto& c : *p->to) {
    if (!c || !c->ready()) continue;
    if (int l = c->impl_->lane.load(std::memory_order_relaxed); l >= 0) ++per_lane_[static_cast<std::size_t>(l)];
  }
  for (const auto& c : *p->to) {
    if (!c || !c->ready() || c->impl_->lane.load(std::memory_order_relaxed) >= 0) continue;
    std::size_t l = 0;
    if (per_lane_[0] >= first) l = static_cast<std::size_t>(std::min_element(per_lane_.begin(), per_lane_.end()) - per_lane_.begin());
    c->impl_->lane.store(static_cast<int>(l), std::memory_order_relaxed);
    ++per_lane_[l];
  }

  int busy = 1;
  for (std::size_t l = 1; l < per_lane_.size(); ++l) busy += per_lane_[l] ? 1 : 0;
  p->left.store(busy, std::memory_order_relaxed);
  for (std::size_t l = 1; l < per_lane_.size(); ++l) {
    if (per_lane_[l] && !lanes[l - 1]->post(p)) SendLane::refuse(*p, static_cast<int>(l));
  }
  batch_->send(*p, 0);
  p->done();
}

}  // namespace fc25::rtc
