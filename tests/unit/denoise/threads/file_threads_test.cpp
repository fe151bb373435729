// A recording on two threads (Denoiser::process_file): the encoder and ERB decoder of one block while the other
// thread finishes the block before. The same audio as hop by hop, bit for bit; progress heard in order; an error on
// either side reaches the caller.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "denoise/denoise.hpp"
#include "../test_support.hpp"

namespace fc25::denoise {
namespace {

using testing::model_dir;
using testing::speechlike;

TEST(FileOnTwoThreads, GivesWhatHopByHopGivesBitForBit) {
  const auto model = Model::load(model_dir());
  const auto x = speechlike(203, 5);   // six whole blocks of 32 hops and 11 more
  auto alone = make_dfn3(model);
  std::vector<float> ref(x.size());
  for (std::size_t i = 0; i < x.size(); i += kHopSize) {
    alone->process(std::span<const float>(x).subspan(i, kHopSize), std::span<float>(ref).subspan(i, kHopSize));
  }
  for (bool two : {true, false}) {
    auto d = make_dfn3(model);
    std::vector<float> y(x.size());
    std::vector<std::size_t> heard;
    d->process_file(x, y, two, [&](std::size_t hops) { heard.push_back(hops); });
    EXPECT_EQ(y, ref) << (two ? "two threads" : "one thread");
    ASSERT_FALSE(heard.empty());
    EXPECT_TRUE(std::is_sorted(heard.begin(), heard.end()));
    EXPECT_EQ(heard.back(), x.size() / kHopSize);
  }
}

TEST(FileOnTwoThreads, AnErrorInTheProgressCallbackReachesTheCaller) {
  auto d = make_dfn3(Model::load(model_dir()));
  const auto x = speechlike(100, 6);
  std::vector<float> y(x.size());
  EXPECT_THROW(d->process_file(x, y, true, [](std::size_t hops) {
    if (hops >= 64) throw std::runtime_error("stop");
  }), std::runtime_error);
  std::vector<float> odd(kHopSize + 3), out(kHopSize + 3);
  EXPECT_THROW(d->process_file(odd, out, true, {}), std::invalid_argument);
}

}  // namespace
}  // namespace fc25::denoise
