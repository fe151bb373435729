#include "http/api.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <boost/asio/post.hpp>

#include "core/api_error.hpp"
#include "core/crypto.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "http/range.hpp"
#include "http/static_files.hpp"
#include "recording/recording.hpp"
#include "streams/status.hpp"

namespace fc25::http {

namespace beast = boost::beast;
using core::ApiError;
using nlohmann::json;

namespace {

bool is_state_changing(bhttp::verb v) {
  return v == bhttp::verb::post || v == bhttp::verb::put || v == bhttp::verb::patch || v == bhttp::verb::delete_;
}

std::string media_type(const Request& req) {
  std::string ct(req.msg[bhttp::field::content_type]);
  auto semi = ct.find(';');
  if (semi != std::string::npos) ct.resize(semi);
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  for (auto& c : ct) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ct;
}

// The body as a JSON object: JSON, or (where allowed) a urlencoded form whose fields become strings.
json body_object(const Request& req, bool allow_form) {
  const auto& body = req.msg.body();
  auto type = media_type(req);
  if (body.empty()) return json::object();
  if (type == "application/json") {
    json j;
    try {
      j = core::parse_json(body);
    } catch (const json::exception& e) {  // syntax, invalid UTF-8, or a number no double can hold (1e400)
      throw ApiError(400, "bad_json", std::string("request body is not valid JSON: ") + e.what());
    } catch (const core::JsonTooDeep& e) {
      throw ApiError(400, "bad_json", std::string("request body refused: ") + e.what());
    }
    if (!j.is_object()) throw ApiError(400, "bad_json", "request body must be a JSON object");
    return j;
  }
  if (allow_form && type == "application/x-www-form-urlencoded") {
    json j = json::object();
    for (auto& [k, v] : parse_form(body)) {
      if (!core::is_valid_utf8(k) || !core::is_valid_utf8(v)) {
        throw ApiError(400, "bad_form", "form field '" + core::printable(k) + "' is not valid UTF-8");
      }
      j[k] = v;
    }
    return j;
  }
  throw ApiError(415, "unsupported_media_type",
                 "Content-Type '" + type + "' is not accepted here (expected application/json" +
                     (allow_form ? " or application/x-www-form-urlencoded)" : ")"));
}

std::string string_field(const json& body, const char* name, bool required = true) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (required) throw ApiError(400, "invalid_field", std::string("field '") + name + "' is required");
    return "";
  }
  if (!it->is_string()) throw ApiError(400, "invalid_field", std::string("field '") + name + "' must be a string");
  return it->get<std::string>();
}

// Ids are SQLite rowids: positive and at most int64's largest value.
constexpr std::uint64_t kMaxId = std::numeric_limits<std::int64_t>::max();

std::optional<std::int64_t> id_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_string()) {
    if (auto n = parse_decimal(it->get_ref<const std::string&>(), kMaxId)) return static_cast<std::int64_t>(*n);
  }
  throw ApiError(400, "invalid_field", std::string("field '") + name + "' must be a session id (a number)");
}

std::int64_t path_id(const Request& req, const char* name) {
  const auto& s = req.params.at(name);
  auto n = parse_decimal(s, kMaxId);
  if (!n) throw ApiError(404, "not_found", "'" + core::printable(s) + "' is not a request id");
  return static_cast<std::int64_t>(*n);
}

// The user a request asks about: `?username=` (the requester or a friend of theirs, else 404 or 403), or, without
// it, the requester.
storage::User subject_user(Services& svc, Request& req) {
  auto it = req.query.find("username");
  if (it == req.query.end() || it->second.empty()) return *req.user;
  return svc.friends.visible_user(*req.user, it->second);
}

std::string session_cookie(const std::string& token, std::int64_t max_age_s, bool secure) {
  return "fc25_session=" + token + "; Path=/; HttpOnly; SameSite=Lax; Max-Age=" + std::to_string(max_age_s) +
         (secure ? "; Secure" : "");
}

// A new session for `user`, answered with its cookie.
Response logged_in(Services& svc, const storage::User& user, unsigned status) {
  auto session = svc.sessions.create(user.id);
  auto res = json_response(status, {{"username", user.username}});
  res.insert(bhttp::field::set_cookie,
             session_cookie(session.token, auth::kSessionLifetimeMs / 1000, svc.secure_cookies));
  return res;
}

json me_json(const Request& req, Services& svc) {
  auto s = svc.store.live_status(req.user->id);
  json j = streams::status_json(s);
  j["username"] = req.user->username;
  j["csrf_token"] = req.csrf_token;
  j["server_now"] = core::iso8601_ms(core::now_ms());
  j["client_id"] = s.is_streaming ? json(s.client_id) : json(nullptr);
  j["last_stream"] = streams::last_stream_json(svc.store, req.user->id);
  j["denoiser"] = svc.denoiser;
  j["ice_servers"] = svc.ice_servers;
  return j;
}

