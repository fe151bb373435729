// SDP text as a page sends it in "webrtc_offer" (a broadcaster's, which must send audio) and "listen_offer" (a
// listener's, which must receive it), through the check the media plane runs before any pipeline exists
// (media::check_offer). An offer is refused with media::OfferError (the page gets "bad_offer"); one that passes
// must name an RTP payload type (0-127) for Opus. A listener's offer that passes is then read for the shared
// transport (rtc::parse_listener_offer), which may still refuse it with rtc::SdpError, and answered.
//
// A crash is: any other exception, an accepted offer whose payload type is not an RTP payload type, or an answer
// that does not carry the offer's Opus payload type and a=ice-lite.
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "media/media.hpp"
#include "rtc/sdp.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fc25;
  std::string sdp(reinterpret_cast<const char*>(data), size);
  for (auto direction : {media::OfferDirection::sends, media::OfferDirection::receives}) {
    try {
      int pt = media::check_offer(sdp, direction);
      if (pt < 0 || pt > 127) fuzz::fail("an offer passed with Opus payload type " + std::to_string(pt));
      if (direction == media::OfferDirection::receives) {
        try {
          auto offer = rtc::parse_listener_offer(sdp);
          auto answer = rtc::write_listener_answer(offer, {"ufrag", "password", "AB:CD", 1, "s", {{"10.0.0.1", 9}}});
          if (answer.find("a=rtpmap:" + std::to_string(offer.opus_pt) + " opus/48000/2") == std::string::npos ||
              answer.find("a=ice-lite") == std::string::npos) {
            fuzz::fail("the answer lacks the offer's Opus or a=ice-lite:\n" + answer);
          }
        } catch (const rtc::SdpError&) {
        }
      }
    } catch (const media::OfferError&) {
    }
  }
  return 0;
}
