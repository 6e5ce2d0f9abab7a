// CLIP, top to bottom: configuration, weights, the two towers, the joint outputs. Section
// numbers (§) refer to the spec (/work/shared/spec/clip-and-formats.md, part A); the reference
// is transformers 4.44.2 modeling_clip.
#include "models/clip/clip.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "io/weight_map.h"
#include "models/stages.h"
#include "nn/layers.h"
#include "ops/ops.h"

namespace mmembed::models::clip {

using nn::join;

// =============================================================================================
// Configuration (§A.1)
// =============================================================================================

namespace {

void read_text(const io::ConfigReader& t, TextConfig& x) {
  x.vocab_size = t.optional<std::int64_t>("vocab_size", x.vocab_size);
  x.hidden_size = t.optional<std::int64_t>("hidden_size", x.hidden_size);
  x.intermediate_size = t.optional<std::int64_t>("intermediate_size", x.intermediate_size);
  x.num_hidden_layers = t.optional<std::int64_t>("num_hidden_layers", x.num_hidden_layers);
  x.num_attention_heads = t.optional<std::int64_t>("num_attention_heads", x.num_attention_heads);
  x.max_position_embeddings =
      t.optional<std::int64_t>("max_position_embeddings", x.max_position_embeddings);
  x.hidden_act = t.optional<std::string>("hidden_act", x.hidden_act);
  x.layer_norm_eps = t.optional<double>("layer_norm_eps", x.layer_norm_eps);
  x.pad_token_id = t.optional<std::int64_t>("pad_token_id", x.pad_token_id);
  x.bos_token_id = t.optional<std::int64_t>("bos_token_id", x.bos_token_id);
  x.eos_token_id = t.optional<std::int64_t>("eos_token_id", x.eos_token_id);
}

void read_vision(const io::ConfigReader& v, VisionConfig& x) {
  x.hidden_size = v.optional<std::int64_t>("hidden_size", x.hidden_size);
  x.intermediate_size = v.optional<std::int64_t>("intermediate_size", x.intermediate_size);
  x.num_hidden_layers = v.optional<std::int64_t>("num_hidden_layers", x.num_hidden_layers);
  x.num_attention_heads = v.optional<std::int64_t>("num_attention_heads", x.num_attention_heads);
  x.num_channels = v.optional<std::int64_t>("num_channels", x.num_channels);
  x.image_size = v.optional<std::int64_t>("image_size", x.image_size);
  x.patch_size = v.optional<std::int64_t>("patch_size", x.patch_size);
  x.hidden_act = v.optional<std::string>("hidden_act", x.hidden_act);
  x.layer_norm_eps = v.optional<double>("layer_norm_eps", x.layer_norm_eps);
}

void check_heads(const std::string& src, const char* tower, std::int64_t hidden,
                 std::int64_t heads) {
  MMEMBED_CHECK(heads > 0 && hidden > 0 && hidden % heads == 0, InvalidArgument, src, ": ", tower,
                ".hidden_size ", hidden, " is not a multiple of ", tower, ".num_attention_heads ",
                heads);
}

}  // namespace

Config Config::parse(const io::ConfigReader& cfg) {
  Config c;
  const std::string src = cfg.source();
  if (auto type = cfg.get<std::string>("model_type")) {
    MMEMBED_CHECK(*type == "clip", InvalidArgument, src, ": model_type is '", *type,
                  "', expected 'clip'");
  }
  c.projection_dim = cfg.optional<std::int64_t>("projection_dim", c.projection_dim);
  c.logit_scale_init_value =
      cfg.optional<double>("logit_scale_init_value", c.logit_scale_init_value);
  // CLIPConfig: defaults <- text_config <- text_config_dict (the legacy key wins).
  for (const char* key : {"text_config", "text_config_dict"}) {
    if (auto t = cfg.optional_object(key)) read_text(*t, c.text);
  }
  for (const char* key : {"vision_config", "vision_config_dict"}) {
    if (auto v = cfg.optional_object(key)) read_vision(*v, c.vision);
  }

  const TextConfig& t = c.text;
  const VisionConfig& v = c.vision;
  check_heads(src, "text_config", t.hidden_size, t.num_attention_heads);
  check_heads(src, "vision_config", v.hidden_size, v.num_attention_heads);
  MMEMBED_CHECK(t.num_hidden_layers >= 0 && v.num_hidden_layers >= 0 && t.vocab_size > 0 &&
                    t.max_position_embeddings > 0 && t.intermediate_size > 0 &&
                    v.intermediate_size > 0 && c.projection_dim > 0 && v.num_channels > 0,
                InvalidArgument, src,
                ": sizes (vocab_size, max_position_embeddings, num_hidden_layers, "
                "intermediate_size, projection_dim, num_channels) must be positive");
  MMEMBED_CHECK(v.patch_size > 0 && v.image_size >= v.patch_size, InvalidArgument, src,
                ": vision_config.image_size ", v.image_size, " and patch_size ", v.patch_size,
                " give no patch");
  nn::parse_activation(t.hidden_act, src + ": text_config.hidden_act");
  nn::parse_activation(v.hidden_act, src + ": vision_config.hidden_act");
  return c;
}

Config Config::from_file(const std::string& path) {
  return parse(io::ConfigReader::from_file(path));
}

// =============================================================================================
// Weights (§A.4)
// =============================================================================================

namespace {

bool starts_with(const std::string& s, const char* p) {
  return s.rfind(p, 0) == 0;
}

struct Towers {
  bool text = false, vision = false;
};

Towers find_towers(const io::Checkpoint& ckpt) {
  Towers t;
  for (const io::TensorInfo& info : ckpt.tensors()) {
    if (starts_with(info.name, "text_model.") || starts_with(info.name, "text_projection.")) {
      t.text = true;
    }
    if (starts_with(info.name, "vision_model.") || starts_with(info.name, "visual_projection.")) {
      t.vision = true;
    }
  }
  return t;
}

io::NameMap name_map() {
  io::NameMap names;
  // Buffers of older transformers versions (int64 position ids): never weights.
  names.ignore("text_model.embeddings.position_ids").ignore("vision_model.embeddings.position_ids");
  return names;
}

nn::PreLnBlockDims text_dims(const Config& c) {
  return {c.text.hidden_size, c.text.num_attention_heads, c.text.intermediate_size};
}
nn::PreLnBlockDims vision_dims(const Config& c) {
  return {c.vision.hidden_size, c.vision.num_attention_heads, c.vision.intermediate_size};
}
std::string text_layer(std::int64_t i) {
  return str_cat("text_model.encoder.layers.", i);
}
std::string vision_layer(std::int64_t i) {
  return str_cat("vision_model.encoder.layers.", i);
}

nn::WeightList expected_weights(const Config& c, const Towers& towers) {
  const std::int64_t Dt = c.text.hidden_size, Dv = c.vision.hidden_size, E = c.projection_dim;
  const std::int64_t P = c.vision.patch_size;
  nn::WeightList w;
  if (towers.text) {
    nn::Embedding::expect(w, "text_model.embeddings.token_embedding", c.text.vocab_size, Dt);
    nn::Embedding::expect(w, "text_model.embeddings.position_embedding",
                          c.text.max_position_embeddings, Dt);
    for (std::int64_t i = 0; i < c.text.num_hidden_layers; ++i) {
      nn::PreLnBlock::expect(w, text_layer(i), text_dims(c), nn::PreLnBlockNames::hf_clip());
    }
    nn::LayerNorm::expect(w, "text_model.final_layer_norm", Dt);
    nn::Linear::expect(w, "text_projection", Dt, E, /*bias=*/false);
  }
  if (towers.vision) {
    w.push_back({"vision_model.embeddings.class_embedding", {Dv}});
    w.push_back(
        {"vision_model.embeddings.patch_embedding.weight", {Dv, c.vision.num_channels, P, P}});
    nn::Embedding::expect(w, "vision_model.embeddings.position_embedding", c.image_tokens(), Dv);
    nn::LayerNorm::expect(w, "vision_model.pre_layrnorm", Dv);
    for (std::int64_t i = 0; i < c.vision.num_hidden_layers; ++i) {
      nn::PreLnBlock::expect(w, vision_layer(i), vision_dims(c), nn::PreLnBlockNames::hf_clip());
    }
    nn::LayerNorm::expect(w, "vision_model.post_layernorm", Dv);
    nn::Linear::expect(w, "visual_projection", Dv, E, /*bias=*/false);
  }
  w.push_back({"logit_scale", {}, /*required=*/false});
  return w;
}

Tensor f32(const Shape& shape) {
  return Tensor::empty(DType::F32, shape);
}

std::int64_t id_at(const Tensor& ids, std::int64_t i) {
  return ids.dtype() == DType::I64 ? ids.data<std::int64_t>()[i] : ids.data<std::int32_t>()[i];
}

}  // namespace

struct ClipModel::Impl {
  Config config;
  Towers towers;
  std::vector<std::string> unused;
  float logit_scale = 0.0f;
  bool has_logit_scale = false;