json recording_json(const Services& svc, const storage::Recording& r, std::int64_t viewer) {
  auto strengths = json::parse(r.strength_log, nullptr, false);
  if (!strengths.is_array()) strengths = json::array();
  auto gaps = json::parse(r.gaps, nullptr, false);
  if (!gaps.is_array()) gaps = json::array();
  const auto url = "/media/recordings/" + std::to_string(r.id);
  const bool has_raw = svc.library->has_raw(r);
  return {{"id", r.id},
          {"title", r.title},
          {"session_id", r.session_id},
          {"username", r.username},
          {"started_at", core::iso8601_ms(r.started_at)},
          {"created_at", core::iso8601_ms(r.created_at)},
          {"duration_s", static_cast<double>(r.duration_ms) / 1000.0},
          {"bytes", r.bytes},
          {"end_reason", r.end_reason},
          {"url", url + ".wav"},
          {"download_url", url + ".wav?download=1"},
          {"raw_url", has_raw ? json(url + "_raw.wav") : json()},
          {"can_delete", r.user_id == viewer},
          {"can_edit", r.user_id == viewer},
          {"noise_removed_db", r.noise_removed_db ? json(std::round(*r.noise_removed_db * 10.0) / 10.0) : json()},
          {"strength_changes", strengths},
          {"gaps", gaps}};
}

// A recording the requester may see (their own or a friend's). Others get 404, as if it did not exist.
storage::Recording visible_recording(Services& svc, const Request& req, std::int64_t id) {
  auto r = svc.store.recording_by_id(id);
  if (!r || (r->user_id != req.user->id && !svc.store.are_friends(req.user->id, r->user_id))) {
    throw ApiError(404, "not_found", "no recording " + std::to_string(id) + " that you may see");
  }
  return *r;
}

// A recording asked for by another node (which checked who may see it).
storage::Recording internal_recording(Services& svc, std::int64_t id) {
  auto r = svc.store.recording_by_id(id);
  if (!r) throw ApiError(404, "not_found", "no recording " + std::to_string(id));
  return *r;
}

// Content-Disposition for saving a recording: fc25-{user}-{YYYY-MM-DD-HHMM}[-{title}][-original].wav, the title's
// ASCII letters and digits in `filename`, all of it in `filename*` (RFC 6266, UTF-8 percent-encoded).
std::string download_disposition(const storage::Recording& r, bool raw) {
  auto when = core::iso8601_ms(r.started_at).substr(0, 16);  // 2026-12-05T01:02
  for (auto& c : when) {
    if (c == 'T') c = '-';
  }
  std::erase(when, ':');
  auto add_title = [&](const std::string& t, std::string& out, bool ascii_only) {
    bool dash = true;
    for (unsigned char c : t) {
      bool keep = std::isalnum(c) || (!ascii_only && c >= 0x80);
      if (keep) out += static_cast<char>(c), dash = false;
      else if (!dash) out += '-', dash = true;
    }
    while (!out.empty() && out.back() == '-') out.pop_back();
  };
  const auto base = "fc25-" + r.username + "-" + when;
  std::string a, u;
  add_title(r.title, a, true);
  add_title(r.title, u, false);
  const auto ascii = base + (a.empty() ? "" : "-" + a) + (raw ? "-original" : "") + ".wav";
  const auto utf8 = base + (u.empty() ? "" : "-" + u) + (raw ? "-original" : "") + ".wav";
  std::string encoded;
  for (unsigned char c : utf8) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_') encoded += static_cast<char>(c);
    else encoded += fmt::format("%{:02X}", c);
  }
  return "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded;
}

