// The Embedder's image backends end to end against transformers 5 (tests/data/v5, written by
// scripts/reference/gen_v5.py on the tiny checkpoints): EmbedderOptions::image_backend
// kTorchvision against v5's default (torchvision) processors, kPil against v5's Pillow ones.
// Bound (docs/numerics.md "Image backends"): every output within 1e-6 * max(1, max |ref|) of
// the reference's; the pixels are equal, so what remains is float summation order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "embed/clip_adapter.h"
#include "golden.h"
#include "mmembed/embedder.h"
#include "mmembed/error.h"

namespace mmembed {
namespace {

constexpr double kBound = 1e-6;

const std::string& data_dir() { return golden::Manifest::get().data_dir(); }

const golden::Manifest& v5() {
  static const golden::Manifest m(data_dir() + "/v5/manifest.json");
  return m;
}

struct Inputs {
  std::vector<std::string> texts;
  std::vector<Image> images;
};

Inputs inputs_of(const golden::Entry& e) {
  const auto j = nlohmann::json::parse(e.inputs_json);
  Inputs in;
  for (const auto& t : j.at("texts")) in.texts.push_back(t.get<std::string>());
  for (const auto& p : j.at("images")) {
    in.images.push_back(Image::read(data_dir() + "/" + p.get<std::string>()));
  }
  return in;
}

// max |ours - ref| / max(1, max |ref|).
double scaled_error(const std::vector<double>& ours, const Tensor& ref) {
  EXPECT_EQ(static_cast<std::int64_t>(ours.size()), ref.numel());
  const float* r = ref.data<float>();
  double scale = 1.0, err = 0.0;
  for (std::int64_t i = 0; i < ref.numel(); ++i) {
    scale = std::max(scale, std::abs(double(r[i])));
    err = std::max(err, std::abs(ours[static_cast<std::size_t>(i)] - double(r[i])));
  }
  return err / scale;
}

std::vector<double> values(const Embeddings& e) { return {e.data.begin(), e.data.end()}; }

std::vector<double> itm_logits(const std::vector<MatchScore>& scores) {
  std::vector<double> v;
  for (const MatchScore& s : scores) {
    v.push_back(*s.logit_no_match);
    v.push_back(*s.logit_match);
  }
  return v;
}

// Checks `ours` against <backend>/<name>; returns the scaled error so that callers can also
// check that the other backend's reference is out of reach.
double check(const std::string& backend, const std::string& name, const std::vector<double>& ours) {
  const golden::Entry& e = v5().entry(backend + "/" + name);
  const double err = scaled_error(ours, v5().load(e));
  EXPECT_LE(err, kBound) << e.name << ": scaled error " << err;
  return err;
}

EmbedderOptions options_for(ImageBackend backend) {
  EmbedderOptions o;
  o.image_backend = backend;
  return o;
}

const std::vector<std::pair<ImageBackend, std::string>> kBackends = {
    {ImageBackend::kTorchvision, "torchvision"}, {ImageBackend::kPil, "pil"}};

TEST(ImageBackendGolden, BridgeTowerLarge) {
  const std::string model = "bridgetower-large-tiny";
  const Inputs in = inputs_of(v5().entry("torchvision/" + model + "/batch/cross_embeds"));
  for (const auto& [backend, name] : kBackends) {
    SCOPED_TRACE(name);
    const Embedder embedder = Embedder::load(data_dir() + "/models/" + model, options_for(backend));
    EXPECT_EQ(embedder.options().image_backend, backend);
    const std::string other = name == "pil" ? "torchvision" : "pil";
    const std::vector<double> image = values(embedder.embed_images(in.images));
    check(name, model + "/batch/image_embeds", image);
    // the two references are further apart than the bound, so this test tells them apart
    const std::string other_name = other + "/" + model + "/batch/image_embeds";
    EXPECT_GT(scaled_error(image, v5().load(v5().entry(other_name))), 10 * kBound);
    check(name, model + "/batch/cross_embeds", values(embedder.embed_pairs(in.images, in.texts)));
    check(name, model + "/batch/text_embeds", values(embedder.embed_texts(in.texts)));
    check(name, model + "/batch/itm_logits", itm_logits(embedder.match(in.images, in.texts)));
  }
}

TEST(ImageBackendGolden, BridgeTowerBaseMatching) {
  const std::string model = "bridgetower-base-tiny";
  const Inputs in = inputs_of(v5().entry("torchvision/" + model + "/batch/itm_logits"));
  for (const auto& [backend, name] : kBackends) {
    SCOPED_TRACE(name);
    const Embedder embedder = Embedder::load(data_dir() + "/models/" + model, options_for(backend));
    check(name, model + "/batch/itm_logits", itm_logits(embedder.match(in.images, in.texts)));
  }
}

TEST(ImageBackendGolden, ClipImagesAndZeroShot) {
  for (const std::string model : {"clip-tiny-quickgelu", "clip-tiny-gelu"}) {
    const golden::Entry& zs = v5().entry("torchvision/" + model + "/batch/zero_shot_logits");
    const auto zs_inputs = nlohmann::json::parse(zs.inputs_json);
    std::vector<std::string> prompts;
    for (const auto& p : zs_inputs.at("zero_shot_prompts")) prompts.push_back(p.get<std::string>());
    const Inputs in = inputs_of(zs);
    for (const auto& [backend, name] : kBackends) {
      SCOPED_TRACE(model + " " + name);
      const Embedder embedder =
          Embedder::load(data_dir() + "/models/" + model, options_for(backend));
      const std::vector<double> image = values(embedder.embed_images(in.images));
      check(name, model + "/batch/image_embeds", image);
      const std::string other = name == "pil" ? "torchvision" : "pil";
      const std::string other_name = other + "/" + model + "/batch/image_embeds";
      EXPECT_GT(scaled_error(image, v5().load(v5().entry(other_name))), 10 * kBound);
      const auto* clip = dynamic_cast<const embed::ClipAdapter*>(&embedder.adapter());
      ASSERT_NE(clip, nullptr);
      std::vector<double> logits, probs;
      for (const Image& im : in.images) {
        const embed::ClipAdapter::ZeroShot r = clip->zero_shot(im, prompts);
        logits.insert(logits.end(), r.logits.begin(), r.logits.end());
        probs.insert(probs.end(), r.probabilities.begin(), r.probabilities.end());
      }
      check(name, model + "/batch/zero_shot_logits", logits);
      check(name, model + "/batch/zero_shot_probs", probs);
    }
  }
}

TEST(ImageBackendGolden, ParseAndNames) {
  EXPECT_EQ(parse_image_backend("pil"), ImageBackend::kPil);
  EXPECT_EQ(parse_image_backend("torchvision"), ImageBackend::kTorchvision);
  EXPECT_THROW(parse_image_backend("PIL"), InvalidArgument);
  EXPECT_STREQ(image_backend_name(ImageBackend::kTorchvision), "torchvision");
  EXPECT_EQ(EmbedderOptions{}.image_backend, ImageBackend::kPil);
}

}  // namespace
}  // namespace mmembed
