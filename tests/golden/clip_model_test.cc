// CLIP (models::clip::ClipModel) against the reference (transformers 4.44.2 CLIPModel) goldens:
// every named stage of both tiny checkpoints (gelu with the eos_token_id rule, quick_gelu with the
// legacy argmax rule) and of the trained toy-clip, from both weight formats, for the batch and
// single0 groups; the get_text_features / get_image_features paths; and end to end from the raw
// texts and image files (our tokenizer and image processor, loaded from the model folder) to the
// reference's ids, pixels (exact) and embeddings / logits (tolerances of
// tests/golden/tolerances.json).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "embed/clip_adapter.h"
#include "golden.h"
#include "mmembed/embedder.h"
#include "test_support.h"
#include "io/checkpoint.h"
#include "kernels/parallel.h"
#include "models/clip/clip.h"
#include "nn/layers.h"
#include "text/tokenizer.h"
#include "vision/decode.h"
#include "vision/processor.h"

namespace mmembed::models::clip {
namespace {

using golden::Manifest;
using Case = testing_support::WeightsCase;
using testing_support::weights_case_name;

std::string model_dir(const std::string& model) {
  return Manifest::get().data_dir() + "/models/" + model;
}

const std::set<std::string> kInputs = {"input_ids", "attention_mask", "pixel_values"};

// Compares each reported stage with `<prefix><stage>` when that golden exists.
struct Checker {
  std::string prefix;
  std::map<std::string, double> diffs;
  std::vector<std::string> failures;

