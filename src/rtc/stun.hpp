#pragma once
// STUN (RFC 5389) as an ICE-lite agent needs it: a listener's Binding requests are read and checked with our
// short-term password (MESSAGE-INTEGRITY, HMAC-SHA1) and answered with its address as we see it
// (XOR-MAPPED-ADDRESS), signed and fingerprinted (FINGERPRINT, CRC-32). Pure functions over byte arrays: no
// sockets, no state.
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fc25::rtc::stun {

inline constexpr std::uint32_t kMagicCookie = 0x2112A442;

// The first bytes say STUN (two top bits zero, the magic cookie at offset 4, a length that is a multiple of 4 and
// matches the datagram): how a datagram on a shared socket is told from DTLS and RTP/RTCP.
bool is_stun(const std::uint8_t* data, std::size_t size);

struct BindingRequest {
  std::array<std::uint8_t, 12> transaction{};
  std::string username;          // "ourufrag:theirufrag" (RFC 8445 7.2.2)
  bool use_candidate = false;    // USE-CANDIDATE present: the controlling agent nominates this pair
  bool has_integrity = false;    // MESSAGE-INTEGRITY present
  bool has_fingerprint = false;  // FINGERPRINT present (and correct: a wrong one makes parse fail)
  std::uint32_t priority = 0;    // PRIORITY, 0 when absent
};

// Reads a Binding request (class request, method Binding). nullopt when the datagram is not one, is truncated, has
// an attribute running past its end, or carries a FINGERPRINT that does not match. Never throws.
std::optional<BindingRequest> parse_binding_request(const std::uint8_t* data, std::size_t size);

// True when the request's MESSAGE-INTEGRITY is the HMAC-SHA1, keyed with `password`, of the message up to that
// attribute with the header's length as RFC 5389 15.4 says. False when absent or wrong. Never throws.
bool check_integrity(const std::uint8_t* data, std::size_t size, std::string_view password);

// Writes a Binding success response to `request` into `out` (capacity `cap`): XOR-MAPPED-ADDRESS of `from`
// (IPv4 or IPv6), MESSAGE-INTEGRITY keyed with `password`, FINGERPRINT. Returns its length, 0 when `cap` is too
// small or `from` is neither IPv4 nor IPv6.
std::size_t write_binding_success(const BindingRequest& request, const sockaddr_storage& from,
                                  std::string_view password, std::uint8_t* out, std::size_t cap);

// Writes a Binding error response (e.g. 400 Bad Request, 401 Unauthorized) with ERROR-CODE and a reason phrase,
// unsigned, with FINGERPRINT. Returns its length, 0 when `cap` is too small.
std::size_t write_binding_error(const std::array<std::uint8_t, 12>& transaction, int code, std::string_view reason,
                                std::uint8_t* out, std::size_t cap);

}  // namespace fc25::rtc::stun
