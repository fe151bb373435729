// Loading the official DeepFilterNet3 export, and the errors for every way a model directory can be wrong.
#include <malloc.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <gtest/gtest.h>

#include "denoise/model/model.hpp"
#include "denoise/model/onnx_graph.hpp"

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
  // The real model with a copy of its config.ini in which `key = value` replaces the key's line (the graphs are
  // links to the real ones).
  void model_with(const std::string& key, const std::string& value) {
    for (auto name : {"enc.onnx", "erb_dec.onnx", "df_dec.onnx"}) fs::create_symlink(fs::absolute(model_dir() / name), path / name);
    std::ifstream in(model_dir() / "config.ini");
    std::string line, text;
    int replaced = 0;
    while (std::getline(in, line)) {
      if (line.rfind(key + " =", 0) == 0) {
        line = key + " = " + value;
        ++replaced;
      }
      text += line + "\n";
    }
    ASSERT_EQ(replaced, 1) << key << " in config.ini";
    std::ofstream(path / "config.ini") << text;
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
  // The STFT and the features are the ones config.ini describes.
  EXPECT_EQ(m->dsp.fft_size, 960);
  EXPECT_EQ(m->dsp.hop_size, 480);
  EXPECT_EQ(m->dsp.min_nb_erb_freqs, 2);
  EXPECT_EQ(m->dsp.norm_tau, 1.0f);
  ASSERT_TRUE(m->weights);
  EXPECT_EQ(m->weights->enc_gru.hidden, 256);
}

TEST(Model, GraphsHoldWeightsInInitializersAndConstantNodes) {
  // The model keeps only the weights built from the graphs; the graphs are read here again to look inside.
  const auto enc = model::read_onnx(model_dir() / "enc.onnx");
  // Weights come from initializers and from Constant nodes (the encoder's GRU weights are Constants).
  const auto& gru = enc.node("/emb_gru/GRU");
  EXPECT_EQ(gru.op, "GRU");
  EXPECT_EQ(gru.ints.at("hidden_size"), std::vector<std::int64_t>{256});
  const auto& w = enc.tensor(gru.inputs[1]);
  EXPECT_EQ(w.shape, (std::vector<std::int64_t>{1, 768, 256}));
  EXPECT_EQ(w.data.size(), 768u * 256u);
  const auto& conv = enc.weight("/erb_conv0/1/Conv", 1, {64, 1, 3, 3});
  EXPECT_EQ(conv.data.size(), 576u);
  float energy = 0;
  for (float x : conv.data) energy += x * x;
  EXPECT_GT(energy, 0.0f) << "trained weights, not zeros";
}

// What one hop reads: every weight the three graphs hold, counted once (a little less: the grouped convolution of
// the DF path and the pointwise one after it are fused into one smaller layer; shape tensors are not weights).
TEST(Model, CountsTheWeightBytesAHopReads) {
  double in_graphs = 0;
  for (const char* g : {"enc.onnx", "erb_dec.onnx", "df_dec.onnx"}) {
    for (const auto& [name, t] : model::read_onnx(model_dir() / g).tensors) in_graphs += t.data.size() * sizeof(float);
  }
  const double counted = static_cast<double>(Model::load(model_dir())->weight_bytes());
  EXPECT_LE(counted, in_graphs);
  EXPECT_GT(counted, 0.95 * in_graphs) << counted << " of " << in_graphs << " bytes in the graphs";
}

TEST(Model, KeepsTheWeightsNotTheGraphsTheyCameFrom) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizers' allocators do not report to mallinfo2";
#else
  auto heap = [] {
    const auto mi = mallinfo2();
    return static_cast<double>(mi.uordblks + mi.hblkhd) / 1e6;
  };
  const double before = heap();
  auto m = Model::load(model_dir());
  const double held = heap() - before;
  // The network weights are 8.7 MB; the three parsed graphs held as well were 17.4 MB in all.
  EXPECT_LT(held, 10.0) << "MB held by a loaded model";
  EXPECT_GT(held, 8.0) << "MB held by a loaded model";
#endif
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


// ---- config.ini is data: each value the engine reads is honoured, or the model is refused naming it ----

std::vector<float> noisy_tone(std::size_t hops) {
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0.0f, 0.02f);
  std::vector<float> x(hops * kHopSize);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = n(rng) + 0.2f * static_cast<float>(std::sin(2 * M_PI * 220 * i / kSampleRate));
  return x;
}

std::vector<float> denoise(const std::shared_ptr<const Model>& m, const std::vector<float>& x) {
  Options o;
  o.atten_lim_db = 12;  // every hop that belongs to a frame carries some of the input: none is silent
  auto d = make_dfn3(m, o);
  std::vector<float> y(x.size());
  for (std::size_t i = 0; i < x.size(); i += kHopSize) {
    d->process(std::span<const float>(x).subspan(i, kHopSize), std::span<float>(y).subspan(i, kHopSize));
  }
  return y;
}

// The first hop of output that is not silence (hops before it belong to no input frame).
std::size_t first_sound_hop(const std::vector<float>& y) {
  for (std::size_t i = 0; i < y.size(); ++i)
    if (y[i] != 0.0f) return i / kHopSize;
  return y.size() / kHopSize;
}

float max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

