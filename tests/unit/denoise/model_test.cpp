// Loading the official DeepFilterNet3 export, and the errors for every way a model directory can be wrong.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "denoise/model/model.hpp"

namespace fc25::denoise {
namespace {

namespace fs = std::filesystem;

fs::path model_dir() {
  if (const char* env = std::getenv("FC25_MODEL_DIR"); env && *env) return env;
  return fs::path(FC25_SOURCE_DIR) / ".." / "shared" / "models" / "DeepFilterNet3";
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("fc25-model-" + std::to_string(::getpid()) + "-" +
                                               std::to_string(reinterpret_cast<std::uintptr_t>(this)));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  // A copy of the real model directory to damage.
  void copy_model() {
    for (auto name : {"config.ini", "enc.onnx", "erb_dec.onnx", "df_dec.onnx"}) fs::copy_file(model_dir() / name, path / name);
  }
};

std::string load_error(const fs::path& dir) {
  try {
    Model::load(dir);
  } catch (const ModelLoadError& e) {
    return e.what();
  }
  return "";
}

TEST(Model, LoadsTheOfficialExportWithItsConfiguration) {
  ASSERT_TRUE(fs::exists(model_dir() / "enc.onnx")) << "model not found at " << model_dir() << " (set FC25_MODEL_DIR)";
  auto m = std::dynamic_pointer_cast<const model::Dfn3Model>(Model::load(model_dir()));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->config.sr, 48000);
  EXPECT_EQ(m->config.fft_size, 960);
  EXPECT_EQ(m->config.nb_erb, 32);
  EXPECT_EQ(m->config.nb_df, 96);
  EXPECT_EQ(m->config.df_order, 5);
  EXPECT_EQ(m->config.df_lookahead, 2);
  EXPECT_EQ(m->config.conv_lookahead, 2);
  EXPECT_EQ(m->config.emb_hidden_dim, 256);
  // Weights come from initializers and from Constant nodes (the encoder's GRU weights are Constants).
  const auto& gru = m->enc.node("/emb_gru/GRU");
  EXPECT_EQ(gru.op, "GRU");
  EXPECT_EQ(gru.ints.at("hidden_size"), std::vector<std::int64_t>{256});
  const auto& w = m->enc.tensor(gru.inputs[1]);
  EXPECT_EQ(w.shape, (std::vector<std::int64_t>{1, 768, 256}));
  EXPECT_EQ(w.data.size(), 768u * 256u);
  const auto& conv = m->enc.weight("/erb_conv0/1/Conv", 1, {64, 1, 3, 3});
  EXPECT_EQ(conv.data.size(), 576u);
  float energy = 0;
  for (float x : conv.data) energy += x * x;
  EXPECT_GT(energy, 0.0f) << "trained weights, not zeros";
}

TEST(Model, AMissingDirectoryIsNamed) {
  auto e = load_error("/no/such/model/dir");
  EXPECT_NE(e.find("/no/such/model/dir"), std::string::npos) << e;
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
}

TEST(Model, AMissingFileIsNamed) {
  TempDir d;
  d.copy_model();
  fs::remove(d.path / "erb_dec.onnx");
  auto e = load_error(d.path);
  EXPECT_NE(e.find("erb_dec.onnx: missing"), std::string::npos) << e;
}

TEST(Model, ATruncatedFileIsNamedAsDamaged) {
  TempDir d;
  d.copy_model();
  fs::resize_file(d.path / "df_dec.onnx", 1000);
  auto e = load_error(d.path);
  EXPECT_NE(e.find("df_dec.onnx"), std::string::npos) << e;
  EXPECT_NE(e.find("not a valid ONNX model"), std::string::npos) << e;
}

TEST(Model, AConfigOfAnotherShapeIsRefusedNamingTheMismatch) {
  TempDir d;
  d.copy_model();
  std::ifstream in(d.path / "config.ini");
  std::stringstream ss;
  ss << in.rdbuf();
  in.close();
  auto text = ss.str();
  auto pos = text.find("nb_erb = 32");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 11, "nb_erb = 24");
  std::ofstream(d.path / "config.ini") << text;
  auto e = load_error(d.path);
  EXPECT_NE(e.find("enc.onnx"), std::string::npos) << e;
  EXPECT_NE(e.find("nb_erb = 24"), std::string::npos) << e;
}

TEST(Model, AConfigWithoutAKeyIsRefusedNamingIt) {
  TempDir d;
  d.copy_model();
  std::ofstream(d.path / "config.ini") << "[df]\nsr = 48000\n";
  auto e = load_error(d.path);
  EXPECT_NE(e.find("config.ini: missing 'df.fft_size'"), std::string::npos) << e;
}

}  // namespace
}  // namespace fc25::denoise
