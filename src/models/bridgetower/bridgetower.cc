// BridgeTower, top to bottom: configuration, weights, the two towers, the bridges and the
// cross-modal encoder, the heads. Section numbers (§) refer to the spec
// (/work/shared/spec/bridgetower.md); the reference is transformers 4.44.2 modeling_bridgetower.
#include "models/bridgetower/bridgetower.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "io/weight_map.h"
#include "nn/layers.h"
#include "ops/ops.h"

namespace mmembed::models::bridgetower {

using nn::join;

// =============================================================================================
// Configuration
// =============================================================================================

Config Config::parse(const io::ConfigReader& cfg) {
  Config c;
  const std::string src = cfg.source();
  if (auto type = cfg.get<std::string>("model_type")) {
    MMEMBED_CHECK(*type == "bridgetower", InvalidArgument, src, ": model_type is '", *type,
                  "', expected 'bridgetower'");
  }
  c.hidden_size = cfg.optional<std::int64_t>("hidden_size", c.hidden_size);
  c.num_hidden_layers = cfg.optional<std::int64_t>("num_hidden_layers", c.num_hidden_layers);
  c.hidden_act = cfg.optional<std::string>("hidden_act", c.hidden_act);
  c.layer_norm_eps = cfg.optional<double>("layer_norm_eps", c.layer_norm_eps);
  c.share_cross_modal_transformer_layers = cfg.optional<bool>(
      "share_cross_modal_transformer_layers", c.share_cross_modal_transformer_layers);
  c.share_link_tower_layers =
      cfg.optional<bool>("share_link_tower_layers", c.share_link_tower_layers);
  c.link_tower_type = cfg.optional<std::string>("link_tower_type", c.link_tower_type);
  c.contrastive_hidden_size = cfg.get<std::int64_t>("contrastive_hidden_size");

  // The reference fills an absent text_config / vision_config with the class defaults.
  if (std::optional<io::ConfigReader> t = cfg.optional_object("text_config")) {
    TextConfig& x = c.text;
    x.vocab_size = t->optional<std::int64_t>("vocab_size", x.vocab_size);
    x.hidden_size = t->optional<std::int64_t>("hidden_size", x.hidden_size);
    x.num_hidden_layers = t->optional<std::int64_t>("num_hidden_layers", x.num_hidden_layers);
    x.num_attention_heads = t->optional<std::int64_t>("num_attention_heads", x.num_attention_heads);
    x.intermediate_size = t->optional<std::int64_t>("intermediate_size", x.intermediate_size);
    x.hidden_act = t->optional<std::string>("hidden_act", x.hidden_act);
    x.max_position_embeddings =
        t->optional<std::int64_t>("max_position_embeddings", x.max_position_embeddings);
    x.type_vocab_size = t->optional<std::int64_t>("type_vocab_size", x.type_vocab_size);
    x.layer_norm_eps = t->optional<double>("layer_norm_eps", x.layer_norm_eps);
    x.pad_token_id = t->optional<std::int64_t>("pad_token_id", x.pad_token_id);
    if (auto pe = t->get<std::string>("position_embedding_type")) {
      MMEMBED_CHECK(*pe == "absolute", Unsupported, src, ": text_config.position_embedding_type '",
                    *pe, "' is not supported (only 'absolute')");
    }
  }
  if (std::optional<io::ConfigReader> v = cfg.optional_object("vision_config")) {
    VisionConfig& x = c.vision;
    x.hidden_size = v->optional<std::int64_t>("hidden_size", x.hidden_size);
    x.num_hidden_layers = v->optional<std::int64_t>("num_hidden_layers", x.num_hidden_layers);
    x.num_channels = v->optional<std::int64_t>("num_channels", x.num_channels);
    x.patch_size = v->optional<std::int64_t>("patch_size", x.patch_size);
    x.image_size = v->optional<std::int64_t>("image_size", x.image_size);
    x.layer_norm_eps = v->optional<double>("layer_norm_eps", x.layer_norm_eps);
    x.share_layernorm = v->optional<bool>("share_layernorm", x.share_layernorm);
    x.remove_last_layer = v->optional<bool>("remove_last_layer", x.remove_last_layer);
  }

  // Variants the reference's forward cannot run, and sizes that do not fit together.
  MMEMBED_CHECK(c.share_cross_modal_transformer_layers, Unsupported, src,
                ": share_cross_modal_transformer_layers = false is not supported (the reference's "
                "forward calls the per-layer transform list as one module)");
  // Shared link towers: the reference builds one tower per side and its forward indexes it like
  // a list, which fails once a link tower is called, i.e. from 2 cross-modal layers on. With one
  // layer none is called and the reference runs: so do we (its towers are checked, never used).
  MMEMBED_CHECK(!c.share_link_tower_layers || c.num_hidden_layers == 1, Unsupported, src,
                ": share_link_tower_layers = true with num_hidden_layers = ", c.num_hidden_layers,
                " is not supported (the reference's forward indexes the single shared link tower "
                "and fails; it runs only with 1 cross-modal layer, where no link tower is used)");
  MMEMBED_CHECK(c.link_tower_type == "add" || c.link_tower_type == "scaled_add" ||
                    c.link_tower_type == "interpolate",
                Unsupported, src, ": link_tower_type '", c.link_tower_type,
                "' is not supported (add, scaled_add, interpolate)");
  const TextConfig& t = c.text;
  const VisionConfig& v = c.vision;
  MMEMBED_CHECK(c.num_hidden_layers >= 1 && c.num_hidden_layers <= t.num_hidden_layers,
                InvalidArgument, src, ": num_hidden_layers (", c.num_hidden_layers,
                " cross-modal layers) must be in [1, text_config.num_hidden_layers = ",
                t.num_hidden_layers, "]");
  MMEMBED_CHECK(c.vision_blocks() >= t.num_hidden_layers, InvalidArgument, src,
                ": the vision tower has ", c.vision_blocks(), " blocks but the reference runs ",
                t.num_hidden_layers, " (text_config.num_hidden_layers) of them");
  MMEMBED_CHECK(c.hidden_size == t.hidden_size, Unsupported, src, ": hidden_size (", c.hidden_size,
                ") differs from text_config.hidden_size (", t.hidden_size,
                "); the cross-modal layers are built from text_config in the reference");
  MMEMBED_CHECK(t.num_attention_heads > 0 && t.hidden_size % t.num_attention_heads == 0,
                InvalidArgument, src, ": text_config.hidden_size ", t.hidden_size,
                " is not a multiple of text_config.num_attention_heads ", t.num_attention_heads);
  MMEMBED_CHECK(v.hidden_size >= 64 && v.hidden_size % (v.hidden_size / 64) == 0, Unsupported, src,
                ": vision_config.hidden_size ", v.hidden_size,
                " does not split into hidden_size / 64 heads (the reference's ViT head count)");
  MMEMBED_CHECK(v.patch_size > 0 && v.image_size >= v.patch_size, InvalidArgument, src,
                ": vision_config.image_size ", v.image_size, " and patch_size ", v.patch_size,
                " give no patch");
  MMEMBED_CHECK(t.pad_token_id >= 0 && t.pad_token_id + 1 < t.max_position_embeddings,
                InvalidArgument, src, ": text_config.pad_token_id ", t.pad_token_id,
                " leaves no position below max_position_embeddings ", t.max_position_embeddings);
  nn::parse_activation(t.hidden_act, src + ": text_config.hidden_act");
  nn::parse_activation(c.hidden_act, src + ": hidden_act");
  return c;
}

Config Config::from_file(const std::string& path) {
  return parse(io::ConfigReader::from_file(path));
}

// =============================================================================================
// Weights (§4): names are BridgeTowerModel's; head classes write trunk keys as "bridgetower.*"
// =============================================================================================

namespace {

const char* const kItcHeads[] = {"itc_text_head", "itc_image_head", "itc_cross_modal_head"};

// Which optional heads the checkpoint holds (any tensor of the head counts: a partial head is
// then reported as missing tensors by bind_weights).
struct Heads {
  bool itm = false, itc = false, mlm = false;
};

bool starts_with(const std::string& s, const std::string& p) {
  return s.rfind(p, 0) == 0;
}

Heads find_heads(const io::Checkpoint& ckpt) {
  Heads h;
  for (const io::TensorInfo& t : ckpt.tensors()) {
    if (starts_with(t.name, "itm_score.")) h.itm = true;
    if (starts_with(t.name, "mlm_score.")) h.mlm = true;
    for (const char* head : kItcHeads) {
      if (starts_with(t.name, std::string(head) + ".")) h.itc = true;
    }
  }
  return h;
}

io::NameMap name_map() {
  io::NameMap names;
  // Tensors the reference keeps but never uses in BridgeTowerModel.forward, and old buffers.
  for (const char* p : {"", "bridgetower."}) {
    names.ignore(str_cat(p, "text_model.pooler."))
        .ignore(str_cat(p, "text_model.embeddings.position_ids"))
        .ignore(str_cat(p, "text_model.embeddings.token_type_ids"))
        .ignore(str_cat(p, "vision_model.visual.embeddings.position_ids"))
        .ignore(str_cat(p, "vision_model.visual.ln_separate."));
  }
  names.rename_prefix("bridgetower.", "");
  return names;
}

nn::BertDims text_dims(const Config& c) {
  return {c.text.hidden_size, c.text.num_attention_heads, c.text.intermediate_size};
}

nn::PreLnBlockDims vision_dims(const Config& c) {
  return {c.vision.hidden_size, c.vision_num_heads(), 4 * c.vision.hidden_size};
}

std::string text_layer(std::int64_t i) {
  return str_cat("text_model.encoder.layer.", i);
}
std::string vision_block(std::int64_t i) {
  return str_cat("vision_model.visual.transformer.resblocks.", i);
}
const char* const kVisual = "vision_model.visual";

nn::WeightList expected_weights(const Config& c, const Heads& heads) {
  const std::int64_t H = c.hidden_size, Ht = c.text.hidden_size, Hv = c.vision.hidden_size;
  const std::int64_t P = c.vision.patch_size;
  nn::WeightList w;
  // Text tower (RoBERTa).
  nn::Embedding::expect(w, "text_model.embeddings.word_embeddings", c.text.vocab_size, Ht);
  nn::Embedding::expect(w, "text_model.embeddings.position_embeddings",
                        c.text.max_position_embeddings, Ht);
  nn::Embedding::expect(w, "text_model.embeddings.token_type_embeddings", c.text.type_vocab_size,
                        Ht);
  nn::LayerNorm::expect(w, "text_model.embeddings.LayerNorm", Ht);
  for (std::int64_t i = 0; i < c.text.num_hidden_layers; ++i) {
    nn::BertLayer::expect(w, text_layer(i), text_dims(c));
  }
  // Vision tower (CLIP ViT). Every block is bound, even those past the text depth that the
  // reference never runs, so that they are not reported as unused.
  w.push_back({join(kVisual, "embeddings.class_embedding"), {Hv}});
  w.push_back(
      {join(kVisual, "embeddings.patch_embedding.weight"), {Hv, c.vision.num_channels, P, P}});
  nn::Embedding::expect(w, join(kVisual, "embeddings.position_embedding"), c.image_tokens(), Hv);
  nn::LayerNorm::expect(w, join(kVisual, "ln_pre"), Hv);
  nn::LayerNorm::expect(w, join(kVisual, "ln_post"), Hv);
  for (std::int64_t i = 0; i < c.vision_blocks(); ++i) {
    nn::PreLnBlock::expect(w, vision_block(i), vision_dims(c), nn::PreLnBlockNames::openai_clip());
  }
  // Bridges and the cross-modal encoder.
  nn::Linear::expect(w, "cross_modal_text_transform", Ht, H);
  nn::Linear::expect(w, "cross_modal_image_transform", Hv, H);
  nn::Embedding::expect(w, "token_type_embeddings", 2, H);
  nn::LayerNorm::expect(w, "cross_modal_text_layernorm", H);
  nn::LayerNorm::expect(w, "cross_modal_image_layernorm", H);
  for (std::int64_t k = 0; k < c.num_hidden_layers; ++k) {
    nn::BertCrossLayer::expect(w, str_cat("cross_modal_text_layers.", k), text_dims(c));
    nn::BertCrossLayer::expect(w, str_cat("cross_modal_image_layers.", k), text_dims(c));
  }
  // One tower per side and cross layer after the first, or one per side when shared (then the
  // forward never calls it: Config::parse allows sharing with one cross layer only).
  const std::int64_t towers = c.share_link_tower_layers ? 1 : c.num_hidden_layers - 1;
  for (std::int64_t j = 0; j < towers; ++j) {
    for (const char* side : {"text", "image"}) {
      std::string p = c.share_link_tower_layers ? str_cat("cross_modal_", side, "_link_tower")
                                                : str_cat("cross_modal_", side, "_link_tower.", j);
      nn::LayerNorm::expect(w, join(p, "LayerNorm"), H);
      if (c.link_tower_type == "scaled_add") w.push_back({join(p, "scaled_factor"), {}});
      if (c.link_tower_type == "interpolate") w.push_back({join(p, "beta"), {}});
    }
  }
  nn::Linear::expect(w, "cross_modal_text_pooler.dense", H, H);
  nn::Linear::expect(w, "cross_modal_image_pooler.dense", H, H);
  // Heads.
  if (heads.itm) nn::Linear::expect(w, "itm_score.fc", 2 * H, 2);
  if (heads.itc) {
    const std::int64_t C = c.contrastive_hidden_size.value_or(-1);
    nn::Linear::expect(w, "itc_text_head.fc", H, C);
    nn::Linear::expect(w, "itc_image_head.fc", H, C);
    nn::Linear::expect(w, "itc_cross_modal_head.fc", 2 * H, C);
    w.push_back({"logit_scale", {}, /*required=*/false});
  }
  if (heads.mlm) {
    nn::Linear::expect(w, "mlm_score.transform.dense", H, H);
    nn::LayerNorm::expect(w, "mlm_score.transform.LayerNorm", H);
    nn::Linear::expect(w, "mlm_score.decoder", H, c.text.vocab_size, /*bias=*/false);
    w.push_back({"mlm_score.bias", {c.text.vocab_size}});
  }
  return w;
}

float scalar(const io::BoundWeights& w, const std::string& name) {
  return w.get_f32(name).data<float>()[0];
}

}  // namespace

struct LinkTower {
  nn::LayerNorm norm;
  float scale = 1.0f;  // scaled_add: LN(a * scale + b)
  float beta = 0.0f;   // interpolate: LN(a * (1 - beta) + b * beta)
};

struct BridgeTower::Impl {
  Config config;
  Heads heads;
  std::vector<std::string> unused;

