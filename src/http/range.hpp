#pragma once
// The Range header of a download (recordings: seekable <audio>), as a pure function so that it can be tested and
// fuzzed on its own. One range only; "bytes" as the unit.
#include <cstdint>
#include <optional>
#include <string_view>

namespace fc25::http {

// Bytes [first, first + length) of a file; length >= 1 and first + length <= the file's size.
struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t length = 0;
};

// The range of a `size`-byte file that a Range header value asks for: "bytes=a-b" (b past the end is cut to the
// end), "bytes=a-" or "bytes=-n" (the last n bytes, or the whole file when n is larger). nullopt when the value is
// malformed, names several ranges, or cannot be satisfied (a past the end, b < a, n = 0, an empty file): the
// answer is then 416 with "Content-Range: bytes */size". Numbers of any length are read (saturating).
std::optional<ByteRange> parse_range(std::string_view header, std::uint64_t size);

}  // namespace fc25::http