  // Text tower (§A.3.2).
  nn::Embedding token_embedding, text_positions;
  std::vector<nn::PreLnBlock> text_layers;
  nn::LayerNorm final_layer_norm;
  nn::Linear text_projection;
  // Vision tower (§A.3.1).
  Tensor class_embedding;      // [Dv]
  nn::Linear patch_embedding;  // conv weight [Dv, C, P, P] seen as [Dv, C*P*P], no bias
  nn::Embedding vision_positions;
  nn::LayerNorm pre_layrnorm, post_layernorm;
  // encode_image runs the last one on every token, image_features() on the class token's row
  // only (PreLnBlock::forward_first_token), since nothing else of its output is pooled.
  std::vector<nn::PreLnBlock> vision_layers;
  nn::Linear visual_projection;

  Impl(const Config& c, const io::Checkpoint& ckpt, const io::LoadOptions& options);

  void text_embeddings(const Tensor& ids, Tensor& out) const;
  void vision_embeddings(const Tensor& pixels, Tensor& out, nn::Scratch& scratch) const;
  // Embeddings, pre_layrnorm and every layer but the last: [B, T, Dv].
  Tensor vision_trunk(const Tensor& pixels, nn::Scratch& scratch, const StageReporter& stage) const;
  void require(bool tower, const char* what) const;
};

ClipModel::Impl::Impl(const Config& c, const io::Checkpoint& ckpt, const io::LoadOptions& options)
    : config(c) {
  towers = find_towers(ckpt);
  MMEMBED_CHECK(towers.text || towers.vision, FormatError, ckpt.path(),
                ": not a CLIP checkpoint (no text_model.* and no vision_model.* tensors)");
  nn::WeightList one_layer;
  nn::PreLnBlock::expect(one_layer, text_layer(0), text_dims(c), nn::PreLnBlockNames::hf_clip());
  if (towers.text) {
    io::check_layer_count(ckpt, "text_config.num_hidden_layers", c.text.num_hidden_layers,
                          one_layer.size());
  }
  if (towers.vision) {
    io::check_layer_count(ckpt, "vision_config.num_hidden_layers", c.vision.num_hidden_layers,
                          one_layer.size());
  }
  io::BoundWeights w = io::bind_weights(ckpt, expected_weights(c, towers), name_map());
  w.set_matrix_dtype(options.matrix_dtype);
  unused = w.unused();
  if (w.has("logit_scale")) {
    logit_scale = w.get_f32("logit_scale").data<float>()[0];
    has_logit_scale = true;
  } else {
    logit_scale = static_cast<float>(c.logit_scale_init_value);
  }

  if (towers.text) {
    const float eps = static_cast<float>(c.text.layer_norm_eps);
    const nn::Activation act = nn::parse_activation(c.text.hidden_act, "text_config.hidden_act");
    token_embedding = nn::Embedding(w, "text_model.embeddings.token_embedding");
    text_positions = nn::Embedding(w, "text_model.embeddings.position_embedding");
    for (std::int64_t i = 0; i < c.text.num_hidden_layers; ++i) {
      text_layers.emplace_back(w, text_layer(i), text_dims(c), nn::PreLnBlockNames::hf_clip(), act,
                               eps);
    }
    final_layer_norm = nn::LayerNorm(w, "text_model.final_layer_norm", eps);
    text_projection = nn::Linear(w, "text_projection");
  }
  if (towers.vision) {
    const float eps = static_cast<float>(c.vision.layer_norm_eps);
    const nn::Activation act =
        nn::parse_activation(c.vision.hidden_act, "vision_config.hidden_act");
    class_embedding = w.get_f32("vision_model.embeddings.class_embedding");
    Tensor conv = w.get_f32("vision_model.embeddings.patch_embedding.weight");
    patch_embedding = nn::Linear(conv.reshape({conv.dim(0), -1}), std::nullopt);
    vision_positions = nn::Embedding(w, "vision_model.embeddings.position_embedding");
    pre_layrnorm = nn::LayerNorm(w, "vision_model.pre_layrnorm", eps);
    for (std::int64_t i = 0; i < c.vision.num_hidden_layers; ++i) {
      vision_layers.emplace_back(w, vision_layer(i), vision_dims(c), nn::PreLnBlockNames::hf_clip(),
                                 act, eps);
    }
    post_layernorm = nn::LayerNorm(w, "vision_model.post_layernorm", eps);
    visual_projection = nn::Linear(w, "visual_projection");
  }
}

void ClipModel::Impl::require(bool tower, const char* what) const {
  MMEMBED_CHECK(tower, Unsupported, "clip: this checkpoint has no ", what,
                " tower (it was saved from a one-tower class); ", what,
                " inputs cannot be embedded with it");
}

// =============================================================================================
// Inputs
// =============================================================================================

namespace {

struct TextInput {
  Tensor ids;
  std::optional<Tensor> mask;
  std::int64_t batch = 0, length = 0;
};

TextInput check_text(const Config& c, const Tensor& ids, const std::optional<Tensor>& mask) {
  MMEMBED_CHECK(ids.dtype() == DType::I64 || ids.dtype() == DType::I32, InvalidArgument,
                "clip: input_ids must be i64 or i32, got ", ids.describe());
  MMEMBED_CHECK(ids.rank() == 2 && ids.dim(0) >= 1 && ids.dim(1) >= 1, InvalidArgument,
                "clip: input_ids must be [batch, length] with both >= 1, got ",
                shape_str(ids.shape()));
  MMEMBED_CHECK(ids.dim(1) <= c.text.max_position_embeddings, InvalidArgument,
                "clip: input_ids has ", ids.dim(1), " positions but the text tower has ",
                c.text.max_position_embeddings,
                " (text_config.max_position_embeddings); truncate the text");
  if (mask) {
    MMEMBED_CHECK(mask->shape() == ids.shape(), InvalidArgument, "clip: attention_mask ",
                  shape_str(mask->shape()), " does not match input_ids ", shape_str(ids.shape()));
  }
  return {ids, mask, ids.dim(0), ids.dim(1)};
}

void check_pixels(const Config& c, const Tensor& pixels) {
  const std::int64_t S = c.vision.image_size;
  MMEMBED_CHECK(pixels.dtype() == DType::F32 && pixels.rank() == 4 && pixels.dim(0) >= 1 &&
                    pixels.dim(1) == c.vision.num_channels && pixels.dim(2) == S &&
                    pixels.dim(3) == S,
                InvalidArgument, "clip: pixel_values must be f32[batch,", c.vision.num_channels,
                ",", S, ",", S, "] (vision_config.image_size; position interpolation is not ",
                "supported), got ", pixels.describe());
}

}  // namespace

// =============================================================================================
// Towers
// =============================================================================================

// §A.3.2 step 1: token_embedding[id] + position_embedding[t].
void ClipModel::Impl::text_embeddings(const Tensor& ids, Tensor& out) const {
  const std::int64_t B = ids.dim(0), L = ids.dim(1), D = config.text.hidden_size;
  float* dst = out.data<float>();
  for (std::int64_t b = 0; b < B; ++b) {
    for (std::int64_t t = 0; t < L; ++t, dst += D) {
      const std::int64_t id = id_at(ids, b * L + t);
      MMEMBED_CHECK(id >= 0 && id < token_embedding.num(), InvalidArgument, "clip: input_ids[", b,
                    ",", t, "] = ", id, " is outside the vocabulary [0, ", token_embedding.num(),
                    ")");
      const float* word = token_embedding.row(id);
      const float* position = text_positions.row(t);
      for (std::int64_t j = 0; j < D; ++j)
        dst[j] = word[j] + position[j];
    }
  }
}

// §A.3.1 steps 1-3: the stride-P patch convolution of the whole batch as one GEMM (im2col in the
// weight's (channel, ky, kx) order), then [class | patches] + positions.
void ClipModel::Impl::vision_embeddings(const Tensor& pixels, Tensor& out,
                                        nn::Scratch& scratch) const {
  const std::int64_t B = pixels.dim(0), C = pixels.dim(1), S = pixels.dim(2);
  const std::int64_t P = config.vision.patch_size, G = config.grid(), N = G * G;
  const std::int64_t D = config.vision.hidden_size, K = C * P * P;
  // Scratch slots 7 and 8 (the encoder blocks use 0..6 later; nothing here outlives this call).
  Tensor patches = scratch.get(7, {B * N, K});
  float* row = patches.data<float>();
  for (std::int64_t b = 0; b < B; ++b) {
    const float* img = pixels.data<float>() + b * C * S * S;
    for (std::int64_t gy = 0; gy < G; ++gy) {
      for (std::int64_t gx = 0; gx < G; ++gx) {
        for (std::int64_t c = 0; c < C; ++c) {
          for (std::int64_t ky = 0; ky < P; ++ky, row += P) {
            const float* src = img + (c * S + gy * P + ky) * S + gx * P;
            std::copy(src, src + P, row);
          }
        }
      }
    }
  }
  Tensor projected = scratch.get(8, {B * N, D});
  patch_embedding.forward(patches, projected);
  const float* cls = class_embedding.data<float>();
  for (std::int64_t b = 0; b < B; ++b) {
    float* dst = out.data<float>() + b * (N + 1) * D;
    const float* pos = vision_positions.row(0);
    for (std::int64_t j = 0; j < D; ++j)
      dst[j] = cls[j] + pos[j];
    for (std::int64_t t = 1; t <= N; ++t) {
      const float* patch = projected.data<float>() + (b * N + t - 1) * D;
      pos = vision_positions.row(t);
      for (std::int64_t j = 0; j < D; ++j)
        dst[t * D + j] = patch[j] + pos[j];
    }
  }
}

Tensor ClipModel::Impl::vision_trunk(const Tensor& pixels, nn::Scratch& scratch,
                                     const StageReporter& stage) const {
  const std::int64_t B = pixels.dim(0), T = config.image_tokens(), D = config.vision.hidden_size;
  Tensor X = f32({B, T, D}), Y = f32({B, T, D});
  vision_embeddings(pixels, Y, scratch);
  stage("vision/embeddings", Y);
  pre_layrnorm.forward(Y, X);
  stage("vision/pre_layrnorm", X);
  // One part of the batch per thread when it is large enough (nn::batch_parts); with a hook
  // every stage is reported whole, so the batch runs as one part.
  const std::size_t layers = vision_layers.empty() ? 0 : vision_layers.size() - 1;
  const std::int64_t parts = stage.active() ? 1 : nn::batch_parts(B, T);
  nn::run_layers_in_parts(
      X, Y, parts, layers,
      [&](std::size_t l, std::int64_t, std::int64_t, const Tensor& x, Tensor& y, nn::Scratch& s) {
        vision_layers[l].forward(x, {}, y, s);
        stage(str_cat("vision/layer_", l), y);
      },
      &scratch);
  return X;
}

Tensor ClipModel::pool_positions(const Tensor& input_ids) const {
  const Config& c = impl_->config;
  MMEMBED_CHECK(
      (input_ids.dtype() == DType::I64 || input_ids.dtype() == DType::I32) && input_ids.rank() == 2,
      InvalidArgument, "clip: input_ids must be i64/i32 [batch, length], got ",
      input_ids.describe());
  const std::int64_t B = input_ids.dim(0), L = input_ids.dim(1);
  Tensor out = Tensor::empty(DType::I64, {B});
  for (std::int64_t b = 0; b < B; ++b) {
    std::int64_t best = 0;
    if (c.legacy_eos_rule()) {  // argmax: the first position of the largest id
      for (std::int64_t t = 1; t < L; ++t) {
        if (id_at(input_ids, b * L + t) > id_at(input_ids, b * L + best)) best = t;
      }
    } else {  // the first eos_token_id; 0 when absent (the reference's argmax of a zero row)
      for (std::int64_t t = 0; t < L; ++t) {
        if (id_at(input_ids, b * L + t) == c.text.eos_token_id) {
          best = t;
          break;
        }
      }
    }
    out.data<std::int64_t>()[b] = best;
  }
  return out;
}

TextOutput ClipModel::encode_text(const Tensor& input_ids,
                                  const std::optional<Tensor>& attention_mask,
                                  const RunOptions& options) const {
  const Impl& m = *impl_;
  m.require(m.towers.text, "text");
  const Config& c = m.config;
  const TextInput in = check_text(c, input_ids, attention_mask);
  const StageReporter stage(options.on_stage);
  const std::int64_t B = in.batch, L = in.length, D = c.text.hidden_size;

  Tensor X = f32({B, L, D}), Y = f32({B, L, D});
  m.text_embeddings(in.ids, X);
  stage("text/embeddings", X);
  // One part of the batch per thread when it is large enough (nn::batch_parts); with a hook
  // every stage is reported whole, so the batch runs as one part.
  const std::int64_t parts = stage.active() ? 1 : nn::batch_parts(B, L);
  nn::run_layers_in_parts(X, Y, parts, m.text_layers.size(),
                          [&](std::size_t l, std::int64_t b0, std::int64_t b1, const Tensor& x,
                              Tensor& y, nn::Scratch& s) {
                            ops::AttentionOptions attention;
                            attention.causal = true;
                            if (in.mask) attention.key_padding_mask = in.mask->slice_rows(b0, b1);
                            m.text_layers[l].forward(x, attention, y, s);
                            stage(str_cat("text/layer_", l), y);
                          });
  TextOutput out;
  m.final_layer_norm.forward(X, X);  // every position, as the reference's last_hidden_state
  out.last_hidden_state = X;
  stage("text/final_layer_norm", X);

  out.pool_index = pool_positions(in.ids);
  stage("eos_pool_index", out.pool_index);
  out.pooler_output = f32({B, D});
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t t = out.pool_index.data<std::int64_t>()[b];
    const float* src = X.data<float>() + (b * L + t) * D;
    std::copy(src, src + D, out.pooler_output.data<float>() + b * D);
  }
  stage("text_pooler_output", out.pooler_output);
  out.features = m.text_projection.forward(out.pooler_output);
  stage("text_features", out.features);
  return out;
}

