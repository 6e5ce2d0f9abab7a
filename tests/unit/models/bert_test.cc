// BERT and sentence-transformers beyond the goldens (tests/golden/sentence_model_test.cc):
// config refusals, checkpoint spellings (bert. prefix, heads, no pooler), the Pooling module's
// formulas on hand-computed values (masks, empty rows, several modes at once), the module list
// of a model folder (subfolder Transformer, no Normalize, unsupported modules, broken files),
// input errors, and the Embedder's long-text policy for sentence-transformers folders.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include "golden.h"
#include "test_support.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "mmembed/embedder.h"
#include "mmembed/error.h"
#include "models/bert/bert.h"
#include "models/bert/sentence.h"

namespace mmembed::models::bert {
namespace {

namespace fs = std::filesystem;
using golden::Manifest;
using testing_support::error_of;

std::string model_dir() { return Manifest::get().data_dir() + "/models/minilm-tiny-st"; }

Tensor golden_input(const std::string& group, const std::string& name) {
  return Manifest::get().load(Manifest::get().entry("minilm-tiny-st/" + group + "/" + name));
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double d = 0;
  for (std::int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i) {
    d = std::max(d, std::abs(a.value_at(i) - b.value_at(i)));
  }
  return d;
}

// A scratch folder removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    dir_ = fs::temp_directory_path() /
           ("mmembed_bert_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(dir_);
  }
  ~TempDir() { fs::remove_all(dir_); }
  std::string path(const std::string& rel = "") const { return (dir_ / rel).string(); }
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel, std::ios::binary) << text;
  }
  void copy_from_model(const std::string& rel, const std::string& to = "") const {
    fs::create_directories((dir_ / (to.empty() ? rel : to)).parent_path());
    fs::copy_file(model_dir() + "/" + rel, dir_ / (to.empty() ? rel : to));
  }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
};

// ---------------------------------------------------------------------------------------------
// Config and weights
// ---------------------------------------------------------------------------------------------

TEST(BertConfig, RefusesOtherEncoders) {
  auto parse = [](const std::string& json) {
    return Config::parse(io::ConfigReader::parse(json, "config.json"));
  };
  EXPECT_EQ(parse("{}").hidden_size, 768);
  EXPECT_DOUBLE_EQ(parse("{}").layer_norm_eps, 1e-12);
  EXPECT_NE(error_of<Unsupported>([&] { parse(R"({"model_type": "mpnet"})"); })
                .find("model_type 'mpnet' is not supported"),
            std::string::npos);
  EXPECT_NE(error_of<Unsupported>([&] {
              parse(R"({"position_embedding_type": "relative_key"})");
            }).find("position_embedding_type 'relative_key' is not supported"),
            std::string::npos);
  EXPECT_THROW(parse(R"({"hidden_size": 30, "num_attention_heads": 4})"), InvalidArgument);
}

TEST(BertWeights, BertPrefixHeadsAndMissingPooler) {
  const Config config = Config::from_file(model_dir() + "/config.json");
  io::Checkpoint src = io::open_checkpoint(model_dir() + "/model.safetensors");
  const BertModel plain(config, src);
  const Tensor ids = golden_input("batch", "input_ids");
  const Tensor mask = golden_input("batch", "attention_mask");
  const Tensor types = golden_input("batch", "token_type_ids");
  const BertOutput ref = plain.forward(ids, mask, types);

  // BertForMaskedLM-style file: "bert." prefix and a cls.* head; no pooler.
  TempDir dir;
  std::map<std::string, Tensor> tensors;
  for (const io::TensorInfo& t : src.tensors()) {
    if (t.name.rfind("pooler.", 0) == 0) continue;
    tensors["bert." + t.name] = src.get(t.name).clone();
  }
  tensors["cls.predictions.bias"] = Tensor::zeros(DType::F32, {config.vocab_size});
  io::write_safetensors(dir.path("model.safetensors"), tensors, {{"format", "pt"}});
  const BertModel prefixed(config, io::open_checkpoint(dir.path("model.safetensors")));
  EXPECT_FALSE(prefixed.has_pooler());
  EXPECT_TRUE(prefixed.unused_weights().empty());
  const BertOutput out = prefixed.forward(ids, mask, types);
  EXPECT_EQ(max_abs_diff(out.last_hidden_state, ref.last_hidden_state), 0.0);
  EXPECT_FALSE(out.pooler_output.has_value());
  EXPECT_TRUE(ref.pooler_output.has_value());

  tensors.erase("bert.encoder.layer.1.output.LayerNorm.weight");
  io::write_safetensors(dir.path("broken.safetensors"), tensors, {{"format", "pt"}});
  EXPECT_NE(error_of<FormatError>([&] {
              BertModel(config, io::open_checkpoint(dir.path("broken.safetensors")));
            }).find("missing tensor 'encoder.layer.1.output.LayerNorm.weight'"),
            std::string::npos);
}

