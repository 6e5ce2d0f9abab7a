// The Embedder facade: model discovery, input checks, batching independence, error messages.
// Parity with the reference lives in tests/golden/embedder_test.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mmembed/embedder.h"
#include "mmembed/error.h"
#include "test_support.h"

namespace mmembed {
namespace {

namespace fs = std::filesystem;
using testing_support::error_of;

const std::string kData = MMEMBED_TEST_DATA_DIR;
const std::string kLarge = kData + "/models/bridgetower-large-tiny";

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("mmembed_embedder_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

const Embedder& large() {
  static const Embedder e = [] {
    EmbedderOptions o;
    o.batch_size = 8;
    return Embedder::load(kLarge, o);
  }();
  return e;
}

TEST(Embedder, MissingModelNamesThePath) {
  const std::string msg = error_of<IoError>([] { Embedder::load("/nonexistent/model-dir"); });
  EXPECT_NE(msg.find("/nonexistent/model-dir"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no such directory"), std::string::npos) << msg;
}

TEST(Embedder, FolderWithoutConfig) {
  const fs::path dir = temp_dir("noconfig");
  const std::string msg = error_of<IoError>([&] { Embedder::load(dir.string()); });
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
}

TEST(Embedder, FileInsteadOfFolder) {
  const std::string msg = error_of<IoError>([] { Embedder::load(kLarge + "/config.json"); });
  EXPECT_NE(msg.find("not a directory"), std::string::npos) << msg;
}

TEST(Embedder, UnknownModelType) {
  const fs::path dir = temp_dir("gpt2");
  std::ofstream(dir / "config.json") << R"({"model_type": "gpt2"})";
  const std::string msg = error_of<Unsupported>([&] { Embedder::load(dir.string()); });
  EXPECT_NE(msg.find("gpt2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bridgetower"), std::string::npos) << msg;
}

TEST(Embedder, ZeroBatchSizeIsRefused) {
  EmbedderOptions o;
  o.batch_size = 0;
  EXPECT_THROW(Embedder::load(kLarge, o), InvalidArgument);
}

// Issue #18: batch sizes and thread counts are bounded where the library takes them.
TEST(Embedder, HugeBatchSizeAndThreadCountAreRefused) {
  EmbedderOptions o;
  o.batch_size = SIZE_MAX;
  std::string msg = error_of<InvalidArgument>([&] { Embedder::load(kLarge, o); });
  EXPECT_NE(msg.find("batch size 18446744073709551615 is out of range (1 to 65536)"),
            std::string::npos)
      << msg;
  o.batch_size = kMaxBatchSize;
  for (int threads : {-1, 1025, 100000}) {
    o.threads = threads;
    msg = error_of<InvalidArgument>([&] { Embedder::load(kLarge, o); });
    EXPECT_NE(msg.find("threads " + std::to_string(threads) + " is out of range (0 to 1024"),
              std::string::npos)
        << msg;
  }
}

TEST(Embedder, EmptyAndBlankTextsAreRefusedByIndex) {
  const std::vector<std::string> texts = {"a cat", ""};
  std::string msg = error_of<InvalidArgument>([&] { large().embed_texts(texts); });
  EXPECT_NE(msg.find("text 1 is empty"), std::string::npos) << msg;
  const std::vector<std::string> blank = {" \t\n"};
  msg = error_of<InvalidArgument>([&] { large().embed_texts(blank); });
  EXPECT_NE(msg.find("text 0 is only whitespace"), std::string::npos) << msg;
}

TEST(Embedder, PairCountsMustAgree) {
  const std::vector<Image> images = {Image::read(kData + "/images/cat_landscape.jpg")};
  const std::vector<std::string> texts = {"a cat", "a dog"};
  const std::string msg = error_of<InvalidArgument>([&] { large().embed_pairs(images, texts); });
  EXPECT_NE(msg.find("as many images (1) as texts (2)"), std::string::npos) << msg;
  EXPECT_THROW(large().match(images, texts), InvalidArgument);
}

TEST(Embedder, MalformedImageBufferIsRefused) {
  Image bad;
  bad.height = 2;
  bad.width = 2;
  bad.rgb.assign(5, 0);
  bad.name = "bad.png";
  const std::vector<Image> images = {bad};
  const std::string msg = error_of<InvalidArgument>([&] { large().embed_images(images); });
  EXPECT_NE(msg.find("bad.png"), std::string::npos) << msg;
}

TEST(Embedder, ImageReadErrorsNameTheFile) {
  std::string msg = error_of<IoError>([] { Image::read("/nonexistent/cat.jpg"); });
  EXPECT_NE(msg.find("/nonexistent/cat.jpg"), std::string::npos) << msg;
  const fs::path dir = temp_dir("corrupt");
  std::ofstream(dir / "corrupt.jpg") << "\xff\xd8\xff\xe0 this is not a jpeg";
  msg = error_of<FormatError>([&] { Image::read((dir / "corrupt.jpg").string()); });
  EXPECT_NE(msg.find("corrupt.jpg"), std::string::npos) << msg;
  const std::string html = "<html><body>not found</body></html>";
  msg = error_of<FormatError>([&] { Image::decode(html.data(), html.size(), "page.html"); });
  EXPECT_NE(msg.find("page.html"), std::string::npos) << msg;
}

// Issue #18: a negative limit used to disable the check silently, as 0 does on purpose.
TEST(Embedder, NegativePixelLimitIsRefused) {
  const std::string cat = std::string(MMEMBED_TEST_DATA_DIR) + "/images/cat_landscape.jpg";
  const std::string msg = error_of<InvalidArgument>([&] { Image::read(cat, -1); });
  EXPECT_NE(msg.find("cat_landscape.jpg: max_pixels -1 is negative"), std::string::npos) << msg;
  const char bytes[] = "x";
  EXPECT_THROW(Image::decode(bytes, 1, "buffer", -5), InvalidArgument);
}

TEST(Embedder, PixelLimitIsConfigurable) {
  const std::string path = kData + "/images/cat_landscape.jpg";
  const Image ok = Image::read(path);
  EXPECT_GT(ok.width * ok.height, 100);
  EXPECT_THROW(Image::read(path, 100), InvalidArgument);
}

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    d = std::max(d, double(std::abs(a[i] - b[i])));
  return d;
}

// A text embedded alone and inside a batch of 8 with longer texts agree within 1e-6.
TEST(Embedder, TextEmbeddingDoesNotDependOnBatchComposition) {
  const std::vector<std::string> alone = {"a cat"};
  std::vector<std::string> batch = {
      "a motorcycle parked in a garage next to a red car and a bicycle",
      "a cat",
      "two dogs running on the beach at sunset while people watch from the pier",
      "an old photograph of a train station with many travellers waiting on the platform",
      "a bowl of fruit",
      "a man riding a horse through a field of yellow flowers under a cloudy sky",
      "the view from the top of a mountain with snow and a frozen lake below it",
      "a black and white drawing of a city skyline at night with lights in the windows"};
  const Embeddings one = large().embed_texts(alone);
  const Embeddings many = large().embed_texts(batch);
  ASSERT_EQ(one.rows, 1u);
  ASSERT_EQ(many.rows, 8u);
  EXPECT_LE(max_abs_diff(one.row(0), many.row(1)), 1e-6);
  double norm = 0;
  for (float v : one.row(0))
    norm += double(v) * v;
  EXPECT_NEAR(norm, 1.0, 1e-5);  // ITC embeddings are L2-normalised
}

TEST(Embedder, PairEmbeddingDoesNotDependOnBatchSize) {
  const std::vector<Image> images = {Image::read(kData + "/images/cat_landscape.jpg"),
                                     Image::read(kData + "/images/motorcycle_left.jpg"),
                                     Image::read(kData + "/images/motorcycle_portrait.jpg")};
  const std::vector<std::string> texts = {"a cat", "a motorcycle parked across from livestock",
                                          "a motorcycle on a platform in a garage"};
  EmbedderOptions o;
  o.batch_size = 1;
  const Embedder one_by_one = Embedder::load(kLarge, o);
  const Embeddings a = one_by_one.embed_pairs(images, texts);
  const Embeddings b = large().embed_pairs(images, texts);
  ASSERT_EQ(a.rows, 3u);
  ASSERT_EQ(b.rows, 3u);
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_LE(max_abs_diff(a.row(i), b.row(i)), 1e-6) << i;
}

TEST(Embedder, LongTextIsTruncatedAndReportedOrRefused) {
  std::string long_text;
  for (int i = 0; i < 700; ++i)
    long_text += "cat ";
  const std::vector<std::string> texts = {long_text, "a cat"};
  const Embeddings e = large().embed_texts(texts);
  ASSERT_EQ(e.truncated_tokens.size(), 2u);
  EXPECT_GT(e.truncated_tokens[0], 0);
  EXPECT_EQ(e.truncated_tokens[1], 0);
  EmbedderOptions strict;
  strict.text_overflow = TextOverflow::kError;
  const Embedder refuse = Embedder::load(kLarge, strict);
  EXPECT_THROW(refuse.embed_texts(texts), InvalidArgument);
}

// One Embedder used from several threads at once gives what it gives serially.
TEST(Embedder, ConcurrentCallsAgreeWithSerialCalls) {
  const std::vector<std::string> texts = {"a cat", "a motorcycle in a garage", "a dog"};
  const std::vector<Image> images = {Image::read(kData + "/images/cat_landscape.jpg"),
                                     Image::read(kData + "/images/motorcycle_left.jpg"),
                                     Image::read(kData + "/images/motorcycle_portrait.jpg")};
  const Embeddings serial_t = large().embed_texts(texts);
  const Embeddings serial_p = large().embed_pairs(images, texts);
  std::vector<Embeddings> t(4), p(4);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      t[k] = large().embed_texts(texts);
      p[k] = large().embed_pairs(images, texts);
    });
  }
  for (auto& th : threads)
    th.join();
  for (int k = 0; k < 4; ++k) {
    ASSERT_EQ(t[k].data.size(), serial_t.data.size());
    ASSERT_EQ(p[k].data.size(), serial_p.data.size());
    EXPECT_LE(max_abs_diff(t[k].data, serial_t.data), 1e-6) << k;
    EXPECT_LE(max_abs_diff(p[k].data, serial_p.data), 1e-6) << k;
  }
}

// prepare() + embed_prepared() is the embed_* call in two steps; prepare() refuses what the
// embed_* call refuses.
TEST(Embedder, PreparedBatchesEqualDirectCalls) {
  const std::vector<std::string> texts = {"a cat", "a motorcycle in a garage", "a dog"};
  const std::vector<Image> images = {Image::read(kData + "/images/cat_landscape.jpg"),
                                     Image::read(kData + "/images/motorcycle_left.jpg"),
                                     Image::read(kData + "/images/motorcycle_portrait.jpg")};
  EmbedderOptions o;
  o.batch_size = 2;  // two parts per batch
  const Embedder e = Embedder::load(kLarge, o);
  const PreparedBatch t = e.prepare(InputKind::kText, {}, texts);
  const PreparedBatch i = e.prepare(InputKind::kImage, images, {});
  const PreparedBatch p = e.prepare(InputKind::kPair, images, texts);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(p.kind(), InputKind::kPair);
  EXPECT_EQ(e.embed_prepared(t).data, e.embed_texts(texts).data);
  EXPECT_EQ(e.embed_prepared(i).data, e.embed_images(images).data);
  EXPECT_EQ(e.embed_prepared(p).data, e.embed_pairs(images, texts).data);
  const std::vector<std::string> bad = {"a cat", ""};
  EXPECT_THROW(e.prepare(InputKind::kText, {}, bad), InvalidArgument);
  EXPECT_THROW(e.prepare(InputKind::kText, images, texts), InvalidArgument);
  EXPECT_THROW(e.prepare(InputKind::kPair, images, bad), InvalidArgument);
  const Embedder base = Embedder::load(kData + "/models/bridgetower-base-tiny");
  EXPECT_THROW(base.prepare(InputKind::kText, {}, texts), Unsupported);
}

TEST(Embedder, EmptyBatchesGiveEmptyResults) {
  const Embeddings e = large().embed_texts({});
  EXPECT_EQ(e.rows, 0u);
  EXPECT_EQ(e.dim, 16u);
  EXPECT_TRUE(large().match({}, {}).empty());
}

// One text against many images through the split path (image features once, then the text and
// the cross-modal layers) equals match() of the text repeated, field by field, for the matching
// families (BridgeTower ITM + ITC cosine, CLIP cosine and scaled logit), with a batch size that
// splits the images.
TEST(Embedder, MatchTextOnImageFeaturesEqualsMatch) {
  const std::vector<Image> images = {Image::read(kData + "/images/cat_landscape.jpg"),
                                     Image::read(kData + "/images/motorcycle_left.jpg"),
                                     Image::read(kData + "/images/motorcycle_portrait.jpg")};
  const std::string text = "a motorcycle parked across from livestock";
  const std::vector<std::string> texts(images.size(), text);
  for (const std::string model : {"bridgetower-large-tiny", "toy-bridgetower", "toy-clip"}) {
    SCOPED_TRACE(model);
    EmbedderOptions o;
    o.batch_size = 2;
    const Embedder e = Embedder::load(kData + "/models/" + model, o);
    const std::vector<ImageMatchFeatures> f = e.image_match_features(images);
    ASSERT_EQ(f.size(), images.size());
    for (const ImageMatchFeatures& x : f)
      EXPECT_EQ(x.shape, e.info().match_features_shape);
    const std::vector<MatchScore> split = e.match_text(text, f);
    const std::vector<MatchScore> joint = e.match(images, texts);
    ASSERT_EQ(split.size(), joint.size());
    auto near = [](const std::optional<double>& a, const std::optional<double>& b) {
      return a.has_value() == b.has_value() && (!a || std::abs(*a - *b) <= 1e-6);
    };
    for (std::size_t i = 0; i < split.size(); ++i) {
      EXPECT_TRUE(near(split[i].probability, joint[i].probability)) << i;
      EXPECT_TRUE(near(split[i].logit_match, joint[i].logit_match)) << i;
      EXPECT_TRUE(near(split[i].cosine, joint[i].cosine)) << i;
      EXPECT_TRUE(near(split[i].scaled_logit, joint[i].scaled_logit)) << i;
      EXPECT_TRUE(split[i].probability || split[i].scaled_logit) << i;
    }
  }
}

TEST(Embedder, MatchTextChecksItsInputs) {
  const std::vector<Image> images = {Image::read(kData + "/images/cat_landscape.jpg")};
  std::vector<ImageMatchFeatures> f = large().image_match_features(images);
  EXPECT_NE(error_of<InvalidArgument>([&] { large().match_text("  ", f); }).find("whitespace"),
            std::string::npos);
  f[0].data.pop_back();
  const std::string msg = error_of<InvalidArgument>([&] { large().match_text("a cat", f); });
  EXPECT_NE(msg.find("image features 0 are"), std::string::npos) << msg;
  f[0].shape = {1};
  EXPECT_THROW(large().match_text("a cat", f), InvalidArgument);
  EXPECT_TRUE(large().match_text("a cat", {}).empty());
  const Embedder text_only = Embedder::load(kData + "/models/minilm-tiny-st");
  EXPECT_TRUE(text_only.info().match_features_shape.empty());
  EXPECT_THROW(text_only.image_match_features(images), Unsupported);
}

// dtype bf16 and int8 on every tiny family: each vector within cosine 0.9999 (bf16) and 0.999
// (int8) of fp32's (the bounds docs/numerics.md states; the trained toy models are checked in
// tests/golden/toy_models_test.cc).
TEST(Embedder, ReducedPrecisionVectorsStayWithinTheDocumentedBoundOfFp32) {
  const std::vector<Image> images = {Image::read(kData + "/images/cat_landscape.jpg"),
                                     Image::read(kData + "/images/motorcycle_left.jpg"),
                                     Image::read(kData + "/images/astronaut_square.png")};
  const std::vector<std::string> texts = {"a cat", "a motorcycle parked across from livestock",
                                          "an astronaut standing on the moon next to a flag"};
  auto min_cosine = [](const Embeddings& a, const Embeddings& b) {
    double worst = 1;
    for (std::size_t i = 0; i < a.rows; ++i) {
      double dot = 0, na = 0, nb = 0;
      for (std::size_t k = 0; k < a.dim; ++k) {
        dot += double(a.row(i)[k]) * b.row(i)[k];
        na += double(a.row(i)[k]) * a.row(i)[k];
        nb += double(b.row(i)[k]) * b.row(i)[k];
      }
      worst = std::min(worst, dot / std::sqrt(na * nb));
    }
    return worst;
  };
  EmbedderOptions bf16;
  bf16.dtype = ModelDtype::kBf16;
  for (const std::string model :
       {"bridgetower-large-tiny", "clip-tiny-gelu", "clip-tiny-quickgelu", "minilm-tiny-st"}) {
    SCOPED_TRACE(model);
    const Embedder full = Embedder::load(kData + "/models/" + model);
    const Embedder low = Embedder::load(kData + "/models/" + model, bf16);
    EXPECT_EQ(low.options().dtype, ModelDtype::kBf16);
    const Embeddings t = low.embed_texts(texts), tf = full.embed_texts(texts);
    EXPECT_GE(min_cosine(t, tf), 0.9999);
    EXPECT_NE(t.data, tf.data);  // the bf16 path ran
    if (full.info().image) {
      EXPECT_GE(min_cosine(low.embed_images(images), full.embed_images(images)), 0.9999);
    }
    if (full.info().pair) {
      EXPECT_GE(min_cosine(low.embed_pairs(images, texts), full.embed_pairs(images, texts)),
                0.9999);
    }
  }
  EXPECT_EQ(parse_model_dtype("bfloat16"), ModelDtype::kBf16);
  EXPECT_EQ(parse_model_dtype("fp32"), ModelDtype::kFp32);
  EXPECT_EQ(parse_model_dtype("int8"), ModelDtype::kInt8);
  EXPECT_THROW(parse_model_dtype("int4"), InvalidArgument);
}

}  // namespace
}  // namespace mmembed