  // Text tower (§3.2, §3.3).
  nn::Embedding word_embeddings, position_embeddings, text_token_type_embeddings;
  nn::LayerNorm text_embeddings_norm;
  std::vector<nn::BertLayer> text_layers;
  // Vision tower (§3.4, §3.5).
  Tensor class_embedding;      // [Hv]
  nn::Linear patch_embedding;  // conv weight [Hv, C, P, P] seen as [Hv, C*P*P], no bias
  nn::Embedding vision_positions;
  nn::LayerNorm ln_pre, ln_post;
  std::vector<nn::PreLnBlock> vision_blocks;  // the ones the reference runs (text depth)
  // Bridges and cross-modal encoder (§3.7-§3.10).
  nn::Linear text_transform, image_transform;
  nn::Embedding token_types;  // [2, H]: row 0 text, row 1 image
  nn::LayerNorm cross_text_norm, cross_image_norm;
  std::vector<nn::BertCrossLayer> cross_text_layers, cross_image_layers;
  std::vector<LinkTower> text_links, image_links;
  nn::Linear text_pooler, image_pooler;
  // Heads (§3.11).
  nn::Linear itm;
  nn::Linear itc_text, itc_image, itc_cross;
  std::optional<float> logit_scale;
  nn::Linear mlm_dense;
  nn::Activation mlm_act = nn::Activation::Gelu;
  nn::LayerNorm mlm_norm;
  nn::Linear mlm_decoder;  // decoder.weight with mlm_score.bias as its bias

