// A line-by-line reading of the few SDP fields a listener's connection needs. The offer has already been checked
// as a whole (media::check_offer); this only finds values and refuses what an ICE-lite DTLS server cannot answer.
#include "rtc/sdp.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <string_view>

namespace fc25::rtc {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

bool starts(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    auto sp = s.find(' ');
    if (sp != 0) out.push_back(s.substr(0, sp));
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp + 1);
  }
  return out;
}

// The fields of one level (session or a media section).
struct Level {
  std::string ufrag, pwd, fingerprint, setup, mid;
  bool recvonly = false, sendonly = false, inactive = false;
  int opus_pt = -1;
};

void read_attribute(std::string_view a, Level& l, bool& bundle) {
  auto colon = a.find(':');
  std::string_view key = a.substr(0, colon), value = colon == std::string_view::npos ? "" : a.substr(colon + 1);
  if (key == "ice-ufrag") l.ufrag = value;
  else if (key == "ice-pwd") l.pwd = value;
  else if (key == "fingerprint") l.fingerprint = value;
  else if (key == "setup") l.setup = value;
  else if (key == "mid") l.mid = value;
  else if (key == "recvonly") l.recvonly = true;
  else if (key == "sendonly") l.sendonly = true;
  else if (key == "inactive") l.inactive = true;
  else if (key == "group" && starts(value, "BUNDLE")) bundle = true;
  else if (key == "rtpmap" && l.opus_pt < 0) {
    // "111 opus/48000/2"
    auto w = words(value);
    if (w.size() == 2) {
      std::string codec(w[1]);
      std::transform(codec.begin(), codec.end(), codec.begin(), [](unsigned char c) { return std::tolower(c); });
      if (starts(codec, "opus/48000")) l.opus_pt = std::atoi(std::string(w[0]).c_str());
    }
  }
}

}  // namespace

ListenerOffer parse_listener_offer(const std::string& sdp) {
  ListenerOffer offer;
  Level session;
  std::vector<Level> media;
  bool bundle = false;
  std::istringstream in(sdp);
  std::string raw;
  while (std::getline(in, raw)) {
    auto line = trim(raw);
    if (starts(line, "m=")) {
      auto w = words(line.substr(2));
      ListenerOffer::Section s;
      if (!w.empty()) s.media = w[0];
      if (w.size() > 2) s.proto = w[2];
      if (w.size() > 3) s.first_format = w[3];
      offer.sections.push_back(std::move(s));
      media.emplace_back();
    } else if (starts(line, "a=")) {
      read_attribute(line.substr(2), media.empty() ? session : media.back(), bundle);
    }
  }
  offer.bundle = bundle;
  bool found = false;
  for (std::size_t i = 0; i < media.size(); ++i) {
    offer.sections[i].mid = media[i].mid;
    const auto& m = media[i];
    if (found || offer.sections[i].media != "audio" || m.sendonly || m.inactive || m.opus_pt < 0) continue;
    found = true;
    offer.audio_index = static_cast<unsigned>(i);
    offer.audio_mid = m.mid;
    offer.opus_pt = m.opus_pt;
    offer.ice_ufrag = m.ufrag.empty() ? session.ufrag : m.ufrag;
    offer.ice_pwd = m.pwd.empty() ? session.pwd : m.pwd;
    offer.fingerprint = m.fingerprint.empty() ? session.fingerprint : m.fingerprint;
    offer.setup = m.setup.empty() ? session.setup : m.setup;
  }
  if (!found) throw SdpError("the offer has no audio section that receives Opus at 48 kHz");
  if (offer.audio_mid.empty()) throw SdpError("the offer's audio section has no a=mid");
  if (offer.ice_ufrag.empty() || offer.ice_pwd.empty()) throw SdpError("the offer has no a=ice-ufrag and a=ice-pwd");
  if (offer.fingerprint.empty()) throw SdpError("the offer has no a=fingerprint");
  if (offer.setup.empty()) offer.setup = "actpass";
  if (offer.setup != "actpass" && offer.setup != "active") {
    throw SdpError("the offer's a=setup is '" + offer.setup.substr(0, 40) +
                   "': a listener must take the DTLS client's part (actpass or active)");
  }
  return offer;
}

