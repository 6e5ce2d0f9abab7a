// One padded batch of token ids for an adapter: each text encoded under the Embedder's
// long-text policy, right-padded to the longest with the tokenizer's pad id (mask 0, type 0).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "mmembed/embedder.h"
#include "text/tokenizer.h"

namespace mmembed::embed {

struct TokenBatch {
  Tensor ids;    // I64 [B, L]
  Tensor mask;   // I64 [B, L], 1 = real token
  Tensor types;  // I64 [B, L] token type ids (BERT); zeros when the tokenizer gives none
  std::vector<int> truncated;  // per text: ids cut by truncation
};

// `max_tokens` counts special tokens. Under TextOverflow::kError a text longer than that throws
// InvalidArgument quoting the text's beginning and giving its length in tokens (not an index:
// the facade's batches are slices of the caller's list). InvalidArgument when padding is needed
// and the tokenizer has no pad token.
TokenBatch tokenize_batch(const text::Tokenizer& tokenizer, std::span<const std::string> texts,
                          std::size_t max_tokens, TextOverflow overflow);

}  // namespace mmembed::embed
