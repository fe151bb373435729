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

// What a Range header (RFC 9110 section 14) asks of a `size`-byte file.
struct RangeRequest {
  enum class Kind {
    whole,          // no range to serve: answer 200 with the whole file
    part,           // answer 206 with `range`
    unsatisfiable,  // answer 416 with "Content-Range: bytes */size"
  };
  Kind kind = Kind::whole;
  ByteRange range;  // Kind::part only
};

// One range of bytes: "bytes=a-b" (b past the end is cut to the end), "bytes=a-", or "bytes=-n" (the last n bytes,
// or the whole file when n is larger). A range that starts past the end, a suffix of 0 bytes and any range of an
// empty file cannot be satisfied. Everything else is ignored and the whole file is the answer, as the RFC has it:
// another unit (which must be ignored), several ranges (no multipart answers here), or text that is not a range.
// Numbers of any length are read (saturating).
RangeRequest parse_range(std::string_view header, std::uint64_t size);

}  // namespace fc25::http
