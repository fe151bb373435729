#pragma once
// HTTPS served by fc25 itself, for one machine (a cluster has HAProxy terminate TLS in front of its nodes:
// docs/deploy.md). The context is made once at start-up from PEM files and shared by every connection.
#include <filesystem>
#include <memory>

#include <boost/asio/ssl/context.hpp>

namespace fc25::http {

// A server context with the certificate chain of `cert` and the private key of `key` (both PEM): TLS 1.2 or
// newer, OpenSSL's default ciphers, no renegotiation. Throws std::invalid_argument naming the option
// (FC25_TLS_CERT / FC25_TLS_KEY) and the file when one is missing or unreadable, is not a PEM certificate or key
// (an encrypted key counts as unreadable: there is nobody to type its passphrase), or the key is not the
// certificate's.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const std::filesystem::path& cert,
                                                            const std::filesystem::path& key);

}  // namespace fc25::http