  Impl(const Config& c, const io::Checkpoint& ckpt, const io::LoadOptions& options);

  // The pieces of the forward pass (defined below, in dataflow order).
  // Throws InvalidArgument for an id outside the vocabulary or a text longer than the position
  // table, naming the item by its row in ids. Callers run it on the whole batch before
  // text_embeddings (and before splitting it into parts), so a bad text fails the call at once.
  void check_ids(const Tensor& ids) const;
  // ids: checked by check_ids.
  void text_embeddings(const Tensor& ids, Tensor& out) const;
  void vision_embeddings(const Tensor& pixels, Tensor& out, nn::Scratch& scratch) const;
  void require_itc() const;
};

BridgeTower::Impl::Impl(const Config& c, const io::Checkpoint& ckpt, const io::LoadOptions& options)
    : config(c) {
  heads = find_heads(ckpt);
  MMEMBED_CHECK(!heads.itc || c.contrastive_hidden_size, FormatError, ckpt.path(),
                ": the checkpoint has ITC heads but config.json has no 'contrastive_hidden_size'");
  {
    nn::WeightList text, vision, cross;
    nn::BertLayer::expect(text, text_layer(0), text_dims(c));
    nn::PreLnBlock::expect(vision, vision_block(0), vision_dims(c),
                           nn::PreLnBlockNames::openai_clip());
    nn::BertCrossLayer::expect(cross, "cross_modal_text_layers.0", text_dims(c));
    io::check_layer_count(ckpt, "text_config.num_hidden_layers", c.text.num_hidden_layers,
                          text.size());
    io::check_layer_count(ckpt, "vision_config.num_hidden_layers", c.vision_blocks(),
                          vision.size());
    io::check_layer_count(ckpt, "num_hidden_layers", c.num_hidden_layers, 2 * cross.size());
  }
  io::BoundWeights w = io::bind_weights(ckpt, expected_weights(c, heads), name_map());
  w.set_matrix_dtype(options.matrix_dtype);
  unused = w.unused();

  const float eps_t = static_cast<float>(c.text.layer_norm_eps);
  const float eps_v = static_cast<float>(c.vision.layer_norm_eps);
  const float eps = static_cast<float>(c.layer_norm_eps);
  const nn::Activation act_t = nn::parse_activation(c.text.hidden_act, "text_config.hidden_act");

  word_embeddings = nn::Embedding(w, "text_model.embeddings.word_embeddings");
  position_embeddings = nn::Embedding(w, "text_model.embeddings.position_embeddings");
  text_token_type_embeddings = nn::Embedding(w, "text_model.embeddings.token_type_embeddings");
  text_embeddings_norm = nn::LayerNorm(w, "text_model.embeddings.LayerNorm", eps_t);
  for (std::int64_t i = 0; i < c.text.num_hidden_layers; ++i) {
    text_layers.emplace_back(w, text_layer(i), text_dims(c), act_t, eps_t);
  }

  class_embedding = w.get_f32(join(kVisual, "embeddings.class_embedding"));
  Tensor conv = w.get_f32(join(kVisual, "embeddings.patch_embedding.weight"));
  patch_embedding = nn::Linear(conv.reshape({conv.dim(0), -1}), std::nullopt);
  vision_positions = nn::Embedding(w, join(kVisual, "embeddings.position_embedding"));
  ln_pre = nn::LayerNorm(w, join(kVisual, "ln_pre"), eps_v);
  ln_post = nn::LayerNorm(w, join(kVisual, "ln_post"), eps_v);
  for (std::int64_t i = 0; i < c.text.num_hidden_layers; ++i) {
    vision_blocks.emplace_back(w, vision_block(i), vision_dims(c),
                               nn::PreLnBlockNames::openai_clip(), nn::Activation::QuickGelu,
                               eps_v);
  }

  text_transform = nn::Linear(w, "cross_modal_text_transform");
  image_transform = nn::Linear(w, "cross_modal_image_transform");
  token_types = nn::Embedding(w, "token_type_embeddings");
  cross_text_norm = nn::LayerNorm(w, "cross_modal_text_layernorm", eps);
  cross_image_norm = nn::LayerNorm(w, "cross_modal_image_layernorm", eps);
  // The cross layers are BridgeTowerBertCrossLayer(text_config): text eps and activation.
  for (std::int64_t k = 0; k < c.num_hidden_layers; ++k) {
    cross_text_layers.emplace_back(w, str_cat("cross_modal_text_layers.", k), text_dims(c), act_t,
                                   eps_t);
    cross_image_layers.emplace_back(w, str_cat("cross_modal_image_layers.", k), text_dims(c), act_t,
                                    eps_t);
  }
  for (std::int64_t j = 0; j + 1 < c.num_hidden_layers; ++j) {
    for (const char* side : {"text", "image"}) {
      std::string p = str_cat("cross_modal_", side, "_link_tower.", j);
      LinkTower link{nn::LayerNorm(w, join(p, "LayerNorm"), eps)};
      if (c.link_tower_type == "scaled_add") link.scale = scalar(w, join(p, "scaled_factor"));
      if (c.link_tower_type == "interpolate") link.beta = scalar(w, join(p, "beta"));
      (side[0] == 't' ? text_links : image_links).push_back(std::move(link));
    }
  }
  text_pooler = nn::Linear(w, "cross_modal_text_pooler.dense");
  image_pooler = nn::Linear(w, "cross_modal_image_pooler.dense");

  if (heads.itm) itm = nn::Linear(w, "itm_score.fc");
  if (heads.itc) {
    itc_text = nn::Linear(w, "itc_text_head.fc");
    itc_image = nn::Linear(w, "itc_image_head.fc");
    itc_cross = nn::Linear(w, "itc_cross_modal_head.fc");
    if (w.has("logit_scale")) logit_scale = scalar(w, "logit_scale");
  }
  if (heads.mlm) {
    mlm_dense = nn::Linear(w, "mlm_score.transform.dense");
    mlm_act = nn::parse_activation(c.hidden_act, "hidden_act");
    mlm_norm = nn::LayerNorm(w, "mlm_score.transform.LayerNorm", eps);
    mlm_decoder = nn::Linear(w.get_f32("mlm_score.decoder.weight"), w.get_f32("mlm_score.bias"));
  }
}

void BridgeTower::Impl::require_itc() const {
  MMEMBED_CHECK(heads.itc, Unsupported,
                "bridgetower: this checkpoint has no ITC heads (itc_text_head, itc_image_head, "
                "itc_cross_modal_head); text/image/cross embeddings need "
                "bridgetower-large-itm-mlm-itc-style weights");
}

// =============================================================================================
// Inputs and stage reporting
// =============================================================================================

namespace {

struct TextInput {
  Tensor ids;                  // [B, Nt] as given
  std::optional<Tensor> mask;  // [B, Nt] or none (all real)
  std::int64_t batch = 0, length = 0;
};

std::int64_t id_at(const Tensor& ids, std::int64_t i) {
  return ids.dtype() == DType::I64 ? ids.data<std::int64_t>()[i] : ids.data<std::int32_t>()[i];
}

TextInput check_text(const Tensor& ids, const std::optional<Tensor>& mask) {
  MMEMBED_CHECK(ids.dtype() == DType::I64 || ids.dtype() == DType::I32, InvalidArgument,
                "bridgetower: input_ids must be i64 or i32, got ", ids.describe());
  MMEMBED_CHECK(ids.rank() == 2 && ids.dim(0) >= 1 && ids.dim(1) >= 1, InvalidArgument,
                "bridgetower: input_ids must be [batch, length] with both >= 1, got ",
                shape_str(ids.shape()));
  if (mask) {
    MMEMBED_CHECK(mask->shape() == ids.shape(), InvalidArgument, "bridgetower: attention_mask ",
                  shape_str(mask->shape()), " does not match input_ids ", shape_str(ids.shape()));
  }
  return {ids, mask, ids.dim(0), ids.dim(1)};
}

void check_pixels(const Config& c, const Tensor& pixels) {
  const std::int64_t S = c.vision.image_size;
  MMEMBED_CHECK(pixels.dtype() == DType::F32 && pixels.rank() == 4 && pixels.dim(0) >= 1 &&
                    pixels.dim(1) == c.vision.num_channels && pixels.dim(2) == S &&
                    pixels.dim(3) == S,
                InvalidArgument, "bridgetower: pixel_values must be f32[batch,",
                c.vision.num_channels, ",", S, ",", S, "] (vision_config.image_size; position ",
                "interpolation is not supported), got ", pixels.describe());
}

// Calls the hook, or prints a summary when MMEMBED_DUMP is set.
class Stages {
 public:
  explicit Stages(const RunOptions& options) : hook_(options.on_stage) {
    dump_ = !hook_ && std::getenv("MMEMBED_DUMP") != nullptr;
  }
  void operator()(const std::string& name, const Tensor& t) const {
    if (hook_) {
      hook_(name, t);
    } else if (dump_) {
      double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
      const float* p = t.data<float>();
      for (std::int64_t i = 0; i < t.numel(); ++i) {
        lo = std::min<double>(lo, p[i]);
        hi = std::max<double>(hi, p[i]);
        sum += p[i];
      }
      std::fprintf(stderr, "mmembed dump %-32s %-16s min %+.6e max %+.6e mean %+.6e\n",
                   name.c_str(), shape_str(t.shape()).c_str(), lo, hi,
                   t.numel() ? sum / static_cast<double>(t.numel()) : 0.0);
    }
  }

