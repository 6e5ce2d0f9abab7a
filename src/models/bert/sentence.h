// sentence-transformers models of the BERT family: the module list of a saved
// `SentenceTransformer` folder (modules.json), its Pooling module (1_Pooling/config.json) and
// the Normalize module, on top of models::bert::BertModel.
//
//   auto st = models::bert::SentenceModel::load("all-MiniLM-L6-v2/");
//   Tensor e = st.encode(input_ids, attention_mask, token_type_ids);   // [B, D]
//   st.config().max_seq_length                                         // 256 for MiniLM-L6
//
// Supported module lists: Transformer (BERT) -> Pooling -> [Normalize]. Pooling modes: cls,
// max, mean, mean_sqrt_len_tokens, lasttoken, several at once concatenated in the library's
// order (cls, max, mean, mean_sqrt_len, lasttoken). Other modules (Dense, LayerNorm, ...) and
// weightedmean are refused with Unsupported naming the file and the module.
// The tokenizer is not part of this class: it is loaded from the Transformer module's folder
// (the model root for ordinary saves) with max_seq_length as the length limit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/tensor.h"
#include "models/bert/bert.h"

namespace mmembed::models::bert {

struct PoolingConfig {
  bool cls = false;
  bool max = false;
  bool mean = false;
  bool mean_sqrt_len = false;
  bool last_token = false;
  std::int64_t word_embedding_dimension = 0;  // 0 when the file does not say

  // From the text of 1_Pooling/config.json (`source` names it in errors). Both spellings
  // of the format are read: the pooling_mode_* booleans and the newer single "pooling_mode"
  // string. FormatError on malformed JSON, Unsupported for weightedmean, InvalidArgument when
  // no mode is on.
  static PoolingConfig parse(const std::string& json_text, const std::string& source);
  // Number of modes on (the output is that many times the hidden size wide).
  int modes() const;
  std::string describe() const;  // e.g. "mean", "cls+mean"
};

// Pools token embeddings h [B, L, H] under mask [B, L] (nonzero = real; none = all real) into
// [B, modes * H] exactly as sentence_transformers.models.Pooling computes it in float32:
//   cls: h[:, 0]; max: max over real tokens (masked tokens count as -1e9);
//   mean: sum(h * m) / max(sum(m), 1e-9); mean_sqrt_len: sum(h * m) / sqrt(max(sum(m), 1e-9));
//   lasttoken: the last real token (the row's last position with m != 0; position 0 if none).
Tensor pool(const PoolingConfig& config, const Tensor& hidden,
            const std::optional<Tensor>& attention_mask);

struct SentenceConfig {
  std::string transformer_dir;  // the folder of the Transformer module (config, weights, tokenizer)
  PoolingConfig pooling;
  bool normalize = false;        // a Normalize module follows the pooling
  std::int64_t max_seq_length = 0;  // sentence_bert_config.json; 0 when absent
  bool do_lower_case = false;       // sentence_bert_config.json (lower-cases text before tokenizing)

  // Reads <dir>/modules.json and the module folders. IoError for missing files, FormatError for
  // malformed ones, Unsupported for module types this build does not run.
  static SentenceConfig from_dir(const std::string& dir);
};

class SentenceModel {
 public:
  static SentenceModel load(const std::string& dir);
  SentenceModel(SentenceConfig config, BertModel encoder);

  const SentenceConfig& config() const { return config_; }
  const BertModel& encoder() const { return encoder_; }
  // Output width: pooling modes * hidden size.
  std::int64_t dim() const;

  // Transformer -> Pooling -> [Normalize]: [B, dim()] f32. Stages (on top of BertModel's):
  // "pooled" (the Pooling output) and "sentence_embedding" (the final output).
  Tensor encode(const Tensor& input_ids, const std::optional<Tensor>& attention_mask,
                const std::optional<Tensor>& token_type_ids, const RunOptions& options = {}) const;

 private:
  SentenceConfig config_;
  BertModel encoder_;
};

}  // namespace mmembed::models::bert
