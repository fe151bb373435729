// Model::load: the official DeepFilterNet3 export, read and checked so that a wrong or damaged directory fails
// here with a message naming the file, never later inside the engine.
#include "denoise/model/model.hpp"
#include "denoise/nn/network.hpp"

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

}  // namespace

std::shared_ptr<const Model> Model::load(const std::filesystem::path& dir) {
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
  auto m = std::make_shared<Dfn3Model>(std::move(config), std::move(enc), std::move(erb_dec), std::move(df_dec));
  m->weights = std::make_shared<const nn::Dfn3Weights>(nn::build_weights(*m));
  return m;
}

}  // namespace fc25::denoise