  // Whether stages are reported (a hook or MMEMBED_DUMP): then every layer runs in full.
  bool active() const { return hook_ != nullptr || dump_; }

 private:
  StageHook hook_;
  bool dump_ = false;
};

Tensor f32(const Shape& shape) {
  return Tensor::empty(DType::F32, shape);
}

// LayerNorm(a + b) for "add"; the scaled / interpolated variants of BridgeTowerLinkTower.
// `a` is overwritten.
void link(const LinkTower& l, const std::string& type, Tensor& a, const Tensor& b, Tensor& out) {
  float* pa = a.data<float>();
  const float* pb = b.data<float>();
  const std::int64_t n = a.numel();
  if (type == "add") {
    for (std::int64_t i = 0; i < n; ++i)
      pa[i] = pa[i] + pb[i];
  } else if (type == "scaled_add") {
    for (std::int64_t i = 0; i < n; ++i)
      pa[i] = pa[i] * l.scale + pb[i];
  } else {
    for (std::int64_t i = 0; i < n; ++i)
      pa[i] = pa[i] * (1.0f - l.beta) + pb[i] * l.beta;
  }
  l.norm.forward(a, out);
}

// out[b, :] = concat(x[b, :], y[b, :]).
void concat_rows(const Tensor& x, const Tensor& y, Tensor& out) {
  const std::int64_t b = x.dim(0), cx = x.dim(1), cy = y.dim(1);
  for (std::int64_t i = 0; i < b; ++i) {
    std::copy_n(x.data<float>() + i * cx, cx, out.data<float>() + i * (cx + cy));
    std::copy_n(y.data<float>() + i * cy, cy, out.data<float>() + i * (cx + cy) + cx);
  }
}

}  // namespace

// =============================================================================================
// Towers
// =============================================================================================

void BridgeTower::Impl::check_ids(const Tensor& ids) const {
  const std::int64_t B = ids.dim(0), Nt = ids.dim(1), pad = config.text.pad_token_id;
  for (std::int64_t b = 0; b < B; ++b) {
    std::int64_t count = 0;
    for (std::int64_t t = 0; t < Nt; ++t) {
      const std::int64_t id = id_at(ids, b * Nt + t);
      const std::int64_t pos = id != pad ? pad + (++count) : pad;
      MMEMBED_CHECK(id >= 0 && id < word_embeddings.num(), InvalidArgument,
                    "bridgetower: input_ids[", b, ",", t, "] = ", id,
                    " is outside the vocabulary [0, ", word_embeddings.num(), ")");
      MMEMBED_CHECK(pos < position_embeddings.num(), InvalidArgument, "bridgetower: text ", b,
                    " has more than ", position_embeddings.num() - pad - 1,
                    " tokens (text_config.max_position_embeddings ", position_embeddings.num(),
                    "); truncate it");
    }
  }
}

// §3.2: x = LayerNorm(word[id] + type[0] + position[pos]); positions from the ids: real tokens
// count up from pad_token_id + 1, pads get pad_token_id (the attention mask plays no part).
void BridgeTower::Impl::text_embeddings(const Tensor& ids, Tensor& out) const {
  const std::int64_t B = ids.dim(0), Nt = ids.dim(1), Ht = config.text.hidden_size;
  const std::int64_t pad = config.text.pad_token_id;
  const float* type0 = text_token_type_embeddings.row(0);
  float* dst = out.data<float>();
  for (std::int64_t b = 0; b < B; ++b) {
    std::int64_t count = 0;
    for (std::int64_t t = 0; t < Nt; ++t, dst += Ht) {
      const std::int64_t id = id_at(ids, b * Nt + t);
      const std::int64_t pos = id != pad ? pad + (++count) : pad;
      const float* word = word_embeddings.row(id);
      const float* position = position_embeddings.row(pos);
      for (std::int64_t j = 0; j < Ht; ++j)
        dst[j] = (word[j] + type0[j]) + position[j];
    }
  }
  text_embeddings_norm.forward(out, out);
}

// §3.4 before ln_pre: [CLS | patches] + positions. The patch conv (kernel = stride = P, no bias)
// is an im2col in (channel, ky, kx) order times the conv weight seen as [Hv, C*P*P].
void BridgeTower::Impl::vision_embeddings(const Tensor& pixels, Tensor& out,
                                          nn::Scratch& scratch) const {
  const std::int64_t B = pixels.dim(0), C = pixels.dim(1), S = pixels.dim(2);
  const std::int64_t P = config.vision.patch_size, G = config.grid(), Ni = G * G + 1;
  const std::int64_t Hv = config.vision.hidden_size, K = C * P * P;
  Tensor patches = scratch.get(0, {G * G, K});
  for (std::int64_t b = 0; b < B; ++b) {
    const float* img = pixels.data<float>() + b * C * S * S;
    float* row = patches.data<float>();
    for (std::int64_t gy = 0; gy < G; ++gy) {
      for (std::int64_t gx = 0; gx < G; ++gx) {
        for (std::int64_t c = 0; c < C; ++c) {
          for (std::int64_t ky = 0; ky < P; ++ky) {
            const float* src = img + (c * S + gy * P + ky) * S + gx * P;
            std::copy_n(src, P, row);
            row += P;
          }
        }
      }
    }
    float* dst = out.data<float>() + b * Ni * Hv;
    std::copy_n(class_embedding.data<float>(), Hv, dst);
    Tensor patch_rows = Tensor::borrow(dst + Hv, DType::F32, {G * G, Hv});
    patch_embedding.forward(patches, patch_rows);
    for (std::int64_t t = 0; t < Ni; ++t) {
      const float* pos = vision_positions.row(t);
      for (std::int64_t j = 0; j < Hv; ++j)
        dst[t * Hv + j] += pos[j];
    }
  }
}

// =============================================================================================
// The joint forward pass (§3.6): towers, bridges, cross-modal layers, poolers, heads
// =============================================================================================

namespace {

// Writes bridge k's inputs for every row: text_bridge [B, Nt, H] = cross_modal_text_transform(
// text layer) + token type 0, image_bridge [B, Ni, H] = cross_modal_image_transform(ln_post(
// vision block)) + token type 1.
using BridgeSource = std::function<void(std::int64_t k, Tensor& text_bridge, Tensor& image_bridge)>;

// §3.7-§3.11 from the bridges on: the cross-modal layers and their link towers, the poolers and
// the heads. `last_text_layer` (the text tower's last layer output, read after the bridges) feeds
// the ITC text head; without it text_embeds stays empty.
JointOutput cross_modal(const BridgeTower::Impl& m, std::int64_t B, std::int64_t Nt,
                        const std::optional<Tensor>& text_mask, const BridgeSource& bridge,
                        const Tensor* last_text_layer, const Stages& stage,
                        const RunOptions& options, nn::Scratch& scratch) {
  const Config& c = m.config;
  const std::int64_t Ni = c.image_tokens(), H = c.hidden_size;
  // Cross layer k: both streams read this layer's inputs (X_text, X_image), never each other's
  // outputs. Text queries attend to all image tokens; image queries to the real text tokens.
  Tensor X_text = f32({B, Nt, H}), X_image = f32({B, Ni, H});
  Tensor Y_text = f32({B, Nt, H}), Y_image = f32({B, Ni, H});
  // With pooled_only, the last layer computes token 0 of each stream only (the poolers read
  // nothing else): keys and values still come from every token of this layer's inputs.
  const bool first_token_last = options.pooled_only && !options.mlm_logits && !stage.active();
  auto cross_layer = [&](std::int64_t k) {
    if (first_token_last && k + 1 == c.num_hidden_layers) {
      Y_text = f32({B, 1, H});
      Y_image = f32({B, 1, H});
      m.cross_text_layers[k].forward_first_token(X_text, X_image, text_mask, std::nullopt, Y_text,
                                                 scratch);
      m.cross_image_layers[k].forward_first_token(X_image, X_text, std::nullopt, text_mask, Y_image,
                                                  scratch);
      return;
    }
    // Each stream's stage right after it (the image stream does not write Y_text), so that a
    // hook timing the intervals between stages sees the two streams apart.
    m.cross_text_layers[k].forward(X_text, X_image, text_mask, std::nullopt, Y_text, scratch);
    stage(str_cat("cross/text_layer_", k), Y_text);
    m.cross_image_layers[k].forward(X_image, X_text, std::nullopt, text_mask, Y_image, scratch);
    stage(str_cat("cross/image_layer_", k), Y_image);
  };

  Tensor text_bridge = f32({B, Nt, H}), image_bridge = f32({B, Ni, H});
  bridge(0, text_bridge, image_bridge);
  m.cross_text_norm.forward(text_bridge, X_text);
  stage("cross/text_input_0", X_text);
  m.cross_image_norm.forward(image_bridge, X_image);
  stage("cross/image_input_0", X_image);
  cross_layer(0);

  // ITC image input: the last bridge's image tokens before the link (§3.11), CLS row only.
  Tensor image_cls = f32({B, H});
  if (c.num_hidden_layers == 1) nn::gather_token(image_bridge, 0, image_cls);
  for (std::int64_t k = 1; k < c.num_hidden_layers; ++k) {
    bridge(k, text_bridge, image_bridge);
    if (k + 1 == c.num_hidden_layers) nn::gather_token(image_bridge, 0, image_cls);
    link(m.text_links[k - 1], c.link_tower_type, text_bridge, Y_text, X_text);
    stage(str_cat("cross/text_link_", k - 1), X_text);
    link(m.image_links[k - 1], c.link_tower_type, image_bridge, Y_image, X_image);
    stage(str_cat("cross/image_link_", k - 1), X_image);
    cross_layer(k);
  }

  // Poolers (§3.10): tanh(dense(token 0)) per stream, concatenated text first.
  JointOutput out;
  out.text_features = Y_text;
  out.image_features = Y_image;
  stage("model/text_features", Y_text);
  stage("model/image_features", Y_image);
  Tensor cls = f32({B, H}), pool_text = f32({B, H}), pool_image = f32({B, H});
  nn::gather_token(Y_text, 0, cls);
  m.text_pooler.forward(cls, pool_text);
  ops::tanh(pool_text, pool_text);
  stage("pool/text", pool_text);
  nn::gather_token(Y_image, 0, cls);
  m.image_pooler.forward(cls, pool_image);
  ops::tanh(pool_image, pool_image);
  stage("pool/image", pool_image);
  out.pooler_output = f32({B, 2 * H});
  concat_rows(pool_text, pool_image, out.pooler_output);
  stage("model/pooler_output", out.pooler_output);

  // Heads (§3.11).
  if (m.heads.itm) {
    out.itm_logits = m.itm.forward(out.pooler_output);
    stage("itm/logits", *out.itm_logits);
    Tensor p = ops::softmax(*out.itm_logits);
    out.itm_match_probability = f32({B});
    for (std::int64_t b = 0; b < B; ++b) {
      out.itm_match_probability->data<float>()[b] = p.data<float>()[b * 2 + 1];
    }
  }
  if (m.heads.itc) {
    // text: the last RoBERTa layer's CLS; image: the last bridge's image CLS (+ tt1);
    // cross: the pooler output. Neither of the first two depends on the other modality.
    if (last_text_layer != nullptr) {
      Tensor text_cls = f32({B, c.text.hidden_size});
      nn::gather_token(*last_text_layer, 0, text_cls);
      out.text_embeds = ops::l2_normalize(m.itc_text.forward(text_cls));
      stage("itc/text_embeds", *out.text_embeds);
    }
    out.image_embeds = ops::l2_normalize(m.itc_image.forward(image_cls));
    out.cross_embeds = ops::l2_normalize(m.itc_cross.forward(out.pooler_output));
    stage("itc/image_embeds", *out.image_embeds);
    stage("itc/cross_embeds", *out.cross_embeds);
  }
  if (m.heads.itc && out.text_embeds) {
    const std::int64_t C = out.text_embeds->dim(1);
    Tensor stacked = f32({B, 3, C});
    for (std::int64_t b = 0; b < B; ++b) {
      float* dst = stacked.data<float>() + b * 3 * C;
      std::copy_n(out.text_embeds->data<float>() + b * C, C, dst);
      std::copy_n(out.image_embeds->data<float>() + b * C, C, dst + C);
      std::copy_n(out.cross_embeds->data<float>() + b * C, C, dst + 2 * C);
    }
    stage("itc/logits", stacked);
  }
  if (options.mlm_logits) {
    Tensor h = m.mlm_dense.forward(Y_text);
    nn::activate(m.mlm_act, h, h);
    m.mlm_norm.forward(h, h);
    out.mlm_logits = m.mlm_decoder.forward(h);
    stage("mlm/logits", *out.mlm_logits);
  }
  return out;
}

// Runs `run` on parts of a batch of B items, one kernel thread each (nn::batch_parts), and
// stacks the parts' outputs row-wise: each part's layers then run on one thread without
// barriers between their steps (docs/performance.md, "Batch parts").
JointOutput in_batch_parts(std::int64_t B, std::int64_t parts,
                           const std::function<JointOutput(std::int64_t, std::int64_t)>& run) {
  if (parts <= 1) return run(0, B);
  std::vector<std::optional<JointOutput>> by_start(static_cast<std::size_t>(B));
  nn::for_batch_parts(B, parts,
                      [&](std::int64_t b0, std::int64_t b1) { by_start[b0] = run(b0, b1); });
  std::vector<const JointOutput*> outs;
  for (const auto& o : by_start) {
    if (o) outs.push_back(&*o);
  }
  auto stack = [&](auto field) {
    const Tensor& first = *field(*outs[0]);
    Shape shape = first.shape();
    shape[0] = B;
    Tensor t = Tensor::empty(first.dtype(), shape);
    char* dst = static_cast<char*>(t.raw());
    for (const JointOutput* o : outs) {
      const Tensor& part = *field(*o);
      std::memcpy(dst, part.raw(), part.nbytes());
      dst += part.nbytes();
    }
    return t;
  };
  auto stack_optional = [&](auto member) -> std::optional<Tensor> {
    if (!(outs[0]->*member)) return std::nullopt;
    return stack([&](const JointOutput& o) { return &*(o.*member); });
  };
  JointOutput out;
  out.text_features = stack([](const JointOutput& o) { return &o.text_features; });
  out.image_features = stack([](const JointOutput& o) { return &o.image_features; });
  out.pooler_output = stack([](const JointOutput& o) { return &o.pooler_output; });
  out.itm_logits = stack_optional(&JointOutput::itm_logits);
  out.itm_match_probability = stack_optional(&JointOutput::itm_match_probability);
  out.text_embeds = stack_optional(&JointOutput::text_embeds);
  out.image_embeds = stack_optional(&JointOutput::image_embeds);
  out.cross_embeds = stack_optional(&JointOutput::cross_embeds);
  out.mlm_logits = stack_optional(&JointOutput::mlm_logits);
  return out;
}

}  // namespace

JointOutput BridgeTower::forward(const Tensor& input_ids,
                                 const std::optional<Tensor>& attention_mask,
                                 const Tensor& pixel_values, const RunOptions& options) const {
  const Impl& m = *impl_;
  const Config& c = m.config;
  const TextInput text = check_text(input_ids, attention_mask);
  check_pixels(c, pixel_values);
  MMEMBED_CHECK(pixel_values.dim(0) == text.batch, InvalidArgument, "bridgetower: ", text.batch,
                " texts but ", pixel_values.dim(0), " images (pairs are text i with image i)");
  MMEMBED_CHECK(!options.mlm_logits || m.heads.mlm, Unsupported,
                "bridgetower: MLM logits requested but the checkpoint has no mlm_score head");
  const Stages stage(options);
  // With a hook every stage is reported whole, so the batch runs as one part.
  const std::int64_t parts =
      stage.active() ? 1 : nn::batch_parts(text.batch, text.length + c.image_tokens());
  if (parts > 1) {
    m.check_ids(text.ids);  // on the whole batch: a bad text fails the call before any part
    return in_batch_parts(text.batch, parts, [&](std::int64_t b0, std::int64_t b1) {
      return forward(
          text.ids.slice_rows(b0, b1),
          text.mask ? std::optional<Tensor>(text.mask->slice_rows(b0, b1)) : std::nullopt,
          pixel_values.slice_rows(b0, b1), options);
    });
  }
  const std::int64_t B = text.batch, Nt = text.length, Ni = c.image_tokens();
  const std::int64_t Ht = c.text.hidden_size, Hv = c.vision.hidden_size;
  const std::int64_t split = c.split_index();
  const std::optional<Tensor>& text_mask = text.mask;  // the image is never masked
  nn::Scratch scratch;

  // Uni-modal towers up to the first bridged layer. T / V ping-pong between two buffers.
  Tensor T = f32({B, Nt, Ht}), T_next = f32({B, Nt, Ht});
  Tensor V = f32({B, Ni, Hv}), V_next = f32({B, Ni, Hv});
  m.check_ids(text.ids);
  m.text_embeddings(text.ids, T);
  stage("text/embeddings", T);
  m.vision_embeddings(pixel_values, V_next, scratch);
  stage("vision/embeddings", V_next);
  m.ln_pre.forward(V_next, V);
  stage("vision/ln_pre", V);
  auto text_layer = [&](std::int64_t l) {
    m.text_layers[l].forward(T, text_mask, T_next, scratch);
    std::swap(T, T_next);
    stage(str_cat("text/layer_", l), T);
  };
  auto vision_block = [&](std::int64_t l) {
    m.vision_blocks[l].forward(V, {}, V_next, scratch);
    std::swap(V, V_next);
    stage(str_cat("vision/layer_", l), V);
  };
  for (std::int64_t l = 0; l < split; ++l) {
    text_layer(l);
    vision_block(l);
  }

  // Bridge k, shared part: transform(T) + tt0 and transform(ln_post(V)) + tt1 (§3.7, §3.9).
  // Bridge k > 0 first runs the towers' next layers.
  Tensor V_norm = f32({B, Ni, Hv});
  auto bridge = [&](std::int64_t k, Tensor& text_bridge, Tensor& image_bridge) {
    if (k > 0) {
      const std::int64_t l = split - 1 + k;
      text_layer(l);
      vision_block(l);
    }
    m.ln_post.forward(V, V_norm);
    stage(str_cat("vision/ln_post/call_", k), V_norm);
    m.text_transform.forward(T, text_bridge);
    stage(str_cat("bridge/text_transform/call_", k), text_bridge);
    nn::add_row_inplace(text_bridge, m.token_types.row(0));
    m.image_transform.forward(V_norm, image_bridge);
    stage(str_cat("bridge/image_transform/call_", k), image_bridge);
    nn::add_row_inplace(image_bridge, m.token_types.row(1));
  };
  return cross_modal(m, B, Nt, text_mask, bridge, &T, stage, options, scratch);
}

// =============================================================================================
// The towers and the cross-modal part apart (re-ranking: one text, many cached images)
// =============================================================================================

Tensor BridgeTower::text_bridges(const Tensor& input_ids,
                                 const std::optional<Tensor>& attention_mask,
                                 const RunOptions& options) const {
  const Impl& m = *impl_;
  const Config& c = m.config;
  const TextInput text = check_text(input_ids, attention_mask);
  m.check_ids(text.ids);
  const Stages stage(options);
  const std::int64_t B = text.batch, Nt = text.length, Ht = c.text.hidden_size;
  const std::int64_t H = c.hidden_size, K = c.num_hidden_layers, first = c.split_index() - 1;
  nn::Scratch scratch;
  Tensor T = f32({B, Nt, Ht}), T_next = f32({B, Nt, Ht}), bridge = f32({B, Nt, H});
  Tensor out = f32({B, K, Nt, H});
  m.text_embeddings(text.ids, T);
  stage("text/embeddings", T);
  for (std::int64_t l = 0; l < first + K; ++l) {
    m.text_layers[l].forward(T, text.mask, T_next, scratch);
    std::swap(T, T_next);
    stage(str_cat("text/layer_", l), T);
    if (l < first) continue;
    const std::int64_t k = l - first;
    m.text_transform.forward(T, bridge);
    stage(str_cat("bridge/text_transform/call_", k), bridge);
    nn::add_row_inplace(bridge, m.token_types.row(0));
    for (std::int64_t b = 0; b < B; ++b) {
      std::copy_n(bridge.data<float>() + b * Nt * H, Nt * H,
                  out.data<float>() + (b * K + k) * Nt * H);
    }
  }
  return out;
}

Tensor BridgeTower::image_bridges(const Tensor& pixel_values, const RunOptions& options) const {
  const Impl& m = *impl_;
  const Config& c = m.config;
  check_pixels(c, pixel_values);
  const Stages stage(options);
  const std::int64_t B = pixel_values.dim(0), Ni = c.image_tokens(), Hv = c.vision.hidden_size;
  const std::int64_t H = c.hidden_size, K = c.num_hidden_layers, first = c.split_index() - 1;
  Tensor out = f32({B, K, Ni, H});
  // Parts of the batch one after the other: the activations of a part stay in cache.
  const std::int64_t parts = stage.active() ? 1 : nn::batch_parts(B, Ni);
  nn::for_batch_parts(B, parts, [&](std::int64_t b0, std::int64_t b1) {
    const std::int64_t n = b1 - b0;
    nn::Scratch scratch;
    Tensor V = f32({n, Ni, Hv}), V_next = f32({n, Ni, Hv}), V_norm = f32({n, Ni, Hv});
    Tensor bridge = f32({n, Ni, H});
    m.vision_embeddings(pixel_values.slice_rows(b0, b1), V_next, scratch);
    stage("vision/embeddings", V_next);
    m.ln_pre.forward(V_next, V);
    stage("vision/ln_pre", V);
    for (std::int64_t l = 0; l < first + K; ++l) {
      m.vision_blocks[l].forward(V, {}, V_next, scratch);
      std::swap(V, V_next);
      stage(str_cat("vision/layer_", l), V);
      if (l < first) continue;
      const std::int64_t k = l - first;
      m.ln_post.forward(V, V_norm);
      stage(str_cat("vision/ln_post/call_", k), V_norm);
      m.image_transform.forward(V_norm, bridge);
      stage(str_cat("bridge/image_transform/call_", k), bridge);
      nn::add_row_inplace(bridge, m.token_types.row(1));
      for (std::int64_t b = 0; b < n; ++b) {
        std::copy_n(bridge.data<float>() + b * Ni * H, Ni * H,
                    out.data<float>() + ((b0 + b) * K + k) * Ni * H);
      }
    }
  });
  return out;
}

JointOutput BridgeTower::forward_bridges(const Tensor& text_bridges,
                                         const std::optional<Tensor>& attention_mask,
                                         const Tensor& image_bridges,
                                         const RunOptions& options) const {
  const Impl& m = *impl_;
  const Config& c = m.config;
  const std::int64_t K = c.num_hidden_layers, H = c.hidden_size, Ni = c.image_tokens();
  MMEMBED_CHECK(image_bridges.dtype() == DType::F32 && image_bridges.rank() == 4 &&
                    image_bridges.dim(0) >= 1 && image_bridges.dim(1) == K &&
                    image_bridges.dim(2) == Ni && image_bridges.dim(3) == H,
                InvalidArgument, "bridgetower: image bridges must be f32[batch,", K, ",", Ni, ",",
                H, "] (image_bridges() of this model), got ", image_bridges.describe());
  MMEMBED_CHECK(text_bridges.dtype() == DType::F32 && text_bridges.rank() == 4 &&
                    text_bridges.dim(0) >= 1 && text_bridges.dim(1) == K &&
                    text_bridges.dim(2) >= 1 && text_bridges.dim(3) == H,
                InvalidArgument, "bridgetower: text bridges must be f32[batch,", K, ",length,", H,
                "] (text_bridges() of this model), got ", text_bridges.describe());
  const std::int64_t B = image_bridges.dim(0), Bt = text_bridges.dim(0);
  const std::int64_t Nt = text_bridges.dim(2);
  MMEMBED_CHECK(Bt == 1 || Bt == B, InvalidArgument, "bridgetower: ", Bt, " texts for ", B,
                " images (one text for all, or text i with image i)");
  MMEMBED_CHECK(!attention_mask || (attention_mask->rank() == 2 && attention_mask->dim(0) == Bt &&
                                    attention_mask->dim(1) == Nt),
                InvalidArgument, "bridgetower: attention_mask ",
                attention_mask ? shape_str(attention_mask->shape()) : std::string(),
                " does not match the text bridges [", Bt, ", ", Nt, "]");
  MMEMBED_CHECK(!options.mlm_logits, Unsupported,
                "bridgetower: MLM logits need the full forward pass");
  const Stages stage(options);
  const std::int64_t parts = stage.active() ? 1 : nn::batch_parts(B, Nt + Ni);
  if (parts > 1) {
    return in_batch_parts(B, parts, [&](std::int64_t b0, std::int64_t b1) {
      const bool one_text = Bt == 1;
      return forward_bridges(one_text ? text_bridges : text_bridges.slice_rows(b0, b1),
                             one_text || !attention_mask
                                 ? attention_mask
                                 : std::optional<Tensor>(attention_mask->slice_rows(b0, b1)),
                             image_bridges.slice_rows(b0, b1), options);
    });
  }
  // One text for every image: its mask repeated per row.
  std::optional<Tensor> mask = attention_mask;
  if (mask && Bt != B) {
    Tensor rows = Tensor::empty(mask->dtype(), {B, Nt});
    const std::size_t row_bytes = mask->nbytes();
    for (std::int64_t b = 0; b < B; ++b) {
      std::memcpy(static_cast<char*>(rows.raw()) + b * row_bytes, mask->raw(), row_bytes);
    }
    mask = rows;
  }
  nn::Scratch scratch;
  auto bridge = [&](std::int64_t k, Tensor& text_bridge, Tensor& image_bridge) {
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t bt = Bt == 1 ? 0 : b;
      std::copy_n(text_bridges.data<float>() + (bt * K + k) * Nt * H, Nt * H,
                  text_bridge.data<float>() + b * Nt * H);
      std::copy_n(image_bridges.data<float>() + (b * K + k) * Ni * H, Ni * H,
                  image_bridge.data<float>() + b * Ni * H);
    }
  };
  return cross_modal(m, B, Nt, mask, bridge, nullptr, stage, options, scratch);
}

