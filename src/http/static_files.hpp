#pragma once
#include <filesystem>
#include <string>

#include "http/exchange.hpp"

namespace fc25::http {

// Serves web_dir/relative (pages, scripts, styles). Paths that climb out ("..") or name hidden files are refused.
Response serve_file(const std::filesystem::path& web_dir, const std::string& relative, const Request& req);

std::string mime_type(const std::filesystem::path& file);

}  // namespace fc25::http
