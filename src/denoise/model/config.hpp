#pragma once
// DeepFilterNet's config.ini: the [df] and [deepfilternet] values the engine depends on.
#include <filesystem>
#include <string>
#include <vector>

namespace fc25::denoise::model {

struct Dfn3Config {
  // [df]
  int sr = 0, fft_size = 0, hop_size = 0, nb_erb = 0, nb_df = 0, min_nb_erb_freqs = 0, df_order = 0,
      df_lookahead = 0;
  float norm_tau = 0, lsnr_max = 0, lsnr_min = 0;
  // [deepfilternet]
  int conv_lookahead = 0, conv_ch = 0, emb_hidden_dim = 0, emb_num_layers = 0, df_hidden_dim = 0,
      df_num_layers = 0, df_pathway_kernel_size_t = 0, enc_linear_groups = 0, linear_groups = 0;
  std::string model;
};

// Throws ModelLoadError naming the file and the missing or malformed key.
Dfn3Config read_config(const std::filesystem::path& file);

}  // namespace fc25::denoise::model
