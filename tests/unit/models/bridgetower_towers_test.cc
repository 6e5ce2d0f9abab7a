// The tower calls without ITC heads (text_cls_features, image_cls_features) against the
// reference's goldens of a joint run: the last RoBERTa layer's CLS row, and the last bridge's
// image-transform CLS row plus token type 1 (read from the checkpoint). Both tiny checkpoints,
// so also the base one, which has no ITC heads; 1 and 2 threads give the same bits while a batch
// runs whole, and agree within 1e-6 when it runs in parts per thread (nn::batch_parts).
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "golden.h"
#include "io/checkpoint.h"
#include "kernels/parallel.h"
#include "models/bridgetower/bridgetower.h"
#include "nn/layers.h"
#include "test_support.h"

namespace mmembed::models::bridgetower {
namespace {

using golden::Manifest;
using testing_support::expect_within_1e6;
using testing_support::repeat_rows;

std::string dir(const std::string& model) { return Manifest::get().data_dir() + "/models/" + model; }

Tensor input(const std::string& model, const std::string& name) {
  const Manifest& m = Manifest::get();
  return m.load(m.entry(model + "/batch/" + name));
}

// x[:, 0, :] as [B, C], plus `add` [C] on every row when given.
Tensor cls_rows(const Tensor& x, const float* add = nullptr) {
  const std::int64_t b = x.dim(0), t = x.dim(1), c = x.dim(2);
  Tensor out = Tensor::empty(DType::F32, {b, c});
  for (std::int64_t i = 0; i < b; ++i) {
    for (std::int64_t j = 0; j < c; ++j) {
      out.data<float>()[i * c + j] =
          x.data<float>()[i * t * c + j] + (add != nullptr ? add[j] : 0.0f);
    }
  }
  return out;
}

void expect_matches(const std::string& golden_name, const Tensor& ours, const Tensor& want) {
  const Manifest& m = Manifest::get();
  golden::CompareResult r =
      golden::compare(golden_name, ours, want, m.tolerance(m.entry(golden_name)));
  EXPECT_TRUE(r.ok) << r.message;
}

// The checkpoint's token type embeddings [2, H] (with or without the "bridgetower." prefix).
Tensor token_type_embeddings(const std::string& model_name) {
  const io::Checkpoint ckpt = io::open_checkpoint(dir(model_name));
  std::string tt = "token_type_embeddings.weight";
  for (const io::TensorInfo& t : ckpt.tensors()) {
    if (t.name == "bridgetower." + tt) tt = t.name;
  }
  return ckpt.get_f32(tt);
}

// A golden entry's name and the rows the towers must give for it: the last RoBERTa layer's CLS
// rows, and the last bridge's image-transform CLS rows plus token type 1.
struct Golden {
  std::string name;
  Tensor rows;
};

Golden text_golden(const std::string& model_name, const Config& c) {
  const Manifest& m = Manifest::get();
  std::string name =
      model_name + "/batch/text/layer_" + std::to_string(c.text.num_hidden_layers - 1);
  Tensor rows = cls_rows(m.load(m.entry(name)));
  return {std::move(name), std::move(rows)};
}

Golden image_golden(const std::string& model_name, const Config& c) {
  const Manifest& m = Manifest::get();
  std::string name = model_name + "/batch/bridge/image_transform/call_" +
                     std::to_string(c.num_hidden_layers - 1);
  const Tensor token_types = token_type_embeddings(model_name);
  Tensor rows = cls_rows(m.load(m.entry(name)), token_types.data<float>() + c.hidden_size);
  return {std::move(name), std::move(rows)};
}

class BridgeTowerTowers : public testing::TestWithParam<std::string> {};

TEST_P(BridgeTowerTowers, ClsFeaturesMatchTheJointReference) {
  const std::string model_name = GetParam();
  const BridgeTower model = BridgeTower::load(dir(model_name));
  const Config& c = model.config();
  const Tensor ids = input(model_name, "input_ids");
  const Tensor mask = input(model_name, "attention_mask");
  const Tensor pixels = input(model_name, "pixel_values");

  const Golden want_text = text_golden(model_name, c);
  const Tensor text = model.text_cls_features(ids, mask);
  EXPECT_EQ(text.shape(), Shape({ids.dim(0), c.text.hidden_size}));
  expect_matches(want_text.name, text, want_text.rows);

  const Golden want_image = image_golden(model_name, c);
  const Tensor image = model.image_cls_features(pixels);
  EXPECT_EQ(image.shape(), Shape({pixels.dim(0), c.hidden_size}));
  expect_matches(want_image.name, image, want_image.rows);

  // Thread count: the same bits while the batch runs whole (the tiled products equal the whole
  // ones); run in parts per thread (nn::batch_parts), within 1e-6.
  const int before = kernels::num_threads();
  kernels::set_num_threads(1);
  const Tensor text1 = model.text_cls_features(ids, mask), image1 = model.image_cls_features(pixels);
  kernels::set_num_threads(2);
  const bool text_whole = nn::batch_parts(ids.dim(0), ids.dim(1)) == 1;
  const bool image_whole = nn::batch_parts(pixels.dim(0), c.image_tokens()) == 1;
  const Tensor text2 = model.text_cls_features(ids, mask), image2 = model.image_cls_features(pixels);
  kernels::set_num_threads(before);
  auto expect_same = [](const Tensor& one, const Tensor& two, bool whole, const char* what) {
    if (whole) {
      EXPECT_EQ(0, std::memcmp(one.raw(), two.raw(), one.numel() * sizeof(float))) << what;
    } else {
      expect_within_1e6(one, two, what);
    }
  };
  expect_same(text1, text2, text_whole, "text");
  expect_same(image1, image2, image_whole, "image");
}

// A batch large enough to run as one part per thread (nn::batch_parts): every item still
// matches the reference's golden row, and agrees within 1e-6 with the same item computed in
// one piece on one thread (batch independence).
TEST_P(BridgeTowerTowers, BatchPartsMatchTheReferenceAndTheWholeBatch) {
  const std::string model_name = GetParam();
  const BridgeTower model = BridgeTower::load(dir(model_name));
  const Config& c = model.config();
  const Tensor golden_ids = input(model_name, "input_ids");
  const std::int64_t texts = 2 * ((2 * nn::kMinRowsPerPart) / golden_ids.dim(1) + 1);
  const std::int64_t images = 2 * ((2 * nn::kMinRowsPerPart) / c.image_tokens() + 1);
  const Tensor ids = repeat_rows(golden_ids, texts);
  const Tensor mask = repeat_rows(input(model_name, "attention_mask"), texts);
  const Tensor pixels = repeat_rows(input(model_name, "pixel_values"), images);

  const int before = kernels::num_threads();
  kernels::set_num_threads(1);
  const Tensor text1 = model.text_cls_features(ids, mask);
  const Tensor image1 = model.image_cls_features(pixels);
  kernels::set_num_threads(2);
  const std::int64_t text_parts = nn::batch_parts(texts, ids.dim(1));
  const std::int64_t image_parts = nn::batch_parts(images, c.image_tokens());
  const Tensor text2 = model.text_cls_features(ids, mask);
  const Tensor image2 = model.image_cls_features(pixels);
  kernels::set_num_threads(before);
  ASSERT_EQ(text_parts, 2);
  ASSERT_EQ(image_parts, 2);

  const Golden want_text = text_golden(model_name, c);
  expect_matches(want_text.name, text2, repeat_rows(want_text.rows, texts));
  const Golden want_image = image_golden(model_name, c);
  expect_matches(want_image.name, image2, repeat_rows(want_image.rows, images));
  expect_within_1e6(text1, text2, "text");
  expect_within_1e6(image1, image2, "image");
}

INSTANTIATE_TEST_SUITE_P(Tiny, BridgeTowerTowers,
                         testing::Values("bridgetower-base-tiny", "bridgetower-large-tiny"),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param == "bridgetower-base-tiny" ? "base" : "large";
                         });

}  // namespace
}  // namespace mmembed::models::bridgetower
