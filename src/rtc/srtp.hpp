#pragma once
// SRTP for one listener: packets we send protected with our key (RFC 3711 on OpenSSL's AES and HMAC-SHA1, the
// send path's largest cost), RTCP from the listener unprotected with its key (libsrtp2: rare, and with replay
// protection). The sending thread and the thread reading the socket never share state. Profile
// AES_CM_128_HMAC_SHA1_80 (every browser has it).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "rtc/dtls.hpp"

namespace fc25::rtc {

// Sets libsrtp's process-wide tables up, once. libsrtp's srtp_init() is not safe to run beside any other use of
// libsrtp, GStreamer's srtp elements included (their plugin runs it when first loaded): call this before any thread
// can make a session or load that plugin. Later calls do nothing. Returns libsrtp's status of the one real call.
int init_srtp();

class SrtpSession {
 public:
  // Room a protected packet needs past its plain length (auth tag; RTCP's index as well).
  static constexpr std::size_t kMaxOverhead = 16 + 4;
  static constexpr std::size_t kMaxPacketSize = 1 << 16;

  // Throws std::runtime_error naming libsrtp's or OpenSSL's error.
  explicit SrtpSession(const SrtpKeys& keys);
  ~SrtpSession();
  SrtpSession(const SrtpSession&) = delete;
  SrtpSession& operator=(const SrtpSession&) = delete;

  // In place: `size` plain bytes in `buf`, which has room for size + kMaxOverhead. Returns the protected size, or 0
  // when the packet is not RTP (RTCP) or could not be protected. The sending thread only.
  std::size_t protect_rtp(std::uint8_t* buf, std::size_t size);
  std::size_t protect_rtcp(std::uint8_t* buf, std::size_t size);
  // In place: returns the plain size, or 0 when it does not authenticate or is a replay. The reading thread only.
  std::size_t unprotect_rtcp(std::uint8_t* buf, std::size_t size);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fc25::rtc
