// End to end through the public Embedder (include/mmembed/embedder.h): raw texts and image files
// -> tokenizer -> image processor -> BridgeTower -> embeddings, against the reference's outputs
// for the same raw inputs (BridgeTowerProcessor + BridgeTowerForContrastiveLearning /
// BridgeTowerForImageAndTextRetrieval, scripts/reference/gen_models.py).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "golden.h"
#include "mmembed/embedder.h"
#include "mmembed/error.h"

namespace mmembed {
namespace {

namespace fs = std::filesystem;

struct Inputs {
  std::vector<std::string> texts;
  std::vector<Image> images;
};

Inputs inputs_of(const golden::Entry& e) {
  const auto j = nlohmann::json::parse(e.inputs_json);
  Inputs in;
  for (const auto& t : j.at("texts")) in.texts.push_back(t.get<std::string>());
  for (const auto& p : j.at("images")) {
    in.images.push_back(
        Image::read(golden::Manifest::get().data_dir() + "/" + p.get<std::string>()));
  }
  return in;
}

Tensor as_tensor(const Embeddings& e) {
  return Tensor::from_vector<float>(
      {static_cast<std::int64_t>(e.rows), static_cast<std::int64_t>(e.dim)}, e.data);
}

void expect_matches(const std::string& name, const Embeddings& ours) {
  const golden::Manifest& m = golden::Manifest::get();
  const golden::Entry& e = m.entry(name);
  const golden::CompareResult r = golden::compare(name, as_tensor(ours), m.load(e), m.tolerance(e));
  EXPECT_TRUE(r.ok) << r.message;
}

// A copy of a model folder without model.safetensors, so that the PyTorch .bin is read.
std::string bin_only_folder(const std::string& model_dir) {
  const fs::path dir = fs::temp_directory_path() /
                       ("mmembed_bin_only_" + fs::path(model_dir).filename().string() + "_" +
                        std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& f : fs::directory_iterator(model_dir)) {
    if (f.path().filename() == "model.safetensors") continue;
    fs::copy(f.path(), dir / f.path().filename(), fs::copy_options::recursive);
  }
  return dir.string();
}

class BridgeTowerEmbedder : public ::testing::TestWithParam<bool> {
 protected:
  std::string model_dir(const std::string& name) {
    const std::string dir = golden::Manifest::get().data_dir() + "/models/" + name;
    return GetParam() ? bin_only_folder(dir) : dir;
  }
};

TEST_P(BridgeTowerEmbedder, LargeItcEmbeddingsMatchReferenceFromRawInputs) {
  const std::string prefix = "bridgetower-large-tiny/batch/";
  const golden::Entry& e = golden::Manifest::get().entry(prefix + "itc/cross_embeds");
  const Inputs in = inputs_of(e);
  ASSERT_EQ(in.texts.size(), 3u);
  for (std::size_t batch : {1u, 2u, 8u}) {
    SCOPED_TRACE("batch_size " + std::to_string(batch));
    EmbedderOptions options;
    options.batch_size = batch;
    const Embedder embedder = Embedder::load(model_dir("bridgetower-large-tiny"), options);
    EXPECT_EQ(embedder.info().family, "bridgetower");
    EXPECT_EQ(embedder.info().dim, 16u);
    EXPECT_TRUE(embedder.info().text && embedder.info().image && embedder.info().pair &&
                embedder.info().match);
    expect_matches(prefix + "itc/text_embeds", embedder.embed_texts(in.texts));
    expect_matches(prefix + "itc/image_embeds", embedder.embed_images(in.images));
    expect_matches(prefix + "itc/cross_embeds", embedder.embed_pairs(in.images, in.texts));

    const std::vector<MatchScore> scores = embedder.match(in.images, in.texts);
    const golden::Manifest& m = golden::Manifest::get();
    const golden::Entry& itm = m.entry(prefix + "itm/logits");
    const Tensor ref = m.load(itm);
    const golden::Tolerance tol = m.tolerance(itm);
    ASSERT_EQ(scores.size(), 3u);
    for (std::size_t i = 0; i < scores.size(); ++i) {
      const float l0 = ref.data<float>()[2 * i], l1 = ref.data<float>()[2 * i + 1];
      EXPECT_NEAR(*scores[i].logit_no_match, l0, tol.atol + tol.rtol * std::abs(l0));
      EXPECT_NEAR(*scores[i].logit_match, l1, tol.atol + tol.rtol * std::abs(l1));
      const double p = 1.0 / (1.0 + std::exp(double(l0) - double(l1)));
      EXPECT_NEAR(*scores[i].probability, p, 1e-5);
      ASSERT_TRUE(scores[i].cosine.has_value());
      EXPECT_GE(*scores[i].cosine, -1.0 - 1e-6);
      EXPECT_LE(*scores[i].cosine, 1.0 + 1e-6);
    }
  }
}

TEST_P(BridgeTowerEmbedder, BaseHasMatchingButNoEmbeddings) {
  const std::string prefix = "bridgetower-base-tiny/batch/";
  const golden::Manifest& m = golden::Manifest::get();
  const golden::Entry& itm = m.entry(prefix + "itm/logits");
  const Inputs in = inputs_of(itm);
  const Embedder embedder = Embedder::load(model_dir("bridgetower-base-tiny"));
  EXPECT_FALSE(embedder.info().text || embedder.info().image || embedder.info().pair);
  EXPECT_TRUE(embedder.info().match);
  try {
    embedder.embed_texts(in.texts);
    ADD_FAILURE() << "a checkpoint without ITC heads must refuse to embed";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("ITC"), std::string::npos) << e.what();
  }
  EXPECT_THROW(embedder.embed_images(in.images), Unsupported);
  EXPECT_THROW(embedder.embed_pairs(in.images, in.texts), Unsupported);

