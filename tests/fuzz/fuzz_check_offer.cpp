// SDP text as a page sends it in "webrtc_offer" (a broadcaster's, which must send audio) and "listen_offer" (a
// listener's, which must receive it), through the check the media plane runs before any pipeline exists
// (media::check_offer). An offer is refused with media::OfferError (the page gets "bad_offer"); one that passes
// must name an RTP payload type (0-127) for Opus.
//
// A crash is: any other exception, or an accepted offer whose payload type is not an RTP payload type.
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "media/media.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fc25;
  std::string sdp(reinterpret_cast<const char*>(data), size);
  for (auto direction : {media::OfferDirection::sends, media::OfferDirection::receives}) {
    try {
      int pt = media::check_offer(sdp, direction);
      if (pt < 0 || pt > 127) fuzz::fail("an offer passed with Opus payload type " + std::to_string(pt));
    } catch (const media::OfferError&) {
    }
  }
  return 0;
}
