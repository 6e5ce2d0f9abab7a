// Shared helpers of the text tests: the reference corpus and the committed tokenizers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "golden.h"
#include "text/tokenizer.h"

namespace mmembed::text::testing {

// The 5,200 corpus strings (tests/data/tokenizers/corpus.jsonl.gz), index order.
const std::vector<std::string>& corpus();

// TokenizerFiles for tests/data/tokenizers/<name>/ (tokenizer.json is stored gzipped).
TokenizerFiles reference_files(const std::string& name);
// Loaded once per name and shared (also exercises sharing between tests).
const Tokenizer& reference_tokenizer(const std::string& name);

// Ragged golden ids: sequence n of tok/<name>/<variant>/{ids,offsets}.
std::vector<std::vector<std::int64_t>> golden_sequences(const std::string& name,
                                                        const std::string& variant);

// A readable rendering of a string with escapes for non-printable bytes.
std::string escaped(const std::string& s, std::size_t limit = 120);
std::string ids_str(const std::vector<std::int64_t>& ids, std::size_t limit = 40);

}  // namespace mmembed::text::testing