  const std::vector<MatchScore> scores = embedder.match(in.images, in.texts);
  const Tensor ref = m.load(itm);
  const golden::Tolerance tol = m.tolerance(itm);
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const float l0 = ref.data<float>()[2 * i], l1 = ref.data<float>()[2 * i + 1];
    EXPECT_NEAR(*scores[i].logit_no_match, l0, tol.atol + tol.rtol * std::abs(l0));
    EXPECT_NEAR(*scores[i].logit_match, l1, tol.atol + tol.rtol * std::abs(l1));
    EXPECT_FALSE(scores[i].cosine.has_value());
  }
}

// BridgeTowerModel's outputs as pair embeddings (--pair-output): pooler_output and the CLS rows
// of text_features / image_features, for the base checkpoint (no ITC heads) and the large one,
// from the raw inputs, in batches that split the inputs differently.
TEST_P(BridgeTowerEmbedder, TrunkOutputsAsPairEmbeddings) {
  const golden::Manifest& m = golden::Manifest::get();
  for (const std::string model : {"bridgetower-base-tiny", "bridgetower-large-tiny"}) {
    SCOPED_TRACE(model);
    const std::string prefix = model + "/batch/model/";
    const Inputs in = inputs_of(m.entry(prefix + "pooler_output"));
    for (std::size_t batch : {1u, 8u}) {
      EmbedderOptions options;
      options.batch_size = batch;
      options.pair_output = PairOutput::kPooled;
      const Embedder pooled = Embedder::load(model_dir(model), options);
      EXPECT_TRUE(pooled.info().pair);
      EXPECT_EQ(pooled.info().dim, 2 * static_cast<std::size_t>(
                                           m.load(m.entry(prefix + "text_features")).dim(2)));
      expect_matches(prefix + "pooler_output", pooled.embed_pairs(in.images, in.texts));
      for (const auto& [output, name] : {std::pair{PairOutput::kTextCls, "text_features"},
                                         std::pair{PairOutput::kImageCls, "image_features"}}) {
        options.pair_output = output;
        const Embedder e = Embedder::load(model_dir(model), options);
        const Embeddings ours = e.embed_pairs(in.images, in.texts);
        const golden::Entry& ref_entry = m.entry(prefix + name);
        const Tensor ref = m.load(ref_entry);  // [B, T, H]: compare the CLS rows
        ASSERT_EQ(ours.rows, static_cast<std::size_t>(ref.dim(0)));
        ASSERT_EQ(ours.dim, static_cast<std::size_t>(ref.dim(2)));
        const golden::Tolerance tol = m.tolerance(ref_entry);
        for (std::size_t r = 0; r < ours.rows; ++r) {
          for (std::size_t c = 0; c < ours.dim; ++c) {
            const float want = ref.data<float>()[r * ref.dim(1) * ref.dim(2) + c];
            EXPECT_NEAR(ours.row(r)[c], want, tol.atol + tol.rtol * std::abs(want))
                << name << " row " << r << " col " << c;
          }
        }
      }
    }
  }
  // The base checkpoint names these outputs when its missing embeddings are asked for.
  const Embedder base = Embedder::load(model_dir("bridgetower-base-tiny"));
  try {
    base.embed_texts(std::vector<std::string>{"a cat"});
    ADD_FAILURE() << "no ITC heads: text embeddings must be refused";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("--pair-output pooled"), std::string::npos) << e.what();
  }
  // Only BridgeTower has these outputs.
  EmbedderOptions clip_options;
  clip_options.pair_output = PairOutput::kPooled;
  EXPECT_THROW(Embedder::load(m.data_dir() + "/models/clip-tiny-gelu", clip_options), Unsupported);
}

INSTANTIATE_TEST_SUITE_P(Formats, BridgeTowerEmbedder, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "bin" : "safetensors"; });

}  // namespace
}  // namespace mmembed
