#include "denoise/model/config.hpp"

#include <cmath>
#include <fstream>
#include <map>

#include "denoise/denoise.hpp"

namespace fc25::denoise::model {

namespace {
std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t\r");
  auto e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}
}  // namespace

Dfn3Config read_config(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw ModelLoadError(file.string() + ": cannot be read (missing, or no permission)");
  std::map<std::string, std::string> values;  // "section.key"
  std::string line, section;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = line.substr(1, line.size() - 2);
      continue;
    }
    auto eq = line.find('=');
    if (eq != std::string::npos) values[section + "." + trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  auto get = [&](const char* key) -> const std::string& {
    auto it = values.find(key);
    if (it == values.end()) throw ModelLoadError(file.string() + ": missing '" + key + "' (expected a DeepFilterNet config.ini)");
    return it->second;
  };
  auto num = [&](const char* key) {
    const auto& v = get(key);
    try {
      std::size_t used = 0;
      double d = std::stod(v, &used);
      if (used != v.size()) throw std::invalid_argument(v);
      return d;
    } catch (const std::exception&) {
      throw ModelLoadError(file.string() + ": '" + key + "' is '" + v + "', expected a number");
    }
  };
  auto integer = [&](const char* key) {
    const double d = num(key);
    if (d != std::floor(d) || std::abs(d) > 1e9) {
      throw ModelLoadError(file.string() + ": '" + key + "' is '" + get(key) + "', expected a whole number");
    }
    return static_cast<int>(d);
  };
  Dfn3Config c;
  c.sr = integer("df.sr");
  c.fft_size = integer("df.fft_size");
  c.hop_size = integer("df.hop_size");
  c.nb_erb = integer("df.nb_erb");
  c.nb_df = integer("df.nb_df");
  c.min_nb_erb_freqs = integer("df.min_nb_erb_freqs");
  c.df_order = integer("df.df_order");
  c.df_lookahead = integer("df.df_lookahead");
  c.norm_tau = static_cast<float>(num("df.norm_tau"));
  c.lsnr_max = static_cast<float>(num("df.lsnr_max"));
  c.lsnr_min = static_cast<float>(num("df.lsnr_min"));
  c.conv_lookahead = integer("deepfilternet.conv_lookahead");
  c.conv_ch = integer("deepfilternet.conv_ch");
  c.emb_hidden_dim = integer("deepfilternet.emb_hidden_dim");
  c.emb_num_layers = integer("deepfilternet.emb_num_layers");
  c.df_hidden_dim = integer("deepfilternet.df_hidden_dim");
  c.df_num_layers = integer("deepfilternet.df_num_layers");
  c.df_pathway_kernel_size_t = integer("deepfilternet.df_pathway_kernel_size_t");
  c.enc_linear_groups = integer("deepfilternet.enc_linear_groups");
  c.linear_groups = integer("deepfilternet.linear_groups");
  c.model = values.count("train.model") ? values["train.model"] : "";
  return c;
}

}  // namespace fc25::denoise::model
