#pragma once
// DTLS-SRTP (RFC 5763/5764), the server side a send-only listener needs: one self-signed certificate for the
// process (its SHA-256 fingerprint goes in every answer), and per listener a DTLS 1.2 server over memory buffers
// (no socket here: datagrams in through feed(), out through the send callback). The client's certificate must
// match the fingerprint its offer carried. Once the handshake is done, keys() holds the SRTP master keys
// (AES_CM_128_HMAC_SHA1_80) exported from it. OpenSSL underneath; nothing else.
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace fc25::rtc {

// A process's DTLS identity: an ECDSA P-256 key and a self-signed certificate, made once.
class Certificate {
 public:
  // Throws std::runtime_error naming the OpenSSL step that failed.
  static std::shared_ptr<const Certificate> generate();
  ~Certificate();
  Certificate(const Certificate&) = delete;
  Certificate& operator=(const Certificate&) = delete;

  // "AB:CD:…" (32 upper-case hex pairs): the value after "a=fingerprint:sha-256 ".
  const std::string& fingerprint() const { return fingerprint_; }

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  Certificate();
  std::unique_ptr<Impl> impl_;
  std::string fingerprint_;
};

// SRTP master key and salt of each side (16 + 14 bytes), for the AES_CM_128_HMAC_SHA1_80 profile.
struct SrtpKeys {
  std::array<std::uint8_t, 30> local{};   // what we send with (the DTLS server's write key and salt)
  std::array<std::uint8_t, 30> remote{};  // what the client sends with
};

class DtlsServer {
 public:
  using Send = std::function<void(const std::uint8_t* data, std::size_t size)>;
  enum class State { handshaking, connected, failed, closed };

  // `peer_fingerprint`: the offer's a=fingerprint value, "<algorithm> <hex pairs>" (sha-256, sha-1, sha-384 or
  // sha-512, any case). `send` gets every datagram to go to the client (called from feed, tick and close).
  // Throws std::invalid_argument when the fingerprint is not of that form.
  DtlsServer(std::shared_ptr<const Certificate> certificate, const std::string& peer_fingerprint, Send send);
  ~DtlsServer();
  DtlsServer(const DtlsServer&) = delete;
  DtlsServer& operator=(const DtlsServer&) = delete;

  // One datagram from the client (a DTLS record: first byte 20-63). Returns the state after it: connected once the
  // handshake is done and the client's certificate matched; failed (error() says why) on a handshake error, a
  // certificate not matching the fingerprint, or no SRTP profile agreed; closed when the client sent close_notify.
  // Never throws.
  State feed(const std::uint8_t* data, std::size_t size);
  // Resends our last flight when its retransmission timer has run out (call every ~50 ms while handshaking).
  void tick();
  // Sends close_notify once (when connected) and makes the state closed.
  void close();

  State state() const { return state_; }
  const std::string& error() const { return error_; }
  const SrtpKeys& keys() const { return keys_; }  // valid once connected

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  State state_ = State::handshaking;
  std::string error_;
  SrtpKeys keys_;
};

}  // namespace fc25::rtc
