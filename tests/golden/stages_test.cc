// Stage-by-stage parity with the reference, for the stages that the layers built so far can
// compute: each stage takes the reference's own input arrays (the golden output of the stage
// before) and the checkpoint's weights, runs our ops, and compares with the reference's output
// under the tolerance of tests/golden/tolerances.json. A drift is thus caught at the stage where
// it starts. Every stage runs with the weights read from model.safetensors and from the zip
// pytorch_model.bin (our restricted unpickler), which must give the same result.
//
// The model issues add their stages (tokenizer ids, pixels, tower layers...) the same way.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compare.h"
#include "golden.h"
#include "test_support.h"
#include "io/checkpoint.h"
#include "ops/ops.h"

namespace mmembed::golden {
namespace {

using Case = testing_support::WeightsCase;
using testing_support::weights_case_name;

class Stages : public testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Manifest& m = Manifest::get();
    std::string dir = m.data_dir() + "/models/" + GetParam().model;
    ckpt_ = std::make_unique<io::Checkpoint>(io::open_checkpoint(dir + "/" + GetParam().weights));
    std::ifstream in(dir + "/config.json");
    config_ = nlohmann::json::parse(in);
    for (const Entry* e : m.with_prefix(GetParam().model + "/")) {
      std::string rest = e->name.substr(GetParam().model.size() + 1);
      std::string group = rest.substr(0, rest.find('/'));
      if (group != "logit_scale" && std::find(groups_.begin(), groups_.end(), group) == groups_.end()) {
        groups_.push_back(group);
      }
    }
    ASSERT_FALSE(groups_.empty());
  }

  Tensor ref(const std::string& group, const std::string& name) const {
    return Manifest::get().load(Manifest::get().entry(GetParam().model + "/" + group + "/" + name));
  }
  bool has(const std::string& group, const std::string& name) const {
    const Entry* e = Manifest::get().find(GetParam().model + "/" + group + "/" + name);
    return e != nullptr && e->has_data();
  }
  Tensor w(const std::string& name) const { return ckpt_->get_f32(name); }

  // Compares `ours` with the golden `group/name` under its stage's tolerance.
  void expect_matches(const std::string& group, const std::string& name, const Tensor& ours) {
    const Entry& e = Manifest::get().entry(GetParam().model + "/" + group + "/" + name);
    CompareResult r = compare(e.name, ours, Manifest::get().load(e), Manifest::get().tolerance(e));
    EXPECT_TRUE(r.ok) << r.message;
    ++checked_;
  }

  std::unique_ptr<io::Checkpoint> ckpt_;
  nlohmann::json config_;
  std::vector<std::string> groups_;  // "batch", "single0"
  int checked_ = 0;
};

// Rows [:, 0, :] of a [B, T, C] tensor.
Tensor first_token(const Tensor& x) {
  std::int64_t b = x.dim(0), t = x.dim(1), c = x.dim(2);
  Tensor out = Tensor::empty(DType::F32, {b, c});
  for (std::int64_t i = 0; i < b; ++i) {
    std::copy_n(x.data<float>() + i * t * c, c, out.data<float>() + i * c);
  }
  return out;
}

// ---- CLIP: post_layernorm pooling, projections, normalization, logit-scaled similarity ----

class ClipStages : public Stages {};

TEST_P(ClipStages, PoolingProjectionNormalizationLogits) {
  float eps_v = config_["vision_config"].value("layer_norm_eps", 1e-5f);
  float eps_t = config_["text_config"].value("layer_norm_eps", 1e-5f);
  int last_v = config_["vision_config"]["num_hidden_layers"].get<int>() - 1;
  int last_t = config_["text_config"]["num_hidden_layers"].get<int>() - 1;
  for (const std::string& g : groups_) {
    SCOPED_TRACE(g);
    if (has(g, "vision/layer_" + std::to_string(last_v))) {
      // CLIPVisionTransformer: pooled = post_layernorm(last_hidden_state[:, 0]).
      Tensor pooled = ops::layer_norm(first_token(ref(g, "vision/layer_" + std::to_string(last_v))),
                                      w("vision_model.post_layernorm.weight"),
                                      w("vision_model.post_layernorm.bias"), eps_v);
      expect_matches(g, "vision_pooler_output", pooled);
    }
    if (has(g, "text/layer_" + std::to_string(last_t))) {
      Tensor normed = ops::layer_norm(ref(g, "text/layer_" + std::to_string(last_t)),
                                      w("text_model.final_layer_norm.weight"),
                                      w("text_model.final_layer_norm.bias"), eps_t);
      expect_matches(g, "text/final_layer_norm", normed);
    }
    Tensor image_features =
        ops::linear(ref(g, "vision_pooler_output"), w("visual_projection.weight"));
    expect_matches(g, "image_features", image_features);
    Tensor text_features = ops::linear(ref(g, "text_pooler_output"), w("text_projection.weight"));
    expect_matches(g, "text_features", text_features);

    Tensor image_embeds = ops::l2_normalize(ref(g, "image_features"));
    Tensor text_embeds = ops::l2_normalize(ref(g, "text_features"));
    expect_matches(g, "image_embeds", image_embeds);
    expect_matches(g, "text_embeds", text_embeds);

    // logits_per_image = exp(logit_scale) * image_embeds @ text_embeds^T (a bias-free linear).
    float scale = std::exp(w("logit_scale").data<float>()[0]);
    Tensor logits = ops::linear(ref(g, "image_embeds"), ref(g, "text_embeds"));
    for (std::int64_t i = 0; i < logits.numel(); ++i) logits.data<float>()[i] *= scale;
    expect_matches(g, "logits_per_image", logits);
    Tensor logits_t = ops::linear(ref(g, "text_embeds"), ref(g, "image_embeds"));
    for (std::int64_t i = 0; i < logits_t.numel(); ++i) logits_t.data<float>()[i] *= scale;
    expect_matches(g, "logits_per_text", logits_t);
  }
  EXPECT_GE(checked_, 8);
}

