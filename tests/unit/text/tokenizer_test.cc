// Unit tests of the text layer: byte map, merges, added tokens, edge inputs, invalid UTF-8,
// truncation/padding policy, loader errors and thread-safety.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <set>
#include <thread>

#include "mmembed/error.h"
#include "test_util.h"
#include "text/pipeline.h"

namespace mmembed::text {
namespace {

using nlohmann::json;
using testing::reference_tokenizer;

// Expects `fn` to throw E with a message containing `needle`.
template <typename E, typename Fn>
void expect_throw_with(Fn fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one mentioning '" << needle << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

std::vector<std::int64_t> content_ids(const Tokenizer& tok, std::string_view text) {
  EncodeOptions o;
  o.add_special_tokens = false;
  o.max_length = kNoLimit;
  return tok.encode(text, o).ids;
}

// ---- byte-level map ----------------------------------------------------------------------

TEST(ByteLevelMap, MatchesGpt2Table) {
  const auto& t = detail::byte_to_unicode();
  EXPECT_EQ(t['a'], "a");
  EXPECT_EQ(t['!'], "!");
  EXPECT_EQ(t[0x20], "\u0120");  // Ġ
  EXPECT_EQ(t[0x00], "\u0100");
  EXPECT_EQ(t[0x0A], "\u010A");
  EXPECT_EQ(t[0x7F], "\u0121");
  EXPECT_EQ(t[0xA0], "\u0142");
  EXPECT_EQ(t[0xAD], "\u0143");
  EXPECT_EQ(t[0xE9], "\u00E9");
  std::set<std::string> distinct(t.begin(), t.end());
  EXPECT_EQ(distinct.size(), 256u);
}

TEST(ByteLevelMap, ClipVocabularyLayoutFollowsTableOrder) {
  const Tokenizer& clip = reference_tokenizer("clip");
  EXPECT_EQ(clip.token_to_id("!"), 0);
  EXPECT_EQ(clip.token_to_id("a"), 64);
  EXPECT_EQ(clip.token_to_id("\u0120"), 220);
  EXPECT_EQ(clip.token_to_id("a</w>"), 320);
}

// ---- published test vectors (spec clip-and-formats.md B.4, C.5) -------------------------

TEST(PublishedVectors, ClipAndGpt2) {
  const Tokenizer& clip = reference_tokenizer("clip");
  EXPECT_EQ(clip.encode("a photo of a fox").ids,
            (std::vector<std::int64_t>{49406, 320, 1125, 539, 320, 3240, 49407}));
  EXPECT_EQ(clip.encode("a photo of a cat").ids,
            (std::vector<std::int64_t>{49406, 320, 1125, 539, 320, 2368, 49407}));
  EXPECT_EQ(clip.encode("hello world").ids, (std::vector<std::int64_t>{49406, 3306, 1002, 49407}));
  EXPECT_EQ(clip.encode("this is a test string of text").ids,
            (std::vector<std::int64_t>{49406, 589, 533, 320, 1628, 9696, 539, 4160, 49407}));
  EXPECT_EQ(clip.encode("a photo of a really, functistaner big cat.").ids,
            (std::vector<std::int64_t>{49406, 320, 1125, 539, 320, 1414, 267, 8679, 555, 2203, 528,
                                       1205, 2368, 269, 49407}));
  // The RoBERTa pipeline over GPT-2's vocabulary gives GPT-2's ids for the content.
  const Tokenizer& rob = reference_tokenizer("roberta_gpt2vocab");
  EXPECT_EQ(content_ids(rob, "Hello world"), (std::vector<std::int64_t>{15496, 995}));
  EXPECT_EQ(content_ids(rob, " Hello world"), (std::vector<std::int64_t>{18435, 995}));
}

// ---- BPE merges on a hand-made tokenizer.json --------------------------------------------

json tiny_bpe(const json& merges) {
  json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"aa", 3}, {"ab", 4}, {"aab", 5}, {"bc", 6},
                {"\u0120", 7}, {"\u0120a", 8}, {"<s>", 9}, {"</s>", 10}, {"<pad>", 11}, {"<m>", 12}};
  return json{{"version", "1.0"},
              {"added_tokens",
               json::array({{{"id", 9}, {"content", "<s>"}, {"special", true}, {"normalized", false},
                             {"lstrip", false}, {"rstrip", false}, {"single_word", false}},
                            {{"id", 10}, {"content", "</s>"}, {"special", true}, {"normalized", false},
                             {"lstrip", false}, {"rstrip", false}, {"single_word", false}}})},
              {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
              {"post_processor", {{"type", "RobertaProcessing"}, {"sep", {"</s>", 10}}, {"cls", {"<s>", 9}}}},
              {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"vocab", vocab},
                         {"merges", merges}}}};
}

