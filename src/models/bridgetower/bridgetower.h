// BridgeTower (Hugging Face transformers 4.44 `BridgeTowerModel` and its three head classes):
// a RoBERTa text tower and a CLIP ViT vision tower whose top layers feed, through "bridge" (link)
// layers, a two-stream cross-modal encoder. Dataflow, stage names and which tensor feeds which
// head: docs/models/bridgetower.md. Numerics: docs/numerics.md.
//
//   auto model = models::bridgetower::BridgeTower::load("bridgetower-large-itm-mlm-itc/");
//   Tensor t = model.embed_text(input_ids, attention_mask);      // [B, C], text tower only
//   Tensor i = model.embed_image(pixel_values);                  // [B, C], vision tower only
//   auto out = model.forward(input_ids, attention_mask, pixel_values);
//   // out.cross_embeds [B, C], out.itm_logits [B, 2], out.itm_match_probability [B] ...
//
// Inputs (as the HF processor produces them):
//  - input_ids [B, Nt] i64 (or i32): RoBERTa ids, right-padded with text_config.pad_token_id;
//    positions are derived from the ids (pad id -> padding position), as in HF;
//  - attention_mask [B, Nt] (i64, i32, u8, bool or f32; nonzero = real token), or none (all ones);
//  - pixel_values [B, num_channels, image_size, image_size] f32, normalised. The pixel mask of
//    the processor is not an input: the reference ignores it (every image token is attended).
// Outputs are owned f32 tensors. Errors: InvalidArgument for bad inputs (naming the shape or the
// offending id), Unsupported for a head the checkpoint lacks or a config variant HF cannot run.
//
// Thread safety: a BridgeTower is immutable after construction (copies share the weights); every
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

namespace mmembed::models::bridgetower {

// ---- configuration (config.json); defaults are the reference's class defaults ----

struct TextConfig {  // text_config: RoBERTa; also the shape of every cross-modal layer
  std::int64_t vocab_size = 50265;
  std::int64_t hidden_size = 768;
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_attention_heads = 12;
  std::int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";
  std::int64_t max_position_embeddings = 514;
  std::int64_t type_vocab_size = 1;
  double layer_norm_eps = 1e-5;
  std::int64_t pad_token_id = 1;
};

struct VisionConfig {  // vision_config: CLIP ViT (heads = hidden_size / 64, MLP 4 x hidden_size)
  std::int64_t hidden_size = 768;
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_channels = 3;
  std::int64_t patch_size = 16;
  std::int64_t image_size = 288;
  double layer_norm_eps = 1e-5;
  bool share_layernorm = true;     // false: per-layer ln_separate exist but BridgeTowerModel
                                   // still uses ln_post (as the reference); they are ignored
  bool remove_last_layer = false;  // one block fewer
};

struct Config {
  TextConfig text;
  VisionConfig vision;
  std::int64_t hidden_size = 768;      // H: cross-modal width
  std::int64_t num_hidden_layers = 6;  // cross-modal layers per stream (= bridged top layers)
  std::string hidden_act = "gelu";     // MLM head transform
  double layer_norm_eps = 1e-5;        // cross-modal LayerNorms, link towers, MLM head
  bool share_cross_modal_transformer_layers = true;
  bool share_link_tower_layers = false;
  std::string link_tower_type = "add";                  // add | scaled_add | interpolate
  std::optional<std::int64_t> contrastive_hidden_size;  // ITC width (extra key, large-itc only)

  // Reads a parsed config.json. Absent keys take the reference defaults; a key of the wrong type
  // is a FormatError naming it; variants the reference cannot run (shared link towers with more
  // than one cross-modal layer, unshared transforms, widths that do not fit) are Unsupported /
  // InvalidArgument naming the keys.
  static Config parse(const io::ConfigReader& config);
  static Config from_file(const std::string& config_json_path);