// =============================================================================================
// Embeddings from one tower (§3.14)
// =============================================================================================

namespace {

// The text tower's [CLS] rows of the last layer for `text`, into cls [B, Ht].
void text_cls_rows(const BridgeTower::Impl& m, const TextInput& text, const Stages& stage,
                   Tensor& cls) {
  const std::int64_t B = text.batch, Nt = text.length, Ht = m.config.text.hidden_size;
  nn::Scratch scratch;
  Tensor T = f32({B, Nt, Ht}), T_next = f32({B, Nt, Ht});
  m.text_embeddings(text.ids, T);
  stage("text/embeddings", T);
  // Only [CLS] of the last layer is used: unless stages are reported, that layer runs on its
  // row alone (keys and values from every token; same values as the full layer's row 0).
  const std::size_t full = m.text_layers.size() - (stage.active() ? 0 : 1);
  for (std::size_t l = 0; l < full; ++l) {
    m.text_layers[l].forward(T, text.mask, T_next, scratch);
    std::swap(T, T_next);
    stage(str_cat("text/layer_", l), T);
  }
  if (full < m.text_layers.size()) {
    Tensor cls_row = cls.reshape({B, 1, Ht});
    m.text_layers.back().forward_first_token(T, text.mask, cls_row, scratch);
  } else {
    nn::gather_token(T, 0, cls);
  }
}

}  // namespace

