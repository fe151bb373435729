#include "rtc/dtls.hpp"

#include <climits>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace fc25::rtc {

struct Certificate::Impl {
  SSL_CTX* ctx = nullptr;  // one for the process: every listener's SSL is made from it
  ~Impl() { SSL_CTX_free(ctx); }
};

struct DtlsServer::Impl {
  std::shared_ptr<const Certificate> certificate;  // keeps the SSL_CTX alive as long as the SSL
  Send send;
  const EVP_MD* md = nullptr;          // the offer's fingerprint algorithm
  std::vector<std::uint8_t> expected;  // and its digest of the listener's certificate
  bool mismatch = false;               // the certificate check refused the client's certificate
  SSL* ssl = nullptr;                  // owns both BIOs

  ~Impl() { SSL_free(ssl); }

  bool matches(X509* cert) const {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    return cert && X509_digest(cert, md, digest, &size) == 1 && size == expected.size() &&
           CRYPTO_memcmp(digest, expected.data(), size) == 0;
  }
};

namespace {

constexpr const char* kSrtpProfile = "SRTP_AES128_CM_SHA1_80";
// The largest datagram we send: what WebRTC stacks use, and under any path MTU a browser's ICE pair has.
constexpr long kMtu = 1200;
constexpr long kUdpIpv4Overhead = 28;
constexpr const char* kMismatch = "the listener's DTLS certificate does not match the fingerprint in its offer";

// OpenSSL's reason for the last failure on this thread, and the queue emptied for the next call.
std::string openssl_reason() {
  unsigned long code = ERR_peek_last_error();
  const char* reason = code ? ERR_reason_error_string(code) : nullptr;
  ERR_clear_error();
  return reason ? reason : "unknown error";
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};

std::string hex_pairs(const unsigned char* data, std::size_t size) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(size * 3);
  for (std::size_t i = 0; i < size; ++i) {
    if (i) out += ':';
    out += kHex[data[i] >> 4];
    out += kHex[data[i] & 0x0f];
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// "<algorithm> <hex pairs>" as in a=fingerprint (RFC 8122): the digest function and the bytes it must give.
void parse_fingerprint(const std::string& text, const EVP_MD*& md, std::vector<std::uint8_t>& bytes) {
  auto bad = [&text](const std::string& why) {
    std::string shown = text.size() > 120 ? text.substr(0, 120) + "..." : text;
    return std::invalid_argument("DTLS fingerprint '" + shown + "' " + why);
  };
  std::size_t begin = 0, end = text.size();
  while (begin < end && blank(text[begin])) ++begin;
  while (end > begin && blank(text[end - 1])) --end;
  std::size_t space = begin;
  while (space < end && !blank(text[space])) ++space;
  std::string algorithm = text.substr(begin, space - begin);
  for (char& c : algorithm) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  if (algorithm == "sha-1") {
    md = EVP_sha1();
  } else if (algorithm == "sha-256") {
    md = EVP_sha256();
  } else if (algorithm == "sha-384") {
    md = EVP_sha384();
  } else if (algorithm == "sha-512") {
    md = EVP_sha512();
  } else {
    throw bad("is not '<sha-1|sha-256|sha-384|sha-512> <hex pairs>'");
  }
  std::size_t i = space;
  while (i < end && blank(text[i])) ++i;
  bytes.clear();
  while (i < end) {
    if (!bytes.empty() && text[i++] != ':') throw bad("has hex pairs not separated by ':'");
    int high = i + 1 < end ? hex_digit(text[i]) : -1;
    int low = i + 1 < end ? hex_digit(text[i + 1]) : -1;
    if (high < 0 || low < 0) throw bad("has something other than a pair of hex digits");
    bytes.push_back(static_cast<std::uint8_t>(high << 4 | low));
    i += 2;
  }
  if (bytes.size() != static_cast<std::size_t>(EVP_MD_get_size(md))) {
    throw bad("has " + std::to_string(bytes.size()) + " bytes where " + algorithm + " gives " +
              std::to_string(EVP_MD_get_size(md)));
  }
}

// Replaces OpenSSL's chain verification for a client's certificate: a browser's is self-signed, so no chain would
// verify; what authenticates it is the fingerprint its offer carried. Refusing here (rather than after the
// handshake) makes OpenSSL send the client a bad_certificate alert, so it learns at once.
int check_client_certificate(X509_STORE_CTX* store, void*) {
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* impl = ssl ? static_cast<DtlsServer::Impl*>(SSL_get_app_data(ssl)) : nullptr;
  if (impl && impl->matches(X509_STORE_CTX_get0_cert(store))) return 1;
  if (impl) impl->mismatch = true;
  X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
  return 0;
}

// The write side of every DtlsServer: OpenSSL hands a whole datagram to one BIO_write (a flight's records packed
// up to the MTU by its own buffering BIO), so each write goes out as one datagram. A memory BIO would run them
// together, and OpenSSL 3.0 has no datagram memory BIO.
int sink_write(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  auto* impl = static_cast<DtlsServer::Impl*>(BIO_get_data(bio));
  if (!impl || size <= 0) return 0;
  try {
    impl->send(reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size));
  } catch (...) {
    // Lost like any UDP datagram; DTLS retransmits. An exception must not unwind through OpenSSL.
  }
  return size;
}

long sink_ctrl(BIO*, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing held back; OpenSSL fails the handshake on a flush returning <= 0
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
      return kUdpIpv4Overhead;
    default:
      return 0;  // no pending bytes, no MTU to query (SSL_OP_NO_QUERY_MTU), no peer address
  }
}