TEST(BertInputs, BadInputsAreClearErrors) {
  const BertModel model = BertModel::load(model_dir());
  const Tensor ids = Tensor::from<std::int64_t>({1, 3}, {2, 50, 3});
  EXPECT_NE(error_of<InvalidArgument>([&] {
              model.forward(ids, std::nullopt, Tensor::from<std::int64_t>({1, 3}, {0, 2, 0}));
            }).find("token_type_ids[0,1] = 2 is outside [0, 2)"),
            std::string::npos);
  EXPECT_NE(error_of<InvalidArgument>([&] {
              model.forward(Tensor::from<std::int64_t>({1, 2}, {2, 927}), std::nullopt,
                            std::nullopt);
            }).find("input_ids[0,1] = 927 is outside the vocabulary [0, 927)"),
            std::string::npos);
  std::vector<std::int64_t> long_ids(513, 5);
  EXPECT_NE(error_of<InvalidArgument>([&] {
              model.forward(Tensor::from_vector<std::int64_t>({1, 513}, long_ids), std::nullopt,
                            std::nullopt);
            }).find("513 positions but the model has 512"),
            std::string::npos);
  // Without token types (all 0) and without a mask (all real) on an unpadded row: the same.
  const Tensor single = golden_input("single0", "input_ids");
  const BertOutput a = model.forward(single, std::nullopt, std::nullopt);
  const BertOutput b = model.forward(single, golden_input("single0", "attention_mask"),
                                     golden_input("single0", "token_type_ids"));
  EXPECT_EQ(max_abs_diff(a.last_hidden_state, b.last_hidden_state), 0.0);
}

// ---------------------------------------------------------------------------------------------
// Pooling
// ---------------------------------------------------------------------------------------------

TEST(Pooling, FormulasOnHandComputedValues) {
  // Two rows of three tokens, width 2; row 0 has its last token padded, row 1 is all padding.
  const Tensor h = Tensor::from<float>({2, 3, 2}, {1, -2, 3, 4, 100, 100,  //
                                                   5, 6, 7, 8, 9, 10});
  const Tensor mask = Tensor::from<std::int64_t>({2, 3}, {1, 1, 0, 0, 0, 0});
  PoolingConfig all{.cls = true, .max = true, .mean = true, .mean_sqrt_len = true,
                    .last_token = true};
  const Tensor out = pool(all, h, mask);
  ASSERT_EQ(out.shape(), Shape({2, 10}));
  const float* r0 = out.data<float>();
  // cls | max | mean | mean_sqrt_len | lasttoken, the library's order.
  const std::vector<float> want0 = {1, -2, 3, 4, 2, 1, 4 / std::sqrt(2.0f), 2 / std::sqrt(2.0f),
                                    3, 4};
  for (int j = 0; j < 10; ++j) EXPECT_FLOAT_EQ(r0[j], want0[j]) << j;
  // No real token: max is the -1e9 fill, sums are 0 over the 1e-9 clamp, last token is 0.
  const float* r1 = out.data<float>() + 10;
  const std::vector<float> want1 = {5, 6, -1e9f, -1e9f, 0, 0, 0, 0, 5, 6};
  for (int j = 0; j < 10; ++j) EXPECT_FLOAT_EQ(r1[j], want1[j]) << j;

  // No mask: every token is real.
  const Tensor mean = pool(PoolingConfig{.mean = true}, h, std::nullopt);
  EXPECT_FLOAT_EQ(mean.data<float>()[0], (1 + 3 + 100) / 3.0f);
  EXPECT_THROW(pool(all, h, Tensor::zeros(DType::I64, {2, 2})), InvalidArgument);
}

TEST(Pooling, ConfigFileSpellings) {
  PoolingConfig p = PoolingConfig::parse(
      R"({"word_embedding_dimension": 384, "pooling_mode_cls_token": true,
          "pooling_mode_mean_tokens": true})", "1_Pooling/config.json");
  EXPECT_TRUE(p.cls && p.mean && !p.max);
  EXPECT_EQ(p.modes(), 2);
  EXPECT_EQ(p.describe(), "cls+mean");
  EXPECT_EQ(p.word_embedding_dimension, 384);
  p = PoolingConfig::parse(R"({"pooling_mode": "max"})", "c.json");
  EXPECT_EQ(p.describe(), "max");
  EXPECT_NE(error_of<Unsupported>([] {
              PoolingConfig::parse(R"({"pooling_mode_weightedmean_tokens": true})", "c.json");
            }).find("weightedmean_tokens is not supported"),
            std::string::npos);
  EXPECT_NE(error_of<InvalidArgument>([] {
              PoolingConfig::parse(R"({"pooling_mode_mean_tokens": false})", "c.json");
            }).find("no pooling mode is on"),
            std::string::npos);
  EXPECT_THROW(PoolingConfig::parse("{", "c.json"), FormatError);
}