std::unique_ptr<Tokenizer> load_json(const json& j, const std::string& config = "") {
  TokenizerFiles f;
  f.origin = "mem";
  f.tokenizer_json = j.dump();
  f.tokenizer_config_json = config;
  return load_tokenizer(f);
}

TEST(Bpe, MergesByRankOneOccurrenceAtATime) {
  auto tok = load_json(tiny_bpe(json::array({"a a", "aa b", "a b", "b c", "\u0120 a"})));
  EXPECT_EQ(tok->kind(), TokenizerKind::kByteLevelBpe);
  EXPECT_EQ(content_ids(*tok, "aaa"), (std::vector<std::int64_t>{3, 0}));  // "aa a", not "a aa"
  EXPECT_EQ(content_ids(*tok, "aab"), (std::vector<std::int64_t>{5}));     // aa, then aab
  EXPECT_EQ(content_ids(*tok, "abc"), (std::vector<std::int64_t>{4, 2}));  // rank(ab) < rank(bc)
  EXPECT_EQ(content_ids(*tok, "a a"), (std::vector<std::int64_t>{0, 8}));  // "a", "Ġa"
  EXPECT_EQ(tok->encode("aaa").ids, (std::vector<std::int64_t>{9, 3, 0, 10}));
}

TEST(Bpe, PairFormOfMergesEqualsStringForm) {
  auto strings = load_json(tiny_bpe(json::array({"a a", "aa b", "b c", "a b"})));
  auto pairs = load_json(tiny_bpe(json::array({{"a", "a"}, {"aa", "b"}, {"b", "c"}, {"a", "b"}})));
  for (const char* text : {"aaa", "aab", "abc", "cab", "a a b", "bcbcaab"})
    EXPECT_EQ(content_ids(*strings, text), content_ids(*pairs, text)) << text;
  EXPECT_EQ(content_ids(*pairs, "abc"), (std::vector<std::int64_t>{1 - 1, 6}));  // b c before a b
}

TEST(Bpe, RepeatedMergeKeepsItsLastRank) {
  // "a b" first at rank 0, again at rank 2 (after "b c"): the last occurrence wins.
  auto tok = load_json(tiny_bpe(json::array({"a b", "b c", "a b"})));
  EXPECT_EQ(content_ids(*tok, "abc"), (std::vector<std::int64_t>{0, 6}));
}

TEST(Bpe, MergeOutsideTheVocabularyIsAFormatError) {
  expect_throw_with<FormatError>([] { load_json(tiny_bpe(json::array({"b a"}))); },
                                 "mem/tokenizer.json: merge 0 ('b' 'a'): the merged token 'ba'");
  expect_throw_with<FormatError>([] { load_json(tiny_bpe(json::array({"a b c"}))); },
                                 "model.merges[0]");
}

TEST(Bpe, SymbolsMissingFromTheVocabularyAreDroppedWithoutUnk) {
  auto tok = load_json(tiny_bpe(json::array({"a b"})));
  EXPECT_EQ(content_ids(*tok, "xab"), (std::vector<std::int64_t>{4}));  // "x" has no id, no unk
}

// ---- added / special tokens --------------------------------------------------------------

