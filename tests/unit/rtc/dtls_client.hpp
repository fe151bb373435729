#pragma once
// The browser's side of DTLS-SRTP for tests: an OpenSSL DTLS 1.2 client with its own self-signed certificate,
// over memory, its datagrams queued with their boundaries kept, as a UDP socket would.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <srtp2/srtp.h>

namespace fc25::rtc::testing {

using Datagram = std::vector<std::uint8_t>;
using Queue = std::deque<Datagram>;

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

inline std::string hex_pairs(const unsigned char* data, std::size_t size, bool upper = true) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < size; ++i) {
    if (i) out += ':';
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0x0f];
  }
  return out;
}

inline std::string digest_hex(X509* cert, const EVP_MD* md, bool upper = true) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EXPECT_EQ(X509_digest(cert, md, digest, &size), 1);
  return hex_pairs(digest, size, upper);
}

// A browser's identity as the test makes it: its own self-signed ECDSA P-256 certificate.
inline std::pair<Pkey, Cert> self_signed(const char* cn) {
  Pkey key(EVP_EC_gen("P-256"));
  Cert cert(X509_new());
  EXPECT_TRUE(key && cert);
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  EXPECT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
  return {std::move(key), std::move(cert)};
}

// The client's write side keeps datagram boundaries, as a UDP socket would.
inline int queue_write(BIO* bio, const char* data, int size) {
  static_cast<Queue*>(BIO_get_data(bio))->emplace_back(data, data + size);
  return size;
}
inline long queue_ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

inline const BIO_METHOD* queue_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "test datagram queue");
    BIO_meth_set_write(m, queue_write);
    BIO_meth_set_ctrl(m, queue_ctrl);
    return m;
  }();
  return method;
}

inline int accept_any(int, X509_STORE_CTX*) { return 1; }
inline unsigned int fast_timer(SSL*, unsigned int previous_us) { return previous_us ? previous_us * 2 : 50000; }

struct ClientOptions {
  bool srtp = true;
  bool certificate = true;
  bool fast_timer = false;  // 50 ms first retransmission instead of OpenSSL's 1 s
};

// The browser's side: an OpenSSL DTLS 1.2 client over memory, offering SRTP_AES128_CM_SHA1_80.
class Client {
 public:
  explicit Client(ClientOptions options = {}) {
    auto [key, cert] = self_signed("browser");
    key_ = std::move(key);
    cert_ = std::move(cert);
    ctx_ = SSL_CTX_new(DTLS_client_method());
    EXPECT_NE(ctx_, nullptr);
    if (options.certificate) {
      EXPECT_EQ(SSL_CTX_use_certificate(ctx_, cert_.get()), 1);
      EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx_, key_.get()), 1);
    }
    if (options.srtp) {
      EXPECT_EQ(SSL_CTX_set_tlsext_use_srtp(ctx_, "SRTP_AES128_CM_SHA1_80"), 0);
    }
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, accept_any);  // self-signed: the fingerprint is what counts
    SSL_CTX_set_options(ctx_, SSL_OP_NO_QUERY_MTU);
    ssl_ = SSL_new(ctx_);
    rbio_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rbio_, -1);
    BIO* wbio = BIO_new(queue_method());
    BIO_set_data(wbio, &out);
    BIO_set_init(wbio, 1);
    SSL_set_bio(ssl_, rbio_, wbio);
    SSL_set_connect_state(ssl_);
    SSL_set_mtu(ssl_, 1200);
    if (options.fast_timer) DTLS_set_timer_cb(ssl_, fast_timer);
  }
  ~Client() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void start() { step(); }
  void receive(const Datagram& d) {
    ASSERT_EQ(BIO_write(rbio_, d.data(), static_cast<int>(d.size())), static_cast<int>(d.size()));
    step();
  }
  void shutdown() { SSL_shutdown(ssl_); }
  int shutdown_again() { return SSL_shutdown(ssl_); }
  bool retransmit_if_due() { return DTLSv1_handle_timeout(ssl_) > 0; }

  bool connected() const { return SSL_is_init_finished(ssl_) && !failed_; }
  bool failed() const { return failed_; }
  bool got_close_notify() const { return close_notify_; }
  SSL* ssl() const { return ssl_; }
  std::string fingerprint(const char* algorithm = "sha-256", const EVP_MD* md = EVP_sha256()) const {
    return std::string(algorithm) + " " + digest_hex(cert_.get(), md);
  }
  // What the client takes as keys (RFC 5764 4.2): client key(16) server key(16) client salt(14) server salt(14).
  std::array<std::uint8_t, 60> exported() const {
    std::array<std::uint8_t, 60> m{};
    EXPECT_EQ(SSL_export_keying_material(ssl_, m.data(), m.size(), "EXTRACTOR-dtls_srtp", 19, nullptr, 0, 0), 1);
    return m;
  }
  std::array<std::uint8_t, 30> server_write_key() const {
    auto m = exported();
    std::array<std::uint8_t, 30> k{};
    std::memcpy(k.data(), m.data() + 16, 16);
    std::memcpy(k.data() + 16, m.data() + 46, 14);
    return k;
  }
  std::array<std::uint8_t, 30> client_write_key() const {
    auto m = exported();
    std::array<std::uint8_t, 30> k{};
    std::memcpy(k.data(), m.data(), 16);
    std::memcpy(k.data() + 16, m.data() + 32, 14);
    return k;
  }

  Queue out;  // datagrams to the server

 private:
  void step() {
    if (failed_) return;
    if (!SSL_is_init_finished(ssl_)) {
      int r = SSL_do_handshake(ssl_);
      if (r == 1) return;
      int err = SSL_get_error(ssl_, r);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) failed_ = true;
      ERR_clear_error();
      return;
    }
    unsigned char buf[2048];
    for (;;) {
      int r = SSL_read(ssl_, buf, sizeof buf);
      if (r > 0) continue;
      int err = SSL_get_error(ssl_, r);
      if (err == SSL_ERROR_ZERO_RETURN) close_notify_ = true;
      ERR_clear_error();
      break;
    }
  }

  Pkey key_;
  Cert cert_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;
  bool failed_ = false;
  bool close_notify_ = false;
};

// The browser's libsrtp session for one direction, with the key the handshake gave it.
inline srtp_t client_session(const std::array<std::uint8_t, 30>& key, srtp_ssrc_type_t direction) {
  srtp_policy_t policy;
  std::memset(&policy, 0, sizeof policy);
  srtp_crypto_policy_set_rtp_default(&policy.rtp);
  srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
  policy.ssrc.type = direction;
  std::array<std::uint8_t, 30> copy = key;
  policy.key = copy.data();
  policy.window_size = 1024;
  srtp_t session = nullptr;
  EXPECT_EQ(srtp_create(&session, &policy), srtp_err_status_ok);
  return session;
}

struct SrtpFree {
  void operator()(srtp_ctx_t* s) const { srtp_dealloc(s); }
};

}  // namespace fc25::rtc::testing
