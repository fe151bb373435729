#pragma once
// The calling thread's name and scheduling, for threads on the audio path (denoise workers, fan-out senders).
#include <pthread.h>
#include <sched.h>

#include <string>

namespace fc25::core {

// Names the calling thread (15 characters at most) and, when `priority` > 0, asks for real-time scheduling
// (SCHED_FIFO) at that priority, as audio servers do. Returns 0, or the error when it was not permitted (no
// CAP_SYS_NICE or RLIMIT_RTPRIO): the thread then runs as it was.
inline int name_and_prioritise_thread(const std::string& name, int priority) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  if (priority <= 0) return 0;
  sched_param sp{};
  sp.sched_priority = priority;
  return pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
}

}  // namespace fc25::core
