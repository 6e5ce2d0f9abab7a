// CLIP behind the Embedder: CLIP tokenizer + CLIPImageProcessor + models::clip::ClipModel.
// Texts and images: the projected, L2-normalised embeddings (CLIPModel's text_embeds /
// image_embeds); match: cosine and exp(logit_scale) * cosine; no pair embedding.
#include "embed/clip_adapter.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "embed/token_batch.h"
#include "mmembed/error.h"
#include "models/clip/clip.h"
#include "ops/ops.h"
#include "text/tokenizer.h"
#include "vision/processor.h"

namespace mmembed::embed {
namespace {

namespace clip = models::clip;

vision::ImageProcessorOptions processor_options(const ModelFolder& folder, const clip::Config& c,
                                                ImageBackend backend) {
  if (!folder.has_file("preprocessor_config.json")) {
    // CLIPImageProcessor's defaults, sized to the vision tower.
    vision::ImageProcessorOptions o = vision::ImageProcessorOptions::clip_defaults();
    o.shortest_edge = o.crop_height = o.crop_width = c.vision.image_size;
    o.backend = to_vision_backend(backend);
    return o;
  }
  const std::string path = folder.file("preprocessor_config.json");
  const vision::ProcessorKind fallback = vision::ProcessorKind::Clip;
  vision::ImageProcessorOptions o = vision::ImageProcessorOptions::from_json_file(path, &fallback);
  MMEMBED_CHECK(o.kind == vision::ProcessorKind::Clip, Unsupported, path,
                ": a CLIP model needs CLIPImageProcessor settings");
  o.backend = to_vision_backend(backend);
  return o;
}

// What prepare() makes: token ids (texts) or pixel values (images), ready for the towers.
struct ClipInputs final : Prepared {
  TokenBatch tokens;  // kText
  Tensor pixels;      // kImage: f32 [B, 3, S, S]
};

class ClipAdapterImpl final : public ClipAdapter {
 public:
  ClipAdapterImpl(const ModelFolder& folder, const EmbedderOptions& options)
      : options_(options),
        model_(clip::Config::parse(folder.config), io::open_checkpoint(folder.dir),
               load_options(options)),
        processor_(processor_options(folder, model_.config(), options.image_backend)) {
    const clip::Config& c = model_.config();
    info_.family = "clip";
    info_.model_type = "clip";
    info_.path = folder.dir;
    info_.dim = static_cast<std::size_t>(c.projection_dim);
    info_.text = model_.has_text_tower();
    info_.image = model_.has_vision_tower();
    info_.pair = false;
    info_.match = info_.text && info_.image;
    if (info_.match) info_.match_features_shape = {static_cast<std::int64_t>(info_.dim)};
    info_.unsupported_reason =
        "CLIP has no joint image-text embedding; embed the texts and "
        "the images separately and compare them";
    if (!info_.text || !info_.image) {
      info_.unsupported_reason =
          str_cat("the checkpoint has only the ", info_.text ? "text" : "vision", " tower");
    }
    if (info_.text) {
      tokenizer_ = text::load_tokenizer(folder.dir);
      max_tokens_ = std::min(tokenizer_->max_length(),
                             static_cast<std::size_t>(c.text.max_position_embeddings));
      info_.max_text_tokens = max_tokens_;
    }
    if (info_.image) {
      const auto [h, w] = processor_.crop_size();
      MMEMBED_CHECK(processor_.options().do_center_crop && h == c.vision.image_size &&
                        w == c.vision.image_size,
                    Unsupported, folder.dir, ": images are cropped to ", w, "x", h,
                    " but the vision tower takes ", c.vision.image_size, "x", c.vision.image_size,
                    " (vision_config.image_size); interpolating position "
                    "embeddings is not supported");
    }
  }

  const ModelInfo& info() const override { return info_; }
  float logit_scale() const override { return model_.logit_scale(); }

  // Tokenizing / image preprocessing here, the towers in run(): Embedder::prepare and
  // embed_prepared split the work the same way embed_texts / embed_images do it in one call.
  std::unique_ptr<Prepared> prepare(InputKind kind, std::span<const Image> images,
                                    std::span<const std::string> texts) const override {
    if (kind != InputKind::kText && kind != InputKind::kImage) unsupported(kind);
    if (!(kind == InputKind::kText ? info_.text : info_.image)) unsupported(kind);
    auto p = std::make_unique<ClipInputs>();
    p->kind = kind;
    if (kind == InputKind::kText) {
      p->rows = texts.size();
      p->tokens = tokenize_batch(*tokenizer_, texts, max_tokens_, options_.text_overflow);
    } else {
      p->rows = images.size();
      p->pixels = pixels(images);
    }
    return p;
  }

  Embeddings run(const Prepared& prepared) const override {
    const auto* p = dynamic_cast<const ClipInputs*>(&prepared);
    MMEMBED_ASSERT(p != nullptr);
    if (p->kind == InputKind::kImage) {
      return to_embeddings(ops::l2_normalize(model_.image_features(p->pixels)));
    }
    Embeddings e =
        to_embeddings(ops::l2_normalize(model_.text_features(p->tokens.ids, p->tokens.mask)));
    e.truncated_tokens = p->tokens.truncated;
    return e;
  }

