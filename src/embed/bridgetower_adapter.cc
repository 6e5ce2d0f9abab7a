// BridgeTower behind the Embedder: RoBERTa tokenizer + BridgeTowerImageProcessor (as
// BridgeTowerProcessor calls it) + the model's ITC / ITM heads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/check.h"
#include "embed/adapter.h"
#include "embed/token_batch.h"
#include "mmembed/error.h"
#include "models/bridgetower/bridgetower.h"
#include "text/tokenizer.h"
#include "vision/processor.h"

namespace mmembed::embed {
namespace {

namespace bt = models::bridgetower;

double cosine(const float* a, const float* b, std::int64_t n) {
  double dot = 0, na = 0, nb = 0;
  for (std::int64_t k = 0; k < n; ++k) {
    dot += double(a[k]) * b[k];
    na += double(a[k]) * a[k];
    nb += double(b[k]) * b[k];
  }
  return dot / std::sqrt(na * nb);
}

struct BridgeTowerInputs final : Prepared {
  TokenBatch tokens;  // text and pair inputs
  Tensor pixels;      // image and pair inputs: f32 [B, 3, S, S]
};

class BridgeTowerAdapter final : public ModelAdapter {
 public:
  BridgeTowerAdapter(const ModelFolder& folder, const EmbedderOptions& options)
      : options_(options),
        model_(bt::BridgeTower::load(folder.dir, load_options(options))),
        tokenizer_(text::load_tokenizer(folder.dir)),
        processor_(processor_options(folder, options.image_backend)) {
    const bt::Config& c = model_.config();
    const auto [crop_h, crop_w] = processor_.crop_size();
    MMEMBED_CHECK(crop_h == c.vision.image_size && crop_w == c.vision.image_size, Unsupported,
                  folder.file("preprocessor_config.json"), ": images are cropped to ", crop_w, "x",
                  crop_h, " but the vision tower takes ", c.vision.image_size, "x",
                  c.vision.image_size,
                  " (config.json vision_config.image_size); "
                  "interpolating position embeddings is not supported");
    info_.family = "bridgetower";
    info_.model_type = "bridgetower";
    info_.path = folder.dir;
    // RoBERTa positions start after the padding index: max_position_embeddings - (pad + 1)
    // tokens fit. The tokenizer's own limit (model_max_length) may be larger than what a
    // (small) model takes; the reference would fail there, we cut to what the model takes.
    const std::int64_t model_limit = c.text.max_position_embeddings - (c.text.pad_token_id + 1);
    MMEMBED_CHECK(model_limit >= 2, FormatError, folder.file("config.json"),
                  ": text_config.max_position_embeddings ", c.text.max_position_embeddings,
                  " leaves no room for tokens");
    max_tokens_ = std::min(tokenizer_->max_length(), static_cast<std::size_t>(model_limit));
    info_.max_text_tokens = max_tokens_;
    const bool itc = model_.has_itc_heads();
    const PairOutput out = options.pair_output;
    info_.dim = static_cast<std::size_t>(
        out == PairOutput::kPooled                                    ? 2 * c.hidden_size
        : out == PairOutput::kTextCls || out == PairOutput::kImageCls ? c.hidden_size
        : itc ? c.contrastive_hidden_size.value_or(c.hidden_size)
              : 2 * c.hidden_size);
    info_.text = info_.image = itc;
    info_.pair = itc || out != PairOutput::kDefault;
    info_.match = model_.has_itm_head();
    if (info_.match)
      info_.match_features_shape = {c.num_hidden_layers, c.image_tokens(), c.hidden_size};
    if (!itc) {
      info_.unsupported_reason =
          "the checkpoint has no contrastive (ITC) heads (itc_text_head, itc_image_head, "
          "itc_cross_modal_head), so it has no text, image or joint (cross) embeddings; for "
          "image-text pairs it has BridgeTowerModel's outputs: pooled (pooler_output, " +
          std::to_string(2 * c.hidden_size) +
          "-d), text-cls and image-cls (the CLS rows of "
          "text_features and image_features, " +
          std::to_string(c.hidden_size) +
          "-d), e.g. 'mmembed embed --pair IMAGE TEXT --pair-output pooled'; or use a "
          "checkpoint with ITC heads, e.g. BridgeTower/bridgetower-large-itm-mlm-itc";
      if (!info_.match) info_.unsupported_reason += "; it has no ITM head (itm_score) either";
    } else if (!info_.match) {
      info_.unsupported_reason = "the checkpoint has no image-text matching head (itm_score)";
    }
  }

