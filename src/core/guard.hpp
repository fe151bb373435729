#pragma once
// The boundary every thread entry point and every callback from C code (GStreamer, glib) runs behind: an exception
// that reaches it is logged and counted (core::failure_counts(), GET /api/health) instead of ending the process
// through std::terminate.
#include <chrono>
#include <exception>
#include <string_view>
#include <thread>

#include "core/log.hpp"

namespace fc25::core {

// Runs fn(); returns false (after logging and counting under `where`) when it threw.
template <class Fn>
bool guarded(std::string_view where, Fn&& fn) noexcept {
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    try {
      count_failure(where);
      logger("guard")->error("{} failed: {}", where, e.what());
    } catch (...) {
    }
  } catch (...) {
    try {
      count_failure(where);
      logger("guard")->error("{} failed with an unknown exception", where);
    } catch (...) {
    }
  }
  return false;
}

// A thread's loop: run again (after a pause, so a failure that repeats cannot spin) whenever it throws, until it
// returns normally. Loops end by returning when they are told to stop.
template <class Fn>
void run_guarded(std::string_view where, Fn&& loop) noexcept {
  while (!guarded(where, loop)) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

}  // namespace fc25::core
