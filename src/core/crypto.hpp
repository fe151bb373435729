#pragma once
// Random tokens and digests (libsodium). sodium_init() is called once by the app before any of these.
#include <string>
#include <string_view>

namespace fc25::core {

std::string random_token_hex(std::size_t bytes = 32);   // 32 bytes = 256 bits -> 64 hex characters
std::string sha256_hex(std::string_view data);
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace fc25::core