std::string write_listener_answer(const ListenerOffer& offer, const AnswerParams& p) {
  const bool v6 = !p.candidates.empty() && p.candidates.front().address.find(':') != std::string::npos;
  const std::string conn_addr = p.candidates.empty() ? "0.0.0.0" : p.candidates.front().address;
  const unsigned port = p.candidates.empty() ? 9 : p.candidates.front().port;
  unsigned char id[8];
  randombytes_buf(id, sizeof id);
  std::uint64_t session_id = 0;
  for (auto b : id) session_id = (session_id << 8) | b;
  session_id &= 0x7fffffffffffffffULL;  // a positive 63-bit number, as RFC 4566 suggests

  std::ostringstream o;
  o << "v=0\r\no=- " << session_id << " 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
  if (offer.bundle) o << "a=group:BUNDLE " << offer.audio_mid << "\r\n";
  o << "a=ice-lite\r\na=msid-semantic: WMS " << p.cname << "\r\n";
  for (std::size_t i = 0; i < offer.sections.size(); ++i) {
    const auto& s = offer.sections[i];
    if (i != offer.audio_index) {
      // Rejected: the same media and protocol, port 0, its mid kept so that the page can match it.
      o << "m=" << s.media << " 0 " << s.proto << " " << (s.first_format.empty() ? "0" : s.first_format) << "\r\n"
        << "c=IN IP4 0.0.0.0\r\n";
      if (!s.mid.empty()) o << "a=mid:" << s.mid << "\r\n";
      o << "a=inactive\r\n";
      continue;
    }
    o << "m=audio " << port << " UDP/TLS/RTP/SAVPF " << offer.opus_pt << "\r\n"
      << "c=IN " << (v6 ? "IP6 " : "IP4 ") << conn_addr << "\r\n"
      << "a=rtcp:" << port << " IN " << (v6 ? "IP6 " : "IP4 ") << conn_addr << "\r\n"
      << "a=ice-ufrag:" << p.ice_ufrag << "\r\n"
      << "a=ice-pwd:" << p.ice_pwd << "\r\n"
      << "a=fingerprint:sha-256 " << p.fingerprint << "\r\n"
      << "a=setup:passive\r\n"
      << "a=mid:" << offer.audio_mid << "\r\n"
      << "a=sendonly\r\n"
      << "a=rtcp-mux\r\n"
      << "a=rtpmap:" << offer.opus_pt << " opus/48000/2\r\n"
      << "a=fmtp:" << offer.opus_pt << " minptime=10;useinbandfec=1\r\n"
      << "a=ssrc:" << p.ssrc << " cname:" << p.cname << "\r\n"
      << "a=ssrc:" << p.ssrc << " msid:" << p.cname << " audio\r\n"
      << "a=msid:" << p.cname << " audio\r\n";
    unsigned foundation = 1;
    for (const auto& c : p.candidates) o << "a=" << candidate_attribute(foundation++, c) << "\r\n";
    o << "a=end-of-candidates\r\n";
  }
  return o.str();
}

std::string candidate_attribute(unsigned foundation, const Candidate& c) {
  // Priority as RFC 8445 5.1.2.1 gives a host candidate (type preference 126), the local preference falling with
  // each address.
  std::uint32_t priority = (126u << 24) | ((65535u - foundation) << 8) | 255u;
  return "candidate:" + std::to_string(foundation) + " 1 udp " + std::to_string(priority) + " " + c.address + " " +
         std::to_string(c.port) + " typ host";
}

std::string random_ice_string(std::size_t chars) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string s(chars, 'A');
  for (auto& c : s) c = kAlphabet[randombytes_uniform(64)];
  return s;
}

}  // namespace fc25::rtc