BIO_METHOD* datagram_sink() {
  // Made once and kept for the process (BIO_METHOD is shared by every BIO using it).
  static BIO_METHOD* method = [] {
    int index = BIO_get_new_index();
    BIO_METHOD* m = index < 0 ? nullptr : BIO_meth_new(index | BIO_TYPE_SOURCE_SINK, "fc25 DTLS datagram sink");
    if (m && (BIO_meth_set_write(m, sink_write) != 1 || BIO_meth_set_ctrl(m, sink_ctrl) != 1)) {
      BIO_meth_free(m);
      m = nullptr;
    }
    return m;
  }();
  return method;
}

}  // namespace

Certificate::Certificate() : impl_(std::make_unique<Impl>()) {}
Certificate::~Certificate() = default;

std::shared_ptr<const Certificate> Certificate::generate() {
  auto fail = [](const std::string& step) {
    return std::runtime_error("DTLS certificate: " + step + " failed (" + openssl_reason() + ")");
  };
  ERR_clear_error();
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
  if (!key) throw fail("generating the P-256 key");

  std::unique_ptr<X509, X509Free> x509(X509_new());
  if (!x509) throw fail("X509_new");
  if (X509_set_version(x509.get(), X509_VERSION_3) != 1) throw fail("X509_set_version");
  // A random positive serial: a browser that saw an earlier certificate of ours never takes this one for it.
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1) throw fail("RAND_bytes (serial)");
  serial_bytes[0] = static_cast<unsigned char>((serial_bytes[0] & 0x7f) | 0x01);
  std::unique_ptr<BIGNUM, BnFree> serial(BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr));
  if (!serial || !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x509.get()))) throw fail("setting the serial");
  // From a day back, so a client whose clock is behind ours still takes it as valid.
  if (!X509_gmtime_adj(X509_getm_notBefore(x509.get()), -24L * 3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(x509.get()), 30L * 24 * 3600)) {
    throw fail("setting the validity");
  }
  X509_NAME* name = X509_get_subject_name(x509.get());
  const auto* cn = reinterpret_cast<const unsigned char*>("fc25");
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, cn, -1, -1, 0) != 1 ||
      X509_set_issuer_name(x509.get(), name) != 1) {
    throw fail("setting the name");
  }
  if (X509_set_pubkey(x509.get(), key.get()) != 1) throw fail("X509_set_pubkey");
  if (X509_sign(x509.get(), key.get(), EVP_sha256()) <= 0) throw fail("signing the certificate");

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (X509_digest(x509.get(), EVP_sha256(), digest, &digest_size) != 1) throw fail("X509_digest");

  std::shared_ptr<Certificate> cert(new Certificate());
  cert->fingerprint_ = hex_pairs(digest, digest_size);
  SSL_CTX* ctx = SSL_CTX_new(DTLS_server_method());
  if (!ctx) throw fail("SSL_CTX_new(DTLS_server_method)");
  cert->impl_->ctx = ctx;
  if (SSL_CTX_use_certificate(ctx, x509.get()) != 1) throw fail("SSL_CTX_use_certificate");
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) throw fail("SSL_CTX_use_PrivateKey");
  if (SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) != 1) throw fail("setting DTLS 1.2 as the minimum");
  if (SSL_CTX_set_tlsext_use_srtp(ctx, kSrtpProfile) != 0) throw fail("SSL_CTX_set_tlsext_use_srtp");
  // The client must present a certificate (its fingerprint is in the offer); check_client_certificate judges it.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, check_client_certificate, nullptr);
  // Our MTU is set, not probed (there is no socket under the BIO). No resumption: a session from another
  // listener's handshake would skip the certificate check; browsers never resume DTLS-SRTP anyway.
  SSL_CTX_set_options(ctx, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_read_ahead(ctx, 0);
  // OpenSSL's default cipher list has what browsers offer with an ECDSA key (ECDHE-ECDSA with AES-GCM, ChaCha20).
  return cert;
}