Tensor BridgeTower::text_cls_features(const Tensor& input_ids,
                                      const std::optional<Tensor>& attention_mask,
                                      const RunOptions& options) const {
  const Impl& m = *impl_;
  const TextInput text = check_text(input_ids, attention_mask);
  const Stages stage(options);
  const std::int64_t B = text.batch, Ht = m.config.text.hidden_size;
  Tensor cls = f32({B, Ht});
  // With a hook every stage is reported whole, so the batch runs as one part.
  const std::int64_t parts = stage.active() ? 1 : nn::batch_parts(B, text.length);
  m.check_ids(text.ids);  // on the whole batch: a bad text fails the call before any part runs
  nn::for_batch_parts(B, parts, [&](std::int64_t b0, std::int64_t b1) {
    const TextInput part{
        text.ids.slice_rows(b0, b1),
        text.mask ? std::optional<Tensor>(text.mask->slice_rows(b0, b1)) : std::nullopt, b1 - b0,
        text.length};
    Tensor rows = cls.slice_rows(b0, b1);
    text_cls_rows(m, part, stage, rows);
  });
  return cls;
}

Tensor BridgeTower::embed_text(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                               const RunOptions& options) const {
  const Impl& m = *impl_;
  m.require_itc();
  const Stages stage(options);
  Tensor cls = text_cls_features(input_ids, attention_mask, options);
  Tensor embeds = ops::l2_normalize(m.itc_text.forward(cls));
  stage("itc/text_embeds", embeds);
  return embeds;
}

