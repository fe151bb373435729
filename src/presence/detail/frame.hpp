#pragma once
// What the server does with one text frame a page sent on its presence socket, apart from the socket itself:
// the immediate answer ("pong" or an "error" naming what it answers), or nothing when the message went to
// Hooks::on_message, which answers through `reply` (now or later). Never throws. Used by the socket sessions in
// presence.cpp and by the fuzz target tests/fuzz/fuzz_presence_message.cpp.
#include <optional>
#include <string>

#include "presence/presence.hpp"

namespace fc25::presence::detail {

// The answer as the JSON text to send, or nullopt when on_message took the message.
std::optional<std::string> answer_frame(const std::string& text, const Hooks& hooks, const SocketUser& user,
                                        const std::string& client_id, const Reply& reply);

}  // namespace fc25::presence::detail
