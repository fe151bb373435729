#include "rtc/stun.hpp"

#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstring>

#include "rtc/bytes.hpp"

namespace fc25::rtc::stun {
namespace {

constexpr std::size_t kHeader = 20;
constexpr std::uint16_t kBindingRequest = 0x0001, kBindingSuccess = 0x0101, kBindingError = 0x0111;
constexpr std::uint16_t kUsername = 0x0006, kMessageIntegrity = 0x0008, kErrorCode = 0x0009,
                        kXorMappedAddress = 0x0020, kPriority = 0x0024, kUseCandidate = 0x0025,
                        kFingerprint = 0x8028;
constexpr std::size_t kHmacSize = 20;
constexpr std::uint32_t kFingerprintXor = 0x5354554e;
constexpr std::size_t kMaxUsername = 512;  // RFC 5389 15.3: less than 513 bytes
constexpr std::size_t kMaxReason = 763;    // RFC 5389 15.6: 128 characters, at most 763 bytes

using bytes::get16, bytes::get32, bytes::put16, bytes::put32;

std::size_t padded(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

constexpr auto kCrcTable = [] {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}();

// CRC-32 as in ISO 3309 / zlib, which is what RFC 5389 15.5 names.
std::uint32_t crc32(const std::uint8_t* p, std::size_t n) {
  std::uint32_t c = 0xFFFFFFFF;
  for (std::size_t i = 0; i < n; ++i) c = kCrcTable[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFF;
}

// HMAC-SHA1 of `header` (the 20 header bytes, length field already set) followed by `body`: fed in two pieces so
// a received message needs no copy to patch its length field.
bool hmac_sha1(std::string_view key, const std::uint8_t* header, const std::uint8_t* body, std::size_t body_size,
               std::uint8_t (&mac)[kHmacSize]) {
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);  // kept for the process
  if (!hmac) return false;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(hmac);
  if (!ctx) return false;
  char digest[] = "SHA1";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_END};
  static const unsigned char kNoKey = 0;  // an empty password must still be a key, not "no key set"
  auto k = key.empty() ? &kNoKey : reinterpret_cast<const unsigned char*>(key.data());
  std::size_t written = 0;
  bool ok = EVP_MAC_init(ctx, k, key.size(), params) == 1 && EVP_MAC_update(ctx, header, kHeader) == 1 &&
            EVP_MAC_update(ctx, body, body_size) == 1 && EVP_MAC_final(ctx, mac, &written, kHmacSize) == 1 &&
            written == kHmacSize;
  EVP_MAC_CTX_free(ctx);
  return ok;
}

// The header checks every message shares: room for the header, a length that is a multiple of 4 and says exactly
// how much follows.
bool framed(const std::uint8_t* data, std::size_t size) {
  if (!data || size < kHeader) return false;
  std::size_t length = get16(data + 2);
  return length % 4 == 0 && length == size - kHeader && get32(data + 4) == kMagicCookie;
}

struct Attribute {
  std::uint16_t type;
  const std::uint8_t* value;
  std::size_t length;
  std::size_t offset;  // of the attribute's own header, from the message start
};

// Calls f(attribute) in order until it returns false. False when an attribute runs past the end.
template <class F>
bool walk(const std::uint8_t* data, std::size_t size, F&& f) {
  for (std::size_t pos = kHeader; pos < size;) {
    if (size - pos < 4) return false;
    Attribute a{get16(data + pos), data + pos + 4, get16(data + pos + 2), pos};
    if (padded(a.length) > size - pos - 4) return false;
    if (!f(a)) return true;
    pos += 4 + padded(a.length);
  }
  return true;
}

std::size_t begin_message(std::uint8_t* out, std::uint16_t type, const std::array<std::uint8_t, 12>& transaction) {
  put16(out, type);
  put16(out + 2, 0);
  put32(out + 4, kMagicCookie);
  std::memcpy(out + 8, transaction.data(), transaction.size());
  return kHeader;
}

std::uint8_t* begin_attribute(std::uint8_t* out, std::size_t& pos, std::uint16_t type, std::size_t length) {
  put16(out + pos, type);
  put16(out + pos + 2, static_cast<std::uint16_t>(length));
  auto value = out + pos + 4;
  std::memset(value, 0, padded(length));
  pos += 4 + padded(length);
  return value;
}

// Appends FINGERPRINT at `pos` (room for its 8 bytes checked by the caller), the header's length first counting it
// (RFC 5389 15.5).
std::size_t finish_with_fingerprint(std::uint8_t* out, std::size_t pos) {
  put16(out + 2, static_cast<std::uint16_t>(pos + 8 - kHeader));
  std::size_t covered = pos;
  auto value = begin_attribute(out, pos, kFingerprint, 4);
  put32(value, crc32(out, covered) ^ kFingerprintXor);
  return pos;
}

}  // namespace

bool is_stun(const std::uint8_t* data, std::size_t size) { return framed(data, size) && (data[0] & 0xC0) == 0; }

std::optional<BindingRequest> parse_binding_request(const std::uint8_t* data, std::size_t size) {
  if (!framed(data, size) || get16(data) != kBindingRequest) return std::nullopt;
  BindingRequest r;
  std::memcpy(r.transaction.data(), data + 8, r.transaction.size());
  bool bad = false, seen_username = false, seen_priority = false;
  bool complete = walk(data, size, [&](const Attribute& a) {
    if (a.type == kFingerprint) {
      // Must be last and match the CRC of everything before it.
      std::size_t end = a.offset + 4 + padded(a.length);
      bad = a.length != 4 || end != size || (crc32(data, a.offset) ^ kFingerprintXor) != get32(a.value);
      r.has_fingerprint = !bad;
      return false;
    }
    if (r.has_integrity) return true;  // RFC 5389 15.4: only FINGERPRINT may follow MESSAGE-INTEGRITY
    switch (a.type) {
      case kUsername:
        if (seen_username) break;
        seen_username = true;
        if ((bad = a.length > kMaxUsername)) return false;
        r.username.assign(reinterpret_cast<const char*>(a.value), a.length);
        break;
      case kPriority:
        if (seen_priority) break;
        seen_priority = true;
        if ((bad = a.length != 4)) return false;
        r.priority = get32(a.value);
        break;
      case kUseCandidate:
        r.use_candidate = true;
        break;
      case kMessageIntegrity:
        if ((bad = a.length != kHmacSize)) return false;
        r.has_integrity = true;
        break;
      default:
        break;  // ICE-CONTROLLED/-CONTROLLING, SOFTWARE and the rest mean nothing to an ICE-lite answerer
    }
    return true;
  });
  if (!complete || bad) return std::nullopt;
  return r;
}

bool check_integrity(const std::uint8_t* data, std::size_t size, std::string_view password) {
  if (!framed(data, size)) return false;
  Attribute mi{};
  bool found = false;
  bool complete = walk(data, size, [&](const Attribute& a) {
    if (a.type != kMessageIntegrity) return true;
    mi = a;
    found = true;
    return false;
  });
  if (!complete || !found || mi.length != kHmacSize) return false;
  // The length field as if the message ended right after MESSAGE-INTEGRITY (RFC 5389 15.4).
  std::uint8_t header[kHeader];
  std::memcpy(header, data, kHeader);
  put16(header + 2, static_cast<std::uint16_t>(mi.offset + 4 + kHmacSize - kHeader));
  std::uint8_t mac[kHmacSize];
  if (!hmac_sha1(password, header, data + kHeader, mi.offset - kHeader, mac)) return false;
  return CRYPTO_memcmp(mac, mi.value, kHmacSize) == 0;
}

std::size_t write_binding_success(const BindingRequest& request, const sockaddr_storage& from,
                                  std::string_view password, std::uint8_t* out, std::size_t cap) {
  std::uint8_t address[16];
  std::size_t address_size = 0;
  std::uint16_t port = 0;
  if (from.ss_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, &from, sizeof in);
    std::memcpy(address, &in.sin_addr, 4);
    address_size = 4;
    port = ntohs(in.sin_port);
  } else if (from.ss_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, &from, sizeof in6);
    port = ntohs(in6.sin6_port);
    const std::uint8_t* a = in6.sin6_addr.s6_addr;
    constexpr std::uint8_t kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (std::memcmp(a, kV4Mapped, 12) == 0) {
      // A dual-stack socket's view of an IPv4 peer: the peer sent to an IPv4 address and must hear one back.
      std::memcpy(address, a + 12, 4);
      address_size = 4;
    } else {
      std::memcpy(address, a, 16);
      address_size = 16;
    }
  } else {
    return 0;
  }
  const std::size_t need = kHeader + 4 + 4 + address_size + 4 + kHmacSize + 8;
  if (!out || cap < need) return 0;

  std::size_t pos = begin_message(out, kBindingSuccess, request.transaction);
  // RFC 5389 15.2: port XOR the cookie's top half, address XOR the cookie (IPv4) or cookie + transaction (IPv6).
  std::uint8_t* v = begin_attribute(out, pos, kXorMappedAddress, 4 + address_size);
  v[1] = address_size == 4 ? 0x01 : 0x02;
  put16(v + 2, static_cast<std::uint16_t>(port ^ (kMagicCookie >> 16)));
  for (std::size_t i = 0; i < address_size; ++i) v[4 + i] = address[i] ^ out[4 + i];  // bytes 4..19: cookie, id

  // MESSAGE-INTEGRITY covers the header with a length that already counts it (RFC 5389 15.4).
  put16(out + 2, static_cast<std::uint16_t>(pos + 4 + kHmacSize - kHeader));
  std::size_t mi_offset = pos;
  std::uint8_t* mac = begin_attribute(out, pos, kMessageIntegrity, kHmacSize);
  std::uint8_t value[kHmacSize];
  if (!hmac_sha1(password, out, out + kHeader, mi_offset - kHeader, value)) return 0;
  std::memcpy(mac, value, kHmacSize);

  return finish_with_fingerprint(out, pos);
}

std::size_t write_binding_error(const std::array<std::uint8_t, 12>& transaction, int code, std::string_view reason,
                                std::uint8_t* out, std::size_t cap) {
  if (code < 300 || code > 699) return 0;  // RFC 5389 15.6: the class is 3 to 6
  if (reason.size() > kMaxReason) {
    // Cut before a continuation byte so the phrase stays valid UTF-8 (reason[n] exists: n <= kMaxReason < size).
    std::size_t n = kMaxReason;
    while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
    reason = reason.substr(0, n);
  }
  const std::size_t need = kHeader + 4 + padded(4 + reason.size()) + 8;
  if (!out || cap < need) return 0;
  std::size_t pos = begin_message(out, kBindingError, transaction);
  std::uint8_t* v = begin_attribute(out, pos, kErrorCode, 4 + reason.size());
  v[2] = static_cast<std::uint8_t>(code / 100);
  v[3] = static_cast<std::uint8_t>(code % 100);
  if (!reason.empty()) std::memcpy(v + 4, reason.data(), reason.size());
  return finish_with_fingerprint(out, pos);
}

}  // namespace fc25::rtc::stun