TEST(AddedTokens, SpecialTokensAreSplitOutBeforePreTokenization) {
  const Tokenizer& rob = reference_tokenizer("roberta_gpt2vocab");
  const std::int64_t bos = *rob.token_to_id("<s>"), eos = *rob.token_to_id("</s>");
  std::vector<std::int64_t> expect{bos, bos};
  for (auto id : content_ids(rob, "a cat")) expect.push_back(id);
  expect.push_back(eos);
  expect.push_back(eos);
  EXPECT_EQ(rob.encode("<s>a cat</s>").ids, expect);
}

TEST(AddedTokens, MaskLstripAbsorbsThePrecedingSpace) {
  const Tokenizer& rob = reference_tokenizer("roberta_gpt2vocab");
  const std::int64_t mask = *rob.token_to_id("<mask>");
  std::vector<std::int64_t> expect = content_ids(rob, "a");
  expect.push_back(mask);
  for (auto id : content_ids(rob, " b")) expect.push_back(id);
  EXPECT_EQ(content_ids(rob, "a <mask> b"), expect);
  EXPECT_EQ(content_ids(rob, "a<mask> b"), expect);
}

TEST(AddedTokens, NormalizedTokensMatchAfterNormalization) {
  // CLIP's specials are normalized=true: lowercasing makes "<|ENDOFTEXT|>" match.
  const Tokenizer& clip = reference_tokenizer("clip");
  EXPECT_EQ(clip.encode("<|ENDOFTEXT|>").ids, (std::vector<std::int64_t>{49406, 49407, 49407}));
  // BERT's are normalized=false: "[cls]" is text, "[CLS]" the token.
  const Tokenizer& bert = reference_tokenizer("bert_uncased");
  EXPECT_EQ(content_ids(bert, "[CLS]"), (std::vector<std::int64_t>{101}));
  EXPECT_NE(content_ids(bert, "[cls]"), (std::vector<std::int64_t>{101}));
}

TEST(AddedTokens, SingleWordAndRstripFlags) {
  json j = tiny_bpe(json::array({"a b"}));
  j["added_tokens"].push_back({{"id", 12}, {"content", "<m>"}, {"special", false}, {"normalized", false},
                               {"lstrip", false}, {"rstrip", true}, {"single_word", true}});
  auto tok = load_json(j);
  // Stand-alone: matched, and the following spaces are swallowed.
  EXPECT_EQ(content_ids(*tok, "<m>  ab"), (std::vector<std::int64_t>{12, 4}));
  // Inside a word: not a single word, so it is ordinary text ("<", "m", ">" have no ids).
  EXPECT_EQ(content_ids(*tok, "ab<m>ab"), (std::vector<std::int64_t>{4, 4}));
}

// ---- edge inputs -------------------------------------------------------------------------

TEST(EdgeInputs, EmptyStringGivesOnlySpecialTokens) {
  EXPECT_EQ(reference_tokenizer("roberta_gpt2vocab").encode("").ids,
            (std::vector<std::int64_t>{50257, 50258}));
  EXPECT_EQ(reference_tokenizer("clip").encode("").ids, (std::vector<std::int64_t>{49406, 49407}));
  Encoding b = reference_tokenizer("bert_uncased").encode("");
  EXPECT_EQ(b.ids, (std::vector<std::int64_t>{101, 102}));
  EXPECT_EQ(b.type_ids, (std::vector<std::int64_t>{0, 0}));
  EXPECT_EQ(b.attention_mask, (std::vector<std::int64_t>{1, 1}));
  EXPECT_TRUE(content_ids(reference_tokenizer("clip"), "").empty());
}

TEST(EdgeInputs, OnlyWhitespace) {
  // Byte-level BPE keeps whitespace as tokens; CLIP and BERT drop it.
  EXPECT_EQ(content_ids(reference_tokenizer("roberta_gpt2vocab"), " "),
            (std::vector<std::int64_t>{220}));
  EXPECT_EQ(content_ids(reference_tokenizer("roberta_gpt2vocab"), "\t").size(), 1u);
  EXPECT_TRUE(content_ids(reference_tokenizer("clip"), " \t\n\u3000 ").empty());
  EXPECT_TRUE(content_ids(reference_tokenizer("bert_uncased"), " \t\n\u3000 ").empty());
}