// Serves a recording with HTTP Range (seekable <audio>), streamed from disk in 64 KiB reads.
Reply serve_range(const std::filesystem::path& path, const Request& req, const std::string& disposition = {}) {
  beast::error_code bec;
  beast::file file;
  file.open(path.c_str(), beast::file_mode::scan, bec);
  if (bec) throw ApiError(404, "not_found", "the file of this recording is missing");
  auto size = static_cast<std::int64_t>(file.size(bec));
  if (bec) throw ApiError(404, "not_found", "the file of this recording cannot be read");
  std::int64_t first = 0, last = size - 1;
  bool partial = false;
  auto range = std::string(req.msg[bhttp::field::range]);
  if (!range.empty()) {
    auto r = parse_range(range, static_cast<std::uint64_t>(size));
    if (r.kind == RangeRequest::Kind::unsatisfiable) {
      Response res = error_response(416, "range_not_satisfiable", "cannot serve range '" + core::printable(range) +
                                                                       "' of " + std::to_string(size) + " bytes");
      res.set(bhttp::field::content_range, "bytes */" + std::to_string(size));
      return res;
    }
    if (r.kind == RangeRequest::Kind::part) {
      first = static_cast<std::int64_t>(r.range.first);
      last = static_cast<std::int64_t>(r.range.first + r.range.length - 1);
      partial = true;
    }
  }
  auto headers = [&](auto& res) {
    res.set(bhttp::field::content_type, "audio/wav");
    res.set(bhttp::field::accept_ranges, "bytes");
    res.set(bhttp::field::cache_control, "private, no-cache");
    if (!disposition.empty()) res.set(bhttp::field::content_disposition, disposition);
    if (partial) {
      res.set(bhttp::field::content_range,
              "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(size));
    }
  };
  auto status = partial ? bhttp::status::partial_content : bhttp::status::ok;
  auto length = static_cast<std::uint64_t>(last - first + 1);
  if (size == 0) length = 0;
  if (req.msg.method() == bhttp::verb::head) {
    Response res{status, 11};
    headers(res);
    res.content_length(length);  // the length a GET would send; the session sends no body
    return res;
  }
  FileResponse res{status, 11};
  headers(res);
  res.body().file = std::move(file);
  res.body().offset = static_cast<std::uint64_t>(first);
  res.body().length = length;
  res.prepare_payload();
  return res;
}

// Requests between the nodes of a cluster (/internal/...): the cluster secret or nothing.
void require_cluster_secret(const Services& svc, const Request& req) {
  if (svc.cluster_secret.empty()) {
    throw ApiError(403, "internal_disabled", "this node answers no other node: FC25_CLUSTER_SECRET is not set");
  }
  if (!has_cluster_secret(req.msg, svc.cluster_secret)) {
    throw ApiError(401, "cluster_secret_required", req.path + " is for the nodes of the cluster (the cluster secret)");
  }
}

// The same request asked of the node that holds the recording (/internal + its target), with the cluster secret;
// its answer goes to the client as it comes.
Proxy ask_node(const Services& svc, const Request& req, const storage::Recording& r,
               const recording::Location& where) {
  auto node = core::parse_node_url(where.node_url);
  Proxy p;
  p.host = node.host;
  p.port = node.port;
  p.request = {req.msg.method(), "/internal" + std::string(req.msg.target()), 11};
  p.request.set(bhttp::field::host, node.host + ":" + node.port);
  p.request.set(bhttp::field::authorization, "Bearer " + svc.cluster_secret);
  p.request.set("X-FC25-Disk", svc.library->disk_id());
  if (auto range = req.msg[bhttp::field::range]; !range.empty()) p.request.set(bhttp::field::range, range);
  p.request.keep_alive(false);
  p.unavailable = error_response(503, "recording_unavailable",
                                 "recording " + std::to_string(r.id) + " is kept on another node (disk " + r.disk_id +
                                     "), which did not answer: try again in a moment");
  return p;
}

// The answer for a recording whose node is not running: what the user may do (`what`: "played", "deleted") once
// it is back.
ApiError node_not_running(const storage::Recording& r, const char* what) {
  return ApiError(503, "recording_unavailable",
                  "recording " + std::to_string(r.id) + " is kept on another node (disk " + r.disk_id +
                      "), which is not running now: it can be " + what + " once that node is back");
}

// Where a recording's file is read: this node's disk (Location::local, returned), or, for a client's request, the
// node that holds it (answered here, through `respond`). Other nodes' requests (`internal`) are only ever answered
// from this node's disk.
std::optional<std::filesystem::path> local_or_ask(const Services& svc, const Request& req, const storage::Recording& r,
                                                  bool raw, bool internal, Respond& respond) {
  auto where = svc.library->locate(r, raw);
  using K = recording::Location::Kind;
  if (where.kind == K::local) return where.path;
  if (where.kind == K::missing || internal) {
    throw ApiError(404, "not_found", std::string("the ") + (raw ? "original " : "") + "file of recording " +
                                         std::to_string(r.id) + " is missing");
  }
  if (where.kind == K::unavailable) throw node_not_running(r, "played");
  respond(ask_node(svc, req, r, where));
  return std::nullopt;
}

// Runs slow work (password hashing) off the io threads, on `pool`, and answers from there.
template <typename Fn>
void off_thread(boost::asio::thread_pool& pool, Respond respond, Fn fn) {
  boost::asio::post(pool, [respond = std::move(respond), fn = std::move(fn)]() mutable {
    try {
      respond(fn());
    } catch (const ApiError& e) {
      respond(error_response(e.status(), e.code(), e.message()));
    } catch (const std::exception& e) {
      core::count_failure("http");
      core::logger("http")->error("request failed: {}", e.what());
      respond(error_response(500, "internal", "the server failed to handle this request"));
    } catch (...) {
      core::count_failure("http");
      core::logger("http")->error("request failed with an unknown exception");
      respond(error_response(500, "internal", "the server failed to handle this request"));
    }
  });
}

}  // namespace

Api::Api(Services& svc) : svc_(svc) {
  if (!svc_.library) {
    own_library_ = std::make_unique<recording::Library>(svc_.data_dir);
    svc_.library = own_library_.get();
  }
  add_routes();
}

void Api::add_route(bhttp::verb method, const std::string& pattern, bool needs_user, Handler fn) {
  add(method, pattern, needs_user, std::move(fn));
}

void Api::add(bhttp::verb method, const std::string& pattern, bool needs_user, Handler fn) {
  router_.add(method, pattern, RouteInfo{std::move(fn), needs_user});
}