DtlsServer::DtlsServer(std::shared_ptr<const Certificate> certificate, const std::string& peer_fingerprint, Send send)
    : impl_(std::make_unique<Impl>()) {
  if (!certificate) throw std::invalid_argument("DtlsServer: no certificate");
  if (!send) throw std::invalid_argument("DtlsServer: no send callback");
  parse_fingerprint(peer_fingerprint, impl_->md, impl_->expected);
  impl_->certificate = std::move(certificate);
  impl_->send = std::move(send);

  auto fail = [](const std::string& step) {
    return std::runtime_error("DTLS: " + step + " failed (" + openssl_reason() + ")");
  };
  ERR_clear_error();
  impl_->ssl = SSL_new(impl_->certificate->impl().ctx);
  if (!impl_->ssl) throw fail("SSL_new");
  SSL_set_app_data(impl_->ssl, impl_.get());

  BIO* rbio = BIO_new(BIO_s_mem());
  const BIO_METHOD* sink = datagram_sink();
  BIO* wbio = sink ? BIO_new(sink) : nullptr;
  if (!rbio || !wbio) {
    BIO_free(rbio);
    BIO_free(wbio);
    throw fail("making the BIOs");
  }
  BIO_set_mem_eof_return(rbio, -1);  // an empty read buffer means "wait for the next datagram", not EOF
  BIO_set_data(wbio, impl_.get());
  BIO_set_init(wbio, 1);
  SSL_set_bio(impl_->ssl, rbio, wbio);
  SSL_set_accept_state(impl_->ssl);
  // After the write BIO is in place: the minimum OpenSSL checks against depends on its overhead. Not
  // DTLS_set_link_mtu as well: OpenSSL would replace this with link MTU minus overhead at the first write.
  if (SSL_set_mtu(impl_->ssl, kMtu) <= 0) throw fail("SSL_set_mtu");
}

DtlsServer::~DtlsServer() = default;

namespace {

// Sets the error text without letting an allocation failure escape (feed, tick and close never throw).
void set_error(std::string& error, const char* what, const char* detail = "") noexcept {
  try {
    error = std::string(what) + detail;
  } catch (...) {
  }
}

// The handshake is done: checks what it agreed and exports the SRTP keys. Returns why it cannot be used, or "".
std::string finish_handshake(DtlsServer::Impl& impl, SrtpKeys& keys) {
  SSL* ssl = impl.ssl;
  // The certificate check already ran during the handshake; this is the last word whatever path got us here.
  std::unique_ptr<X509, X509Free> peer(SSL_get1_peer_certificate(ssl));
  if (!impl.matches(peer.get())) return kMismatch;
  const SRTP_PROTECTION_PROFILE* profile = SSL_get_selected_srtp_profile(ssl);
  if (!profile || profile->id != SRTP_AES128_CM_SHA1_80) {
    return "the listener's browser agreed on no SRTP profile we have (AES_CM_128_HMAC_SHA1_80) in DTLS";
  }
  unsigned char material[60];
  if (SSL_export_keying_material(ssl, material, sizeof material, "EXTRACTOR-dtls_srtp", 19, nullptr, 0, 0) != 1) {
    return "the SRTP keys could not be exported from the listener's DTLS session (" + openssl_reason() + ")";
  }
  // RFC 5764 4.2: client key, server key, client salt, server salt. We are the server: we send with its half.
  const unsigned char* client_key = material;
  const unsigned char* server_key = material + 16;
  const unsigned char* client_salt = material + 32;
  const unsigned char* server_salt = material + 46;
  std::memcpy(keys.local.data(), server_key, 16);
  std::memcpy(keys.local.data() + 16, server_salt, 14);
  std::memcpy(keys.remote.data(), client_key, 16);
  std::memcpy(keys.remote.data() + 16, client_salt, 14);
  OPENSSL_cleanse(material, sizeof material);
  return {};
}

}  // namespace