  Embeddings embed_texts(std::span<const std::string> texts) const override {
    return run(*prepare(InputKind::kText, {}, texts));
  }

  Embeddings embed_images(std::span<const Image> images) const override {
    return run(*prepare(InputKind::kImage, images, {}));
  }

  std::vector<MatchScore> match(std::span<const Image> images,
                                std::span<const std::string> texts) const override {
    if (!info_.match) unsupported("image-text matching");
    const Embeddings t = embed_texts(texts);
    const Embeddings i = embed_images(images);
    const double scale = std::exp(static_cast<double>(model_.logit_scale()));
    std::vector<MatchScore> out(texts.size());
    for (std::size_t k = 0; k < out.size(); ++k) {
      double dot = 0;
      for (std::size_t j = 0; j < t.dim; ++j)
        dot += double(t.row(k)[j]) * i.row(k)[j];
      out[k].cosine = dot;
      out[k].scaled_logit = scale * dot;
      out[k].truncated_tokens = t.truncated_tokens[k];
    }
    return out;
  }

  std::vector<ImageMatchFeatures> image_match_features(
      std::span<const Image> images) const override {
    const Embeddings e = embed_images(images);
    std::vector<ImageMatchFeatures> out(images.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
      out[i].shape = info_.match_features_shape;
      out[i].data.assign(e.row(i).begin(), e.row(i).end());
    }
    return out;
  }

  std::vector<MatchScore> match_text(const std::string& text,
                                     std::span<const ImageMatchFeatures> images) const override {
    const Embeddings t = embed_texts({&text, 1});
    const double scale = std::exp(static_cast<double>(model_.logit_scale()));
    std::vector<MatchScore> out(images.size());
    for (std::size_t k = 0; k < out.size(); ++k) {
      double dot = 0;
      for (std::size_t j = 0; j < t.dim; ++j)
        dot += double(t.row(0)[j]) * images[k].data[j];
      out[k].cosine = dot;
      out[k].scaled_logit = scale * dot;
      out[k].truncated_tokens = t.truncated_tokens[0];
    }
    return out;
  }

  ZeroShot zero_shot(const Image& image, std::span<const std::string> prompts) const override {
    if (!info_.match) unsupported("zero-shot classification");
    MMEMBED_CHECK(!prompts.empty(), InvalidArgument,
                  "zero-shot classification needs at least one label");
    const TokenBatch t = tokenize_batch(*tokenizer_, prompts, max_tokens_, options_.text_overflow);
    const Tensor text = ops::l2_normalize(model_.text_features(t.ids, t.mask));
    const Tensor img = ops::l2_normalize(model_.image_features(pixels({&image, 1})));
    // logits_per_image as the reference computes it: float32 exp(scale) * (image . text).
    const Tensor logits = clip::scaled_cosine_logits(img, text, model_.logit_scale());
    return softmax_row(logits.data<float>(), static_cast<std::size_t>(logits.numel()));
  }

  std::vector<ZeroShot> zero_shot(std::span<const Image> images,
                                  std::span<const std::string> prompts) const override {
    if (!info_.match) unsupported("zero-shot classification");
    MMEMBED_CHECK(!prompts.empty(), InvalidArgument,
                  "zero-shot classification needs at least one label");
    const TokenBatch t = tokenize_batch(*tokenizer_, prompts, max_tokens_, options_.text_overflow);
    const Tensor text = ops::l2_normalize(model_.text_features(t.ids, t.mask));
    std::vector<ZeroShot> out;
    out.reserve(images.size());
    const std::size_t batch = std::max<std::size_t>(1, options_.batch_size);
    for (std::size_t b = 0; b < images.size(); b += batch) {
      const std::span<const Image> part = images.subspan(b, std::min(batch, images.size() - b));
      const Tensor img = ops::l2_normalize(model_.image_features(pixels(part)));
      const Tensor logits = clip::scaled_cosine_logits(img, text, model_.logit_scale());
      for (std::size_t i = 0; i < part.size(); ++i)
        out.push_back(softmax_row(logits.data<float>() + i * prompts.size(), prompts.size()));
    }
    return out;
  }

 private:
  // One image's logits and their softmax (in double, shifted by the largest logit).
  static ZeroShot softmax_row(const float* logits, std::size_t n) {
    ZeroShot out;
    out.logits.assign(logits, logits + n);
    const double top = *std::max_element(out.logits.begin(), out.logits.end());
    double sum = 0;
    for (double l : out.logits)
      sum += std::exp(l - top);
    for (double l : out.logits)
      out.probabilities.push_back(std::exp(l - top) / sum);
    return out;
  }

  Tensor pixels(std::span<const Image> images) const {
    return preprocess_images(processor_, images);
  }

  EmbedderOptions options_;
  clip::ClipModel model_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  vision::ImageProcessor processor_;
  ModelInfo info_;
  std::size_t max_tokens_ = 0;
};

}  // namespace

std::unique_ptr<ModelAdapter> make_clip_adapter(const ModelFolder& folder,
                                                const EmbedderOptions& options) {
  return std::make_unique<ClipAdapterImpl>(folder, options);
}

}  // namespace mmembed::embed
