// The Tokenizer implementation: one pipeline of tokenizers components (see pipeline.h),
// assembled by the loader (loader.cc) from tokenizer.json or legacy vocabulary files.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "text/pipeline.h"
#include "text/tokenizer.h"

namespace mmembed::text::detail {

struct PipelineParts {
  TokenizerKind kind = TokenizerKind::kByteLevelBpe;
  std::unique_ptr<Normalizer> normalizer;      // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;  // may be null
  std::unique_ptr<Model> model;
  std::vector<AddedToken> added_tokens;
  std::optional<SingleTemplate> post;  // null: the post-processor adds nothing
  std::size_t max_length = kNoLimit;
  std::string max_length_source = "none (no limit known)";
  std::optional<std::int64_t> pad_id;
};

class PipelineTokenizer final : public Tokenizer {
 public:
  explicit PipelineTokenizer(PipelineParts parts);

  Encoding encode(std::string_view text, const EncodeOptions& options) const override;
  TokenizerKind kind() const override { return parts_.kind; }
  std::size_t max_length() const override { return parts_.max_length; }
  const std::string& max_length_source() const override { return parts_.max_length_source; }
  std::optional<std::int64_t> pad_id() const override { return parts_.pad_id; }
  std::optional<std::int64_t> token_to_id(std::string_view token) const override;
  std::size_t num_special_tokens() const override {
    return parts_.post ? parts_.post->added() : 0;
  }

 private:
  PipelineParts parts_;
  AddedVocabulary added_;
};

}  // namespace mmembed::text::detail
