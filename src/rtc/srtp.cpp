#include "rtc/srtp.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <climits>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include <srtp2/srtp.h>

#include "rtc/bytes.hpp"

namespace fc25::rtc {
namespace {

std::runtime_error openssl_error(const char* what) { return std::runtime_error(std::string("SRTP: ") + what + " failed (OpenSSL)"); }

// One direction's session keys (RFC 3711 4.3): AES-128 in counter mode, HMAC-SHA1 with an 80-bit tag.
class Keys {
 public:
  // Derives the session keys from the master key and salt with the labels of RTP (0, 1, 2) or RTCP (3, 4, 5).
  Keys(const std::array<std::uint8_t, 30>& master, std::uint8_t first_label)
      : cipher_(EVP_CIPHER_CTX_new()) {
    std::array<std::uint8_t, 16> enc;
    std::array<std::uint8_t, 20> auth;
    derive(master, first_label, enc.data(), enc.size());
    derive(master, first_label + 1, auth.data(), auth.size());
    derive(master, first_label + 2, salt_.data(), salt_.size());
    if (!cipher_ || EVP_EncryptInit_ex(cipher_.get(), EVP_aes_128_ctr(), nullptr, enc.data(), nullptr) != 1) {
      throw openssl_error("the AES-128 counter-mode cipher");
    }
    mac_algorithm_.reset(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    if (mac_algorithm_) mac_.reset(EVP_MAC_CTX_new(mac_algorithm_.get()));
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA1"), 0),
                           OSSL_PARAM_construct_end()};
    if (!mac_ || EVP_MAC_init(mac_.get(), auth.data(), auth.size(), params) != 1) throw openssl_error("HMAC-SHA1");
    OPENSSL_cleanse(enc.data(), enc.size());
    OPENSSL_cleanse(auth.data(), auth.size());
  }
  ~Keys() { OPENSSL_cleanse(salt_.data(), salt_.size()); }

  // `n` bytes at `data` encrypted in place: the keystream from IV = salt·2^16 ⊕ SSRC·2^64 ⊕ index·2^16.
  bool encrypt(std::uint8_t* data, std::size_t n, std::uint32_t ssrc, std::uint64_t index) {
    std::array<std::uint8_t, 16> iv{};
    std::memcpy(iv.data(), salt_.data(), salt_.size());
    for (int k = 0; k < 4; ++k) iv[4 + k] ^= static_cast<std::uint8_t>(ssrc >> (24 - 8 * k));
    for (int k = 0; k < 6; ++k) iv[8 + k] ^= static_cast<std::uint8_t>(index >> (40 - 8 * k));
    int out = 0;
    return EVP_EncryptInit_ex(cipher_.get(), nullptr, nullptr, nullptr, iv.data()) == 1 &&
           EVP_EncryptUpdate(cipher_.get(), data, &out, data, static_cast<int>(n)) == 1 && out == static_cast<int>(n);
  }

  // The 80-bit tag of `a` then `b`, written at `tag`.
  bool authenticate(const std::uint8_t* a, std::size_t an, const std::uint8_t* b, std::size_t bn, std::uint8_t* tag) {
    std::array<std::uint8_t, 20> full;
    std::size_t len = 0;
    if (EVP_MAC_init(mac_.get(), nullptr, 0, nullptr) != 1 || EVP_MAC_update(mac_.get(), a, an) != 1 ||
        (bn && EVP_MAC_update(mac_.get(), b, bn) != 1) || EVP_MAC_final(mac_.get(), full.data(), &len, full.size()) != 1 ||
        len != full.size()) {
      return false;
    }
    std::memcpy(tag, full.data(), kTag);
    return true;
  }

  static constexpr std::size_t kTag = 10;

 private:
  // AES-CM(master key, IV = (master salt ⊕ label·2^48)·2^16), key derivation rate 0.
  static void derive(const std::array<std::uint8_t, 30>& master, int label, std::uint8_t* out, std::size_t n) {
    std::array<std::uint8_t, 16> iv{};
    std::memcpy(iv.data(), master.data() + 16, 14);
    iv[7] ^= static_cast<std::uint8_t>(label);
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> c(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    std::array<std::uint8_t, 32> zeros{};
    int len = 0;
    if (!c || EVP_EncryptInit_ex(c.get(), EVP_aes_128_ctr(), nullptr, master.data(), iv.data()) != 1 ||
        EVP_EncryptUpdate(c.get(), out, &len, zeros.data(), static_cast<int>(n)) != 1) {
      throw openssl_error("SRTP key derivation");
    }
  }

  struct CipherFree { void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); } };
  struct MacFree { void operator()(EVP_MAC* m) const { EVP_MAC_free(m); } };
  struct MacCtxFree { void operator()(EVP_MAC_CTX* m) const { EVP_MAC_CTX_free(m); } };
  std::unique_ptr<EVP_CIPHER_CTX, CipherFree> cipher_;
  std::unique_ptr<EVP_MAC, MacFree> mac_algorithm_;
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> mac_;
  std::array<std::uint8_t, 14> salt_{};
};

}  // namespace

// Our packets, protected here on OpenSSL (libcrypto's AES-NI and SHA code, no lock): one listener's copy of every
// packet of a stream is protected, so this is the send path's largest cost. Through libsrtp as Debian builds it
// (on NSS's PKCS#11 layer) each packet took a token lock and several allocations (docs/benchmarks/fanout.md).
struct Outbound {
  Keys rtp, rtcp;
  std::uint32_t roc = 0;        // rollover counter: wraps of the sequence number since our first packet
  std::uint16_t last_seq = 0;
  bool started = false;
  std::uint32_t rtcp_index = 0;  // SRTCP index of our next report (31 bits)

