// BertModel: configuration, weights, embeddings, post-LN encoder, pooler (transformers 4.44.2
// modeling_bert, eval mode).
#include "models/bert/bert.h"

#include <algorithm>

#include "core/check.h"
#include "io/weight_map.h"
#include "models/stages.h"
#include "nn/layers.h"
#include "ops/ops.h"

namespace mmembed::models::bert {

using nn::join;

Config Config::parse(const io::ConfigReader& cfg) {
  Config c;
  const std::string src = cfg.source();
  if (auto type = cfg.get<std::string>("model_type")) {
    MMEMBED_CHECK(*type == "bert", Unsupported, src, ": model_type '", *type,
                  "' is not supported as a sentence-transformers encoder (supported: bert)");
  }
  c.vocab_size = cfg.optional<std::int64_t>("vocab_size", c.vocab_size);
  c.hidden_size = cfg.optional<std::int64_t>("hidden_size", c.hidden_size);
  c.num_hidden_layers = cfg.optional<std::int64_t>("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = cfg.optional<std::int64_t>("num_attention_heads", c.num_attention_heads);
  c.intermediate_size = cfg.optional<std::int64_t>("intermediate_size", c.intermediate_size);
  c.hidden_act = cfg.optional<std::string>("hidden_act", c.hidden_act);
  c.max_position_embeddings =
      cfg.optional<std::int64_t>("max_position_embeddings", c.max_position_embeddings);
  c.type_vocab_size = cfg.optional<std::int64_t>("type_vocab_size", c.type_vocab_size);
  c.layer_norm_eps = cfg.optional<double>("layer_norm_eps", c.layer_norm_eps);
  c.pad_token_id = cfg.optional<std::int64_t>("pad_token_id", c.pad_token_id);
  if (auto pe = cfg.get<std::string>("position_embedding_type")) {
    MMEMBED_CHECK(*pe == "absolute", Unsupported, src, ": position_embedding_type '", *pe,
                  "' is not supported (only 'absolute')");
  }
  MMEMBED_CHECK(
      c.num_attention_heads > 0 && c.hidden_size > 0 && c.hidden_size % c.num_attention_heads == 0,
      InvalidArgument, src, ": hidden_size ", c.hidden_size,
      " is not a multiple of num_attention_heads ", c.num_attention_heads);
  MMEMBED_CHECK(c.vocab_size > 0 && c.max_position_embeddings > 0 && c.type_vocab_size > 0 &&
                    c.intermediate_size > 0 && c.num_hidden_layers >= 0,
                InvalidArgument, src,
                ": vocab_size, max_position_embeddings, type_vocab_size, intermediate_size must "
                "be positive and num_hidden_layers >= 0");
  nn::parse_activation(c.hidden_act, src + ": hidden_act");
  return c;
}

Config Config::from_file(const std::string& path) {
  return parse(io::ConfigReader::from_file(path));
}

namespace {

bool has_pooler_weights(const io::Checkpoint& ckpt) {
  return ckpt.contains("pooler.dense.weight") || ckpt.contains("bert.pooler.dense.weight");
}

io::NameMap name_map() {
  io::NameMap names;
  names.ignore("embeddings.position_ids")
      .ignore("bert.embeddings.position_ids")
      .ignore("cls.")  // pre-training heads of BertForPreTraining / BertForMaskedLM
      .rename_prefix("bert.", "");
  return names;
}

nn::BertDims dims(const Config& c) {
  return {c.hidden_size, c.num_attention_heads, c.intermediate_size};
}
std::string layer(std::int64_t i) {
  return str_cat("encoder.layer.", i);
}

nn::WeightList expected_weights(const Config& c, bool pooler) {
  nn::WeightList w;
  nn::Embedding::expect(w, "embeddings.word_embeddings", c.vocab_size, c.hidden_size);
  nn::Embedding::expect(w, "embeddings.position_embeddings", c.max_position_embeddings,
                        c.hidden_size);
  nn::Embedding::expect(w, "embeddings.token_type_embeddings", c.type_vocab_size, c.hidden_size);
  nn::LayerNorm::expect(w, "embeddings.LayerNorm", c.hidden_size);
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i)
    nn::BertLayer::expect(w, layer(i), dims(c));
  if (pooler) nn::Linear::expect(w, "pooler.dense", c.hidden_size, c.hidden_size);
  return w;
}

std::int64_t int_at(const Tensor& t, std::int64_t i) {
  return t.dtype() == DType::I64 ? t.data<std::int64_t>()[i] : t.data<std::int32_t>()[i];
}

}  // namespace

struct BertModel::Impl {
  Config config;
  bool pooler = false;
  std::vector<std::string> unused;
  nn::Embedding words, positions, token_types;
  nn::LayerNorm embeddings_norm;
  std::vector<nn::BertLayer> layers;
  nn::Linear pooler_dense;

  Impl(const Config& c, const io::Checkpoint& ckpt, const io::LoadOptions& options) : config(c) {
    pooler = has_pooler_weights(ckpt);
    nn::WeightList one_layer;
    nn::BertLayer::expect(one_layer, layer(0), dims(c));
    io::check_layer_count(ckpt, "num_hidden_layers", c.num_hidden_layers, one_layer.size());
    io::BoundWeights w = io::bind_weights(ckpt, expected_weights(c, pooler), name_map());
    w.set_matrix_dtype(options.matrix_dtype);
    unused = w.unused();
    const float eps = static_cast<float>(c.layer_norm_eps);
    const nn::Activation act = nn::parse_activation(c.hidden_act, "hidden_act");
    words = nn::Embedding(w, "embeddings.word_embeddings");
    positions = nn::Embedding(w, "embeddings.position_embeddings");
    token_types = nn::Embedding(w, "embeddings.token_type_embeddings");
    embeddings_norm = nn::LayerNorm(w, "embeddings.LayerNorm", eps);
    for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
      layers.emplace_back(w, layer(i), dims(c), act, eps);
    }
    if (pooler) pooler_dense = nn::Linear(w, "pooler.dense");
  }
};