  // Uni-modal layers run before cross layer 0: Lt - num_hidden_layers + 1 (reference's split).
  std::int64_t split_index() const { return text.num_hidden_layers - num_hidden_layers + 1; }
  std::int64_t vision_num_heads() const { return vision.hidden_size / 64; }
  std::int64_t vision_blocks() const {
    return vision.num_hidden_layers - (vision.remove_last_layer ? 1 : 0);
  }
  std::int64_t grid() const { return vision.image_size / vision.patch_size; }
  std::int64_t image_tokens() const { return grid() * grid() + 1; }  // Ni (CLS + patches)
};

// ---- running ----

// Called with every named intermediate (names in docs/models/bridgetower.md, e.g.
// "text/layer_3", "vision/ln_post/call_0", "cross/image_link_2", "itc/cross_embeds"). The
// tensor is only valid during the call (buffers are reused): copy it to keep it.
using StageHook = std::function<void(const std::string& name, const Tensor& value)>;

struct RunOptions {
  // Debug switch. When empty and the environment variable MMEMBED_DUMP is set, every stage's
  // name, shape, min, max and mean are printed to stderr.
  StageHook on_stage;
  // forward() also computes the MLM logits [B, Nt, vocab] (needs the MLM head).
  bool mlm_logits = false;
  // Only the pooled outputs and the heads are needed (cross_embeds, ITM): the last cross-modal
  // layer then runs on each stream's token 0 alone, and text_features / image_features hold that
  // row only ([B, 1, H]). Ignored when mlm_logits is set or stages are reported.
  bool pooled_only = false;
};

struct JointOutput {
  // The last cross layer's streams: [B, Nt, H] and [B, Ni, H] ([B, 1, H] with pooled_only).
  Tensor text_features;
  Tensor image_features;
  Tensor pooler_output;  // [B, 2H] concat(text pool, image pool), not normalised
  // Heads, present when the checkpoint has them:
  std::optional<Tensor> itm_logits;             // [B, 2], index 1 = match
  std::optional<Tensor> itm_match_probability;  // [B], softmax(itm_logits)[:, 1]
  std::optional<Tensor> text_embeds;            // [B, C] ITC text (text tower only)
  std::optional<Tensor> image_embeds;           // [B, C] ITC image (vision tower only)
  std::optional<Tensor> cross_embeds;           // [B, C] ITC joint
  std::optional<Tensor> mlm_logits;             // [B, Nt, vocab] when RunOptions::mlm_logits
};

class BridgeTower {
 public:
  // A model folder: config.json plus the weights open_checkpoint picks there.
  static BridgeTower load(const std::string& model_dir, const io::LoadOptions& options = {});
  // An explicit config.json and weights file (safetensors, pytorch_model.bin, shard index).
  static BridgeTower load(const std::string& config_json_path, const std::string& weights_path,
                          const io::LoadOptions& options = {});

  // Binds the checkpoint (trunk keys with or without the `bridgetower.` prefix that head classes
  // write) and throws one FormatError / ShapeError listing every missing, ambiguous or misshaped
  // tensor. Heads (ITM `itm_score.*`, ITC `itc_*` + `logit_scale`, MLM `mlm_score.*`) are
  // optional, each found by the presence of its tensors; a partial head is reported as missing
  // tensors.
  BridgeTower(const Config& config, const io::Checkpoint& checkpoint,
              const io::LoadOptions& options = {});

  const Config& config() const;
  bool has_itc_heads() const;
  bool has_itm_head() const;
  bool has_mlm_head() const;
  // The stored ITC `logit_scale` parameter (similarities are scaled by its exp()), when present.
  std::optional<float> logit_scale() const;
  // Checkpoint tensors the model does not read (leftovers; worth a warning).
  const std::vector<std::string>& unused_weights() const;

  // The whole graph (BridgeTowerModel + every head the checkpoint has).
  JointOutput forward(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                      const Tensor& pixel_values, const RunOptions& options = {}) const;

  // ITC text embedding [B, C], L2-normalised: the text tower alone (all RoBERTa layers), CLS row,
  // itc_text_head. Equals the reference's text_embeds, which never depend on the image.
  // Unsupported when the checkpoint has no ITC heads.
  Tensor embed_text(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                    const RunOptions& options = {}) const;
  // ITC image embedding [B, C], L2-normalised: the vision tower alone (the blocks the reference
  // runs), ln_post, cross_modal_image_transform and token type 1 on the CLS row,
  // itc_image_head. Unsupported when the checkpoint has no ITC heads.
  Tensor embed_image(const Tensor& pixel_values, const RunOptions& options = {}) const;
  // ITC joint embedding of image-caption pairs [B, C] (cross_embeds). Unsupported without ITC.
  Tensor embed_pair(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                    const Tensor& pixel_values, const RunOptions& options = {}) const;

  // forward() in two halves, for matching one text with many images whose towers ran once
  // (re-ranking with cached image features). Bridge k (k = 0 .. num_hidden_layers - 1) is what
  // cross-modal layer k takes from each tower before its link tower:
  //   text_bridges  [B, K, Nt, H]: cross_modal_text_transform(text layer split - 1 + k) + tt0;
  //   image_bridges [B, K, Ni, H]: cross_modal_image_transform(ln_post(vision block
  //                  split - 1 + k)) + tt1.
  // forward_bridges() runs the rest (cross-modal layers, poolers, heads) and equals forward()
  // on the same inputs, except that text_embeds is absent (it reads the text tower's last layer
  // itself; embed_text gives it) and MLM logits are refused. The text bridges may hold one row
  // for every image (its attention mask [1, Nt] then too).
  Tensor text_bridges(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                      const RunOptions& options = {}) const;
  Tensor image_bridges(const Tensor& pixel_values, const RunOptions& options = {}) const;
  JointOutput forward_bridges(const Tensor& text_bridges,
                              const std::optional<Tensor>& attention_mask,
                              const Tensor& image_bridges, const RunOptions& options = {}) const;

  // The towers alone, without the ITC heads (so also for trunk-only checkpoints such as
  // bridgetower-base): what embed_text / embed_image feed their heads.
  // [B, Ht]: the last RoBERTa layer's output at token 0.
  Tensor text_cls_features(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                           const RunOptions& options = {}) const;
  // [B, H]: cross_modal_image_transform(ln_post(last vision block run))[token 0] + token type 1.
  Tensor image_cls_features(const Tensor& pixel_values, const RunOptions& options = {}) const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace mmembed::models::bridgetower