  const ModelInfo& info() const override { return info_; }

  std::unique_ptr<Prepared> prepare(InputKind kind, std::span<const Image> images,
                                    std::span<const std::string> texts) const override {
    auto p = std::make_unique<BridgeTowerInputs>();
    p->kind = kind;
    p->rows = kind == InputKind::kText ? texts.size() : images.size();
    if (kind != InputKind::kImage) p->tokens = tokenize(texts);
    if (kind != InputKind::kText) p->pixels = pixels(images);
    return p;
  }

  Embeddings run(const Prepared& prepared) const override {
    const auto* p = dynamic_cast<const BridgeTowerInputs*>(&prepared);
    MMEMBED_ASSERT(p != nullptr);
    Embeddings e;
    switch (p->kind) {
      case InputKind::kText:
        e = to_embeddings(model_.embed_text(p->tokens.ids, p->tokens.mask));
        break;
      case InputKind::kImage:
        e = to_embeddings(model_.embed_image(p->pixels));
        break;
      case InputKind::kPair:
        e = to_embeddings(options_.pair_output == PairOutput::kDefault
                              ? model_.embed_pair(p->tokens.ids, p->tokens.mask, p->pixels)
                              : trunk_output(p->tokens, p->pixels));
        break;
    }
    if (p->kind != InputKind::kImage) e.truncated_tokens = p->tokens.truncated;
    return e;
  }

  Embeddings embed_texts(std::span<const std::string> texts) const override {
    return run(*prepare(InputKind::kText, {}, texts));
  }
  Embeddings embed_images(std::span<const Image> images) const override {
    return run(*prepare(InputKind::kImage, images, {}));
  }
  Embeddings embed_pairs(std::span<const Image> images,
                         std::span<const std::string> texts) const override {
    return run(*prepare(InputKind::kPair, images, texts));
  }

  std::vector<MatchScore> match(std::span<const Image> images,
                                std::span<const std::string> texts) const override {
    TokenBatch t = tokenize(texts);
    bt::RunOptions options;
    options.pooled_only = true;  // ITM logits and the ITC embeddings read pooled rows only
    const bt::JointOutput out = model_.forward(t.ids, t.mask, pixels(images), options);
    MMEMBED_ASSERT(out.itm_logits && out.itm_match_probability);
    std::vector<MatchScore> scores(texts.size());
    const float* logits = out.itm_logits->data<float>();
    const float* prob = out.itm_match_probability->data<float>();
    for (std::size_t i = 0; i < scores.size(); ++i) {
      MatchScore& s = scores[i];
      s.logit_no_match = logits[2 * i];
      s.logit_match = logits[2 * i + 1];
      s.probability = prob[i];
      s.truncated_tokens = t.truncated[i];
      if (out.text_embeds && out.image_embeds) {
        const std::int64_t C = out.text_embeds->dim(1);
        s.cosine = cosine(out.text_embeds->data<float>() + i * C,
                          out.image_embeds->data<float>() + i * C, C);
      }
    }
    return scores;
  }

  std::vector<ImageMatchFeatures> image_match_features(
      std::span<const Image> images) const override {
    const Tensor bridges = model_.image_bridges(pixels(images));
    const std::size_t per = static_cast<std::size_t>(bridges.numel() / bridges.dim(0));
    std::vector<ImageMatchFeatures> out(images.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
      out[i].shape = info_.match_features_shape;
      const float* src = bridges.data<float>() + i * per;
      out[i].data.assign(src, src + per);
    }
    return out;
  }

