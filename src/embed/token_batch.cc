#include "embed/token_batch.h"

#include <algorithm>

#include "core/check.h"

namespace mmembed::embed {

TokenBatch tokenize_batch(const text::Tokenizer& tokenizer, std::span<const std::string> texts,
                          std::size_t max_tokens, TextOverflow overflow) {
  std::vector<text::Encoding> enc;
  enc.reserve(texts.size());
  std::size_t longest = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    text::EncodeOptions options;
    options.max_length = max_tokens;
    options.truncation = text::Truncation::kTruncate;
    enc.push_back(tokenizer.encode(texts[i], options));
    if (overflow == TextOverflow::kError && enc.back().truncated_tokens > 0) {
      const std::string& text = texts[i];
      std::size_t n = std::min<std::size_t>(text.size(), 40);
      while (n < text.size() && n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
        --n;
      throw InvalidArgument(
          str_cat("text \"", text.substr(0, n), n < text.size() ? "...\"" : "\"", " has ",
                  enc.back().ids.size() + enc.back().truncated_tokens,
                  " tokens but the model takes at most ", max_tokens,
                  " (special tokens included); shorten it or use the truncate policy"));
    }
    longest = std::max(longest, enc.back().ids.size());
  }
  const std::int64_t B = static_cast<std::int64_t>(texts.size());
  const std::int64_t L = static_cast<std::int64_t>(longest);
  std::int64_t pad = 0;
  for (const text::Encoding& e : enc) {
    if (e.ids.size() < longest) {
      const auto id = tokenizer.pad_id();
      MMEMBED_CHECK(id.has_value(), InvalidArgument,
                    "texts of different lengths need padding but the tokenizer has no pad token");
      pad = *id;
      break;
    }
  }
  TokenBatch t{Tensor::empty(DType::I64, {B, L}),
               Tensor::zeros(DType::I64, {B, L}),
               Tensor::zeros(DType::I64, {B, L}),
               {}};
  for (std::int64_t b = 0; b < B; ++b) {
    const text::Encoding& e = enc[static_cast<std::size_t>(b)];
    std::int64_t* ids = t.ids.data<std::int64_t>() + b * L;
    std::copy(e.ids.begin(), e.ids.end(), ids);
    std::fill(ids + e.ids.size(), ids + L, pad);
    std::copy(e.attention_mask.begin(), e.attention_mask.end(),
              t.mask.data<std::int64_t>() + b * L);
    std::copy(e.type_ids.begin(), e.type_ids.end(), t.types.data<std::int64_t>() + b * L);
    t.truncated.push_back(e.truncated_tokens);
  }
  return t;
}

}  // namespace mmembed::embed