VisionOutput ClipModel::encode_image(const Tensor& pixel_values, const RunOptions& options) const {
  const Impl& m = *impl_;
  m.require(m.towers.vision, "vision");
  const Config& c = m.config;
  check_pixels(c, pixel_values);
  const StageReporter stage(options.on_stage);
  const std::int64_t B = pixel_values.dim(0), D = c.vision.hidden_size;
  nn::Scratch scratch;

  Tensor X = m.vision_trunk(pixel_values, scratch, stage);
  if (!m.vision_layers.empty()) {
    Tensor Y = f32(X.shape());
    m.vision_layers.back().forward(X, {}, Y, scratch);
    X = Y;
    stage(str_cat("vision/layer_", m.vision_layers.size() - 1), X);
  }
  VisionOutput out;
  out.last_hidden_state = X;
  out.pooler_output = f32({B, D});
  nn::gather_token(X, 0, out.pooler_output);
  m.post_layernorm.forward(out.pooler_output, out.pooler_output);
  stage("vision/post_layernorm", out.pooler_output);
  stage("vision_pooler_output", out.pooler_output);
  out.features = m.visual_projection.forward(out.pooler_output);
  stage("image_features", out.features);
  return out;
}

Tensor ClipModel::text_features(const Tensor& input_ids,
                                const std::optional<Tensor>& attention_mask,
                                const RunOptions& options) const {
  return encode_text(input_ids, attention_mask, options).features;
}

