// Model::load: the official DeepFilterNet3 export, read and checked so that a wrong or damaged directory fails
// here with a message naming the file, never later inside the engine.
#include "denoise/model/model.hpp"
#include "denoise/nn/network.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace fc25::denoise {

using model::Dfn3Model;

namespace {

void expect_dim(const model::Graph& g, const std::string& input, std::size_t axis, int expected, const char* what,
                const char* key) {
  const auto& v = g.input(input);
  if (axis >= v.dims.size() || v.dims[axis] != std::to_string(expected)) {
    throw ModelLoadError(g.file.string() + ": input '" + input + "' has " +
                         (axis < v.dims.size() ? v.dims[axis] : std::string("no")) + " " + what + ", but config.ini says " +
                         key + " = " + std::to_string(expected));
  }
}

// Refuses the first value of config.ini this engine cannot honour, naming the key, the value and what it supports.
// Everything else in [df] and [deepfilternet] that the engine reads is used as given: the STFT and the features
// are built from sr, fft_size, hop_size, nb_erb, nb_df, min_nb_erb_freqs and norm_tau (dsp_config), the stream's
// alignment from conv_lookahead, df_lookahead and df_order (dfn3.cpp).
void check_supported(const model::Dfn3Config& c, const std::filesystem::path& file) {
  auto refuse = [&](const std::string& key, const std::string& value, const std::string& supported) {
    throw ModelLoadError(file.string() + ": " + key + " = " + value + "; this engine supports " + supported);
  };
  auto str = [](auto v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  // The networks are DeepFilterNet3's, with its sizes built in (nn/weights.hpp).
  const struct {
    const char* key;
    int value, supported;
  } sizes[] = {{"df.nb_erb", c.nb_erb, nn::kErb},
               {"df.nb_df", c.nb_df, nn::kDf},
               {"df.df_order", c.df_order, nn::kOrder},
               {"deepfilternet.conv_ch", c.conv_ch, nn::kCh},
               {"deepfilternet.emb_hidden_dim", c.emb_hidden_dim, nn::kHidden},
               {"deepfilternet.df_hidden_dim", c.df_hidden_dim, nn::kHidden},
               {"deepfilternet.emb_num_layers", c.emb_num_layers, 3},
               {"deepfilternet.df_num_layers", c.df_num_layers, 2},
               {"deepfilternet.enc_linear_groups", c.enc_linear_groups, 32},
               {"deepfilternet.linear_groups", c.linear_groups, 16},
               {"deepfilternet.df_pathway_kernel_size_t", c.df_pathway_kernel_size_t, 5}};
  for (const auto& s : sizes) {
    if (s.value != s.supported) {
      refuse(s.key, str(s.value), "DeepFilterNet3's networks only (" + std::string(s.key) + " = " + str(s.supported) + ")");
    }
  }
  const int hop = static_cast<int>(kHopSize);
  if (c.fft_size % 2 != 0 || c.fft_size < 2 * hop || c.fft_size > 10 * hop) {
    refuse("df.fft_size", str(c.fft_size),
           "an even fft_size from 2 to 10 hops (" + str(2 * hop) + " to " + str(10 * hop) + " samples)");
  }
  if (c.min_nb_erb_freqs < 1 || c.nb_erb * c.min_nb_erb_freqs > c.fft_size / 2 + 1) {
    refuse("df.min_nb_erb_freqs", str(c.min_nb_erb_freqs),
           "1 to " + str((c.fft_size / 2 + 1) / c.nb_erb) + " bins (nb_erb bands within fft_size / 2 + 1 bins)");
  }
  if (!(c.norm_tau > 0.0f) || !std::isfinite(c.norm_tau)) {
    refuse("df.norm_tau", str(c.norm_tau), "a time constant above 0 seconds");
  }
  if (c.conv_lookahead < 0 || c.conv_lookahead > model::kMaxLookahead) {
    refuse("deepfilternet.conv_lookahead", str(c.conv_lookahead), "0 to " + str(model::kMaxLookahead) + " frames");
  }
  if (c.df_lookahead < 0 || c.df_lookahead > c.conv_lookahead || c.df_lookahead > c.df_order - 1) {
    refuse("df.df_lookahead", str(c.df_lookahead),
           "0 to " + str(std::min(c.conv_lookahead, c.df_order - 1)) +
               " frames (at most conv_lookahead and df_order - 1: deep filtering reads only frames already heard)");
  }
}

}  // namespace

namespace model {
dsp::DspConfig dsp_config(const Dfn3Config& c) {
  dsp::DspConfig d;
  d.sample_rate = c.sr;
  d.fft_size = c.fft_size;
  d.hop_size = c.hop_size;
  d.nb_erb = c.nb_erb;
  d.nb_df = c.nb_df;
  d.min_nb_erb_freqs = c.min_nb_erb_freqs;
  d.norm_tau = c.norm_tau;
  return d;
}
}  // namespace model

std::shared_ptr<const Model> Model::load(const std::filesystem::path& dir, Precision precision) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw ModelLoadError("model directory '" + dir.string() +
                         "' does not exist (expected the DeepFilterNet3 ONNX export: enc.onnx, erb_dec.onnx, "
                         "df_dec.onnx, config.ini)");
  }
  for (auto name : {"config.ini", "enc.onnx", "erb_dec.onnx", "df_dec.onnx"}) {
    if (!std::filesystem::exists(dir / name, ec)) {
      throw ModelLoadError((dir / name).string() +
                           ": missing (the DeepFilterNet3 ONNX export has enc.onnx, erb_dec.onnx, df_dec.onnx and "
                           "config.ini)");
    }
  }
  auto config = model::read_config(dir / "config.ini");
  auto enc = model::read_onnx(dir / "enc.onnx");
  auto erb_dec = model::read_onnx(dir / "erb_dec.onnx");
  auto df_dec = model::read_onnx(dir / "df_dec.onnx");

  if (config.sr != kSampleRate || config.hop_size != static_cast<int>(kHopSize)) {
    throw ModelLoadError((dir / "config.ini").string() + ": sr = " + std::to_string(config.sr) + ", hop_size = " +
                         std::to_string(config.hop_size) + "; this engine runs 48000 Hz in 480-sample hops");
  }
  // The graphs must be the ones config.ini describes.
  expect_dim(enc, "feat_erb", 3, config.nb_erb, "ERB bands", "nb_erb");
  expect_dim(enc, "feat_spec", 3, config.nb_df, "deep-filter bins", "nb_df");
  expect_dim(erb_dec, "emb", 2, config.emb_hidden_dim * 2, "embedding values", "emb_hidden_dim * 2");
  expect_dim(df_dec, "c0", 1, config.conv_ch, "channels", "conv_ch");
  enc.weight("/erb_conv1/0/Conv", 1, {config.conv_ch, 1, 1, 3});
  enc.weight("/df_conv0/1/Conv", 1, {config.conv_ch, 1, 3, 3});
  df_dec.weight("/df_convp/df_convp.1/Conv", 1, {config.df_order * 2, config.conv_ch / 2, config.df_pathway_kernel_size_t, 1});
  check_supported(config, dir / "config.ini");
  // The graphs are freed on return: only the weights built from them are kept.
  auto weights = std::make_shared<const nn::Dfn3Weights>(nn::build_weights(enc, erb_dec, df_dec, precision));
  // The local-SNR range is baked into the encoder (sigmoid * (lsnr_max - lsnr_min) + lsnr_min): config.ini must say
  // the same, or the thresholds the engine compares it with mean something else.
  auto near = [](float a, float b) { return std::abs(a - b) <= 1e-3f * std::max(1.0f, std::abs(b)); };
  if (!near(weights->lsnr_scale, config.lsnr_max - config.lsnr_min) || !near(weights->lsnr_offset, config.lsnr_min)) {
    auto num = [](float v) {
      std::ostringstream o;
      o << v;
      return o.str();
    };
    throw ModelLoadError((dir / "config.ini").string() + ": df.lsnr_min = " + num(config.lsnr_min) +
                         ", df.lsnr_max = " + num(config.lsnr_max) + "; enc.onnx was exported for " +
                         num(weights->lsnr_offset) + " to " + num(weights->lsnr_offset + weights->lsnr_scale) + " dB");
  }
  auto m = std::make_shared<Dfn3Model>(std::move(config), std::move(weights), precision);
  return m;
}

}  // namespace fc25::denoise