  void operator()(const std::string& name, const Tensor& ours) {
    const Manifest& m = Manifest::get();
    const golden::Entry* e = m.find(prefix + name);
    if (e == nullptr || !e->has_data()) return;
    golden::CompareResult r = golden::compare(e->name, ours, m.load(*e), m.tolerance(*e));
    diffs[name] = r.max_abs_diff;
    if (!r.ok) failures.push_back(r.message);
  }
};

class ClipGolden : public testing::TestWithParam<Case> {
 protected:
  ClipModel load() const {
    return ClipModel(Config::from_file(model_dir(GetParam().model) + "/config.json"),
                     io::open_checkpoint(model_dir(GetParam().model) + "/" + GetParam().weights));
  }
  Tensor ref(const std::string& group, const std::string& name) const {
    const Manifest& m = Manifest::get();
    return m.load(m.entry(GetParam().model + "/" + group + "/" + name));
  }
  void expect_close(const std::string& group, const std::string& name, const Tensor& ours) const {
    const Manifest& m = Manifest::get();
    const golden::Entry& e = m.entry(GetParam().model + "/" + group + "/" + name);
    golden::CompareResult r = golden::compare(e.name, ours, m.load(e), m.tolerance(e));
    EXPECT_TRUE(r.ok) << r.message;
  }
  static std::vector<std::string> groups() { return {"batch", "single0"}; }
};

TEST_P(ClipGolden, EveryStageMatchesTheReference) {
  const Manifest& m = Manifest::get();
  const ClipModel model = load();
  EXPECT_TRUE(model.has_text_tower());
  EXPECT_TRUE(model.has_vision_tower());
  EXPECT_TRUE(model.has_logit_scale());
  EXPECT_TRUE(model.unused_weights().empty());
  for (const std::string& group : groups()) {
    SCOPED_TRACE(group);
    const std::string prefix = GetParam().model + "/" + group + "/";
    Checker check{prefix, {}, {}};
    RunOptions options;
    options.on_stage = std::ref(check);
    ClipOutput out = model.forward(ref(group, "input_ids"), ref(group, "attention_mask"),
                                   ref(group, "pixel_values"), options);
    for (const std::string& f : check.failures) ADD_FAILURE() << f;

    std::size_t goldens = 0;
    for (const golden::Entry* e : m.with_prefix(prefix)) {
      const std::string stage = e->name.substr(prefix.size());
      if (kInputs.count(stage) || !e->has_data()) continue;
      ++goldens;
      EXPECT_TRUE(check.diffs.count(stage)) << "no stage produced golden " << e->name;
    }
    EXPECT_EQ(check.diffs.size(), goldens);
    std::cout << "[ stages   ] " << GetParam().model << " " << GetParam().weights << " " << group
              << ": " << check.diffs.size() - check.failures.size() << "/" << goldens
              << " stages match\n";
    for (const auto& [stage, diff] : check.diffs) {
      std::printf("[ stage    ]   %-28s max abs diff %.3g\n", stage.c_str(), diff);
    }
    // The returned tensors are the reported ones.
    expect_close(group, "text_embeds", out.text_embeds);
    expect_close(group, "image_embeds", out.image_embeds);
    expect_close(group, "logits_per_image", out.logits_per_image);
    expect_close(group, "text_pooler_output", out.text.pooler_output);
    if (m.find(prefix + "text/final_layer_norm") != nullptr) {  // per-layer stages: batch only
      expect_close(group, "text/final_layer_norm", out.text.last_hidden_state);
    }
  }
}

TEST_P(ClipGolden, FeatureCallsMatchGetTextAndImageFeatures) {
  const ClipModel model = load();
  for (const std::string& group : groups()) {
    SCOPED_TRACE(group);
    expect_close(group, "text_features",
                 model.text_features(ref(group, "input_ids"), ref(group, "attention_mask")));
    // Without the mask: causal attention makes padding invisible to the pooled row.
    expect_close(group, "text_features", model.text_features(ref(group, "input_ids"), {}));
    expect_close(group, "image_features", model.image_features(ref(group, "pixel_values")));
    // The pooling rule picks the reference's rows.
    const golden::CompareResult r = golden::compare(
        "eos_pool_index", model.pool_positions(ref(group, "input_ids")),
        ref(group, "eos_pool_index"), {});
    EXPECT_TRUE(r.ok) << r.message;
  }
}

// A batch large enough to run as one part per thread (nn::batch_parts): every item still
// matches the reference's golden row, and agrees within 1e-6 with the same item computed in one
// piece on one thread (batch independence).
TEST_P(ClipGolden, BatchPartsMatchTheReferenceAndTheWholeBatch) {
  const Manifest& m = Manifest::get();
  const ClipModel model = load();
  const Tensor golden_ids = ref("batch", "input_ids");
  // Two parts of `half` texts; the second part starts at another golden item than the first, so
  // that a part reading the wrong mask rows shows.
  std::int64_t half = nn::kMinRowsPerPart / golden_ids.dim(1) + 1;
  if (half % golden_ids.dim(0) == 0) ++half;
  const std::int64_t texts = 2 * half;
  const std::int64_t image_tokens = model.config().image_tokens();
  const std::int64_t images = 2 * ((2 * nn::kMinRowsPerPart) / image_tokens + 1);
  const Tensor ids = testing_support::repeat_rows(golden_ids, texts);
  const Tensor mask = testing_support::repeat_rows(ref("batch", "attention_mask"), texts);
  const Tensor pixels = testing_support::repeat_rows(ref("batch", "pixel_values"), images);

  const int before = kernels::num_threads();
  kernels::set_num_threads(1);
  const Tensor text1 = model.text_features(ids, mask), image1 = model.image_features(pixels);
  kernels::set_num_threads(2);
  const std::int64_t text_parts = nn::batch_parts(texts, ids.dim(1));
  const std::int64_t image_parts = nn::batch_parts(images, image_tokens);
  const Tensor text2 = model.text_features(ids, mask), image2 = model.image_features(pixels);
  // Every position's hidden state, padding included (the mask rows must follow the parts).
  const Tensor hidden2 = model.encode_text(ids, mask).last_hidden_state;
  kernels::set_num_threads(1);
  const Tensor hidden1 = model.encode_text(ids, mask).last_hidden_state;
  kernels::set_num_threads(before);
  ASSERT_EQ(text_parts, 2);
  ASSERT_EQ(image_parts, 2);

  for (const auto& [name, ours, n] : {std::tuple{"text_features", text2, texts},
                                      std::tuple{"image_features", image2, images}}) {
    const golden::Entry& e = m.entry(GetParam().model + "/batch/" + name);
    const golden::CompareResult r = golden::compare(
        e.name, ours, testing_support::repeat_rows(m.load(e), n), m.tolerance(e));
    EXPECT_TRUE(r.ok) << r.message;
  }
  // Projected features are not normalised: 1e-6 of their scale (the tiny checkpoints' values
  // are below 1; the trained toy-clip's reach about 3, where 1e-6 is a few ulps).
  const auto scale = [](const Tensor& t) {
    double m = 1;
    for (std::int64_t i = 0; i < t.numel(); ++i)
      m = std::max(m, std::abs(static_cast<double>(t.data<float>()[i])));
    return m;
  };
  testing_support::expect_within(text1, text2, 1e-6 * scale(text1), "text");
  testing_support::expect_within(image1, image2, 1e-6 * scale(image1), "image");
  // Hidden states after the final LayerNorm carry the products' rounding differences scaled by
  // 1/std of each row: 1e-5 here (measured: up to 1.1e-6); a part reading another part's mask
  // rows is off by O(1) at the padded positions.
  testing_support::expect_within(hidden1, hidden2, 1e-5, "text last_hidden_state");
}

// Raw texts and image files -> our tokenizer and processor -> the model; the inputs must be
// the reference's exactly, the outputs within tolerance.
TEST_P(ClipGolden, EndToEndFromTextsAndImages) {
  const Manifest& m = Manifest::get();
  const std::string dir = model_dir(GetParam().model);
  const ClipModel model = load();
  const auto tokenizer = text::load_tokenizer(dir);
  const vision::ImageProcessor processor(
      vision::ImageProcessorOptions::from_json_file(dir + "/preprocessor_config.json"));
  for (const std::string& group : groups()) {
    SCOPED_TRACE(group);
    const golden::Entry& e = m.entry(GetParam().model + "/" + group + "/input_ids");
    const nlohmann::json inputs = nlohmann::json::parse(e.inputs_json);
    const auto texts = inputs.at("texts").get<std::vector<std::string>>();
    const auto images = inputs.at("images").get<std::vector<std::string>>();

    const std::vector<text::Encoding> enc = tokenizer->encode_batch(texts);
    const std::int64_t B = static_cast<std::int64_t>(enc.size());
    const std::int64_t L = static_cast<std::int64_t>(enc[0].ids.size());
    Tensor ids = Tensor::empty(DType::I64, {B, L}), mask = Tensor::empty(DType::I64, {B, L});
    for (std::int64_t b = 0; b < B; ++b) {
      std::copy(enc[b].ids.begin(), enc[b].ids.end(), ids.data<std::int64_t>() + b * L);
      std::copy(enc[b].attention_mask.begin(), enc[b].attention_mask.end(),
                mask.data<std::int64_t>() + b * L);
    }
    std::vector<Tensor> rgb;
    for (const std::string& f : images) rgb.push_back(vision::read_image(m.data_dir() + "/" + f).rgb);
    const Tensor pixels = processor.preprocess(rgb).pixel_values;

    expect_close(group, "input_ids", ids);
    expect_close(group, "attention_mask", mask);
    expect_close(group, "pixel_values", pixels);
    const ClipOutput out = model.forward(ids, mask, pixels);
    expect_close(group, "text_embeds", out.text_embeds);
    expect_close(group, "image_embeds", out.image_embeds);
    expect_close(group, "logits_per_image", out.logits_per_image);
    expect_close(group, "logits_per_text", out.logits_per_text);
  }
}

// The Embedder (CLIP adapter) on the raw inputs: normalised text / image embeddings, batch
// sizes that split the inputs differently, and zero-shot probabilities (mmembed classify)
// against the reference's CLIPModel(...).logits_per_image.softmax(dim=1).
class ClipEmbedder : public testing::TestWithParam<std::string> {};

Tensor rows_tensor(const Embeddings& e) {
  return Tensor::from_vector<float>(
      {static_cast<std::int64_t>(e.rows), static_cast<std::int64_t>(e.dim)}, e.data);
}

TEST_P(ClipEmbedder, EmbeddingsAndZeroShotMatchTheReference) {
  const Manifest& m = Manifest::get();
  const std::string model = GetParam();
  const golden::Entry& ids = m.entry(model + "/batch/input_ids");
  const nlohmann::json inputs = nlohmann::json::parse(ids.inputs_json);
  const auto texts = inputs.at("texts").get<std::vector<std::string>>();
  std::vector<Image> images;
  for (const auto& f : inputs.at("images").get<std::vector<std::string>>()) {
    images.push_back(Image::read(m.data_dir() + "/" + f));
  }
  std::ifstream config_in(model_dir(model) + "/config.json");
  const std::size_t projection_dim =
      nlohmann::json::parse(config_in).at("projection_dim").get<std::size_t>();
  for (std::size_t batch : {1, 2, 8}) {
    SCOPED_TRACE(batch);
    EmbedderOptions options;
    options.batch_size = batch;
    const Embedder embedder = Embedder::load(model_dir(model), options);
    EXPECT_EQ(embedder.info().family, "clip");
    EXPECT_EQ(embedder.info().dim, projection_dim);
    EXPECT_EQ(embedder.info().max_text_tokens, 77u);
    EXPECT_TRUE(embedder.info().text && embedder.info().image && embedder.info().match);
    EXPECT_FALSE(embedder.info().pair);
    for (const auto& [stage, ours] :
         {std::pair{"text_embeds", rows_tensor(embedder.embed_texts(texts))},
          std::pair{"image_embeds", rows_tensor(embedder.embed_images(images))}}) {
      const golden::Entry& e = m.entry(model + "/batch/" + stage);
      golden::CompareResult r = golden::compare(e.name, ours, m.load(e), m.tolerance(e));
      EXPECT_TRUE(r.ok) << r.message;
    }
    // match(): image i with text i; cosine * exp(logit_scale) is logits_per_image[i][i].
    const std::vector<std::string> first3(texts.begin(), texts.begin() + 3);
    const std::vector<Image> first3_images(images.begin(), images.begin() + 3);
    const auto scores = embedder.match(first3_images, first3);
    const Tensor logits = m.load(m.entry(model + "/batch/logits_per_image"));
    for (std::size_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(scores[i].scaled_logit.has_value());
      EXPECT_NEAR(*scores[i].scaled_logit, logits.data<float>()[i * texts.size() + i], 1e-4);
      EXPECT_FALSE(scores[i].probability.has_value());
    }
  }

  const Embedder embedder = Embedder::load(model_dir(model));
  const auto* clip = dynamic_cast<const embed::ClipAdapter*>(&embedder.adapter());
  ASSERT_NE(clip, nullptr);
  const golden::Entry& probs_entry = m.entry("zero_shot/" + model + "/probs");
  const golden::Entry& logits_entry = m.entry("zero_shot/" + model + "/logits");
  const nlohmann::json zs = nlohmann::json::parse(probs_entry.inputs_json);
  const auto prompts = zs.at("prompts").get<std::vector<std::string>>();
  const auto files = zs.at("images").get<std::vector<std::string>>();
  std::vector<float> probs, logits;
  for (const std::string& f : files) {
    const Image image = Image::read(m.data_dir() + "/" + f);
    const embed::ClipAdapter::ZeroShot zs_out = clip->zero_shot(image, prompts);
    for (double p : zs_out.probabilities) probs.push_back(static_cast<float>(p));
    for (double l : zs_out.logits) logits.push_back(static_cast<float>(l));
  }
  const Shape shape = {static_cast<std::int64_t>(files.size()),
                       static_cast<std::int64_t>(prompts.size())};
  golden::CompareResult r = golden::compare(probs_entry.name, Tensor::from_vector(shape, probs),
                                            m.load(probs_entry), m.tolerance(probs_entry));
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_LE(m.tolerance(probs_entry).atol, 1e-4);
  std::printf("[ zero-shot] %s: probabilities max abs diff %.3g\n", model.c_str(), r.max_abs_diff);
  r = golden::compare(logits_entry.name, Tensor::from_vector(shape, logits), m.load(logits_entry),
                      m.tolerance(logits_entry));
  EXPECT_TRUE(r.ok) << r.message;

  // Many images in one call (prompts embedded once, images in batches of 2): the same goldens.
  std::vector<Image> all;
  for (const std::string& f : files) all.push_back(Image::read(m.data_dir() + "/" + f));
  EmbedderOptions batched;
  batched.batch_size = 2;
  const Embedder e2 = Embedder::load(model_dir(model), batched);
  const auto* clip2 = dynamic_cast<const embed::ClipAdapter*>(&e2.adapter());
  const std::vector<embed::ClipAdapter::ZeroShot> many = clip2->zero_shot(all, prompts);
  ASSERT_EQ(many.size(), files.size());
  std::vector<float> many_probs, many_logits;
  for (const auto& z : many) {
    for (double p : z.probabilities) many_probs.push_back(static_cast<float>(p));
    for (double l : z.logits) many_logits.push_back(static_cast<float>(l));
  }
  r = golden::compare(probs_entry.name, Tensor::from_vector(shape, many_probs), m.load(probs_entry),
                      m.tolerance(probs_entry));
  EXPECT_TRUE(r.ok) << "batched: " << r.message;
  r = golden::compare(logits_entry.name, Tensor::from_vector(shape, many_logits),
                      m.load(logits_entry), m.tolerance(logits_entry));
  EXPECT_TRUE(r.ok) << "batched: " << r.message;
}

INSTANTIATE_TEST_SUITE_P(Golden, ClipEmbedder,
                         testing::Values("clip-tiny-gelu", "clip-tiny-quickgelu", "toy-clip"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return s;
                         });

INSTANTIATE_TEST_SUITE_P(Golden, ClipGolden,
                         testing::Values(Case{"clip-tiny-gelu", "model.safetensors"},
                                         Case{"clip-tiny-gelu", "pytorch_model.bin"},
                                         Case{"clip-tiny-quickgelu", "model.safetensors"},
                                         Case{"clip-tiny-quickgelu", "pytorch_model.bin"},
                                         Case{"toy-clip", "model.safetensors"},
                                         Case{"toy-clip", "pytorch_model.bin"}),
                         weights_case_name);

}  // namespace
}  // namespace mmembed::models::clip
