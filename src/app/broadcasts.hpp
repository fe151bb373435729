#pragma once
// The glue between the stream registry (who is live), the live media plane (ingest, denoise, recording) and
// presence (where WebRTC signalling travels). It decides nothing about the media itself.
#include <filesystem>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "live/live.hpp"
#include "presence/presence.hpp"
#include "storage/store.hpp"
#include "streams/registry.hpp"

namespace fc25::app {

class Broadcasts {
 public:
  Broadcasts(boost::asio::io_context& io, storage::Store& store, streams::StreamRegistry& registry,
             std::filesystem::path data_dir, live::Config config);
  ~Broadcasts();

  // For the registry.
  streams::MediaHooks hooks();
  // For presence: "webrtc_offer" and "ice_candidate" from the owning tab.
  void on_message(const presence::SocketUser& user, const std::string& client_id, const nlohmann::json& msg,
                  presence::Reply reply);

  std::string_view denoiser() const;
  std::size_t open_streams() const;
  // Ends the media of every stream (shutdown); the registry ends them first, this catches anything left.
  void close_all();

 private:
  void ending(const storage::ActiveStream& s, streams::EndReason reason, bool local);

  boost::asio::io_context& io_;
  storage::Store& store_;
  streams::StreamRegistry& registry_;
  std::filesystem::path data_dir_;
  std::unique_ptr<live::LiveMedia> live_;
};

}  // namespace fc25::app
