#pragma once
// The SDP a send-only ICE-lite listener connection needs: what is read from a listener's offer (its ICE
// credentials, DTLS fingerprint and role, the audio section's mid and Opus payload type) and the answer written
// back (sendonly Opus, a=ice-lite, our credentials, certificate fingerprint, DTLS server role, and every host
// candidate in the answer itself: an ICE-lite agent has nothing to trickle).
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fc25::rtc {

// The offer cannot be answered: the message names the field and what is wrong.
class SdpError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct ListenerOffer {
  std::string ice_ufrag, ice_pwd;  // the listener's (media level, else session level)
  std::string fingerprint;         // "<hash> <hex>", as offered
  std::string setup;               // actpass or active (passive is refused: we are the DTLS server)
  unsigned audio_index = 0;        // the m-line we answer (the first audio one that can receive)
  std::string audio_mid;
  int opus_pt = -1;
  bool bundle = false;             // the offer groups its m-lines with a=group:BUNDLE
  struct Section {
    std::string media, proto, mid;  // m-line's media and protocol, a=mid ("" when absent)
    std::string first_format;       // what a rejected section's m-line lists
  };
  std::vector<Section> sections;   // every m-line, in order
};

// Reads a listener's offer. Throws SdpError naming what is missing (no receivable Opus audio section, no ICE
// credentials or fingerprint, a=setup:passive). The offer is expected to have passed media::check_offer.
ListenerOffer parse_listener_offer(const std::string& sdp);

struct Candidate {
  std::string address;  // IPv4 or IPv6 literal
  std::uint16_t port = 0;
};

struct AnswerParams {
  std::string ice_ufrag, ice_pwd;  // ours
  std::string fingerprint;         // sha-256 of our certificate, "AB:CD:…"
  std::uint32_t ssrc = 0;
  std::string cname;
  std::vector<Candidate> candidates;
};

// The answer to `offer`: its audio section sendonly with Opus at the offered payload type, every other section
// rejected (port 0), the session marked a=ice-lite.
std::string write_listener_answer(const ListenerOffer& offer, const AnswerParams& params);

// "candidate:…" (the a= value) of a host candidate, numbered `foundation` (1, 2, …: it ranks them too).
std::string candidate_attribute(unsigned foundation, const Candidate& candidate);

// A random ICE credential of `chars` characters from [A-Za-z0-9+/] (ufrag 4+, pwd 22+ by RFC 8839).
std::string random_ice_string(std::size_t chars);

}  // namespace fc25::rtc
