#include "text/tokenizer.h"

#include <algorithm>

#include "core/check.h"
#include "text/pipeline_tokenizer.h"
#include "text/unicode.h"

namespace mmembed::text {

const char* kind_name(TokenizerKind kind) {
  switch (kind) {
    case TokenizerKind::kByteLevelBpe: return "byte-level BPE";
    case TokenizerKind::kClipBpe: return "CLIP BPE";
    case TokenizerKind::kWordPiece: return "WordPiece";
  }
  return "?";
}

std::vector<Encoding> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                              const BatchOptions& options) const {
  std::vector<std::string_view> views(texts.begin(), texts.end());
  return encode_batch(std::span<const std::string_view>(views), options);
}

std::vector<Encoding> Tokenizer::encode_batch(std::span<const std::string_view> texts,
                                              const BatchOptions& options) const {
  std::vector<Encoding> out;
  out.reserve(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    try {
      out.push_back(encode(texts[i], options.encode));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(str_cat("batch item ", i, ": ", e.what()));
    }
  }
  std::size_t target = 0;
  switch (options.padding) {
    case Padding::kNone: return out;
    case Padding::kLongest:
      for (const auto& e : out) target = std::max(target, e.ids.size());
      break;
    case Padding::kFixed: {
      target = options.pad_length;
      if (target == 0) {
        target = options.encode.max_length != 0 ? options.encode.max_length : max_length();
        MMEMBED_CHECK(target != kNoLimit, InvalidArgument,
                      "Padding::kFixed needs pad_length or a max_length; this tokenizer has none");
      }
      break;
    }
  }
  for (auto& e : out) {
    if (e.ids.size() >= target) continue;
    auto pad = pad_id();
    MMEMBED_CHECK(pad.has_value(), InvalidArgument,
                  "padding requested but the tokenizer has no pad token");
    e.ids.resize(target, *pad);
    e.attention_mask.resize(target, 0);
    e.type_ids.resize(target, 0);
  }
  return out;
}

namespace detail {

PipelineTokenizer::PipelineTokenizer(PipelineParts parts)
    : parts_(std::move(parts)), added_(parts_.added_tokens, parts_.normalizer.get()) {
  MMEMBED_ASSERT(parts_.model != nullptr);
}

std::optional<std::int64_t> PipelineTokenizer::token_to_id(std::string_view token) const {
  if (auto id = added_.find(token)) return id;
  if (auto id = parts_.model->token_to_id(token)) return *id;
  return std::nullopt;
}

Encoding PipelineTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  unicode::validate_utf8(text, "text");

  std::vector<AddedVocabulary::Segment> segments;
  added_.extract_and_normalize(text, parts_.normalizer.get(), segments);

  std::vector<std::int64_t> content;
  content.reserve(text.size() / 3 + 4);
  std::vector<std::string> pieces;
  for (auto& seg : segments) {
    if (seg.id >= 0) {
      content.push_back(seg.id);
      continue;
    }
    pieces.clear();
    pieces.push_back(std::move(seg.text));
    if (parts_.pre_tokenizer) parts_.pre_tokenizer->pre_tokenize(pieces);
    for (const auto& p : pieces) parts_.model->tokenize(p, content);
  }

  const SingleTemplate* post = options.add_special_tokens && parts_.post ? &*parts_.post : nullptr;
  const std::size_t n_added = post != nullptr ? post->added() : 0;
  const std::size_t max_len = options.max_length != 0 ? options.max_length : parts_.max_length;

  Encoding enc;
  if (max_len != kNoLimit) {
    MMEMBED_CHECK(max_len >= n_added, InvalidArgument, "max_length ", max_len,
                  " is smaller than the ", n_added, " special tokens added to every sequence");
    const std::size_t budget = max_len - n_added;
    if (content.size() > budget) {
      MMEMBED_CHECK(options.truncation != Truncation::kError, InvalidArgument, "text of ",
                    content.size() + n_added, " tokens (", n_added,
                    " special) exceeds max_length ", max_len, " (truncation policy: error)");
      enc.truncated_tokens = static_cast<int>(content.size() - budget);
      content.resize(budget);
    }
  }

  const std::size_t total = content.size() + n_added;
  enc.ids.reserve(total);
  enc.type_ids.reserve(total);
  if (post != nullptr) {
    enc.ids.insert(enc.ids.end(), post->prefix_ids.begin(), post->prefix_ids.end());
    enc.type_ids.insert(enc.type_ids.end(), post->prefix_types.begin(), post->prefix_types.end());
  }
  enc.ids.insert(enc.ids.end(), content.begin(), content.end());
  enc.type_ids.resize(enc.ids.size(), post != nullptr ? post->seq_type_id : 0);
  if (post != nullptr) {
    enc.ids.insert(enc.ids.end(), post->suffix_ids.begin(), post->suffix_ids.end());
    enc.type_ids.insert(enc.type_ids.end(), post->suffix_types.begin(), post->suffix_types.end());
  }
  enc.attention_mask.assign(enc.ids.size(), 1);
  return enc;
}

}  // namespace detail
}  // namespace mmembed::text
