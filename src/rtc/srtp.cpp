#include "rtc/srtp.hpp"

#include <climits>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include <srtp2/srtp.h>

namespace fc25::rtc {

struct SrtpSession::Impl {
  srtp_t outbound = nullptr;  // our RTP and RTCP, with our key (the sending thread)
  srtp_t inbound = nullptr;   // the listener's RTCP, with its key (the reading thread)

  ~Impl() {
    if (outbound) srtp_dealloc(outbound);
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
  // Should the second fail, impl_'s destructor frees the first.
  impl_->outbound = make_session(keys.local, ssrc_any_outbound, "outbound");
  impl_->inbound = make_session(keys.remote, ssrc_any_inbound, "inbound");
}

SrtpSession::~SrtpSession() = default;

std::size_t SrtpSession::protect_rtp(std::uint8_t* buf, std::size_t size) {
  return run(srtp_protect, impl_->outbound, buf, size);
}

std::size_t SrtpSession::protect_rtcp(std::uint8_t* buf, std::size_t size) {
  return run(srtp_protect_rtcp, impl_->outbound, buf, size);
}

std::size_t SrtpSession::unprotect_rtcp(std::uint8_t* buf, std::size_t size) {
  return run(srtp_unprotect_rtcp, impl_->inbound, buf, size);
}

}  // namespace fc25::rtc
