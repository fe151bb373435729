#pragma once
// Routing table: method + path pattern ("/api/friends/requests/{id}/accept", "/static/{*path}"), matched on the
// path without its trailing slash, so "/api/me" and "/api/me/" are one route.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/beast/http/verb.hpp>

namespace fc25::http {

template <typename Handler>
class Router {
 public:
  void add(boost::beast::http::verb method, const std::string& pattern, Handler handler) {
    routes_.push_back({method, split(pattern), std::move(handler)});
  }

  struct Match {
    const Handler* handler = nullptr;          // null: no route for this method
    std::vector<std::string> allowed;          // methods the path accepts (for 405), empty: unknown path (404)
    std::map<std::string, std::string> params;
  };

  Match match(boost::beast::http::verb method, const std::string& path) const {
    Match m;
    auto segs = split(path);
    for (auto& r : routes_) {
      std::map<std::string, std::string> params;
      if (!matches(r.segments, segs, params)) continue;
      m.allowed.push_back(std::string(boost::beast::http::to_string(r.method)));
      if (r.method == method && !m.handler) {
        m.handler = &r.handler;
        m.params = std::move(params);
      }
    }
    return m;
  }

  static std::vector<std::string> split(const std::string& path) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : path) {
      if (c == '/') {
        if (!cur.empty()) out.push_back(std::move(cur));
        cur.clear();
      } else {
        cur.push_back(c);
      }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
  }

 private:
  struct Route {
    boost::beast::http::verb method;
    std::vector<std::string> segments;
    Handler handler;
  };

  static bool matches(const std::vector<std::string>& pat, const std::vector<std::string>& segs,
                      std::map<std::string, std::string>& params) {
    for (std::size_t i = 0; i < pat.size(); ++i) {
      const auto& p = pat[i];
      if (p.size() > 3 && p.rfind("{*", 0) == 0) {  // rest of the path
        if (i >= segs.size()) return false;
        std::string rest;
        for (std::size_t j = i; j < segs.size(); ++j) rest += (j > i ? "/" : "") + segs[j];
        params[p.substr(2, p.size() - 3)] = rest;
        return true;
      }
      if (i >= segs.size()) return false;
      if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
        params[p.substr(1, p.size() - 2)] = segs[i];
      } else if (p != segs[i]) {
        return false;
      }
    }
    return pat.size() == segs.size();
  }

  std::vector<Route> routes_;
};

}  // namespace fc25::http
