#include <boost/asio/post.hpp>

#include "presence/channel_layer.hpp"

namespace fc25::presence {
namespace {

class MemoryLayer final : public ChannelLayer {
 public:
  explicit MemoryLayer(boost::asio::io_context& io) : io_(io) {}
  void start(Receiver on_message, Reconnected) override { receiver_ = std::move(on_message); }
  void publish(const std::string& group, std::string payload) override {
    if (!receiver_) return;
    // Delivered as Redis would deliver it: later, on an io thread, never inside the sender's call.
    boost::asio::post(io_, gate_.wrap([r = receiver_, group, p = std::move(payload)] { r(group, p); }));
  }
  void stop() override { gate_.close(); }
  const char* name() const override { return "memory"; }

 private:
  boost::asio::io_context& io_;
  Receiver receiver_;
  DeliveryGate gate_;
};

}  // namespace

std::unique_ptr<ChannelLayer> make_memory_layer(boost::asio::io_context& io) {
  return std::make_unique<MemoryLayer>(io);
}

std::unique_ptr<ChannelLayer> make_channel_layer(boost::asio::io_context& io, const ChannelLayerConfig& config) {
  if (config.backend == "redis") return make_redis_layer(io, config.redis_host, config.redis_port);
  return make_memory_layer(io);
}

}  // namespace fc25::presence
