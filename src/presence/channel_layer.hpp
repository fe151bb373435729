#pragma once
// The channel layer carries events to groups of presence sockets (one group per user: "user.<username>"),
// within one process (memory) or across processes (Redis pub/sub). It moves opaque JSON text; group membership
// is kept by the caller, which tells the layer only which groups have local members.
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/io_context.hpp>

#include "presence/presence.hpp"

namespace fc25::presence {

// What a layer posts to the io threads may run after the layer was stopped (or destroyed): it passes through a
// gate that stop() closes, so that nothing is delivered once stop() has returned.
class DeliveryGate {
 public:
  template <class Fn>
  auto wrap(Fn fn) const {
    return [state = state_, fn = std::move(fn)]() {
      std::lock_guard lock(state->mu);
      if (state->open) fn();
    };
  }
  void close() {
    std::lock_guard lock(state_->mu);
    state_->open = false;
  }

 private:
  struct State {
    std::mutex mu;
    bool open = true;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

class ChannelLayer {
 public:
  // A message for `group` arrived (from this process or another). Called on an io thread.
  using Receiver = std::function<void(const std::string& group, const std::string& payload)>;
  // The layer lost its connection and got it back: state may have been missed, so clients need a fresh snapshot.
  using Reconnected = std::function<void()>;

  virtual ~ChannelLayer() = default;
  virtual void start(Receiver on_message, Reconnected on_reconnect) = 0;
  virtual void publish(const std::string& group, std::string payload) = 0;  // thread-safe, never blocks
  virtual void stop() = 0;                                                   // idempotent
  virtual const char* name() const = 0;
};

std::unique_ptr<ChannelLayer> make_memory_layer(boost::asio::io_context& io);
std::unique_ptr<ChannelLayer> make_redis_layer(boost::asio::io_context& io, std::string host, int port);
std::unique_ptr<ChannelLayer> make_channel_layer(boost::asio::io_context& io, const ChannelLayerConfig& config);

}  // namespace fc25::presence
