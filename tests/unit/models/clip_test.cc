// CLIP beyond the goldens (tests/golden/clip_model_test.cc): config parsing rules (defaults,
// the legacy *_config_dict overlay, refusals), both EOS pooling rules on hand-made ids,
// one-tower checkpoints, weight binding errors, input errors, batch and padding independence,
// and the Embedder's long-text policy and unsupported calls for CLIP folders.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
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
#include "models/clip/clip.h"

namespace mmembed::models::clip {
namespace {

namespace fs = std::filesystem;
using golden::Manifest;
using testing_support::error_of;

std::string model_dir(const std::string& model) {
  return Manifest::get().data_dir() + "/models/" + model;
}

Tensor golden_input(const std::string& model, const std::string& group, const std::string& name) {
  return Manifest::get().load(Manifest::get().entry(model + "/" + group + "/" + name));
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double d = 0;
  for (std::int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i) {
    d = std::max(d, std::abs(a.value_at(i) - b.value_at(i)));
  }
  return d;
}

Config parse(const std::string& json) {
  return Config::parse(io::ConfigReader::parse(json, "config.json"));
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

TEST(ClipConfig, DefaultsAreTheReferenceClassDefaults) {
  const Config c = parse(R"({"model_type": "clip"})");
  EXPECT_EQ(c.projection_dim, 512);
  EXPECT_DOUBLE_EQ(c.logit_scale_init_value, 2.6592);
  EXPECT_EQ(c.text.vocab_size, 49408);
  EXPECT_EQ(c.text.hidden_size, 512);
  EXPECT_EQ(c.text.intermediate_size, 2048);
  EXPECT_EQ(c.text.num_attention_heads, 8);
  EXPECT_EQ(c.text.num_hidden_layers, 12);
  EXPECT_EQ(c.text.max_position_embeddings, 77);
  EXPECT_EQ(c.text.hidden_act, "quick_gelu");
  EXPECT_EQ(c.text.eos_token_id, 49407);
  EXPECT_FALSE(c.legacy_eos_rule());
  EXPECT_EQ(c.vision.hidden_size, 768);
  EXPECT_EQ(c.vision.patch_size, 32);
  EXPECT_EQ(c.vision.image_size, 224);
  EXPECT_EQ(c.grid(), 7);
  EXPECT_EQ(c.image_tokens(), 50);
}

TEST(ClipConfig, LegacyDictKeysWinOverTheSubConfigs) {
  const Config c = parse(R"({"model_type": "clip",
      "text_config": {"hidden_size": 64, "num_attention_heads": 4, "eos_token_id": 2},
      "text_config_dict": {"hidden_size": 128},
      "vision_config": {"patch_size": 16}, "vision_config_dict": null})");
  EXPECT_EQ(c.text.hidden_size, 128);  // *_dict wins
  EXPECT_EQ(c.text.num_attention_heads, 4);  // kept from text_config
  EXPECT_TRUE(c.legacy_eos_rule());
  EXPECT_EQ(c.vision.patch_size, 16);  // null *_dict is absent
  EXPECT_EQ(c.grid(), 14);
}

TEST(ClipConfig, RefusesWhatTheModelCannotRun) {
  EXPECT_NE(error_of<InvalidArgument>([] { parse(R"({"model_type": "bert"})"); })
                .find("model_type is 'bert', expected 'clip'"),
            std::string::npos);
  EXPECT_NE(error_of<Unsupported>([] {
              parse(R"({"text_config": {"hidden_act": "relu"}})");
            }).find("text_config.hidden_act: activation 'relu' is not supported"),
            std::string::npos);
  EXPECT_NE(error_of<InvalidArgument>([] {
              parse(R"({"vision_config": {"hidden_size": 100, "num_attention_heads": 3}})");
            }).find("vision_config.hidden_size 100 is not a multiple of"),
            std::string::npos);
  EXPECT_NE(error_of<InvalidArgument>([] {
              parse(R"({"vision_config": {"image_size": 8, "patch_size": 16}})");
            }).find("give no patch"),
            std::string::npos);
  EXPECT_NE(error_of<FormatError>([] { parse(R"({"projection_dim": "512"})"); })
                .find("projection_dim"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// EOS pooling rules (transformers 4.44 CLIPTextTransformer)
// ---------------------------------------------------------------------------------------------

TEST(ClipPooling, LegacyRuleIsTheFirstLargestId) {
  const ClipModel model = ClipModel::load(model_dir("clip-tiny-quickgelu"));  // eos_token_id 2
  ASSERT_TRUE(model.config().legacy_eos_rule());
  const Tensor ids = Tensor::from<std::int64_t>({3, 5}, {5, 9, 7, 9, 1,     // ties: the first
                                                      663, 2, 2, 2, 2,   // 663 at 0
                                                      4, 4, 4, 4, 4});   // all equal: 0
  const Tensor pos = model.pool_positions(ids);
  EXPECT_EQ(pos.data<std::int64_t>()[0], 1);
  EXPECT_EQ(pos.data<std::int64_t>()[1], 0);
  EXPECT_EQ(pos.data<std::int64_t>()[2], 0);
}

TEST(ClipPooling, EosRuleIsTheFirstEosEvenBelowLargerIds) {
  const ClipModel model = ClipModel::load(model_dir("clip-tiny-gelu"));  // eos 663, pad 664
  ASSERT_FALSE(model.config().legacy_eos_rule());
  ASSERT_EQ(model.config().text.eos_token_id, 663);
  const Tensor ids = Tensor::from<std::int32_t>({3, 5}, {662, 10, 663, 664, 664,  // pad > eos
                                                      662, 663, 20, 663, 664,  // first eos
                                                      662, 10, 11, 12, 664});  // none: 0
  const Tensor pos = model.pool_positions(ids);
  EXPECT_EQ(pos.data<std::int64_t>()[0], 2);
  EXPECT_EQ(pos.data<std::int64_t>()[1], 1);
  EXPECT_EQ(pos.data<std::int64_t>()[2], 0);
}

// ---------------------------------------------------------------------------------------------
// Weights
// ---------------------------------------------------------------------------------------------

// The tiny CLIP checkpoint's tensors, edited, written to a temporary safetensors file.
class TempCheckpoint {
 public:
  explicit TempCheckpoint(const std::function<void(std::map<std::string, Tensor>&)>& edit) {
    dir_ = fs::temp_directory_path() /
           ("mmembed_clip_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(dir_);
    io::Checkpoint src = io::open_checkpoint(model_dir("clip-tiny-gelu") + "/model.safetensors");
    std::map<std::string, Tensor> tensors;
    for (const io::TensorInfo& t : src.tensors()) tensors[t.name] = src.get(t.name).clone();
    edit(tensors);
    io::write_safetensors(path(), tensors, {{"format", "pt"}});
  }
  ~TempCheckpoint() { fs::remove_all(dir_); }
  std::string path() const { return (dir_ / "model.safetensors").string(); }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
};

Config gelu_config() { return Config::from_file(model_dir("clip-tiny-gelu") + "/config.json"); }

void keep_only(std::map<std::string, Tensor>& t, const std::vector<std::string>& prefixes) {
  std::map<std::string, Tensor> kept;
  for (auto& [name, tensor] : t) {
    for (const std::string& p : prefixes) {
      if (name.rfind(p, 0) == 0) kept[name] = tensor;
    }
  }
  t = kept;
}

TEST(ClipWeights, OneTowerCheckpointsLoadAndRefuseTheOtherTower) {
  const ClipModel full = ClipModel::load(model_dir("clip-tiny-gelu"));
  const Tensor ids = golden_input("clip-tiny-gelu", "batch", "input_ids");
  const Tensor mask = golden_input("clip-tiny-gelu", "batch", "attention_mask");
  const Tensor pixels = golden_input("clip-tiny-gelu", "batch", "pixel_values");

  // CLIPTextModelWithProjection.save_pretrained: text_model.* and text_projection only.
  TempCheckpoint text_only([](auto& t) { keep_only(t, {"text_model.", "text_projection."}); });
  const ClipModel text(gelu_config(), io::open_checkpoint(text_only.path()));
  EXPECT_TRUE(text.has_text_tower());
  EXPECT_FALSE(text.has_vision_tower());
  EXPECT_FALSE(text.has_logit_scale());
  EXPECT_FLOAT_EQ(text.logit_scale(), 2.6592f);  // logit_scale_init_value
  EXPECT_EQ(max_abs_diff(text.text_features(ids, mask), full.text_features(ids, mask)), 0.0);
  EXPECT_NE(error_of<Unsupported>([&] { text.image_features(pixels); })
                .find("this checkpoint has no vision tower"),
            std::string::npos);
  EXPECT_THROW(text.forward(ids, mask, pixels), Unsupported);

  TempCheckpoint vision_only([](auto& t) { keep_only(t, {"vision_model.", "visual_projection."}); });
  const ClipModel vision(gelu_config(), io::open_checkpoint(vision_only.path()));
  EXPECT_FALSE(vision.has_text_tower());
  EXPECT_TRUE(vision.has_vision_tower());
  EXPECT_EQ(max_abs_diff(vision.image_features(pixels), full.image_features(pixels)), 0.0);
  EXPECT_THROW(vision.text_features(ids, mask), Unsupported);

  TempCheckpoint neither([](auto& t) { keep_only(t, {"logit_scale"}); });
  EXPECT_NE(error_of<FormatError>([&] { ClipModel(gelu_config(), io::open_checkpoint(neither.path())); })
                .find("not a CLIP checkpoint"),
            std::string::npos);
}

TEST(ClipWeights, ProblemsAreListedTogetherAndBuffersIgnored) {
  TempCheckpoint broken([](auto& t) {
    t.erase("text_model.encoder.layers.1.self_attn.k_proj.bias");
    t.erase("visual_projection.weight");
    t["vision_model.embeddings.position_embedding.weight"] = Tensor::zeros(DType::F32, {16, 32});
  });
  const std::string msg = error_of<FormatError>(
      [&] { ClipModel(gelu_config(), io::open_checkpoint(broken.path())); });
  EXPECT_NE(msg.find("missing tensor 'text_model.encoder.layers.1.self_attn.k_proj.bias'"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("missing tensor 'visual_projection.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("got [16,32] expected [17,32]"), std::string::npos) << msg;

  // Old checkpoints carry int64 position_ids buffers: ignored, not reported as unused.
  TempCheckpoint old([](auto& t) {
    std::vector<std::int64_t> ids(77);
    for (int i = 0; i < 77; ++i) ids[i] = i;
    t["text_model.embeddings.position_ids"] = Tensor::from_vector<std::int64_t>({1, 77}, ids);
    t["extra.weight"] = Tensor::zeros(DType::F32, {2});
  });
  const ClipModel model(gelu_config(), io::open_checkpoint(old.path()));
  EXPECT_EQ(model.unused_weights(), std::vector<std::string>{"extra.weight"});
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

TEST(ClipInputs, BadInputsAreClearErrors) {
  const ClipModel model = ClipModel::load(model_dir("clip-tiny-gelu"));
  std::vector<std::int64_t> long_ids(78, 5);
  EXPECT_NE(error_of<InvalidArgument>([&] {
              model.text_features(Tensor::from_vector<std::int64_t>({1, 78}, long_ids), {});
            }).find("input_ids has 78 positions but the text tower has 77"),
            std::string::npos);
  EXPECT_NE(error_of<InvalidArgument>([&] {
              model.text_features(Tensor::from<std::int64_t>({1, 3}, {662, 665, 663}), {});
            }).find("input_ids[0,1] = 665 is outside the vocabulary [0, 665)"),
            std::string::npos);
  EXPECT_NE(error_of<InvalidArgument>([&] {
              model.text_features(Tensor::from<float>({1, 2}, {1, 2}), {});
            }).find("input_ids must be i64 or i32"),
            std::string::npos);
  EXPECT_NE(error_of<InvalidArgument>([&] {
              model.text_features(Tensor::from<std::int64_t>({1, 2}, {662, 663}),
                                  Tensor::from<std::int64_t>({1, 3}, {1, 1, 0}));
            }).find("attention_mask [1,3] does not match input_ids [1,2]"),
            std::string::npos);
  EXPECT_NE(error_of<InvalidArgument>([&] {
              model.image_features(Tensor::zeros(DType::F32, {1, 3, 224, 224}));
            }).find("pixel_values must be f32[batch,3,32,32]"),
            std::string::npos);
}

// Row i of a batch equals the row alone; right padding (even without a mask) changes nothing.
TEST(ClipInputs, BatchAndPaddingIndependence) {
  const ClipModel model = ClipModel::load(model_dir("clip-tiny-quickgelu"));
  const Tensor ids = golden_input("clip-tiny-quickgelu", "batch", "input_ids");
  const Tensor mask = golden_input("clip-tiny-quickgelu", "batch", "attention_mask");
  const Tensor pixels = golden_input("clip-tiny-quickgelu", "batch", "pixel_values");
  const Tensor all_t = model.text_features(ids, mask);
  const Tensor all_i = model.image_features(pixels);
  for (std::int64_t b = 0; b < ids.dim(0); ++b) {
    // The row cut to its real length (no padding at all).
    std::int64_t len = 0;
    while (len < mask.dim(1) && mask.data<std::int64_t>()[b * mask.dim(1) + len] != 0) ++len;
    std::vector<std::int64_t> row(ids.data<std::int64_t>() + b * ids.dim(1),
                                  ids.data<std::int64_t>() + b * ids.dim(1) + len);
    const Tensor one = model.text_features(Tensor::from_vector<std::int64_t>({1, len}, row), {});
    EXPECT_LT(max_abs_diff(one, all_t.slice_rows(b, b + 1).clone()), 1e-5) << "text " << b;
  }
  for (std::int64_t b = 0; b < pixels.dim(0); ++b) {
    const Tensor one = model.image_features(pixels.slice_rows(b, b + 1).clone());
    EXPECT_LT(max_abs_diff(one, all_i.slice_rows(b, b + 1).clone()), 1e-5) << "image " << b;
  }
}

// image_features() runs the last vision layer on the class token's row only; encode_image()
// runs it on every token. The pooled features agree (the same ops on fewer rows).
TEST(ClipInputs, ImageFeaturesEqualTheFullTowerOnes) {
  for (const char* name : {"clip-tiny-quickgelu", "clip-tiny-gelu"}) {
    const ClipModel model = ClipModel::load(model_dir(name));
    const Tensor pixels = golden_input(name, "batch", "pixel_values");
    const Tensor fast = model.image_features(pixels);
    const Tensor full = model.encode_image(pixels).features;
    ASSERT_EQ(fast.shape(), full.shape());
    EXPECT_LT(max_abs_diff(fast, full), 1e-6) << name;
  }
}

TEST(ClipInputs, StageHookSeesEveryStageInOrder) {
  const ClipModel model = ClipModel::load(model_dir("clip-tiny-gelu"));
  std::vector<std::string> names;
  RunOptions options;
  options.on_stage = [&](const std::string& n, const Tensor&) { names.push_back(n); };
  model.forward(golden_input("clip-tiny-gelu", "single0", "input_ids"), std::nullopt,
                golden_input("clip-tiny-gelu", "single0", "pixel_values"), options);
  const std::vector<std::string> want = {
      "vision/embeddings", "vision/pre_layrnorm", "vision/layer_0", "vision/layer_1",
      "vision/post_layernorm", "vision_pooler_output", "image_features", "text/embeddings",
      "text/layer_0", "text/layer_1", "text/final_layer_norm", "eos_pool_index",
      "text_pooler_output", "text_features", "text_embeds", "image_embeds", "logits_per_image",
      "logits_per_text"};
  EXPECT_EQ(names, want);
}

// ---------------------------------------------------------------------------------------------
// Through the Embedder
// ---------------------------------------------------------------------------------------------

TEST(ClipEmbedder, LongTextPolicyAndUnsupportedCalls) {
  const std::string long_text = [] {
    std::string s;
    for (int i = 0; i < 120; ++i) s += "cat ";
    return s;
  }();
  const std::vector<std::string> texts = {"a photo of a cat", long_text};

  const Embedder truncating = Embedder::load(model_dir("clip-tiny-gelu"));
  const Embeddings e = truncating.embed_texts(texts);
  ASSERT_EQ(e.rows, 2u);
  EXPECT_EQ(e.truncated_tokens[0], 0);
  // The tiny vocabulary splits "cat" in two: HF's CLIPTokenizerFast gives 242 ids, 165 over 77.
  EXPECT_EQ(e.truncated_tokens[1], 242 - 77);
  for (std::size_t r = 0; r < e.rows; ++r) {
    double n = 0;
    for (float v : e.row(r)) n += double(v) * v;
    EXPECT_NEAR(n, 1.0, 1e-5);  // L2-normalised
  }

  EmbedderOptions strict;
  strict.text_overflow = TextOverflow::kError;
  const Embedder refusing = Embedder::load(model_dir("clip-tiny-gelu"), strict);
  const std::string msg = error_of<InvalidArgument>([&] { refusing.embed_texts(texts); });
  EXPECT_NE(msg.find("has 242 tokens but the model takes at most 77"), std::string::npos) << msg;
  EXPECT_EQ(refusing.embed_texts({texts.begin(), texts.begin() + 1}).rows, 1u);

  const std::vector<Image> images = {Image::read(Manifest::get().data_dir() + "/images/cat_landscape.jpg")};
  const std::string pair = error_of<Unsupported>(
      [&] { truncating.embed_pairs(images, {texts.begin(), texts.begin() + 1}); });
  EXPECT_NE(pair.find("CLIP has no joint image-text embedding"), std::string::npos) << pair;
}

// prepare() tokenizes / preprocesses and embed_prepared() runs the towers: the two steps give the
// embed_* results bit for bit (truncation counts included), and prepare() already refuses what
// the tokenizer refuses.
TEST(ClipEmbedder, PreparedBatchesEqualDirectCalls) {
  std::string long_text;
  for (int i = 0; i < 120; ++i) long_text += "cat ";
  const std::vector<std::string> texts = {"a photo of a cat", long_text, "a motorcycle"};
  const std::string dir = Manifest::get().data_dir() + "/images/";
  const std::vector<Image> images = {Image::read(dir + "cat_landscape.jpg"),
                                     Image::read(dir + "motorcycle_left.jpg"),
                                     Image::read(dir + "astronaut_square.png")};
  EmbedderOptions o;
  o.batch_size = 2;  // two parts per batch
  const Embedder e = Embedder::load(model_dir("clip-tiny-quickgelu"), o);
  const PreparedBatch t = e.prepare(InputKind::kText, {}, texts);
  const PreparedBatch i = e.prepare(InputKind::kImage, images, {});
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(i.kind(), InputKind::kImage);
  const Embeddings direct_t = e.embed_texts(texts);
  const Embeddings prepared_t = e.embed_prepared(t);
  EXPECT_EQ(prepared_t.data, direct_t.data);
  EXPECT_EQ(prepared_t.truncated_tokens, direct_t.truncated_tokens);
  EXPECT_GT(prepared_t.truncated_tokens[1], 0);
  EXPECT_EQ(e.embed_prepared(i).data, e.embed_images(images).data);
  EXPECT_THROW(e.prepare(InputKind::kPair, images, texts), Unsupported);

  EmbedderOptions strict;
  strict.text_overflow = TextOverflow::kError;
  const Embedder refusing = Embedder::load(model_dir("clip-tiny-quickgelu"), strict);
  EXPECT_THROW(refusing.prepare(InputKind::kText, {}, texts), InvalidArgument);
}

}  // namespace
}  // namespace mmembed::models::clip