// ---------------------------------------------------------------------------------------------
// Module lists
// ---------------------------------------------------------------------------------------------

const char* kPoolingCls = R"({"word_embedding_dimension": 32, "pooling_mode_cls_token": true})";

TEST(SentenceFolder, TransformerInASubfolderAndNoNormalize) {
  // The layout of older sentence-transformers saves: the BERT files under 0_Transformer/.
  TempDir dir;
  dir.write("modules.json", R"([
    {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])");
  dir.write("1_Pooling/config.json", kPoolingCls);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json", "vocab.txt"}) {
    dir.copy_from_model(f, std::string("0_Transformer/") + f);
  }
  dir.write("0_Transformer/sentence_bert_config.json", R"({"max_seq_length": 16})");
  const SentenceModel st = SentenceModel::load(dir.path());
  EXPECT_EQ(st.config().transformer_dir, dir.path("0_Transformer"));
  EXPECT_FALSE(st.config().normalize);
  EXPECT_EQ(st.config().max_seq_length, 16);
  EXPECT_EQ(st.config().pooling.describe(), "cls");

  // CLS pooling without Normalize is the encoder's first row, unnormalised.
  const Tensor ids = golden_input("batch", "input_ids");
  const Tensor mask = golden_input("batch", "attention_mask");
  const Tensor types = golden_input("batch", "token_type_ids");
  const Tensor e = st.encode(ids, mask, types);
  const Tensor h = st.encoder().forward(ids, mask, types).last_hidden_state;
  for (std::int64_t b = 0; b < ids.dim(0); ++b) {
    for (std::int64_t j = 0; j < 32; ++j) {
      EXPECT_EQ(e.data<float>()[b * 32 + j], h.data<float>()[b * ids.dim(1) * 32 + j]);
    }
  }

  // Through the Embedder, with no config.json at the root (modules.json says where the model
  // is): the tokenizer is the subfolder's, cut at max_seq_length = 16.
  ASSERT_FALSE(std::filesystem::exists(dir.path("config.json")));
  const Embedder embedder = Embedder::load(dir.path());
  EXPECT_EQ(embedder.info().max_text_tokens, 16u);
  EXPECT_EQ(embedder.info().dim, 32u);
  const Embeddings out = embedder.embed_texts(std::vector<std::string>{
      "A motorcycle sits parked across from a herd of livestock and more words after that"});
  EXPECT_GT(out.truncated_tokens[0], 0);
}

TEST(SentenceFolder, UnsupportedAndBrokenModuleLists) {
  TempDir dir;
  dir.write("1_Pooling/config.json", kPoolingCls);
  dir.write("modules.json", R"([
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}])");
  std::string msg = error_of<Unsupported>([&] { SentenceConfig::from_dir(dir.path()); });
  EXPECT_NE(msg.find("module 2 (sentence_transformers.models.Dense) is not supported"),
            std::string::npos)
      << msg;
  dir.write("modules.json", R"([{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"}])");
  msg = error_of<Unsupported>([&] { SentenceConfig::from_dir(dir.path()); });
  EXPECT_NE(msg.find("has no Pooling module"), std::string::npos) << msg;
  dir.write("modules.json", R"({"not": "a list"})");
  EXPECT_THROW(SentenceConfig::from_dir(dir.path()), FormatError);
  dir.write("modules.json", "[{");
  EXPECT_THROW(SentenceConfig::from_dir(dir.path()), FormatError);
  dir.write("modules.json", R"([{"path": "../x", "type": "sentence_transformers.models.Transformer"}])");
  EXPECT_THROW(SentenceConfig::from_dir(dir.path()), FormatError);
  fs::remove(dir.path("modules.json"));
  EXPECT_THROW(SentenceConfig::from_dir(dir.path()), IoError);
}

// ---------------------------------------------------------------------------------------------
// Through the Embedder
// ---------------------------------------------------------------------------------------------

TEST(SentenceEmbedderPolicy, LongTextsAreCutOrRefused) {
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "word ";
  const std::vector<std::string> texts = {"a short one", long_text};
  const Embedder cutting = Embedder::load(model_dir());
  const Embeddings e = cutting.embed_texts(texts);
  EXPECT_EQ(e.truncated_tokens[0], 0);
  EXPECT_GT(e.truncated_tokens[1], 0);
  EmbedderOptions strict;
  strict.text_overflow = TextOverflow::kError;
  const Embedder refusing = Embedder::load(model_dir(), strict);
  const std::string msg = error_of<InvalidArgument>([&] { refusing.embed_texts(texts); });
  EXPECT_NE(msg.find("tokens but the model takes at most 128"), std::string::npos) << msg;
  const std::vector<Image> images = {
      Image::read(Manifest::get().data_dir() + "/images/cat_landscape.jpg")};
  EXPECT_THROW(cutting.embed_images(images), Unsupported);
}

}  // namespace
}  // namespace mmembed::models::bert
