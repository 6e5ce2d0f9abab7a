// Exactness against the reference (transformers 4.44.2 + tokenizers 0.19.1 fast tokenizers) on
// the whole 5,200-string corpus: plain (no truncation), truncated, padded batches.
#include <gtest/gtest.h>

#include <iostream>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace mmembed::text {
namespace {

using testing::corpus;
using testing::escaped;
using testing::golden_sequences;
using testing::ids_str;
using testing::reference_tokenizer;

struct Case {
  const char* tokenizer;
  TokenizerKind kind;
  std::size_t max_length;
};

class CorpusTest : public ::testing::TestWithParam<Case> {};

// Encodes every corpus string with `options` and compares with the variant's golden ids.
void check_variant(const Case& c, const std::string& variant, const EncodeOptions& options) {
  const Tokenizer& tok = reference_tokenizer(c.tokenizer);
  const auto& texts = corpus();
  const auto golden = golden_sequences(c.tokenizer, variant);
  ASSERT_EQ(golden.size(), texts.size());
  std::size_t equal = 0, shown = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    Encoding e = tok.encode(texts[i], options);
    if (e.ids == golden[i] && e.attention_mask == std::vector<std::int64_t>(e.ids.size(), 1)) {
      ++equal;
    } else if (shown++ < 8) {
      ADD_FAILURE() << c.tokenizer << "/" << variant << " #" << i << " \"" << escaped(texts[i])
                    << "\"\n  ours " << ids_str(e.ids) << "\n  ref  " << ids_str(golden[i]);
    }
  }
  std::cout << "[exactness] " << c.tokenizer << "/" << variant << ": " << equal << " of "
            << texts.size() << " equal\n";
  EXPECT_EQ(equal, texts.size());
}

TEST_P(CorpusTest, KindIsDetected) {
  EXPECT_EQ(reference_tokenizer(GetParam().tokenizer).kind(), GetParam().kind);
  EXPECT_EQ(reference_tokenizer(GetParam().tokenizer).max_length(), GetParam().max_length);
}

TEST_P(CorpusTest, PlainEqualsReference) {
  EncodeOptions o;
  o.max_length = kNoLimit;
  check_variant(GetParam(), "plain", o);
}

TEST_P(CorpusTest, TruncatedEqualsReference) {
  const Case& c = GetParam();
  EncodeOptions o;  // default max_length = tokenizer_config model_max_length
  check_variant(c, "trunc", o);
  // truncated_tokens says how much was cut.
  const auto plain = golden_sequences(c.tokenizer, "plain");
  const auto trunc = golden_sequences(c.tokenizer, "trunc");
  const Tokenizer& tok = reference_tokenizer(c.tokenizer);
  for (std::size_t i = 0; i < plain.size(); ++i) {
    if (plain[i].size() == trunc[i].size()) continue;
    Encoding e = tok.encode(corpus()[i], o);
    EXPECT_EQ(static_cast<std::size_t>(e.truncated_tokens), plain[i].size() - trunc[i].size()) << i;
    EXPECT_EQ(e.ids.size(), c.max_length);
  }
}

void check_batch(const Case& c, const std::string& variant, const BatchOptions& options) {
  const golden::Manifest& m = golden::Manifest::get();
  const golden::Entry& ids_entry = m.entry("tok/" + std::string(c.tokenizer) + "/" + variant + "/input_ids");
  Tensor ids = m.load(ids_entry);
  Tensor mask = m.load(m.entry("tok/" + std::string(c.tokenizer) + "/" + variant + "/attention_mask"));
  auto inputs = nlohmann::json::parse(ids_entry.inputs_json);
  std::vector<std::string> texts;
  for (const auto& i : inputs.at("corpus_indices")) texts.push_back(corpus()[i.get<std::size_t>()]);
  auto batch = reference_tokenizer(c.tokenizer).encode_batch(texts, options);
  ASSERT_EQ(static_cast<std::int64_t>(batch.size()), ids.dim(0));
  const std::int64_t len = ids.dim(1);
  std::size_t equal = 0;
  for (std::size_t r = 0; r < batch.size(); ++r) {
    std::vector<std::int64_t> ref_ids(ids.data<std::int64_t>() + r * len, ids.data<std::int64_t>() + (r + 1) * len);
    std::vector<std::int64_t> ref_mask(mask.data<std::int64_t>() + r * len, mask.data<std::int64_t>() + (r + 1) * len);
    if (batch[r].ids == ref_ids && batch[r].attention_mask == ref_mask) {
      ++equal;
    } else {
      ADD_FAILURE() << variant << " row " << r << " \"" << escaped(texts[r]) << "\"\n  ours "
                    << ids_str(batch[r].ids) << "\n  ref  " << ids_str(ref_ids);
    }
  }
  std::cout << "[exactness] " << c.tokenizer << "/" << variant << ": " << equal << " of "
            << batch.size() << " rows equal (ids and attention_mask, width " << len << ")\n";
}

TEST_P(CorpusTest, PaddedBatchEqualsReference) {
  BatchOptions o;  // padding to the longest, truncation to the tokenizer's max_length
  check_batch(GetParam(), "batch", o);
}

TEST(CorpusClip, MaxLengthPaddedBatchEqualsReference) {
  BatchOptions o;
  o.padding = Padding::kFixed;  // padding="max_length" -> 77
  check_batch(Case{"clip", TokenizerKind::kClipBpe, 77}, "batch_max_length", o);
}

INSTANTIATE_TEST_SUITE_P(Reference, CorpusTest,
                         ::testing::Values(Case{"roberta_gpt2vocab", TokenizerKind::kByteLevelBpe, 512},
                                           Case{"clip", TokenizerKind::kClipBpe, 77},
                                           Case{"bert_uncased", TokenizerKind::kWordPiece, 512}),
                         [](const auto& info) { return std::string(info.param.tokenizer); });

}  // namespace
}  // namespace mmembed::text