// get_image_features: only the class token's row of the last layer's output is pooled, so that
// layer runs its queries, attention output, MLP and residuals on that row alone. With stages
// requested (a hook or MMEMBED_DUMP), the full encode_image instead, which reports every one.
Tensor ClipModel::image_features(const Tensor& pixel_values, const RunOptions& options) const {
  const StageReporter stage(options.on_stage);
  if (stage.active()) return encode_image(pixel_values, options).features;
  const Impl& m = *impl_;
  m.require(m.towers.vision, "vision");
  check_pixels(m.config, pixel_values);
  const std::int64_t B = pixel_values.dim(0), D = m.config.vision.hidden_size;
  nn::Scratch scratch;
  const Tensor X = m.vision_trunk(pixel_values, scratch, stage);
  Tensor pooled = f32({B, D});
  if (!m.vision_layers.empty()) {
    Tensor cls = f32({B, 1, D});
    m.vision_layers.back().forward_first_token(X, {}, cls, scratch);
    pooled = cls.reshape({B, D});
  } else {
    nn::gather_token(X, 0, pooled);
  }
  m.post_layernorm.forward(pooled, pooled);
  return m.visual_projection.forward(pooled);
}

Tensor scaled_cosine_logits(const Tensor& a, const Tensor& b, float logit_scale) {
  Tensor logits = ops::linear(a, b);  // a @ b^T
  const float scale = std::exp(logit_scale);
  float* p = logits.data<float>();
  for (std::int64_t i = 0; i < logits.numel(); ++i)
    p[i] *= scale;
  return logits;
}

