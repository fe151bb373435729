// A datagram anyone can send to the listeners' UDP port, through every reader the transport's I/O thread runs on
// it: the STUN reader and signature check, a DTLS server waiting for a handshake, and the SRTCP check of a
// connected listener. Each must refuse what it cannot use and never read out of bounds.
//
// A crash is: a sanitizer report, an exception, a DTLS server that reaches "connected" from bytes no client sent, or
// a forged SRTCP packet that authenticates.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_support.hpp"
#include "rtc/dtls.hpp"
#include "rtc/srtp.hpp"
#include "rtc/stun.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fc25::rtc;
  static auto certificate = Certificate::generate();
  static const std::string fingerprint =
      "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
  static SrtpSession srtp(SrtpKeys{});

  stun::is_stun(data, size);
  if (auto request = stun::parse_binding_request(data, size)) {
    stun::check_integrity(data, size, "the-connections-password");
    sockaddr_storage from{};
    from.ss_family = AF_INET;
    std::uint8_t out[512];
    if (!stun::write_binding_success(*request, from, "pwd", out, sizeof out)) {
      fc25::fuzz::fail("a parsed request could not be answered in 512 bytes");
    }
  }

  DtlsServer dtls(certificate, fingerprint, [](const std::uint8_t*, std::size_t) {});
  if (dtls.feed(data, size) == DtlsServer::State::connected) fc25::fuzz::fail("DTLS connected from one datagram");

  std::vector<std::uint8_t> copy(data, data + size);
  copy.resize(size + SrtpSession::kMaxOverhead);
  if (srtp.unprotect_rtcp(copy.data(), size) != 0) fc25::fuzz::fail("a forged SRTCP packet authenticated");
  return 0;
}
