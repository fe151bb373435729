#pragma once
// The routes of docs/protocol.md: checks common to all (route, CSRF, session, content type) then the handlers.
#include "http/exchange.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace fc25::http {

class Api {
 public:
  explicit Api(Services& svc);
  // Fills path, query, cookies, CSRF token and user from the raw message.
  void prepare(Request& req) const;
  // Answers `req` through `respond` exactly once (now, or later from another thread).
  void handle(Request& req, Respond respond) const;

  using Handler = std::function<void(Request&, Respond&)>;
  // One more route beside those of docs/protocol.md (tests add routes that fail on purpose).
  void add_route(bhttp::verb method, const std::string& pattern, bool needs_user, Handler fn);

 private:
  struct RouteInfo {
    Handler fn;
    bool needs_user = true;
  };
  void add(bhttp::verb method, const std::string& pattern, bool needs_user, Handler fn);
  void add_routes();

  Services& svc_;
  std::unique_ptr<recording::Library> own_library_;   // when the app gave none
  Router<RouteInfo> router_;
};

}  // namespace fc25::http