TEST(EdgeInputs, VeryLongInputIsTruncatedOrRejected) {
  std::string text;
  for (int i = 0; i < 50000; ++i) text += i ? " cat" : "cat";  // one token per word everywhere
  for (const char* name : {"roberta_gpt2vocab", "clip", "bert_uncased"}) {
    const Tokenizer& tok = reference_tokenizer(name);
    Encoding e = tok.encode(text);
    EXPECT_EQ(e.ids.size(), tok.max_length()) << name;
    EXPECT_EQ(e.truncated_tokens, static_cast<int>(50000 - (tok.max_length() - 2))) << name;
    EXPECT_EQ(e.ids.back(), tok.encode("").ids.back()) << name << ": the closing special token is kept";
    EncodeOptions strict;
    strict.truncation = Truncation::kError;
    expect_throw_with<InvalidArgument>([&] { tok.encode(text, strict); },
                                       "50002 tokens (2 special) exceeds max_length");
    EncodeOptions unlimited;
    unlimited.max_length = kNoLimit;
    EXPECT_EQ(tok.encode(text, unlimited).ids.size(), 50002u) << name;
  }
}

TEST(EdgeInputs, ExplicitMaxLengthAndNoSpecialTokens) {
  const Tokenizer& bert = reference_tokenizer("bert_uncased");
  EncodeOptions o;
  o.max_length = 4;
  Encoding e = bert.encode("one two three four five", o);
  EXPECT_EQ(e.ids.size(), 4u);
  EXPECT_EQ(e.ids.front(), 101);
  EXPECT_EQ(e.ids.back(), 102);
  EXPECT_EQ(e.truncated_tokens, 3);
  o.add_special_tokens = false;
  e = bert.encode("one two three four five", o);
  EXPECT_EQ(e.ids.size(), 4u);
  EXPECT_EQ(e.truncated_tokens, 1);
  o.add_special_tokens = true;
  o.max_length = 1;
  expect_throw_with<InvalidArgument>([&] { bert.encode("x", o); }, "smaller than the 2 special tokens");
}

TEST(EdgeInputs, WordPieceLongWordsAndUnknownCharactersBecomeUnk) {
  const Tokenizer& bert = reference_tokenizer("bert_uncased");
  EXPECT_EQ(content_ids(bert, std::string(101, 'a')), (std::vector<std::int64_t>{100}));
  EXPECT_NE(content_ids(bert, std::string(100, 'a')), (std::vector<std::int64_t>{100}));
  EXPECT_EQ(content_ids(bert, "\U0001F600"), (std::vector<std::int64_t>{100}));
}

// ---- invalid UTF-8 -----------------------------------------------------------------------

TEST(InvalidUtf8, ThrowsNamingTheByteOffset) {
  const Tokenizer& tok = reference_tokenizer("roberta_gpt2vocab");
  struct Bad {
    std::string text;
    std::string message;
  } cases[] = {
      {"ab\xFF" "cd", "text: invalid UTF-8 at byte 2: invalid lead byte"},
      {"a\x80", "at byte 1: unexpected continuation byte"},
      {"\xC0\xAF", "at byte 0: invalid lead byte"},  // overlong '/'
      {"x\xE0\x80\xAF", "at byte 1: overlong encoding"},
      {"\xED\xA0\x80", "encoded surrogate"},
      {"ok\xE2\x82", "at byte 2: truncated sequence"},
      {"\xF4\x90\x80\x80", "above U+10FFFF"},
      {"\xE2(\xA1", "missing continuation byte"},
  };
  for (const Bad& b : cases)
    expect_throw_with<InvalidArgument>([&] { tok.encode(b.text); }, b.message);
  expect_throw_with<InvalidArgument>(
      [&] { tok.encode_batch(std::vector<std::string>{"fine", "bad\xFF"}); }, "batch item 1: text: invalid UTF-8 at byte 3");
  // Valid multi-byte input, including U+10FFFF and NUL, is accepted.
  EXPECT_NO_THROW(tok.encode(std::string("\0\xF4\x8F\xBF\xBF\xE2\x82\xAC", 8)));
}

