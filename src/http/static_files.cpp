#include "http/static_files.hpp"

#include <fstream>
#include <sstream>

namespace fc25::http {

std::string mime_type(const std::filesystem::path& file) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
      {".ico", "image/x-icon"}, {".wav", "audio/wav"}, {".txt", "text/plain; charset=utf-8"},
      {".woff2", "font/woff2"},
  };
  auto ext = file.extension().string();
  for (auto& [e, t] : kTypes)
    if (ext == e) return t;
  return "application/octet-stream";
}

Response serve_file(const std::filesystem::path& web_dir, const std::string& relative, const Request& req) {
  std::filesystem::path rel(relative);
  for (auto& part : rel) {
    auto s = part.string();
    if (s == ".." || (!s.empty() && s[0] == '.') || part.is_absolute()) {
      return error_response(404, "not_found", "no such file: " + relative);
    }
  }
  auto full = web_dir / rel;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(full, ec)) return error_response(404, "not_found", "no such file: " + relative);
  std::ifstream in(full, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  Response res{bhttp::status::ok, 11};
  res.set(bhttp::field::content_type, mime_type(full));
  res.set(bhttp::field::cache_control, "no-cache");
  if (full.extension() == ".html") {
    res.set("Content-Security-Policy",
            "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; img-src 'self' data:");
    res.set("X-Content-Type-Options", "nosniff");
  }
  res.body() = ss.str();
  if (req.msg.method() == bhttp::verb::head) {
    res.content_length(res.body().size());
    res.body().clear();
  }
  return res;
}

}  // namespace fc25::http
