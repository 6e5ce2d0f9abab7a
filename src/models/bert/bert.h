// BERT encoder (Hugging Face transformers 4.44 `BertModel`), the transformer module of the
// sentence-transformers BERT family (all-MiniLM-L6-v2, multi-qa-MiniLM, paraphrase-MiniLM,
// bert-base-nli...): embeddings (word + token type + absolute position, LayerNorm), post-LN
// encoder layers, and the optional BertPooler. Pooling and normalisation of sentence-transformers
// live in models/bert/sentence.h. Dataflow and stage names: docs/models/sentence-transformers.md.
//
//   auto bert = models::bert::BertModel::load("all-MiniLM-L6-v2/");
//   models::bert::BertOutput out = bert.forward(input_ids, attention_mask, token_type_ids);
//   // out.last_hidden_state [B, L, H]; out.pooler_output [B, H] when the checkpoint has a pooler
//
// Inputs (as BertTokenizerFast produces them): input_ids [B, L] i64 (or i32),
// L <= max_position_embeddings; attention_mask [B, L] (nonzero = real token) or none;
// token_type_ids [B, L] or none (all 0).
//
// Thread safety: immutable after construction; const methods may run concurrently.
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

namespace mmembed::models::bert {

// config.json of a BertModel; defaults are BertConfig's.
struct Config {
  std::int64_t vocab_size = 30522;
  std::int64_t hidden_size = 768;
  std::int64_t num_hidden_layers = 12;
  std::int64_t num_attention_heads = 12;
  std::int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";
  std::int64_t max_position_embeddings = 512;
  std::int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  std::int64_t pad_token_id = 0;

  // model_type must be "bert" (absent is accepted); position_embedding_type must be
  // "absolute". FormatError for wrongly typed keys, Unsupported for other model types.
  static Config parse(const io::ConfigReader& config);
  static Config from_file(const std::string& config_json_path);
};

// Named intermediates: "hidden_states_0" (embeddings output), "hidden_states_<i+1>" (output of
// layer i), "last_hidden_state", "pooler_output" (when computed). Valid during the call only.
using StageHook = std::function<void(const std::string& name, const Tensor& value)>;

struct RunOptions {
  StageHook on_stage;  // or MMEMBED_DUMP (see models/stages.h)
  bool pooler = true;  // compute pooler_output when the checkpoint has the pooler
};

struct BertOutput {
  Tensor last_hidden_state;             // [B, L, H]
  std::optional<Tensor> pooler_output;  // [B, H] tanh(dense(h[:, 0]))
};

class BertModel {
 public:
  static BertModel load(const std::string& model_dir, const io::LoadOptions& options = {});
  // Binds `embeddings.*`, `encoder.layer.*` and, when present, `pooler.dense.*`; a `bert.`
  // prefix (BertFor* checkpoints) is accepted. Heads (`cls.*`) and position id buffers are
  // ignored. Throws one FormatError / ShapeError listing every problem.
  BertModel(const Config& config, const io::Checkpoint& checkpoint,
            const io::LoadOptions& options = {});

  const Config& config() const;
  bool has_pooler() const;
  const std::vector<std::string>& unused_weights() const;

  BertOutput forward(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                     const std::optional<Tensor>& token_type_ids,
                     const RunOptions& options = {}) const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace mmembed::models::bert