namespace {

// cross_modal_image_transform(ln_post(last vision block))[token 0] + token type 1 for `pixels`,
// into cls_bridge [B, H].
void image_cls_rows(const BridgeTower::Impl& m, const Tensor& pixels, const Stages& stage,
                    Tensor& cls_bridge) {
  const std::int64_t B = pixels.dim(0), Ni = m.config.image_tokens();
  const std::int64_t Hv = m.config.vision.hidden_size;
  nn::Scratch scratch;
  Tensor V = f32({B, Ni, Hv}), V_next = f32({B, Ni, Hv});
  m.vision_embeddings(pixels, V_next, scratch);
  stage("vision/embeddings", V_next);
  m.ln_pre.forward(V_next, V);
  stage("vision/ln_pre", V);
  // Only the CLS row of the last block is used: unless stages are reported, that block runs
  // on it alone (ln_1, keys and values over every token; same values as the full block's row 0).
  const std::size_t full = m.vision_blocks.size() - (stage.active() ? 0 : 1);
  for (std::size_t l = 0; l < full; ++l) {
    m.vision_blocks[l].forward(V, {}, V_next, scratch);
    std::swap(V, V_next);
    stage(str_cat("vision/layer_", l), V);
  }
  // ln_post, the image transform and the token type act per token: the CLS row suffices.
  Tensor cls = f32({B, Hv});
  if (full < m.vision_blocks.size()) {
    Tensor cls_row = cls.reshape({B, 1, Hv});
    m.vision_blocks.back().forward_first_token(V, {}, cls_row, scratch);
  } else {
    nn::gather_token(V, 0, cls);
  }
  m.ln_post.forward(cls, cls);
  m.image_transform.forward(cls, cls_bridge);
  nn::add_row_inplace(cls_bridge, m.token_types.row(1));
}

}  // namespace