DtlsServer::State DtlsServer::feed(const std::uint8_t* data, std::size_t size) {
  if (state_ == State::failed || state_ == State::closed) return state_;
  // Only DTLS (RFC 7983: first byte 20-63); the caller demultiplexes, this keeps stray bytes out of OpenSSL.
  if (!data || size == 0 || size > INT_MAX || data[0] < 20 || data[0] > 63) return state_;
  try {
    SSL* ssl = impl_->ssl;
    ERR_clear_error();
    BIO* rbio = SSL_get_rbio(ssl);
    if (BIO_write(rbio, data, static_cast<int>(size)) != static_cast<int>(size)) {
      state_ = State::failed;
      error_ = "the listener's DTLS datagram could not be buffered (" + openssl_reason() + ")";
      return state_;
    }

    if (state_ == State::handshaking) {
      int r = SSL_do_handshake(ssl);
      if (r == 1) {
        std::string failure = finish_handshake(*impl_, keys_);
        if (failure.empty()) {
          state_ = State::connected;
        } else {
          // The client thinks it is connected: tell it the connection is over rather than leave it waiting.
          ERR_clear_error();
          SSL_shutdown(ssl);
          state_ = State::failed;
          error_ = std::move(failure);
        }
      } else {
        int err = SSL_get_error(ssl, r);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
          state_ = State::failed;
          error_ = impl_->mismatch ? kMismatch : "the listener's DTLS handshake failed: " + openssl_reason();
        }
      }
    }

    // Connected (perhaps by this very datagram): records after the handshake. The client's repeated Finished
    // (our last flight was lost) makes OpenSSL resend that flight in here; close_notify or an alert ends it.
    if (state_ == State::connected) {
      unsigned char buf[2048];
      for (;;) {
        int r = SSL_read(ssl, buf, sizeof buf);
        if (r > 0) continue;  // application data: nothing of ours runs over DTLS (no data channel), dropped
        int err = SSL_get_error(ssl, r);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
        if (err == SSL_ERROR_ZERO_RETURN) {
          ERR_clear_error();
          SSL_shutdown(ssl);  // our close_notify in answer (RFC 5246 7.2.1)
          state_ = State::closed;
        } else {
          state_ = State::failed;
          error_ = "the listener's DTLS connection failed: " + openssl_reason();
        }
        break;
      }
    }
    // Whatever was read is done with: leftovers of one datagram must never be taken as the start of the next.
    (void)BIO_reset(rbio);
    ERR_clear_error();
  } catch (const std::exception& e) {
    state_ = State::failed;
    set_error(error_, "the listener's DTLS connection failed: ", e.what());
  } catch (...) {
    state_ = State::failed;
    set_error(error_, "the listener's DTLS connection failed");
  }
  return state_;
}

void DtlsServer::tick() {
  if (state_ != State::handshaking) return;
  try {
    ERR_clear_error();
    // Resends our last flight (through the sink) once its timer ran out; fails after too many tries.
    if (DTLSv1_handle_timeout(impl_->ssl) < 0) {
      state_ = State::failed;
      error_ = "the listener's DTLS handshake timed out: " + openssl_reason();
    }
    ERR_clear_error();
  } catch (...) {
    state_ = State::failed;
    set_error(error_, "the listener's DTLS handshake timed out");
  }
}

void DtlsServer::close() {
  if (state_ == State::connected) {
    try {
      ERR_clear_error();
      SSL_shutdown(impl_->ssl);
      ERR_clear_error();
    } catch (...) {
    }
  }
  state_ = State::closed;
}

}  // namespace fc25::rtc