ClipOutput ClipModel::forward(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                              const Tensor& pixel_values, const RunOptions& options) const {
  // Validate both inputs before running either tower.
  impl_->require(impl_->towers.text, "text");
  impl_->require(impl_->towers.vision, "vision");
  check_text(impl_->config, input_ids, attention_mask);
  check_pixels(impl_->config, pixel_values);
  const StageReporter stage(options.on_stage);
  ClipOutput out;
  out.vision = encode_image(pixel_values, options);
  out.text = encode_text(input_ids, attention_mask, options);
  out.image_embeds = ops::l2_normalize(out.vision.features);
  out.text_embeds = ops::l2_normalize(out.text.features);
  stage("text_embeds", out.text_embeds);
  stage("image_embeds", out.image_embeds);
  // logits_per_text = scale * text @ image^T; logits_per_image is its transpose.
  out.logits_per_text = scaled_cosine_logits(out.text_embeds, out.image_embeds, impl_->logit_scale);
  const std::int64_t Bt = out.logits_per_text.dim(0), Bi = out.logits_per_text.dim(1);
  out.logits_per_image = f32({Bi, Bt});
  for (std::int64_t i = 0; i < Bi; ++i) {
    for (std::int64_t t = 0; t < Bt; ++t) {
      out.logits_per_image.data<float>()[i * Bt + t] =
          out.logits_per_text.data<float>()[t * Bi + i];
    }
  }
  stage("logits_per_image", out.logits_per_image);
  stage("logits_per_text", out.logits_per_text);
  return out;
}

// =============================================================================================
// Construction and accessors
// =============================================================================================

ClipModel::ClipModel(const Config& config, const io::Checkpoint& checkpoint,
                     const io::LoadOptions& options)
    : impl_(std::make_shared<const Impl>(config, checkpoint, options)) {}

ClipModel ClipModel::load(const std::string& model_dir, const io::LoadOptions& options) {
  return ClipModel(Config::from_file(model_dir + "/config.json"), io::open_checkpoint(model_dir),
                   options);
}

ClipModel ClipModel::load(const std::string& config_json_path, const std::string& weights_path,
                          const io::LoadOptions& options) {
  return ClipModel(Config::from_file(config_json_path), io::open_checkpoint(weights_path), options);
}

const Config& ClipModel::config() const {
  return impl_->config;
}
bool ClipModel::has_text_tower() const {
  return impl_->towers.text;
}
bool ClipModel::has_vision_tower() const {
  return impl_->towers.vision;
}
float ClipModel::logit_scale() const {
  return impl_->logit_scale;
}
bool ClipModel::has_logit_scale() const {
  return impl_->has_logit_scale;
}
const std::vector<std::string>& ClipModel::unused_weights() const {
  return impl_->unused;
}

}  // namespace mmembed::models::clip