Tensor BridgeTower::image_cls_features(const Tensor& pixel_values,
                                       const RunOptions& options) const {
  const Impl& m = *impl_;
  check_pixels(m.config, pixel_values);
  const Stages stage(options);
  const std::int64_t B = pixel_values.dim(0);
  Tensor cls_bridge = f32({B, m.config.hidden_size});
  const std::int64_t parts = stage.active() ? 1 : nn::batch_parts(B, m.config.image_tokens());
  nn::for_batch_parts(B, parts, [&](std::int64_t b0, std::int64_t b1) {
    Tensor rows = cls_bridge.slice_rows(b0, b1);
    image_cls_rows(m, pixel_values.slice_rows(b0, b1), stage, rows);
  });
  return cls_bridge;
}

Tensor BridgeTower::embed_image(const Tensor& pixel_values, const RunOptions& options) const {
  const Impl& m = *impl_;
  m.require_itc();
  const Stages stage(options);
  Tensor cls_bridge = image_cls_features(pixel_values, options);
  Tensor embeds = ops::l2_normalize(m.itc_image.forward(cls_bridge));
  stage("itc/image_embeds", embeds);
  return embeds;
}

Tensor BridgeTower::embed_pair(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                               const Tensor& pixel_values, const RunOptions& options) const {
  impl_->require_itc();
  RunOptions pooled = options;
  pooled.pooled_only = true;  // cross_embeds reads the poolers only
  return *forward(input_ids, attention_mask, pixel_values, pooled).cross_embeds;
}

// =============================================================================================
// Construction and accessors
// =============================================================================================

BridgeTower::BridgeTower(const Config& config, const io::Checkpoint& checkpoint,
                         const io::LoadOptions& options)
    : impl_(std::make_shared<const Impl>(config, checkpoint, options)) {}

BridgeTower BridgeTower::load(const std::string& model_dir, const io::LoadOptions& options) {
  return BridgeTower(Config::from_file(model_dir + "/config.json"), io::open_checkpoint(model_dir),
                     options);
}

BridgeTower BridgeTower::load(const std::string& config_json_path, const std::string& weights_path,
                              const io::LoadOptions& options) {
  return BridgeTower(Config::from_file(config_json_path), io::open_checkpoint(weights_path),
                     options);
}

const Config& BridgeTower::config() const {
  return impl_->config;
}
bool BridgeTower::has_itc_heads() const {
  return impl_->heads.itc;
}
bool BridgeTower::has_itm_head() const {
  return impl_->heads.itm;
}
bool BridgeTower::has_mlm_head() const {
  return impl_->heads.mlm;
}
std::optional<float> BridgeTower::logit_scale() const {
  return impl_->logit_scale;
}
const std::vector<std::string>& BridgeTower::unused_weights() const {
  return impl_->unused;
}

}  // namespace mmembed::models::bridgetower
