// The tiny model folders (tests/data/models/*/) as save_pretrained wrote them: their tokenizers,
// loaded from the folder, give the model goldens' input_ids / attention_mask / token_type_ids.
// The same folders without tokenizer.json (vocab.json + merges.txt, or vocab.txt: the legacy
// path) must tokenize identically.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace mmembed::text {
namespace {

const golden::Manifest& manifest() { return golden::Manifest::get(); }

std::string model_dir(const std::string& model) { return manifest().data_dir() + "/models/" + model; }

std::string read_or_empty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The folder's files without tokenizer.json.
TokenizerFiles legacy_files(const std::string& model) {
  const std::string d = model_dir(model);
  TokenizerFiles f;
  f.origin = d;
  f.tokenizer_config_json = read_or_empty(d + "/tokenizer_config.json");
  f.special_tokens_map_json = read_or_empty(d + "/special_tokens_map.json");
  f.config_json = read_or_empty(d + "/config.json");
  f.added_tokens_json = read_or_empty(d + "/added_tokens.json");
  f.vocab_json = read_or_empty(d + "/vocab.json");
  f.merges_txt = read_or_empty(d + "/merges.txt");
  f.vocab_txt = read_or_empty(d + "/vocab.txt");
  return f;
}

struct ModelCase {
  const char* model;
  TokenizerKind kind;
  std::size_t max_length;  // what the call used (kNoLimit: no truncation)
  bool type_ids;
};

class ModelTokenizerTest : public ::testing::TestWithParam<ModelCase> {};

std::vector<std::int64_t> row(const Tensor& t, std::int64_t r) {
  const std::int64_t w = t.dim(1);
  return {t.data<std::int64_t>() + r * w, t.data<std::int64_t>() + (r + 1) * w};
}

void check_against_goldens(const Tokenizer& tok, const ModelCase& c) {
  for (const char* group : {"batch", "single0"}) {
    const std::string prefix = std::string(c.model) + "/" + group + "/";
    const golden::Entry& e = manifest().entry(prefix + "input_ids");
    Tensor ids = manifest().load(e);
    Tensor mask = manifest().load(manifest().entry(prefix + "attention_mask"));
    std::vector<std::string> texts;
    const auto inputs = nlohmann::json::parse(e.inputs_json);
    for (const auto& t : inputs.at("texts")) texts.push_back(t.get<std::string>());
    BatchOptions o;
    o.encode.max_length = c.max_length;
    auto batch = tok.encode_batch(texts, o);
    ASSERT_EQ(static_cast<std::int64_t>(batch.size()), ids.dim(0)) << prefix;
    for (std::size_t r = 0; r < batch.size(); ++r) {
      EXPECT_EQ(batch[r].ids, row(ids, r)) << prefix << " row " << r << " \"" << texts[r] << "\"";
      EXPECT_EQ(batch[r].attention_mask, row(mask, r)) << prefix << " row " << r;
      if (c.type_ids) {
        Tensor types = manifest().load(manifest().entry(prefix + "token_type_ids"));
        EXPECT_EQ(batch[r].type_ids, row(types, r)) << prefix << " row " << r;
      }
    }
  }
}

TEST_P(ModelTokenizerTest, FolderTokenizerMatchesModelGoldens) {
  const ModelCase& c = GetParam();
  auto tok = load_tokenizer(model_dir(c.model));
  EXPECT_EQ(tok->kind(), c.kind);
  check_against_goldens(*tok, c);
}

TEST_P(ModelTokenizerTest, TokenizerJsonFileAlsoLoads) {
  const ModelCase& c = GetParam();
  auto tok = load_tokenizer(model_dir(c.model) + "/tokenizer.json");
  check_against_goldens(*tok, c);
}

TEST_P(ModelTokenizerTest, LegacyFilesMatchModelGoldensAndTokenizerJson) {
  const ModelCase& c = GetParam();
  auto legacy = load_tokenizer(legacy_files(c.model));
  EXPECT_EQ(legacy->kind(), c.kind);
  check_against_goldens(*legacy, c);
  auto fast = load_tokenizer(model_dir(c.model));
  EXPECT_EQ(legacy->pad_id(), fast->pad_id());
  EXPECT_EQ(legacy->max_length(), fast->max_length());
  std::size_t equal = 0;
  EncodeOptions o;
  o.max_length = kNoLimit;
  for (const auto& text : testing::corpus()) {
    if (legacy->encode(text, o).ids == fast->encode(text, o).ids) ++equal;
  }
  EXPECT_EQ(equal, testing::corpus().size()) << c.model << ": legacy vs tokenizer.json";
}

INSTANTIATE_TEST_SUITE_P(
    Models, ModelTokenizerTest,
    ::testing::Values(ModelCase{"bridgetower-base-tiny", TokenizerKind::kByteLevelBpe, kNoLimit, false},
                      ModelCase{"bridgetower-large-tiny", TokenizerKind::kByteLevelBpe, kNoLimit, false},
                      ModelCase{"clip-tiny-quickgelu", TokenizerKind::kClipBpe, kNoLimit, false},
                      ModelCase{"clip-tiny-gelu", TokenizerKind::kClipBpe, kNoLimit, false},
                      ModelCase{"minilm-tiny-st", TokenizerKind::kWordPiece, 128, true}),
    [](const auto& info) {
      std::string n = info.param.model;
      for (char& ch : n)
        if (ch == '-') ch = '_';
      return n;
    });

}  // namespace
}  // namespace mmembed::text