INSTANTIATE_TEST_SUITE_P(Golden, ClipStages,
                         testing::Values(Case{"clip-tiny-gelu", "model.safetensors"},
                                         Case{"clip-tiny-gelu", "pytorch_model.bin"},
                                         Case{"clip-tiny-quickgelu", "model.safetensors"},
                                         Case{"clip-tiny-quickgelu", "pytorch_model.bin"},
                                         Case{"toy-clip", "model.safetensors"},
                                         Case{"toy-clip", "pytorch_model.bin"}),
                         weights_case_name);

// ---- sentence-transformers (BERT): BertPooler, mean pooling, Normalize ----

class SentenceStages : public Stages {};

TEST_P(SentenceStages, PoolerMeanPoolingNormalize) {
  for (const std::string& g : groups_) {
    SCOPED_TRACE(g);
    Tensor h = ref(g, "last_hidden_state");
    Tensor pooler = ops::tanh(ops::linear(first_token(h), w("pooler.dense.weight"),
                                          w("pooler.dense.bias")));
    expect_matches(g, "pooler_output", pooler);

    // sentence-transformers mean pooling: sum(h * mask) / clamp(sum(mask), 1e-9).
    Tensor mask = ref(g, "attention_mask");
    std::int64_t b = h.dim(0), t = h.dim(1), c = h.dim(2);
    Tensor mean = Tensor::zeros(DType::F32, {b, c});
    for (std::int64_t i = 0; i < b; ++i) {
      float count = 0;
      float* out = mean.data<float>() + i * c;
      for (std::int64_t j = 0; j < t; ++j) {
        float m = static_cast<float>(mask.data<std::int64_t>()[i * t + j]);
        count += m;
        const float* row = h.data<float>() + (i * t + j) * c;
        for (std::int64_t k = 0; k < c; ++k) out[k] += row[k] * m;
      }
      for (std::int64_t k = 0; k < c; ++k) out[k] /= std::max(count, 1e-9f);
    }
    expect_matches(g, "mean_pooled", mean);
    expect_matches(g, "sentence_embedding", ops::l2_normalize(ref(g, "mean_pooled")));
  }
  EXPECT_GE(checked_, 6);
}

INSTANTIATE_TEST_SUITE_P(Golden, SentenceStages,
                         testing::Values(Case{"minilm-tiny-st", "model.safetensors"},
                                         Case{"minilm-tiny-st", "pytorch_model.bin"}),
                         weights_case_name);

// ---- BridgeTower: cross-modal poolers, ITM head, ITC cross head ----

class BridgeTowerStages : public Stages {};

TEST_P(BridgeTowerStages, PoolersItmAndCrossEmbeddings) {
  int last = config_["num_hidden_layers"].get<int>() - 1;
  for (const std::string& g : groups_) {
    SCOPED_TRACE(g);
    if (has(g, "cross/text_layer_" + std::to_string(last))) {
      // cross_modal_text_pooler: tanh(dense(x_text[:, 0])), same for the image side.
      Tensor pool_text = ops::tanh(ops::linear(
          first_token(ref(g, "cross/text_layer_" + std::to_string(last))),
          w("bridgetower.cross_modal_text_pooler.dense.weight"),
          w("bridgetower.cross_modal_text_pooler.dense.bias")));
      expect_matches(g, "pool/text", pool_text);
      Tensor pool_image = ops::tanh(ops::linear(
          first_token(ref(g, "cross/image_layer_" + std::to_string(last))),
          w("bridgetower.cross_modal_image_pooler.dense.weight"),
          w("bridgetower.cross_modal_image_pooler.dense.bias")));
      expect_matches(g, "pool/image", pool_image);
    }
    Tensor pooler = ref(g, "model/pooler_output");  // cat(pool_text, pool_image)
    if (ckpt_->contains("itm_score.fc.weight") && has(g, "itm/logits")) {
      expect_matches(g, "itm/logits",
                     ops::linear(pooler, w("itm_score.fc.weight"), w("itm_score.fc.bias")));
    }
    if (ckpt_->contains("itc_cross_modal_head.fc.weight") && has(g, "itc/cross_embeds")) {
      expect_matches(g, "itc/cross_embeds",
                     ops::l2_normalize(ops::linear(pooler, w("itc_cross_modal_head.fc.weight"),
                                                   w("itc_cross_modal_head.fc.bias"))));
    }
  }
  EXPECT_GE(checked_, 3);
}

INSTANTIATE_TEST_SUITE_P(Golden, BridgeTowerStages,
                         testing::Values(Case{"bridgetower-base-tiny", "model.safetensors"},
                                         Case{"bridgetower-base-tiny", "pytorch_model.bin"},
                                         Case{"bridgetower-large-tiny", "model.safetensors"},
                                         Case{"bridgetower-large-tiny", "pytorch_model.bin"},
                                         Case{"bridgetower-shared-link-tiny", "model.safetensors"},
                                         Case{"bridgetower-shared-link-tiny",
                                              "pytorch_model.bin"},
                                         Case{"toy-bridgetower", "model.safetensors"},
                                         Case{"toy-bridgetower", "pytorch_model.bin"}),
                         weights_case_name);

}  // namespace
}  // namespace mmembed::golden