class ModelConfig : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { official_ = Model::load(model_dir()); }
  static std::shared_ptr<const Model> official_;
  TempDir dir_;
};
std::shared_ptr<const Model> ModelConfig::official_;

TEST_F(ModelConfig, TheOfficialExportStartsOutputTwoHopsLate) {
  auto y = denoise(official_, noisy_tone(20));
  EXPECT_EQ(make_dfn3(official_)->latency_samples(), 1440u);
  EXPECT_EQ(first_sound_hop(y), 2u);  // conv_lookahead = 2
}

TEST_F(ModelConfig, ConvLookaheadSetsTheDelayOfTheOutput) {
  dir_.model_with("conv_lookahead", "3");
  auto m = Model::load(dir_.path);
  EXPECT_EQ(make_dfn3(m)->latency_samples(), 480u + 3 * 480u);
  auto y = denoise(m, noisy_tone(20));
  EXPECT_EQ(first_sound_hop(y), 3u);
}

TEST_F(ModelConfig, DfLookaheadChoosesTheFramesDeepFilteringReads) {
  dir_.model_with("df_lookahead", "1");
  auto m = Model::load(dir_.path);
  EXPECT_EQ(make_dfn3(m)->latency_samples(), 1440u);
  const auto x = noisy_tone(60);
  EXPECT_GT(max_difference(denoise(m, x), denoise(official_, x)), 1e-4f);
}

TEST_F(ModelConfig, FftSizeSetsTheStftAndItsLatency) {
  dir_.model_with("fft_size", "1920");
  auto m = std::dynamic_pointer_cast<const model::Dfn3Model>(Model::load(dir_.path));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->dsp.fft_size, 1920);
  EXPECT_EQ(make_dfn3(m)->latency_samples(), (1920u - 480u) + 2 * 480u);
  auto y = denoise(m, noisy_tone(60));
  EXPECT_EQ(first_sound_hop(y), 2u);
  for (float v : y) ASSERT_TRUE(std::isfinite(v));
}

TEST_F(ModelConfig, NormTauSetsTheFeatureNormalisation) {
  dir_.model_with("norm_tau", "3");
  auto m = std::dynamic_pointer_cast<const model::Dfn3Model>(Model::load(dir_.path));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->dsp.norm_tau, 3.0f);
  EXPECT_NE(dsp::Features(m->dsp).alpha(), dsp::Features(dsp::DspConfig{}).alpha());
  const auto x = noisy_tone(60);
  EXPECT_GT(max_difference(denoise(m, x), denoise(official_, x)), 1e-4f);
}

TEST_F(ModelConfig, MinNbErbFreqsSetsTheBandWidths) {
  dir_.model_with("min_nb_erb_freqs", "4");
  auto m = std::dynamic_pointer_cast<const model::Dfn3Model>(Model::load(dir_.path));
  ASSERT_TRUE(m);
  const auto widths = dsp::Features(m->dsp).erb_widths();
  EXPECT_EQ(*std::min_element(widths.begin(), widths.end()), 4);
  const auto x = noisy_tone(60);
  EXPECT_GT(max_difference(denoise(m, x), denoise(official_, x)), 1e-4f);
}

struct Refused {
  const char* key;
  const char* value;
  const char* named;      // in the message: the key and the value
  const char* supported;  // in the message: what the engine supports
};

class RefusedConfig : public ::testing::TestWithParam<Refused> {};

TEST_P(RefusedConfig, IsRefusedNamingKeyValueAndWhatIsSupported) {
  const auto& p = GetParam();
  TempDir d;
  d.model_with(p.key, p.value);
  auto e = load_error(d.path);
  EXPECT_NE(e.find("config.ini"), std::string::npos) << e;
  EXPECT_NE(e.find(p.named), std::string::npos) << e;
  EXPECT_NE(e.find(p.supported), std::string::npos) << e;
}

INSTANTIATE_TEST_SUITE_P(
    Model, RefusedConfig,
    ::testing::Values(Refused{"fft_size", "961", "df.fft_size = 961", "960 to 4800"},
                      Refused{"fft_size", "480", "df.fft_size = 480", "960 to 4800"},
                      Refused{"fft_size", "960.5", "'df.fft_size' is '960.5'", "whole number"},
                      Refused{"norm_tau", "0", "df.norm_tau = 0", "above 0"},
                      Refused{"min_nb_erb_freqs", "0", "df.min_nb_erb_freqs = 0", "1 to 15"},
                      Refused{"min_nb_erb_freqs", "16", "df.min_nb_erb_freqs = 16", "1 to 15"},
                      Refused{"conv_lookahead", "-1", "deepfilternet.conv_lookahead = -1", "0 to 8"},
                      Refused{"conv_lookahead", "1", "df.df_lookahead = 2", "0 to 1"},
                      Refused{"df_lookahead", "3", "df.df_lookahead = 3", "0 to 2"},
                      Refused{"emb_num_layers", "2", "deepfilternet.emb_num_layers = 2", "emb_num_layers = 3"},
                      Refused{"lsnr_max", "30", "df.lsnr_max = 30", "exported for -15 to 35 dB"},
                      Refused{"lsnr_min", "-10", "df.lsnr_min = -10", "exported for -15 to 35 dB"}),
    [](const auto& info) {
      std::string n = std::string(info.param.key) + "_" + info.param.value;
      for (auto& c : n)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      return n;
    });

}  // namespace
}  // namespace fc25::denoise
