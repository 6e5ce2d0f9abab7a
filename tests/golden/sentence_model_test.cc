// sentence-transformers (models::bert::BertModel + SentenceModel) against the reference goldens
// (transformers 4.44.2 BertModel, sentence-transformers' Pooling(mean) + Normalize math): every
// encoder stage of the tiny MiniLM-style checkpoint from both weight formats, the pooled and
// normalised sentence embeddings, and end to end from the raw texts (our WordPiece tokenizer
// from the model folder, max_seq_length from sentence_bert_config.json).
#include <gtest/gtest.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "golden.h"
#include "mmembed/embedder.h"
#include "test_support.h"
#include "io/checkpoint.h"
#include "kernels/parallel.h"
#include "models/bert/bert.h"
#include "models/bert/sentence.h"
#include "nn/layers.h"
#include "text/tokenizer.h"

namespace mmembed::models::bert {
namespace {

using golden::Manifest;
using Case = testing_support::WeightsCase;
using testing_support::weights_case_name;

std::string model_dir(const std::string& model) {
  return Manifest::get().data_dir() + "/models/" + model;
}

class SentenceGolden : public testing::TestWithParam<Case> {
 protected:
  SentenceModel load() const {
    const std::string dir = model_dir(GetParam().model);
    return SentenceModel(SentenceConfig::from_dir(dir),
                         BertModel(Config::from_file(dir + "/config.json"),
                                   io::open_checkpoint(dir + "/" + GetParam().weights)));
  }
  Tensor ref(const std::string& group, const std::string& name) const {
    const Manifest& m = Manifest::get();
    return m.load(m.entry(GetParam().model + "/" + group + "/" + name));
  }
  // Compares with the golden `group/golden_name` under that golden's tolerance.
  double expect_close(const std::string& group, const std::string& golden_name,
                      const Tensor& ours) const {
    const Manifest& m = Manifest::get();
    const golden::Entry& e = m.entry(GetParam().model + "/" + group + "/" + golden_name);
    golden::CompareResult r = golden::compare(e.name, ours, m.load(e), m.tolerance(e));
    EXPECT_TRUE(r.ok) << r.message;
    return r.max_abs_diff;
  }
};

TEST_P(SentenceGolden, EveryStageMatchesTheReference) {
  const Manifest& m = Manifest::get();
  const SentenceModel model = load();
  EXPECT_TRUE(model.encoder().has_pooler());
  EXPECT_TRUE(model.encoder().unused_weights().empty());
  EXPECT_TRUE(model.config().normalize);
  EXPECT_TRUE(model.config().pooling.mean);
  EXPECT_EQ(model.config().pooling.modes(), 1);
  EXPECT_EQ(model.config().max_seq_length, 128);
  EXPECT_EQ(model.dim(), 32);
  for (const std::string group : {"batch", "single0"}) {
    SCOPED_TRACE(group);
    const std::string prefix = GetParam().model + "/" + group + "/";
    std::map<std::string, double> diffs;
    RunOptions options;
    // Encoder stages under their golden names; the Pooling output is the golden mean_pooled.
    options.on_stage = [&](const std::string& name, const Tensor& ours) {
      const std::string golden_name = name == "pooled" ? "mean_pooled" : name;
      const golden::Entry* e = m.find(prefix + golden_name);
      if (e == nullptr || !e->has_data()) return;
      diffs[golden_name] = expect_close(group, golden_name, ours);
    };
    const Tensor ids = ref(group, "input_ids"), mask = ref(group, "attention_mask");
    const Tensor types = ref(group, "token_type_ids");
    const Tensor embedding = model.encode(ids, mask, types, options);
    expect_close(group, "sentence_embedding", embedding);
    // BertModel's own pooler (not used by sentence-transformers) through the hook as well.
    const BertOutput encoded = model.encoder().forward(ids, mask, types, options);
    // The other Pooling modes on our encoder output, against the library's formulas.
    const std::pair<const char*, PoolingConfig> modes[] = {
        {"cls_pooled", PoolingConfig{.cls = true}},
        {"max_pooled", PoolingConfig{.max = true}},
        {"mean_sqrt_len_pooled", PoolingConfig{.mean_sqrt_len = true}},
    };
    for (const auto& [golden_name, config] : modes) {
      diffs[golden_name] = expect_close(group, golden_name, pool(config, encoded.last_hidden_state, mask));
    }

    std::size_t goldens = 0;
    for (const golden::Entry* e : m.with_prefix(prefix)) {
      const std::string stage = e->name.substr(prefix.size());
      if (stage == "input_ids" || stage == "attention_mask" || stage == "token_type_ids") continue;
      ++goldens;
      EXPECT_TRUE(diffs.count(stage)) << "no stage produced golden " << e->name;
    }
    EXPECT_EQ(diffs.size(), goldens);
    for (const auto& [stage, diff] : diffs) {
      std::printf("[ stage    ]   %-8s %-20s max abs diff %.3g\n", group.c_str(), stage.c_str(),
                  diff);
    }
  }
}

TEST_P(SentenceGolden, EndToEndFromTexts) {
  const Manifest& m = Manifest::get();
  const SentenceModel model = load();
  text::LoadOptions load_options;
  load_options.max_length = static_cast<std::size_t>(model.config().max_seq_length);
  const auto tokenizer = text::load_tokenizer(model.config().transformer_dir, load_options);
  for (const std::string group : {"batch", "single0"}) {
    SCOPED_TRACE(group);
    const golden::Entry& e = m.entry(GetParam().model + "/" + group + "/input_ids");
    const auto texts =
        nlohmann::json::parse(e.inputs_json).at("texts").get<std::vector<std::string>>();
    const std::vector<text::Encoding> enc = tokenizer->encode_batch(texts);
    const std::int64_t B = static_cast<std::int64_t>(enc.size());
    const std::int64_t L = static_cast<std::int64_t>(enc[0].ids.size());
    Tensor ids = Tensor::empty(DType::I64, {B, L}), mask = Tensor::empty(DType::I64, {B, L});
    Tensor types = Tensor::empty(DType::I64, {B, L});
    for (std::int64_t b = 0; b < B; ++b) {
      std::copy(enc[b].ids.begin(), enc[b].ids.end(), ids.data<std::int64_t>() + b * L);
      std::copy(enc[b].attention_mask.begin(), enc[b].attention_mask.end(),
                mask.data<std::int64_t>() + b * L);
      std::copy(enc[b].type_ids.begin(), enc[b].type_ids.end(), types.data<std::int64_t>() + b * L);
    }
    expect_close(group, "input_ids", ids);
    expect_close(group, "attention_mask", mask);
    expect_close(group, "token_type_ids", types);
    expect_close(group, "sentence_embedding", model.encode(ids, mask, types));
  }
}

// A batch large enough to run as one part per thread (nn::batch_parts): every item still
// matches the reference's golden row, and agrees within 1e-6 with the same item computed in one
// piece on one thread (batch independence).
TEST_P(SentenceGolden, BatchPartsMatchTheReferenceAndTheWholeBatch) {
  const Manifest& m = Manifest::get();
  const SentenceModel model = load();
  const Tensor golden_ids = ref("batch", "input_ids");
  const std::int64_t texts = 2 * ((2 * nn::kMinRowsPerPart) / golden_ids.dim(1) + 1);
  const Tensor ids = testing_support::repeat_rows(golden_ids, texts);
  const Tensor mask = testing_support::repeat_rows(ref("batch", "attention_mask"), texts);
  const Tensor types = testing_support::repeat_rows(ref("batch", "token_type_ids"), texts);

  const int before = kernels::num_threads();
  kernels::set_num_threads(1);
  const Tensor one = model.encode(ids, mask, types);
  kernels::set_num_threads(2);
  const std::int64_t parts = nn::batch_parts(texts, ids.dim(1));
  const Tensor two = model.encode(ids, mask, types);
  kernels::set_num_threads(before);
  ASSERT_EQ(parts, 2);

  const golden::Entry& e = m.entry(GetParam().model + "/batch/sentence_embedding");
  const golden::CompareResult r = golden::compare(
      e.name, two, testing_support::repeat_rows(m.load(e), texts), m.tolerance(e));
  EXPECT_TRUE(r.ok) << r.message;
  testing_support::expect_within_1e6(one, two, "sentence_embedding");
}

// Through the Embedder: the folder is recognised by its modules.json, texts are tokenized to
// max_seq_length, and the rows equal the reference's sentence embeddings whatever the batch size.
// (The facade refuses empty texts, so the batch's "" is left out.)
TEST(SentenceEmbedder, EmbedTextsMatchesTheReference) {
  const Manifest& m = Manifest::get();
  const golden::Entry& e = m.entry("minilm-tiny-st/batch/input_ids");
  const auto texts =
      nlohmann::json::parse(e.inputs_json).at("texts").get<std::vector<std::string>>();
  const Tensor ref = m.load(m.entry("minilm-tiny-st/batch/sentence_embedding"));
  const golden::Tolerance tol = m.tolerance(m.entry("minilm-tiny-st/batch/sentence_embedding"));
  std::vector<std::string> kept;
  std::vector<std::int64_t> rows;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (texts[i].empty()) continue;
    kept.push_back(texts[i]);
    rows.push_back(static_cast<std::int64_t>(i));
  }
  ASSERT_GE(kept.size(), 5u);
  for (std::size_t batch : {1, 3, 8}) {
    SCOPED_TRACE(batch);
    EmbedderOptions options;
    options.batch_size = batch;
    const Embedder embedder = Embedder::load(model_dir("minilm-tiny-st"), options);
    EXPECT_EQ(embedder.info().family, "sentence-transformers");
    EXPECT_EQ(embedder.info().model_type, "bert");
    EXPECT_EQ(embedder.info().dim, 32u);
    EXPECT_EQ(embedder.info().max_text_tokens, 128u);
    EXPECT_TRUE(embedder.info().text);
    EXPECT_FALSE(embedder.info().image || embedder.info().pair || embedder.info().match);
    const Embeddings out = embedder.embed_texts(kept);
    ASSERT_EQ(out.rows, kept.size());
    Tensor expected = Tensor::empty(DType::F32, {static_cast<std::int64_t>(kept.size()), 32});
    for (std::size_t k = 0; k < rows.size(); ++k) {
      std::copy_n(ref.data<float>() + rows[k] * 32, 32, expected.data<float>() + k * 32);
    }
    const golden::CompareResult r = golden::compare(
        "sentence_embedding", Tensor::from_vector<float>({expected.dim(0), 32}, out.data),
        expected, tol);
    EXPECT_TRUE(r.ok) << r.message;
    // The long CJK text is cut to 128 tokens, and the output says by how much.
    int cut = 0;
    for (int t : out.truncated_tokens) cut += t;
    EXPECT_GT(cut, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, SentenceGolden,
                         testing::Values(Case{"minilm-tiny-st", "model.safetensors"},
                                         Case{"minilm-tiny-st", "pytorch_model.bin"}),
                         weights_case_name);

}  // namespace
}  // namespace mmembed::models::bert
