#pragma once
// Wall-clock times as the protocol shows them: epoch milliseconds inside, ISO 8601 UTC with milliseconds outside;
// and the steady clock that media stamps frames with.
#include <cstdint>
#include <string>

namespace fc25::core {

std::int64_t now_ms();                         // system clock, milliseconds since the epoch
std::string iso8601_ms(std::int64_t epoch_ms);  // "2026-11-24T20:30:00.123Z"
std::int64_t steady_ns();                      // steady clock, nanoseconds (frame arrival times and latencies)

}  // namespace fc25::core
