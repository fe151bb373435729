#pragma once
// The state machine of one live stream: starting -> live -> stopping -> ended. The first stop wins and fixes the
// reason; every later stop (from any path) is a no-op. Pure logic, no I/O.
//
// Threads: not synchronised itself. info() never changes and may be read from any thread; the state (mark_live,
// begin_stop, finish, state, end_reason) belongs to whoever owns the stream: StreamRegistry calls these only under
// its mutex once the stream is shared.
#include <optional>
#include <string_view>

#include "storage/store.hpp"

namespace fc25::streams {

enum class State { starting, live, stopping, ended };

enum class EndReason { user, page_unload, socket_closed, webrtc_failed, media_timeout, server_shutdown, server_restart,
                       media_error, recording_failed, node_lost };

std::string_view to_string(State s);
std::string_view to_string(EndReason r);
std::optional<EndReason> parse_end_reason(std::string_view s);

// The noise removal strengths a page offers, from none to all: how far the noise may be lowered. Off still runs
// the denoiser (without effect), so that a stream can be given another strength while live.
enum class Strength { off, light, balanced, full };
std::string_view to_string(Strength s);
std::optional<Strength> parse_strength(std::string_view s);
float atten_lim_db(Strength s);  // off 0 dB, light 12, balanced 24, full 100 (no limit)

class LiveStream {
 public:
  explicit LiveStream(storage::ActiveStream info) : info_(std::move(info)) {}

  const storage::ActiveStream& info() const { return info_; }
  State state() const { return state_; }
  std::optional<EndReason> end_reason() const { return reason_; }

  // starting -> live. False (and no change) from any other state.
  bool mark_live();
  // starting|live -> stopping, remembering the reason. False when a stop already began: the caller must do nothing.
  bool begin_stop(EndReason reason);
  // stopping -> ended. False from any other state.
  bool finish();

 private:
  storage::ActiveStream info_;
  State state_ = State::starting;
  std::optional<EndReason> reason_;
};

}  // namespace fc25::streams
