// What one node of a cluster sends another over a relay (src/relay): binary packets (relay::decode_packet) and the
// text messages of both directions (relay::parse_origin_message, relay::parse_relay_message). Only nodes with the
// cluster secret reach these readers, but no input of theirs may stop the other node either.
//
// A crash is: any exception, a packet whose payload is not the bytes after its header or that does not encode back
// to the same bytes, or a message read with a field over its limit.
#include <algorithm>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "relay/relay.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fc25;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  if (auto p = relay::decode_packet(bytes)) {
    if (p->opus.empty() || p->opus.data() + p->opus.size() != bytes.data() + bytes.size()) {
      fuzz::fail("a packet's payload is not the end of the message");
    }
    // The 7 reserved bytes are written as zeros; everything else must come back as it was.
    std::string expected(bytes);
    std::fill(expected.begin() + 1, expected.begin() + 8, '\0');
    if (relay::encode_packet(*p) != expected) fuzz::fail("a decoded packet does not encode back to its bytes");
  }

  if (auto m = relay::parse_origin_message(bytes)) {
    if (m->listen_id.size() > 128 || m->code.size() > 128 || m->reason.size() > 128 || m->message.size() > 1000) {
      fuzz::fail("an origin message with a field over its limit");
    }
  }

  if (auto m = relay::parse_relay_message(bytes)) {
    if (m->listen_id.size() > 128) fuzz::fail("a listener id over 128 bytes");
  }
  return 0;
}