BertModel::BertModel(const Config& config, const io::Checkpoint& checkpoint,
                     const io::LoadOptions& options)
    : impl_(std::make_shared<const Impl>(config, checkpoint, options)) {}

BertModel BertModel::load(const std::string& model_dir, const io::LoadOptions& options) {
  return BertModel(Config::from_file(model_dir + "/config.json"), io::open_checkpoint(model_dir),
                   options);
}

const Config& BertModel::config() const {
  return impl_->config;
}
bool BertModel::has_pooler() const {
  return impl_->pooler;
}
const std::vector<std::string>& BertModel::unused_weights() const {
  return impl_->unused;
}

BertOutput BertModel::forward(const Tensor& ids, const std::optional<Tensor>& mask,
                              const std::optional<Tensor>& types, const RunOptions& options) const {
  const Impl& m = *impl_;
  const Config& c = m.config;
  MMEMBED_CHECK(ids.dtype() == DType::I64 || ids.dtype() == DType::I32, InvalidArgument,
                "bert: input_ids must be i64 or i32, got ", ids.describe());
  MMEMBED_CHECK(ids.rank() == 2 && ids.dim(0) >= 1 && ids.dim(1) >= 1, InvalidArgument,
                "bert: input_ids must be [batch, length] with both >= 1, got ",
                shape_str(ids.shape()));
  const std::int64_t B = ids.dim(0), L = ids.dim(1), H = c.hidden_size;
  MMEMBED_CHECK(L <= c.max_position_embeddings, InvalidArgument, "bert: input_ids has ", L,
                " positions but the model has ", c.max_position_embeddings,
                " (max_position_embeddings); truncate the text");
  if (mask) {
    MMEMBED_CHECK(mask->shape() == ids.shape(), InvalidArgument, "bert: attention_mask ",
                  shape_str(mask->shape()), " does not match input_ids ", shape_str(ids.shape()));
  }
  if (types) {
    MMEMBED_CHECK(types->shape() == ids.shape() &&
                      (types->dtype() == DType::I64 || types->dtype() == DType::I32),
                  InvalidArgument, "bert: token_type_ids must be i64/i32 shaped like input_ids ",
                  shape_str(ids.shape()), ", got ", types->describe());
  }
  const StageReporter stage(options.on_stage);

  // Embeddings: LayerNorm((word[id] + type[tt]) + position[t]), positions 0..L-1.
  Tensor X = Tensor::empty(DType::F32, {B, L, H}), Y = Tensor::empty(DType::F32, {B, L, H});
  float* dst = X.data<float>();
  for (std::int64_t b = 0; b < B; ++b) {
    for (std::int64_t t = 0; t < L; ++t, dst += H) {
      const std::int64_t id = int_at(ids, b * L + t);
      const std::int64_t tt = types ? int_at(*types, b * L + t) : 0;
      MMEMBED_CHECK(id >= 0 && id < m.words.num(), InvalidArgument, "bert: input_ids[", b, ",", t,
                    "] = ", id, " is outside the vocabulary [0, ", m.words.num(), ")");
      MMEMBED_CHECK(tt >= 0 && tt < m.token_types.num(), InvalidArgument, "bert: token_type_ids[",
                    b, ",", t, "] = ", tt, " is outside [0, ", m.token_types.num(), ")");
      const float* word = m.words.row(id);
      const float* type = m.token_types.row(tt);
      const float* pos = m.positions.row(t);
      for (std::int64_t j = 0; j < H; ++j)
        dst[j] = (word[j] + type[j]) + pos[j];
    }
  }
  m.embeddings_norm.forward(X, X);
  stage("hidden_states_0", X);

  // The layers, one part of the batch per thread when it is large enough (nn::batch_parts): each
  // part's rows of X and Y; with a hook every stage is reported whole, so the batch runs as one.
  const std::int64_t parts = stage.active() ? 1 : nn::batch_parts(B, L);
  nn::run_layers_in_parts(X, Y, parts, m.layers.size(),
                          [&](std::size_t l, std::int64_t b0, std::int64_t b1, const Tensor& x,
                              Tensor& y, nn::Scratch& scratch) {
                            std::optional<Tensor> part_mask;
                            if (mask) part_mask = mask->slice_rows(b0, b1);
                            m.layers[l].forward(x, part_mask, y, scratch);
                            stage(str_cat("hidden_states_", l + 1), y);
                          });
  BertOutput out;
  out.last_hidden_state = X;
  stage("last_hidden_state", X);
  if (m.pooler && options.pooler) {
    Tensor cls = Tensor::empty(DType::F32, {B, H});
    nn::gather_token(X, 0, cls);
    Tensor pooled = m.pooler_dense.forward(cls);
    ops::tanh(pooled, pooled);
    stage("pooler_output", pooled);
    out.pooler_output = pooled;
  }
  return out;
}

}  // namespace mmembed::models::bert