  explicit Outbound(const std::array<std::uint8_t, 30>& master) : rtp(master, 0), rtcp(master, 3) {}

  std::size_t protect_rtp(std::uint8_t* buf, std::size_t size) {
    if (size < 12 || (buf[0] >> 6) != 2) return 0;
    std::size_t header = 12 + 4 * std::size_t{buf[0] & 0x0fu};
    if (buf[0] & 0x10) {  // header extension
      if (size < header + 4) return 0;
      header += 4 + 4 * std::size_t{bytes::get16(buf + header + 2)};
    }
    if (size < header) return 0;
    const std::uint16_t seq = bytes::get16(buf + 2);
    // Sequence numbers only go forward here (a stream's next, with gaps where a packet was not sent): one smaller
    // than the last by more than half the space has wrapped.
    if (started && seq < last_seq && last_seq - seq > 0x8000) ++roc;
    started = true;
    last_seq = seq;
    const std::uint64_t index = (std::uint64_t{roc} << 16) | seq;
    std::array<std::uint8_t, 4> roc_bytes;
    bytes::put32(roc_bytes.data(), roc);
    if (!rtp.encrypt(buf + header, size - header, bytes::get32(buf + 8), index) ||
        !rtp.authenticate(buf, size, roc_bytes.data(), roc_bytes.size(), buf + size)) {
      return 0;
    }
    return size + Keys::kTag;
  }

  std::size_t protect_rtcp(std::uint8_t* buf, std::size_t size) {
    if (size < 8) return 0;
    const std::uint32_t index = rtcp_index++ & 0x7fffffffu;
    if (!rtcp.encrypt(buf + 8, size - 8, bytes::get32(buf + 4), index)) return 0;
    bytes::put32(buf + size, 0x80000000u | index);  // E flag: encrypted
    if (!rtcp.authenticate(buf, size + 4, nullptr, 0, buf + size + 4)) return 0;
    return size + 4 + Keys::kTag;
  }
};

struct SrtpSession::Impl {
  std::unique_ptr<Outbound> outbound;  // our RTP and RTCP, with our key (the sending thread)
  srtp_t inbound = nullptr;            // the listener's RTCP, with its key (the reading thread)

  ~Impl() {
    if (inbound) srtp_dealloc(inbound);
  }
};

namespace {

// libsrtp's global tables (crypto kernel): set up once for the process, never torn down. Its status is kept for
// the message of a session that cannot be made: srtp_init() after another user of libsrtp in the process set it up
// (GStreamer's srtp plugin, loaded first) reports an error although every cipher is registered and works.
srtp_err_status_t init_libsrtp() {
  static std::once_flag once;
  static srtp_err_status_t status = srtp_err_status_ok;
  std::call_once(once, [] { status = srtp_init(); });
  return status;
}

// One session for every SSRC in one direction (ssrc_any_*): the listener's SSRCs are not known in advance.
srtp_t make_session(const std::array<std::uint8_t, 30>& key, srtp_ssrc_type_t direction, const char* what) {
  srtp_policy_t policy;
  std::memset(&policy, 0, sizeof policy);
  srtp_crypto_policy_set_rtp_default(&policy.rtp);  // AES_CM_128_HMAC_SHA1_80
  srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
  policy.ssrc.type = direction;
  // Master key then master salt, as libsrtp reads them; it only reads (the pointer is not const in its API).
  policy.key = const_cast<unsigned char*>(key.data());
  policy.window_size = 1024;
  // A retransmitted packet (same sequence number, same payload) is protected again rather than refused.
  policy.allow_repeat_tx = 1;
  srtp_t session = nullptr;
  srtp_err_status_t status = srtp_create(&session, &policy);
  if (status != srtp_err_status_ok) {
    throw std::runtime_error(std::string("libsrtp: srtp_create (") + what + ") error " +
                             std::to_string(static_cast<int>(status)) + " (srtp_init gave " +
                             std::to_string(static_cast<int>(init_libsrtp())) + ")");
  }
  return session;
}

using Transform = srtp_err_status_t (*)(srtp_t, void*, int*);

std::size_t run(Transform transform, srtp_t session, std::uint8_t* buf, std::size_t size) {
  if (!buf || size == 0 || size > static_cast<std::size_t>(INT_MAX) - SrtpSession::kMaxOverhead) return 0;
  int length = static_cast<int>(size);
  if (transform(session, buf, &length) != srtp_err_status_ok || length <= 0) return 0;
  return static_cast<std::size_t>(length);
}

}  // namespace

int init_srtp() { return static_cast<int>(init_libsrtp()); }

SrtpSession::SrtpSession(const SrtpKeys& keys) : impl_(std::make_unique<Impl>()) {
  init_libsrtp();
  impl_->outbound = std::make_unique<Outbound>(keys.local);
  impl_->inbound = make_session(keys.remote, ssrc_any_inbound, "inbound");
}

SrtpSession::~SrtpSession() = default;

std::size_t SrtpSession::protect_rtp(std::uint8_t* buf, std::size_t size) {
  if (!buf || size == 0 || size > kMaxPacketSize) return 0;
  return impl_->outbound->protect_rtp(buf, size);
}

std::size_t SrtpSession::protect_rtcp(std::uint8_t* buf, std::size_t size) {
  if (!buf || size == 0 || size > kMaxPacketSize) return 0;
  return impl_->outbound->protect_rtcp(buf, size);
}

std::size_t SrtpSession::unprotect_rtcp(std::uint8_t* buf, std::size_t size) {
  return run(srtp_unprotect_rtcp, impl_->inbound, buf, size);
}

}  // namespace fc25::rtc
