// CLIP (Hugging Face transformers 4.44 `CLIPModel`, and its one-tower classes
// `CLIPTextModelWithProjection` / `CLIPVisionModelWithProjection`): a pre-LN ViT vision tower and
// a causal pre-LN text transformer, each projected (bias-free) into a shared space. Covers the
// OpenAI checkpoints (clip-vit-base-patch32/-patch16, clip-vit-large-patch14: quick_gelu, legacy
// eos_token_id 2) and OpenCLIP checkpoints converted to the HF layout (gelu, eos_token_id 49407).
// Dataflow and stage names: docs/models/clip.md. Numerics: docs/numerics.md.
//
//   auto model = models::clip::ClipModel::load("clip-vit-base-patch32/");
//   Tensor t = model.text_features(input_ids, attention_mask);   // [B, E], not normalised
//   Tensor i = model.image_features(pixel_values);                // [B, E], not normalised
//   auto out = model.forward(input_ids, attention_mask, pixel_values);
//   // out.text_embeds / out.image_embeds: L2-normalised; out.logits_per_image [Bi, Bt]
//
// Inputs (as CLIPProcessor produces them):
//  - input_ids [B, L] i64 (or i32), L <= text_config.max_position_embeddings (77);
//  - attention_mask [B, L] (i64, i32, u8, bool or f32; nonzero = real token) or none. With the
//    causal mask and right padding it never changes the pooled row; it is applied as HF does;
//  - pixel_values [B, num_channels, image_size, image_size] f32, normalised.
// The pooled text row (the EOS rule, as transformers 4.44): when text_config.eos_token_id == 2
// (the legacy OpenAI configs) the first position of the row's largest id (argmax; 49407 is the
// largest id of the OpenAI vocabulary); otherwise the first position whose id equals
// eos_token_id (position 0 when the row has none, as the reference's argmax over a zero row).
//
// Errors: InvalidArgument for bad inputs (naming the shape or the offending id), FormatError /
// ShapeError listing every missing or misshaped tensor at load time, Unsupported for a call
// whose tower the checkpoint lacks.
//
// Thread safety: a ClipModel is immutable after construction (copies share the weights); every
// const method may run concurrently from several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "io/weight_map.h"

namespace mmembed::models::clip {

// ---- configuration (config.json); defaults are the reference's class defaults ----

struct TextConfig {
  std::int64_t vocab_size = 49408;
  std::int64_t hidden_size = 512;
  std::int64_t intermediate_size = 2048;
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_attention_heads = 8;
  std::int64_t max_position_embeddings = 77;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;
  std::int64_t pad_token_id = 1;
  std::int64_t bos_token_id = 49406;
  std::int64_t eos_token_id = 49407;
};

struct VisionConfig {
  std::int64_t hidden_size = 768;
  std::int64_t intermediate_size = 3072;
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_attention_heads = 12;
  std::int64_t num_channels = 3;
  std::int64_t image_size = 224;
  std::int64_t patch_size = 32;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;
};

struct Config {
  TextConfig text;
  VisionConfig vision;
  std::int64_t projection_dim = 512;  // E (CLIPModel builds both projections with this width)
  double logit_scale_init_value = 2.6592;

  // Reads a parsed config.json (model_type "clip"). Each sub-config is the class defaults, then
  // `text_config` / `vision_config`, then the legacy `text_config_dict` / `vision_config_dict`
  // (which win, as in CLIPConfig). Absent keys take the defaults; a key of the wrong type is a
  // FormatError naming it; sizes that do not fit are InvalidArgument, an unknown activation
  // Unsupported.
  static Config parse(const io::ConfigReader& config);
  static Config from_file(const std::string& config_json_path);

