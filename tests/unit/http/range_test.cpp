#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <utility>

#include "http/range.hpp"

using fc25::http::parse_range;
using Kind = fc25::http::RangeRequest::Kind;

namespace {

using P = std::pair<std::int64_t, std::int64_t>;

// first/length of the part to serve; {-1, -1} for a refusal (416), {-2, -2} for the whole file (200).
P r(std::string_view header, std::uint64_t size) {
  auto got = parse_range(header, size);
  if (got.kind == Kind::unsatisfiable) return {-1, -1};
  if (got.kind == Kind::whole) return {-2, -2};
  return {static_cast<std::int64_t>(got.range.first), static_cast<std::int64_t>(got.range.length)};
}

}  // namespace

TEST(Range, TheThreeFormsOfOneRange) {
  EXPECT_EQ(r("bytes=0-99", 1000), P(0, 100));
  EXPECT_EQ(r("bytes=100-", 1000), P(100, 900));
  EXPECT_EQ(r("bytes=-300", 1000), P(700, 300));
  EXPECT_EQ(r("bytes=999-999", 1000), P(999, 1));
}

TEST(Range, AnEndPastTheFileIsCutAndALongSuffixIsTheWholeFile) {
  EXPECT_EQ(r("bytes=10-5000", 1000), P(10, 990));
  EXPECT_EQ(r("bytes=-5000", 1000), P(0, 1000));
  // Numbers longer than any file size are read, not refused (RFC 9110 allows them).
  EXPECT_EQ(r("bytes=0-99999999999999999999999", 1000), P(0, 1000));
  EXPECT_EQ(r("bytes=-99999999999999999999", 1000), P(0, 1000));
}

TEST(Range, ARangeStartingPastTheEndOrOfNoBytesCannotBeSatisfied) {
  for (const char* h : {"bytes=1000-", "bytes=1000-2000", "bytes=-0", "bytes=18446744073709551615-"}) {
    EXPECT_EQ(r(h, 1000).first, -1) << h;
  }
}

// RFC 9110 14.2: a unit the server does not know must be ignored; an invalid range, or several ranges (no
// multipart answers here), may be: the whole file is served, as if no Range had been sent.
TEST(Range, OtherUnitsSeveralRangesAndTextThatIsNoRangeAreIgnored) {
  for (const char* h : {"items=0-1", "bytes=0-1,5-6", "bytes=5-1", "bytes=abc", "bytes=", "bytes=-", "bytes= 0-1",
                        "bytes=1--2", "bytes=\xff-", "bytes=-1,-2", ""}) {
    EXPECT_EQ(r(h, 1000).first, -2) << h;
  }
}

TEST(Range, NothingOfAnEmptyFileCanBeServed) {
  // A suffix of an empty file used to come out as "bytes 0--1/0".
  EXPECT_EQ(r("bytes=-5", 0).first, -1);
  EXPECT_EQ(r("bytes=0-", 0).first, -1);
  EXPECT_EQ(r("bytes=0-0", 0).first, -1);
}

TEST(Range, TheLargestFileSizes) {
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  auto got = parse_range("bytes=-1", kMax);
  ASSERT_EQ(got.kind, Kind::part);
  EXPECT_EQ(got.range.first, kMax - 1);
  EXPECT_EQ(got.range.length, 1u);
  got = parse_range("bytes=0-", kMax);
  ASSERT_EQ(got.kind, Kind::part);
  EXPECT_EQ(got.range.length, kMax);
}
