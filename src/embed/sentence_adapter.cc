// sentence-transformers (BERT family) behind the Embedder: WordPiece tokenizer from the
// Transformer module's folder, limited to max_seq_length, + models::bert::SentenceModel
// (Transformer -> Pooling -> [Normalize]). Texts only.
#include <algorithm>

#include "core/check.h"
#include "embed/adapter.h"
#include "embed/token_batch.h"
#include "mmembed/error.h"
#include "models/bert/sentence.h"
#include "text/tokenizer.h"

namespace mmembed::embed {
namespace {

namespace bert = models::bert;

bert::SentenceModel load_model(const ModelFolder& folder, const EmbedderOptions& options) {
  bert::SentenceConfig config = bert::SentenceConfig::from_dir(folder.dir);
  MMEMBED_CHECK(!config.do_lower_case, Unsupported, config.transformer_dir,
                "/sentence_bert_config.json: do_lower_case = true (lower-casing the text before "
                "the tokenizer) is not supported");
  // The folder's config.json is the Transformer's when the module sits at the root.
  const bool at_root = config.transformer_dir == folder.dir;
  bert::Config encoder_config =
      at_root ? bert::Config::parse(folder.config)
              : bert::Config::from_file(config.transformer_dir + "/config.json");
  bert::BertModel encoder(encoder_config, io::open_checkpoint(config.transformer_dir),
                          load_options(options));
  return bert::SentenceModel(std::move(config), std::move(encoder));
}

class SentenceAdapter final : public ModelAdapter {
 public:
  SentenceAdapter(const ModelFolder& folder, const EmbedderOptions& options)
      : options_(options), model_(load_model(folder, options)) {
    const bert::SentenceConfig& c = model_.config();
    // sentence-transformers: max_seq_length from sentence_bert_config.json, else the
    // tokenizer's model_max_length; never more than the position table.
    text::LoadOptions load;
    load.max_length = static_cast<std::size_t>(c.max_seq_length);
    tokenizer_ = text::load_tokenizer(c.transformer_dir, load);
    max_tokens_ =
        std::min(tokenizer_->max_length(),
                 static_cast<std::size_t>(model_.encoder().config().max_position_embeddings));
    info_.family = "sentence-transformers";
    info_.model_type = "bert";
    info_.path = folder.dir;
    info_.dim = static_cast<std::size_t>(model_.dim());
    info_.max_text_tokens = max_tokens_;
    info_.text = true;
    info_.unsupported_reason = "a sentence-transformers text model embeds texts only";
  }

  const ModelInfo& info() const override { return info_; }

  Embeddings embed_texts(std::span<const std::string> texts) const override {
    const TokenBatch t = tokenize_batch(*tokenizer_, texts, max_tokens_, options_.text_overflow);
    Embeddings e = to_embeddings(model_.encode(t.ids, t.mask, t.types));
    e.truncated_tokens = t.truncated;
    return e;
  }

 private:
  EmbedderOptions options_;
  bert::SentenceModel model_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  ModelInfo info_;
  std::size_t max_tokens_ = 0;
};

}  // namespace

std::unique_ptr<ModelAdapter> make_sentence_adapter(const ModelFolder& folder,
                                                    const EmbedderOptions& options) {
  return std::make_unique<SentenceAdapter>(folder, options);
}

}  // namespace mmembed::embed
