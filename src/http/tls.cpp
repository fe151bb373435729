#include "http/tls.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace fc25::http {
namespace {

constexpr const char* kCertOption = "FC25_TLS_CERT (--tls-cert)";
constexpr const char* kKeyOption = "FC25_TLS_KEY (--tls-key)";

// OpenSSL's reason for the last failure on this thread, and the queue emptied for the next call.
std::string openssl_reason() {
  unsigned long code = ERR_peek_last_error();
  std::string reason = code ? ERR_reason_error_string(code) ? ERR_reason_error_string(code) : "unknown error"
                            : "no PEM data";
  ERR_clear_error();
  return reason;
}

std::string read_file(const char* option, const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::invalid_argument(std::string(option) + ": cannot read '" + path.string() + "': " +
                                std::strerror(errno));
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    throw std::invalid_argument(std::string(option) + ": cannot read '" + path.string() + "'");
  }
  return text;
}

// Never asks for a passphrase (a server has no one to type it).
int no_passphrase(char*, int, int, void*) { return 0; }

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

}  // namespace

std::shared_ptr<boost::asio::ssl::context> make_tls_context(const std::filesystem::path& cert,
                                                            const std::filesystem::path& key) {
  namespace ssl = boost::asio::ssl;
  if (cert.empty() != key.empty()) {
    throw std::invalid_argument(std::string(cert.empty() ? kCertOption : kKeyOption) + " is missing: HTTPS needs " +
                                "both " + kCertOption + " and " + kKeyOption);
  }
  auto cert_pem = read_file(kCertOption, cert);
  auto key_pem = read_file(kKeyOption, key);

  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);

  if (cert_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    throw std::invalid_argument(std::string(kCertOption) + ": '" + cert.string() +
                                "' is not a PEM certificate (no -----BEGIN CERTIFICATE----- block)");
  }
  if (key_pem.find("PRIVATE KEY-----") == std::string::npos) {
    throw std::invalid_argument(std::string(kKeyOption) + ": '" + key.string() +
                                "' is not a PEM private key (no -----BEGIN PRIVATE KEY----- block)");
  }
  if (key_pem.find("ENCRYPTED") != std::string::npos) {
    throw std::invalid_argument(std::string(kKeyOption) + ": '" + key.string() +
                                "' is encrypted; the server cannot ask for its passphrase (openssl pkey -in KEY -out "
                                "PLAIN writes it unencrypted)");
  }
  boost::system::error_code ec;
  ctx->use_certificate_chain(boost::asio::buffer(cert_pem), ec);
  if (ec) {
    ERR_clear_error();
    throw std::invalid_argument(std::string(kCertOption) + ": '" + cert.string() +
                                "' is not a PEM certificate (" + ec.message() + ")");
  }

  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, &no_passphrase, nullptr) : nullptr);
  if (!pkey) {
    throw std::invalid_argument(std::string(kKeyOption) + ": '" + key.string() +
                                "' is not a readable PEM private key (" + openssl_reason() + ")");
  }
  X509* leaf = SSL_CTX_get0_certificate(native);
  if (!leaf || X509_check_private_key(leaf, pkey.get()) != 1) {
    ERR_clear_error();
    throw std::invalid_argument(std::string(kKeyOption) + ": the key in '" + key.string() +
                                "' does not match the certificate in '" + cert.string() + "'");
  }
  if (SSL_CTX_use_PrivateKey(native, pkey.get()) != 1) {
    throw std::invalid_argument(std::string(kKeyOption) + ": '" + key.string() + "' cannot be used (" +
                                openssl_reason() + ")");
  }
  return ctx;
}

}  // namespace fc25::http