void Api::prepare(Request& req) const {
  auto target = std::string(req.msg.target());
  auto q = target.find('?');
  std::string path = url_decode(std::string_view(target).substr(0, q), Plus::literal);  // '+' is itself in a path
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  req.path = path;
  // Paths name pages, files and users: text only. A NUL would cut a file name short (x.html%00.js).
  bool control = std::any_of(path.begin(), path.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
  if (control || !core::is_valid_utf8(path)) {
    req.path = core::printable(path);
    throw ApiError(400, "invalid_path", "the path '" + req.path + "' is not UTF-8 text without control characters");
  }
  if (q != std::string::npos) req.query = parse_form(std::string_view(target).substr(q + 1));
  for (auto& [k, v] : req.query) {
    if (!core::is_valid_utf8(k) || !core::is_valid_utf8(v)) {
      throw ApiError(400, "invalid_field", "query parameter '" + core::printable(k) + "' is not valid UTF-8");
    }
  }
  auto cookie = req.msg[bhttp::field::cookie];
  req.cookies = parse_cookies(std::string_view(cookie.data(), cookie.size()));
  auto c = req.cookies.find("fc25_csrf");
  if (c != req.cookies.end() && c->second.size() == 64) {
    req.csrf_token = c->second;
  } else {
    req.csrf_token = core::random_token_hex(32);
    req.set_csrf_cookie = true;
  }
  auto s = req.cookies.find("fc25_session");
  if (s != req.cookies.end()) req.user = svc_.sessions.user_for(s->second);
}

void Api::handle(Request& req, Respond respond) const {
  try {
    prepare(req);
    auto m = router_.match(req.msg.method(), req.path);
    if (!m.handler) {
      if (m.allowed.empty()) {
        // A browser going to an address with no page gets a page that says so; everything else the JSON error.
        const auto accept = req.msg[bhttp::field::accept];
        const bool api_path = req.path.starts_with("/api/") || req.path.starts_with("/media/") ||
                              req.path.starts_with("/internal/") || req.path.starts_with("/ws/") ||
                              req.path.starts_with("/static/");
        if (req.msg.method() == bhttp::verb::get && !api_path &&
            std::string_view(accept.data(), accept.size()).find("text/html") != std::string_view::npos) {
          auto page = serve_file(svc_.web_dir, "404.html", req);
          if (page.result() == bhttp::status::ok) {
            page.result(bhttp::status::not_found);
            return respond(std::move(page));
          }
        }
        throw ApiError(404, "not_found", "no such page or API: " + req.path);
      }
      std::string allow;
      for (auto& a : m.allowed) allow += (allow.empty() ? "" : ", ") + a;
      auto res = error_response(405, "method_not_allowed",
                                std::string(req.msg.method_string()) + " is not allowed on " + req.path +
                                    " (allowed: " + allow + ")");
      res.set(bhttp::field::allow, allow);
      return respond(std::move(res));
    }
    req.params = m.params;
    // Another node's request carries the cluster secret (checked by its handler), no cookie: no CSRF to check.
    if (is_state_changing(req.msg.method()) && !req.path.starts_with("/internal/")) {
      std::string sent(req.msg["X-CSRF-Token"]);
      if (sent.empty() && media_type(req) == "application/x-www-form-urlencoded") {
        auto form = parse_form(std::string_view(req.msg.body()));
        if (form.count("csrf_token")) sent = form["csrf_token"];
      }
      if (req.set_csrf_cookie || !auth::csrf_ok(req.csrf_token, sent)) {
        throw ApiError(403, "csrf_failed",
                       sent.empty() ? "missing CSRF token (X-CSRF-Token header or csrf_token form field)"
                                    : "CSRF token does not match the fc25_csrf cookie");
      }
    }
    if (m.handler->needs_user && !req.user) {
      throw ApiError(401, "not_authenticated", "log in to use " + req.path);
    }
    m.handler->fn(req, respond);
  } catch (const ApiError& e) {
    respond(error_response(e.status(), e.code(), e.message()));
  } catch (const std::exception& e) {
    core::count_failure("http");
    core::logger("http")->error("{} {} failed: {}", std::string(req.msg.method_string()), req.path, e.what());
    respond(error_response(500, "internal", "the server failed to handle this request"));
  } catch (...) {
    core::count_failure("http");
    core::logger("http")->error("{} {} failed with an unknown exception", std::string(req.msg.method_string()),
                                req.path);
    respond(error_response(500, "internal", "the server failed to handle this request"));
  }
}

void Api::add_routes() {
  using V = bhttp::verb;
  auto& svc = svc_;

  // Pages and static files
  auto page = [&svc](const char* file) {
    return [&svc, file](Request& req, Respond& respond) { respond(serve_file(svc.web_dir, file, req)); };
  };
  add(V::get, "/", false, [&svc](Request& req, Respond& respond) {
    if (!req.user) {
      Response res{bhttp::status::found, 11};
      res.set(bhttp::field::location, "/login");
      return respond(std::move(res));
    }
    respond(serve_file(svc.web_dir, "dashboard/index.html", req));
  });
  add(V::get, "/login", false, page("login/index.html"));
  add(V::get, "/register", false, page("register/index.html"));
  add(V::get, "/u/{username}", false, page("friend/index.html"));
  add(V::get, "/static/{*path}", false,
      [&svc](Request& req, Respond& respond) { respond(serve_file(svc.web_dir, req.params["path"], req)); });

  // Accounts
  add(V::get, "/api/csrf", false,
      [](Request& req, Respond& respond) { respond(json_response(200, {{"csrf_token", req.csrf_token}})); });

  add(V::post, "/api/auth/register", false, [&svc](Request& req, Respond& respond) {
    auto body = body_object(req, false);
    auto username_raw = string_field(body, "username");
    auto password = string_field(body, "password");
    if (auto p = auth::username_problem(username_raw); !p.empty()) throw ApiError(400, "invalid_username", p);
    if (auto p = auth::password_problem(password); !p.empty()) throw ApiError(400, "invalid_password", p);
    auto username = auth::normalise_username(username_raw);
    if (svc.store.user_by_name(username)) {
      throw ApiError(409, "username_taken", "the username '" + username + "' is taken");
    }
    // Each address may register a few users per window: a flood is refused before any password is hashed.
    if (int wait = svc.registrations ? svc.registrations->acquire("addr:" + req.remote_address) : 0; wait > 0) {
      core::logger("auth")->info("registration throttled addr={}", req.remote_address);
      auto res = error_response(429, "too_many_registrations",
                                "too many registrations from this address; try again in " + std::to_string(wait) + " s");
      res.set(bhttp::field::retry_after, std::to_string(wait));
      return respond(std::move(res));
    }
    off_thread(svc.slow_work, respond, [&svc, username, password] {
      auto user = svc.store.create_user(username, auth::hash_password(password), core::now_ms());
      if (!user) throw ApiError(409, "username_taken", "the username '" + username + "' is taken");
      core::logger("auth")->info("registered user={}", username);
      return logged_in(svc, *user, 201);
    });
  });

  add(V::post, "/api/auth/login", false, [&svc](Request& req, Respond& respond) {
    auto body = body_object(req, false);
    auto username = auth::normalise_username(string_field(body, "username"));
    auto password = string_field(body, "password");
    auto key_user = "user:" + username, key_addr = "addr:" + req.remote_address;
    int wait = std::max(svc.throttle.retry_after(key_user), svc.throttle.retry_after(key_addr));
    if (wait > 0) {
      core::logger("auth")->info("login throttled user={} addr={}", username, req.remote_address);
      auto res = error_response(429, "too_many_attempts",
                                "too many failed logins; try again in " + std::to_string(wait) + " s");
      res.set(bhttp::field::retry_after, std::to_string(wait));
      return respond(std::move(res));
    }
    off_thread(svc.login_work ? *svc.login_work : svc.slow_work, respond, [&svc, username, password, key_user, key_addr] {
      static const std::string dummy = auth::hash_password("not a real password");
      auto user = svc.store.user_by_name(username);
      // Verify even for unknown users, so timing does not tell which usernames exist.
      bool ok = auth::verify_password(user ? user->password_hash : dummy, password) && user;
      if (!ok) {
        svc.throttle.record_failure(key_user);
        svc.throttle.record_failure(key_addr);
        core::logger("auth")->info("login failed user={}", username);
        throw ApiError(401, "bad_credentials", "wrong username or password");
      }
      svc.throttle.reset(key_user);
      core::logger("auth")->info("login user={}", username);
      return logged_in(svc, *user, 200);
    });
  });

  add(V::post, "/api/auth/logout", false, [&svc](Request& req, Respond& respond) {
    auto s = req.cookies.find("fc25_session");
    if (s != req.cookies.end()) {
      svc.sessions.destroy(s->second);
      // Its presence sockets close now, in every process; the user's other sessions keep theirs.
      if (req.user) svc.presence.end_session(req.user->username, core::sha256_hex(s->second));
    }
    auto res = json_response(200, {{"ok", true}});
    res.insert(bhttp::field::set_cookie, session_cookie("", 0, svc.secure_cookies));
    respond(std::move(res));
  });

  add(V::get, "/api/me", true, [&svc](Request& req, Respond& respond) { respond(json_response(200, me_json(req, svc))); });

  // Friends
  add(V::get, "/api/friends", true,
      [&svc](Request& req, Respond& respond) { respond(json_response(200, svc.friends.list(*req.user))); });
  add(V::post, "/api/friends/requests", true, [&svc](Request& req, Respond& respond) {
    auto body = body_object(req, false);
    auto result = svc.friends.send_request(*req.user, string_field(body, "username"));
    respond(json_response(result.contains("request") ? 201 : 200, result));
  });
  add(V::get, "/api/friends/requests", true,
      [&svc](Request& req, Respond& respond) { respond(json_response(200, svc.friends.requests(*req.user))); });
  add(V::post, "/api/friends/requests/{id}/accept", true, [&svc](Request& req, Respond& respond) {
    respond(json_response(200, svc.friends.accept(*req.user, path_id(req, "id"))));
  });
  add(V::post, "/api/friends/requests/{id}/decline", true, [&svc](Request& req, Respond& respond) {
    svc.friends.decline(*req.user, path_id(req, "id"));
    respond(json_response(200, {{"ok", true}}));
  });
  add(V::post, "/api/friends/requests/{id}/cancel", true, [&svc](Request& req, Respond& respond) {
    svc.friends.cancel(*req.user, path_id(req, "id"));
    respond(json_response(200, {{"ok", true}}));
  });
  add(V::delete_, "/api/friends/{username}", true, [&svc](Request& req, Respond& respond) {
    svc.friends.remove(*req.user, req.params["username"]);
    respond(json_response(200, {{"ok", true}}));
  });

  // Streams
  add(V::post, "/api/stream/start", true, [&svc](Request& req, Respond& respond) {
    auto body = body_object(req, false);
    streams::StartOptions options;
    if (auto it = body.find("noise_removal"); it != body.end() && !it->is_null()) {
      if (!it->is_boolean()) throw ApiError(400, "invalid_field", "field 'noise_removal' must be true or false");
      options.noise_removal = it->get<bool>();
    }
    if (auto it = body.find("atten_lim_db"); it != body.end() && !it->is_null()) {
      if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 100) {
        throw ApiError(400, "invalid_field", "field 'atten_lim_db' must be a number of dB from 0 to 100");
      }
      options.atten_lim_db = it->get<float>();
    }
    if (auto it = body.find("strength"); it != body.end() && !it->is_null()) {
      auto strength = it->is_string() ? streams::parse_strength(it->get<std::string>()) : std::nullopt;
      if (!strength) {
        throw ApiError(400, "invalid_field", "field 'strength' must be one of off, light, balanced, full");
      }
      if (options.atten_lim_db) {
        throw ApiError(400, "invalid_field", "give 'strength' or 'atten_lim_db', not both");
      }
      if (!options.noise_removal) {
        throw ApiError(400, "invalid_field", "'strength' needs noise_removal on (use strength 'off' instead)");
      }
      options.strength = strength;
    }
    // A user whose recordings fill their quota deletes some first.
    if (svc.quota_bytes > 0 && !svc.store.active_stream(req.user->id)) {
      auto used = static_cast<std::uint64_t>(svc.store.recording_bytes_of(req.user->id));
      if (used >= svc.quota_bytes) {
        throw ApiError(403, "quota_exceeded",
                       fmt::format("your recordings use {:.1f} MB of your {:.0f} MB: delete some to go live again",
                                   static_cast<double>(used) / (1 << 20),
                                   static_cast<double>(svc.quota_bytes) / (1 << 20)));
      }
    }
    // A new stream is refused, before anything is created, when the recordings' disk is nearly full.
    if (svc.min_free_bytes > 0 && !svc.store.active_stream(req.user->id)) {
      std::error_code ec;
      auto space = std::filesystem::space(svc.data_dir / "streamed_audios", ec);
      if (!ec && space.available < svc.min_free_bytes) {
        throw ApiError(507, "insufficient_storage",
                       "the server's disk is nearly full (" + std::to_string(space.available >> 20) +
                           " MiB free; going live needs " + std::to_string(svc.min_free_bytes >> 20) +
                           " MiB): it could not save your recording");
      }
    }
    auto started = svc.streams.start(*req.user, string_field(body, "client_id"), options);
    respond(json_response(started.created ? 201 : 200,
                          {{"session_id", started.stream.session_id},
                           {"started_at", core::iso8601_ms(started.stream.started_at)},
                           {"client_id", started.stream.client_id},
                           {"denoiser", options.noise_removal ? svc.denoiser : std::string("passthrough")},
                           {"strength", options.strength ? json(streams::to_string(*options.strength)) : json()},
                           {"ice_servers", svc.ice_servers}}));
  });
  add(V::post, "/api/stream/stop", true, [&svc](Request& req, Respond& respond) {
    auto body = body_object(req, true);
    auto reason_s = string_field(body, "reason", false);
    auto reason = streams::EndReason::user;
    if (!reason_s.empty()) {
      auto r = streams::parse_end_reason(reason_s);
      if (!r || (*r != streams::EndReason::user && *r != streams::EndReason::page_unload)) {
        throw ApiError(400, "invalid_field", "reason must be 'user' or 'page_unload', not '" + reason_s + "'");
      }
      reason = *r;
    }
    auto stopped = svc.streams.stop_user(*req.user, id_field(body, "session_id"), reason);
    if (!stopped) return respond(json_response(200, {{"stopped", false}}));
    respond(json_response(200, {{"stopped", true},
                                {"session_id", stopped->session_id},
                                {"end_reason", streams::to_string(stopped->reason)}}));
  });
  // For operators and tests: is it up, and what does it hold.
  add(V::get, "/api/health", false, [&svc](Request&, Respond& respond) {
    json j = svc.health ? svc.health() : json::object();
    j["status"] = "ok";
    j["failures"] = core::failure_counts();
    respond(json_response(200, j));
  });

  // Operators: the nodes of the cluster and what each holds. Not for pages: the cluster secret, or loopback.
  add(V::get, "/api/cluster", false, [&svc](Request& req, Respond& respond) {
    if (!svc.cluster_secret.empty()) {
      if (!has_cluster_secret(req.msg, svc.cluster_secret)) {
        throw ApiError(401, "cluster_secret_required",
                       "GET /api/cluster wants the cluster secret (Authorization: Bearer FC25_CLUSTER_SECRET)");
      }
    } else if (req.remote_address != "127.0.0.1" && req.remote_address != "::1") {
      throw ApiError(403, "forbidden", "GET /api/cluster answers loopback clients only unless FC25_CLUSTER_SECRET is set");
    }
    respond(json_response(200, svc.cluster ? svc.cluster() : json{{"mode", "single"}, {"nodes", json::array()}}));
  });

  // Recordings: the owner and friends may list and play them; only the owner may delete.
  add(V::get, "/api/recordings", true, [&svc](Request& req, Respond& respond) {
    auto who = subject_user(svc, req);
    int limit = 100;
    if (auto it = req.query.find("limit"); it != req.query.end()) {
      auto n = parse_decimal(it->second, 100);
      if (!n || *n < 1) {
        throw ApiError(400, "invalid_field", "limit must be a whole number from 1 to 100, not '" +
                                                 core::printable(it->second) + "'");
      }
      limit = static_cast<int>(*n);
    }
    std::optional<std::int64_t> before;
    if (auto it = req.query.find("before"); it != req.query.end()) {
      auto n = parse_decimal(it->second, kMaxId);
      if (!n) {
        throw ApiError(400, "invalid_field",
                       "before must be a recording id (from next_before), not '" + core::printable(it->second) + "'");
      }
      before = static_cast<std::int64_t>(*n);
    }
    // One more than asked says whether there is a next page.
    auto rows = svc.store.recordings_of(who.id, limit + 1, before);
    json next = nullptr;
    if (rows.size() > static_cast<std::size_t>(limit)) {
      rows.pop_back();
      next = rows.back().id;
    }
    json list = json::array();
    for (auto& r : rows) list.push_back(recording_json(svc, r, req.user->id));
    json body = {{"username", who.username}, {"recordings", list}, {"next_before", next}};
    if (who.id == req.user->id) {
      body["usage"] = {{"bytes", svc.store.recording_bytes_of(who.id)},
                       {"quota_bytes", svc.quota_bytes ? json(svc.quota_bytes) : json()}};
    }
    respond(json_response(200, body));
  });
  add(V::get, "/api/recordings/{id}", true, [&svc](Request& req, Respond& respond) {
    respond(json_response(200, recording_json(svc, visible_recording(svc, req, path_id(req, "id")), req.user->id)));
  });
  // The owner names a recording: `{"title"}`, at most 100 characters (empty: no title).
  add(V::patch, "/api/recordings/{id}", true, [&svc](Request& req, Respond& respond) {
    auto r = visible_recording(svc, req, path_id(req, "id"));
    if (r.user_id != req.user->id) {
      throw ApiError(403, "not_owner", "only " + r.username + " may rename recording " + std::to_string(r.id));
    }
    auto body = body_object(req, false);
    auto title = string_field(body, "title");
    const auto blank = " \t\r\n";
    auto from = title.find_first_not_of(blank);
    title = from == std::string::npos ? "" : title.substr(from, title.find_last_not_of(blank) - from + 1);
    if (core::utf8_length(title) > 100) {
      throw ApiError(400, "invalid_field", "a title is at most 100 characters (this one has " +
                                               std::to_string(core::utf8_length(title)) + ")");
    }
    for (unsigned char c : title) {
      if (c < 0x20 || c == 0x7f) throw ApiError(400, "invalid_field", "a title cannot hold control characters");
    }
    if (!svc.store.set_recording_title(r.id, title)) throw ApiError(404, "not_found", "recording " + std::to_string(r.id) + " is gone");
    core::logger("recording")->info("recording {} titled by {}", r.id, req.user->username);
    r.title = title;
    respond(json_response(200, recording_json(svc, r, req.user->id)));
  });
  // Deleted where its files are: here, or by the node that holds them (the row goes with the files, so that no
  // file outlives its row while that node is down).
  auto remove = [&svc](Request& req, Respond& respond, const storage::Recording& r, bool internal) {
    if (!svc.library->holds(r)) {
      if (internal) throw ApiError(404, "not_found", "recording " + std::to_string(r.id) + " is not on this node");
      auto where = svc.library->locate(r, false);
      if (where.kind == recording::Location::Kind::remote) return respond(ask_node(svc, req, r, where));
      throw node_not_running(r, "deleted");
    }
    if (!svc.library->remove(r)) {
      throw ApiError(500, "delete_failed", "the file of recording " + std::to_string(r.id) + " could not be removed");
    }
    svc.store.delete_recording(r.id);
    core::logger("recording")->info("deleted recording {} ({}) for {}{}", r.id, r.path,
                                    req.user ? req.user->username : r.username,
                                    internal ? " (asked by the node of disk " + std::string(req.msg["X-FC25-Disk"]) + ")" : "");
    respond(json_response(200, {{"ok", true}}));
  };
  add(V::delete_, "/api/recordings/{id}", true, [&svc, remove](Request& req, Respond& respond) {
    auto r = visible_recording(svc, req, path_id(req, "id"));
    if (r.user_id != req.user->id) {
      throw ApiError(403, "not_owner", "only " + r.username + " may delete recording " + std::to_string(r.id));
    }
    remove(req, respond, r, false);
  });
  // The waveform picture: the loudest sample of each of `buckets` equal stretches (default 400, 10..2000).
  auto peaks = [&svc](Request& req, Respond& respond, const storage::Recording& r, bool internal) {
    std::size_t buckets = 400;
    if (auto it = req.query.find("buckets"); it != req.query.end()) {
      const auto& v = it->second;
      auto n = parse_decimal(v, 2000);
      if (!n || *n < 10) {
        throw ApiError(400, "invalid_field",
                       "buckets must be a whole number from 10 to 2000, not '" + core::printable(v) + "'");
      }
      buckets = static_cast<std::size_t>(*n);
    }
    auto path = local_or_ask(svc, req, r, false, internal, respond);
    if (!path) return;
    recording::Peaks p;
    try {
      p = recording::peaks(*path, buckets);
    } catch (const recording::RecordingError& e) {
      core::logger("recording")->warn("peaks of recording {}: {}", r.id, e.what());
      throw ApiError(410, "recording_missing", "the file of recording " + std::to_string(r.id) + " is gone");
    }
    json peaks = json::array();
    for (float x : p.peaks) peaks.push_back(std::round(x * 1000.0F) / 1000.0F);
    respond(json_response(200, {{"id", r.id},
                                {"duration_s", p.sample_rate ? static_cast<double>(p.samples) / p.sample_rate : 0.0},
                                {"buckets", buckets},
                                {"peaks", peaks}}));
  };
  add(V::get, "/api/recordings/{id}/peaks", true, [&svc, peaks](Request& req, Respond& respond) {
    peaks(req, respond, visible_recording(svc, req, path_id(req, "id")), false);
  });
  // {id}.wav, or {id}_raw.wav for its unprocessed twin; ?download=1 asks the browser to save it.
  auto media = [&svc](Request& req, Respond& respond, bool internal) {
    auto file = req.params["file"];
    if (file.size() < 5 || file.substr(file.size() - 4) != ".wav") {
      throw ApiError(404, "not_found", "no such recording: " + core::printable(file));
    }
    std::string_view stem = std::string_view(file).substr(0, file.size() - 4);
    const bool raw = stem.ends_with("_raw");
    if (raw) stem.remove_suffix(4);
    auto id = parse_decimal(stem, kMaxId);
    if (!id) throw ApiError(404, "not_found", "no such recording: " + core::printable(file));
    auto r = internal ? internal_recording(svc, static_cast<std::int64_t>(*id))
                      : visible_recording(svc, req, static_cast<std::int64_t>(*id));
    auto path = local_or_ask(svc, req, r, raw, internal, respond);
    if (!path) return;
    std::string disposition;
    if (auto it = req.query.find("download"); it != req.query.end() && it->second == "1") {
      disposition = download_disposition(r, raw);
    }
    respond(serve_range(*path, req, disposition));
  };
  auto client_media = [media](Request& req, Respond& respond) { media(req, respond, false); };
  add(V::get, "/media/recordings/{file}", true, client_media);
  add(V::head, "/media/recordings/{file}", true, client_media);

  // The same, asked by another node of the cluster for one of its clients (who may see it: that node checked),
  // answered from this node's disk only.
  auto node_media = [&svc, media](Request& req, Respond& respond) {
    require_cluster_secret(svc, req);
    media(req, respond, true);
  };
  add(V::get, "/internal/media/recordings/{file}", false, node_media);
  add(V::head, "/internal/media/recordings/{file}", false, node_media);
  add(V::get, "/internal/api/recordings/{id}/peaks", false, [&svc, peaks](Request& req, Respond& respond) {
    require_cluster_secret(svc, req);
    peaks(req, respond, internal_recording(svc, path_id(req, "id")), true);
  });
  add(V::delete_, "/internal/api/recordings/{id}", false, [&svc, remove](Request& req, Respond& respond) {
    require_cluster_secret(svc, req);
    remove(req, respond, internal_recording(svc, path_id(req, "id")), true);
  });
  add(V::get, "/api/stream/status", true, [&svc](Request& req, Respond& respond) {
    auto who = subject_user(svc, req);
    respond(json_response(200, streams::status_json(svc.store.live_status(who.id))));
  });
}

}  // namespace fc25::http