  std::int64_t grid() const { return vision.image_size / vision.patch_size; }
  std::int64_t image_tokens() const { return grid() * grid() + 1; }  // CLS + patches
  // True for the legacy argmax pooling rule (text_config.eos_token_id == 2).
  bool legacy_eos_rule() const { return text.eos_token_id == 2; }
};

// ---- running ----

// Called with every named intermediate (docs/models/clip.md: "text/embeddings", "text/layer_3",
// "text/final_layer_norm", "eos_pool_index" (i64), "text_pooler_output", "text_features",
// "vision/embeddings", "vision/pre_layrnorm", "vision/layer_0", "vision/post_layernorm",
// "vision_pooler_output", "image_features", "text_embeds", "image_embeds", "logits_per_image",
// "logits_per_text"). The tensor is only valid during the call: copy it to keep it.
using StageHook = std::function<void(const std::string& name, const Tensor& value)>;

struct RunOptions {
  // Debug switch. When empty and the environment variable MMEMBED_DUMP is set, every stage's
  // name, shape, min, max and mean are printed to stderr.
  StageHook on_stage;
};

struct TextOutput {
  Tensor last_hidden_state;  // [B, L, Dt] after final_layer_norm
  Tensor pooler_output;      // [B, Dt] the EOS rows
  Tensor pool_index;         // [B] i64, the pooled position per row
  Tensor features;           // [B, E] text_projection(pooler_output), not normalised
};

struct VisionOutput {
  Tensor last_hidden_state;  // [B, N+1, Dv] encoder output (not post-normed, as HF)
  Tensor pooler_output;      // [B, Dv] post_layernorm(last_hidden_state[:, 0])
  Tensor features;           // [B, E] visual_projection(pooler_output), not normalised
};

struct ClipOutput {
  TextOutput text;
  VisionOutput vision;
  Tensor text_embeds;       // [Bt, E] L2-normalised
  Tensor image_embeds;      // [Bi, E] L2-normalised
  Tensor logits_per_image;  // [Bi, Bt] exp(logit_scale) * image_embeds @ text_embeds^T
  Tensor logits_per_text;   // [Bt, Bi] its transpose
};

class ClipModel {
 public:
  // A model folder: config.json plus the weights open_checkpoint picks there.
  static ClipModel load(const std::string& model_dir, const io::LoadOptions& options = {});
  // An explicit config.json and weights file (safetensors, pytorch_model.bin, shard index).
  static ClipModel load(const std::string& config_json_path, const std::string& weights_path,
                        const io::LoadOptions& options = {});

  // Binds the checkpoint and throws one FormatError / ShapeError listing every missing or
  // misshaped tensor. A tower (text_model.* + text_projection, vision_model.* +
  // visual_projection) is bound when the checkpoint has any of its tensors, so the one-tower
  // checkpoints load too; a checkpoint with neither is a FormatError. logit_scale is optional
  // (absent in one-tower checkpoints; then config.logit_scale_init_value is used).
  ClipModel(const Config& config, const io::Checkpoint& checkpoint,
            const io::LoadOptions& options = {});

  const Config& config() const;
  bool has_text_tower() const;
  bool has_vision_tower() const;
  // The stored logit_scale parameter (log space); similarities are scaled by its exp().
  float logit_scale() const;
  bool has_logit_scale() const;
  // Checkpoint tensors the model does not read (leftovers; worth a warning).
  const std::vector<std::string>& unused_weights() const;

  // The pooled position of every row of `input_ids` under the config's EOS rule ([B] i64).
  Tensor pool_positions(const Tensor& input_ids) const;

  // CLIPTextTransformer + text_projection. Unsupported without the text tower.
  TextOutput encode_text(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                         const RunOptions& options = {}) const;
  // CLIPVisionTransformer + visual_projection. Unsupported without the vision tower.
  VisionOutput encode_image(const Tensor& pixel_values, const RunOptions& options = {}) const;

  // get_text_features / get_image_features: projected, NOT normalised ([B, E]).
  // image_features runs the last vision layer on the class token's row only (the row that is
  // pooled; equal to encode_image().features within 1e-6), unless stages are requested.
  Tensor text_features(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                       const RunOptions& options = {}) const;
  Tensor image_features(const Tensor& pixel_values, const RunOptions& options = {}) const;

  // CLIPModel.forward: both towers, normalised embeddings, logits (any Bt, Bi).
  ClipOutput forward(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                     const Tensor& pixel_values, const RunOptions& options = {}) const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

// exp(logit_scale) * a @ b^T for row-normalised a [Na, E] and b [Nb, E] -> [Na, Nb].
Tensor scaled_cosine_logits(const Tensor& a_normalised, const Tensor& b_normalised,
                            float logit_scale);

}  // namespace mmembed::models::clip
