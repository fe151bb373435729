#pragma once
// STUN messages made in tests straight from RFC 5389's definitions (CRC-32 bit by bit, OpenSSL's one-shot HMAC),
// independent of the code under test.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace fc25::rtc::testing {

using Bytes = std::vector<std::uint8_t>;

inline void put16(Bytes& b, std::size_t at, std::size_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}

inline Bytes slice(const Bytes& b, std::size_t at, std::size_t n) {
  return Bytes(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n));
}

// CRC-32 bit by bit, straight from the definition: an independent check of the table-driven code under test
// (itself checked below against the standard check value and the RFC's FINGERPRINTs).
inline std::uint32_t crc32_bitwise(const std::uint8_t* p, std::size_t n) {
  std::uint32_t c = 0xFFFFFFFF;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

inline std::uint32_t fingerprint_of(const Bytes& msg, std::size_t fp_offset) {
  return crc32_bitwise(msg.data(), fp_offset) ^ 0x5354554e;
}

// MESSAGE-INTEGRITY as RFC 5389 15.4 defines it, with OpenSSL's one-shot HMAC on a patched copy.
inline Bytes integrity_of(const Bytes& msg, std::size_t mi_offset, std::string_view password) {
  Bytes covered = slice(msg, 0, mi_offset);
  put16(covered, 2, mi_offset + 24 - 20);
  std::uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha1(), password.data(), static_cast<int>(password.size()), covered.data(), covered.size(), mac, &n);
  return Bytes(mac, mac + n);
}

// A Binding request with the given attributes (type, value), optionally signed with `password` and fingerprinted.
struct Attr {
  std::uint16_t type;
  std::string value;
};

inline Bytes request(const std::vector<Attr>& attrs, std::string_view password, bool fingerprint,
              const std::vector<Attr>& after_integrity = {}) {
  Bytes m = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  auto add = [&m](std::uint16_t type, const std::string& v) {
    std::size_t at = m.size();
    m.resize(at + 4 + ((v.size() + 3) & ~std::size_t{3}), 0);
    put16(m, at, type);
    put16(m, at + 2, v.size());
    std::memcpy(m.data() + at + 4, v.data(), v.size());
    put16(m, 2, m.size() - 20);
  };
  for (auto& a : attrs) add(a.type, a.value);
  if (!password.empty()) {
    std::size_t at = m.size();
    add(0x0008, std::string(20, '\0'));
    auto mac = integrity_of(m, at, password);
    std::memcpy(m.data() + at + 4, mac.data(), 20);
  }
  for (auto& a : after_integrity) add(a.type, a.value);
  if (fingerprint) {
    std::size_t at = m.size();
    add(0x8028, std::string(4, '\0'));
    std::uint32_t fp = fingerprint_of(m, at);
    put16(m, at + 4, fp >> 16);
    put16(m, at + 6, fp & 0xFFFF);
  }
  return m;
}

}  // namespace fc25::rtc::testing