  // The text tower once (and, for the cosine, its ITC embedding), then the cross-modal layers
  // per batch of images with the text's bridges broadcast.
  std::vector<MatchScore> match_text(const std::string& text,
                                     std::span<const ImageMatchFeatures> images) const override {
    const TokenBatch t = tokenize({&text, 1});
    const Tensor text_bridges = model_.text_bridges(t.ids, t.mask);
    std::optional<Tensor> text_embeds;
    if (model_.has_itc_heads()) text_embeds = model_.embed_text(t.ids, t.mask);
    std::vector<std::int64_t> shape = {0};
    shape.insert(shape.end(), info_.match_features_shape.begin(), info_.match_features_shape.end());
    const std::size_t per = images[0].data.size();
    bt::RunOptions options;
    options.pooled_only = true;
    std::vector<MatchScore> scores(images.size());
    for (std::size_t i0 = 0; i0 < images.size(); i0 += options_.batch_size) {
      const std::size_t n = std::min(options_.batch_size, images.size() - i0);
      shape[0] = static_cast<std::int64_t>(n);
      Tensor batch = Tensor::empty(DType::F32, shape);
      for (std::size_t i = 0; i < n; ++i) {
        std::copy_n(images[i0 + i].data.data(), per, batch.data<float>() + i * per);
      }
      const bt::JointOutput out = model_.forward_bridges(text_bridges, t.mask, batch, options);
      MMEMBED_ASSERT(out.itm_logits && out.itm_match_probability);
      for (std::size_t i = 0; i < n; ++i) {
        MatchScore& s = scores[i0 + i];
        s.logit_no_match = out.itm_logits->data<float>()[2 * i];
        s.logit_match = out.itm_logits->data<float>()[2 * i + 1];
        s.probability = out.itm_match_probability->data<float>()[i];
        s.truncated_tokens = t.truncated[0];
        if (text_embeds && out.image_embeds) {
          s.cosine = cosine(text_embeds->data<float>(),
                            out.image_embeds->data<float>() + i * out.image_embeds->dim(1),
                            out.image_embeds->dim(1));
        }
      }
    }
    return scores;
  }

 private:
  // BridgeTowerModel's pooler_output, or the CLS row of its text / image features [B, H].
  Tensor trunk_output(const TokenBatch& tokens, const Tensor& pixels) const {
    bt::RunOptions ro;
    ro.pooled_only = true;  // the pooler and the CLS rows read token 0 only
    const bt::JointOutput out = model_.forward(tokens.ids, tokens.mask, pixels, ro);
    if (options_.pair_output == PairOutput::kPooled) return out.pooler_output;
    const Tensor& f =
        options_.pair_output == PairOutput::kTextCls ? out.text_features : out.image_features;
    const std::int64_t B = f.dim(0), T = f.dim(1), H = f.dim(2);
    Tensor cls = Tensor::empty(DType::F32, {B, H});
    for (std::int64_t b = 0; b < B; ++b)
      std::copy_n(f.data<float>() + b * T * H, H, cls.data<float>() + b * H);
    return cls;
  }

  static vision::ImageProcessorOptions processor_options(const ModelFolder& folder,
                                                         ImageBackend backend) {
    const std::string path = folder.file("preprocessor_config.json");
    MMEMBED_CHECK(folder.has_file("preprocessor_config.json"), IoError, folder.dir,
                  ": no preprocessor_config.json (the image processor's settings)");
    // The bridgetower-base Hub file has no image_processor_type: it is BridgeTower's.
    const vision::ProcessorKind fallback = vision::ProcessorKind::BridgeTower;
    vision::ImageProcessorOptions o =
        vision::ImageProcessorOptions::from_json_file(path, &fallback);
    MMEMBED_CHECK(o.kind == vision::ProcessorKind::BridgeTower, Unsupported, path,
                  ": a BridgeTower model needs BridgeTowerImageProcessor settings");
    o.backend = to_vision_backend(backend);
    return o;
  }

  TokenBatch tokenize(std::span<const std::string> texts) const {
    return tokenize_batch(*tokenizer_, texts, max_tokens_, options_.text_overflow);
  }

  Tensor pixels(std::span<const Image> images) const {
    return preprocess_images(processor_, images);
  }

  EmbedderOptions options_;
  bt::BridgeTower model_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  vision::ImageProcessor processor_;
  ModelInfo info_;
  std::size_t max_tokens_ = 0;
};

}  // namespace

std::unique_ptr<ModelAdapter> make_bridgetower_adapter(const ModelFolder& folder,
                                                       const EmbedderOptions& options) {
  return std::make_unique<BridgeTowerAdapter>(folder, options);
}

}  // namespace mmembed::embed
