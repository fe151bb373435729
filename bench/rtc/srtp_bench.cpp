// One listener's copy of a packet protected for sending: fc25's SRTP (OpenSSL) against libsrtp2 as Debian builds
// it (its crypto on NSS), the send path's largest cost before the system call. An Opus packet of 160 bytes (20 ms
// at 64 kb/s), one session per listener, 1 and 2 threads each with sessions of their own (the sender threads).
//
//   build/bench/rtc/srtp_bench [--benchmark_repetitions=5]
//
// Prints the processor's model and whether it has the AES and SHA instructions OpenSSL uses.
#include <benchmark/benchmark.h>

#include <srtp2/srtp.h>

#include <array>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "../gbench_main.hpp"
#include "rtc/srtp.hpp"

namespace {

using fc25::rtc::SrtpKeys;
using fc25::rtc::SrtpSession;

constexpr std::size_t kPayload = 160;
constexpr int kListeners = 64;  // sessions per thread, visited in turn as a sender does

SrtpKeys keys(int i) {
  SrtpKeys k;
  for (std::size_t b = 0; b < k.local.size(); ++b) {
    k.local[b] = static_cast<std::uint8_t>(b * 7 + i);
    k.remote[b] = static_cast<std::uint8_t>(b * 11 + i);
  }
  return k;
}

std::array<std::uint8_t, 12 + kPayload + SrtpSession::kMaxOverhead> packet(std::uint16_t seq) {
  std::array<std::uint8_t, 12 + kPayload + SrtpSession::kMaxOverhead> p{};
  p[0] = 0x80;
  p[1] = 111;
  p[2] = static_cast<std::uint8_t>(seq >> 8);
  p[3] = static_cast<std::uint8_t>(seq);
  p[8] = 0x11;
  for (std::size_t i = 12; i < 12 + kPayload; ++i) p[i] = static_cast<std::uint8_t>(i);
  return p;
}

void Fc25Protect(benchmark::State& state) {
  std::vector<std::unique_ptr<SrtpSession>> sessions;
  for (int i = 0; i < kListeners; ++i) sessions.push_back(std::make_unique<SrtpSession>(keys(i + state.thread_index() * 100)));
  std::uint16_t seq = 0;
  for (auto _ : state) {
    ++seq;
    for (auto& s : sessions) {
      auto p = packet(seq);
      benchmark::DoNotOptimize(s->protect_rtp(p.data(), 12 + kPayload));
    }
  }
  state.SetItemsProcessed(state.iterations() * kListeners);
}

struct SrtpFree {
  void operator()(srtp_ctx_t* s) const { srtp_dealloc(s); }
};

void LibsrtpProtect(benchmark::State& state) {
  std::vector<std::unique_ptr<srtp_ctx_t, SrtpFree>> sessions;
  for (int i = 0; i < kListeners; ++i) {
    auto k = keys(i + state.thread_index() * 100);
    srtp_policy_t policy;
    std::memset(&policy, 0, sizeof policy);
    srtp_crypto_policy_set_rtp_default(&policy.rtp);
    srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
    policy.ssrc.type = ssrc_any_outbound;
    policy.key = k.local.data();
    policy.window_size = 1024;
    policy.allow_repeat_tx = 1;
    srtp_t s = nullptr;
    if (srtp_create(&s, &policy) != srtp_err_status_ok) {
      state.SkipWithError("srtp_create failed");
      return;
    }
    sessions.emplace_back(s);
  }
  std::uint16_t seq = 0;
  for (auto _ : state) {
    ++seq;
    for (auto& s : sessions) {
      auto p = packet(seq);
      int len = 12 + kPayload;
      benchmark::DoNotOptimize(srtp_protect(s.get(), p.data(), &len));
    }
  }
  state.SetItemsProcessed(state.iterations() * kListeners);
}

BENCHMARK(Fc25Protect)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(LibsrtpProtect)->Threads(1)->Threads(2)->UseRealTime();

bool has_flag(const std::string& flags, const char* f) { return (" " + flags + " ").find(std::string(" ") + f + " ") != std::string::npos; }

}  // namespace

int main(int argc, char** argv) {
  fc25::rtc::init_srtp();
  const std::string flags = fc25::bench::cpuinfo("flags");
  return fc25::bench::run_benchmarks(argc, argv, {{"aes-ni", has_flag(flags, "aes") ? "yes" : "no"},
                                                    {"sha-ni", has_flag(flags, "sha_ni") ? "yes" : "no"}});
}