// ---- padding -----------------------------------------------------------------------------

TEST(Padding, LongestFixedAndNone) {
  const Tokenizer& bert = reference_tokenizer("bert_uncased");
  std::vector<std::string> texts{"a", "a cat on a mat", ""};
  auto longest = bert.encode_batch(texts);
  for (const auto& e : longest) {
    EXPECT_EQ(e.ids.size(), longest[1].ids.size());
    EXPECT_EQ(e.type_ids.size(), e.ids.size());
  }
  EXPECT_EQ(longest[0].attention_mask, (std::vector<std::int64_t>{1, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(longest[0].ids[3], *bert.pad_id());
  BatchOptions fixed;
  fixed.padding = Padding::kFixed;
  fixed.pad_length = 12;
  for (const auto& e : bert.encode_batch(texts, fixed)) EXPECT_EQ(e.ids.size(), 12u);
  fixed.pad_length = 0;  // the max length
  for (const auto& e : bert.encode_batch(texts, fixed)) EXPECT_EQ(e.ids.size(), 512u);
  BatchOptions none;
  none.padding = Padding::kNone;
  auto rows = bert.encode_batch(texts, none);
  EXPECT_EQ(rows[0].ids.size(), 3u);
  EXPECT_EQ(rows[2].ids.size(), 2u);
  EXPECT_TRUE(bert.encode_batch(std::vector<std::string>{}).empty());
  EXPECT_EQ(bert.encode_batch({"a", "a cat"}).size(), 2u);  // braced list of literals
  std::vector<std::string_view> views{"a", "a cat"};
  EXPECT_EQ(bert.encode_batch(std::span<const std::string_view>(views))[0].ids.size(), 4u);
}

TEST(Padding, WithoutPadTokenIsAnError) {
  auto tok = load_json(tiny_bpe(json::array({"a b"})));  // no tokenizer_config, no padding section
  EXPECT_FALSE(tok->pad_id().has_value());
  expect_throw_with<InvalidArgument>(
      [&] { tok->encode_batch(std::vector<std::string>{"a", "ab ab"}); }, "no pad token");
  auto with_pad = load_json(tiny_bpe(json::array({"a b"})), R"({"pad_token": "<pad>"})");
  EXPECT_EQ(with_pad->pad_id(), 11);
}

// ---- max length policy -------------------------------------------------------------------

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(MaxLength, HubLayoutWithoutModelMaxLengthTakesTheModelsPositions) {
  const std::string d = golden::Manifest::get().data_dir() + "/models/bridgetower-base-tiny";
  TokenizerFiles f;
  f.origin = d;
  f.tokenizer_json = read_text(d + "/tokenizer.json");
  f.config_json = read_text(d + "/config.json");
  // BridgeTower Hub repos: no tokenizer_config.json (transformers: VERY_LARGE_INTEGER, no limit).
  auto tok = load_tokenizer(f);
  EXPECT_EQ(tok->max_length(), 512u);
  EXPECT_NE(tok->max_length_source().find("pad_token_id + 1"), std::string::npos) << tok->max_length_source();
  // An unset (1e30) model_max_length is ignored the same way.
  f.tokenizer_config_json = R"({"model_max_length": 1000000000000000019884624838656})";
  EXPECT_EQ(load_tokenizer(f)->max_length(), 512u);
  // Nothing known: no limit.
  f.config_json.clear();
  tok = load_tokenizer(f);
  EXPECT_EQ(tok->max_length(), kNoLimit);
  LoadOptions o;
  o.max_length = 40;
  EXPECT_EQ(load_tokenizer(f, o)->max_length(), 40u);
  EXPECT_EQ(load_tokenizer(f, o)->max_length_source(), "LoadOptions::max_length");
}

// ---- loader errors -----------------------------------------------------------------------

TEST(Loader, ErrorsNameTheFileAndTheProblem) {
  expect_throw_with<IoError>([] { load_tokenizer(std::filesystem::path("/nonexistent/model")); },
                             "/nonexistent/model: no such file or directory");
  TokenizerFiles f;
  f.origin = "dir";
  f.tokenizer_json = "{not json";
  expect_throw_with<FormatError>([&] { load_tokenizer(f); }, "dir/tokenizer.json: not valid JSON");
  json j = tiny_bpe(json::array({"a b"}));
  j["model"]["type"] = "Unigram";
  expect_throw_with<Unsupported>([&] { load_json(j); }, "model type \"Unigram\" is not supported");
  j = tiny_bpe(json::array({"a b"}));
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  expect_throw_with<Unsupported>([&] { load_json(j); }, "pre_tokenizer: pre-tokenizer type \"Metaspace\"");
  j = tiny_bpe(json::array({"a b"}));
  j["model"]["dropout"] = 0.1;
  expect_throw_with<Unsupported>([&] { load_json(j); }, "dropout");
  j = tiny_bpe(json::array({"a b"}));
  j["model"].erase("vocab");
  expect_throw_with<FormatError>([&] { load_json(j); }, "mem/tokenizer.json: model has no \"vocab\"");
  j = tiny_bpe(json::array({"a b"}));
  j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"Regex", "(unclosed"}}}, {"content", ""}};
  expect_throw_with<InvalidArgument>([&] { load_json(j); }, "Replace normalizer: regex '(unclosed'");
  TokenizerFiles empty;
  empty.origin = "nowhere";
  expect_throw_with<IoError>([&] { load_tokenizer(empty); }, "nowhere: no tokenizer.json");
}

TEST(Loader, PresentButEmptyOrSpecialFilesAreNamed) {
  // Issue #18: an empty vocab.json or merges.txt was reported as "no vocab.json + merges.txt"
  // although both exist; a FIFO in the place of a file is refused by kind, without blocking.
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("mmembed-tok-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "vocab.json") << "{\"a\": 0}";
  std::ofstream(dir / "merges.txt") << "";
  expect_throw_with<FormatError>([&] { load_tokenizer(dir); }, "merges.txt: empty file");
  std::ofstream(dir / "merges.txt") << "#version: 0.2\n";
  std::ofstream(dir / "vocab.json") << "";
  expect_throw_with<FormatError>([&] { load_tokenizer(dir); }, "vocab.json: empty file");
  fs::remove(dir / "vocab.json");
  ASSERT_EQ(::mkfifo((dir / "vocab.json").c_str(), 0600), 0);
  expect_throw_with<IoError>([&] { load_tokenizer(dir); },
                             "vocab.json: is a FIFO, expected a regular file");
  expect_throw_with<IoError>([&] { load_tokenizer(dir / "vocab.json"); }, "is a FIFO");
  fs::remove_all(dir);
}

// ---- thread-safety -----------------------------------------------------------------------

TEST(ThreadSafety, TwoThreadsGiveTheSameIds) {
  const auto& texts = testing::corpus();
  for (const char* name : {"roberta_gpt2vocab", "clip", "bert_uncased"}) {
    // A fresh tokenizer so that both threads fill the (shared) BPE cache concurrently.
    auto tok = load_tokenizer(testing::reference_files(name));
    std::vector<std::vector<std::int64_t>> a(texts.size()), b(texts.size());
    std::thread t1([&] {
      for (std::size_t i = 0; i < texts.size(); ++i) a[i] = tok->encode(texts[i]).ids;
    });
    std::thread t2([&] {
      for (std::size_t i = texts.size(); i-- > 0;) b[i] = tok->encode(texts[i]).ids;
    });
    t1.join();
    t2.join();
    const Tokenizer& ref = reference_tokenizer(name);
    for (std::size_t i = 0; i < texts.size(); ++i) {
      ASSERT_EQ(a[i], b[i]) << name << " #" << i;
      ASSERT_EQ(a[i], ref.encode(texts[i]).ids) << name << " #" << i;
    }
  }
}

}  // namespace
}  // namespace mmembed::text
