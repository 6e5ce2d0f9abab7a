// Internal building blocks of the tokenizer pipeline (not part of the text layer's contract;
// see tokenizer.h). Each mirrors one tokenizers component of the same name; the comments say
// which reference behaviour matters for exactness.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "text/regex.h"

namespace mmembed::text::detail {

// Hash map keyed by std::string that accepts std::string_view lookups without allocating.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

inline std::optional<std::int32_t> vocab_find(const Vocab& v, std::string_view s) {
  auto it = v.find(s);
  if (it == v.end()) return std::nullopt;
  return it->second;
}

// ---- normalizers -------------------------------------------------------------------------

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& s) const = 0;
};

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };
std::unique_ptr<Normalizer> make_unicode_normalizer(NormalForm form);
std::unique_ptr<Normalizer> make_lowercase();
std::unique_ptr<Normalizer> make_strip(bool left, bool right);
std::unique_ptr<Normalizer> make_prepend(std::string prefix);
// `pattern` is a literal string (is_regex false) or an Oniguruma regex.
std::unique_ptr<Normalizer> make_replace(const std::string& pattern, bool is_regex,
                                         std::string content);
std::unique_ptr<Normalizer> make_sequence(std::vector<std::unique_ptr<Normalizer>> parts);
// tokenizers' BertNormalizer: clean_text, handle_chinese_chars, strip_accents, lowercase.
std::unique_ptr<Normalizer> make_bert_normalizer(bool clean_text, bool handle_chinese_chars,
                                                 bool strip_accents, bool lowercase);

// ---- pre-tokenizers ----------------------------------------------------------------------

// A pre-tokenizer replaces each piece by its sub-pieces (empty pieces are dropped, as
// tokenizers' PreTokenizedString::split does).
class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(std::vector<std::string>& pieces) const = 0;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// GPT-2 byte-to-unicode table (spec C.1): the UTF-8 text of the character each byte maps to.
const std::array<std::string, 256>& byte_to_unicode();

std::unique_ptr<PreTokenizer> make_byte_level(bool add_prefix_space, bool use_regex);
std::unique_ptr<PreTokenizer> make_split(const std::string& pattern, bool is_regex,
                                         SplitBehavior behavior, bool invert);
std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer();
std::unique_ptr<PreTokenizer> make_whitespace_split();
std::unique_ptr<PreTokenizer> make_pre_sequence(std::vector<std::unique_ptr<PreTokenizer>> parts);

// ---- models ------------------------------------------------------------------------------

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of one pre-token.
  virtual void tokenize(std::string_view word, std::vector<std::int64_t>& out) const = 0;
  virtual std::optional<std::int32_t> token_to_id(std::string_view token) const = 0;
};

struct BpeConfig {
  Vocab vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // rank = index
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

// Byte-pair encoding as tokenizers' BPE model (models/bpe/word.rs merge_all: a min-heap on
// (rank, position), one merge at a time). Results are cached per word (sharded, mutex-guarded).
class Bpe final : public Model {
 public:
  // Throws FormatError naming `origin` when a merge names a token missing from the vocabulary.
  Bpe(BpeConfig config, const std::string& origin);
  void tokenize(std::string_view word, std::vector<std::int64_t>& out) const override;
  std::optional<std::int32_t> token_to_id(std::string_view token) const override {
    return vocab_find(config_.vocab, token);
  }

 private:
  void merge_word(std::string_view word, std::vector<std::int32_t>& ids) const;

  struct MergeValue {
    std::int32_t rank;
    std::int32_t new_id;
  };
  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
           static_cast<std::uint32_t>(b);
  }
  BpeConfig config_;
  std::unordered_map<std::uint64_t, MergeValue> merges_;
  std::optional<std::int32_t> unk_id_;
  std::array<std::int32_t, 256> byte_fallback_ids_{};

  static constexpr std::size_t kShards = 16;
  static constexpr std::size_t kShardCapacity = 4096;
  static constexpr std::size_t kMaxCachedWordBytes = 256;
  struct CacheShard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<std::int32_t>, StringHash, std::equal_to<>> map;
  };
  mutable std::array<CacheShard, kShards> cache_;
};

struct WordPieceConfig {
  Vocab vocab;
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  std::size_t max_input_chars_per_word = 100;
};

// Greedy longest-match-first WordPiece (tokenizers' models/wordpiece).
class WordPiece final : public Model {
 public:
  WordPiece(WordPieceConfig config, const std::string& origin);
  void tokenize(std::string_view word, std::vector<std::int64_t>& out) const override;
  std::optional<std::int32_t> token_to_id(std::string_view token) const override {
    return vocab_find(config_.vocab, token);
  }

 private:
  WordPieceConfig config_;
  std::int32_t unk_id_ = 0;
};

// ---- added tokens ------------------------------------------------------------------------

struct AddedToken {
  std::int64_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// tokenizers' AddedVocabulary: tokens with normalized=false are cut out of the raw text, then
// each remaining piece is normalized and tokens with normalized=true are cut out of it (their
// patterns being their normalized content). Matching is leftmost-longest.
class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  struct Segment {
    std::string text;
    std::int64_t id = -1;  // >= 0: an added token's id; -1: text for the pre-tokenizer
  };
  // Splits `text` into segments (never empty ones), normalizing the non-token parts.
  void extract_and_normalize(std::string_view text, const Normalizer* normalizer,
                             std::vector<Segment>& out) const;

  std::optional<std::int64_t> find(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  struct Trie {
    struct Node {
      std::vector<std::pair<unsigned char, std::int32_t>> next;  // sorted by byte
      std::int32_t token = -1;                                  // index into tokens_
    };
    std::vector<Node> nodes{Node{}};
    void insert(std::string_view pattern, std::int32_t token);
    // Longest pattern starting at text[pos]: (token index, length) or (-1, 0).
    std::pair<std::int32_t, std::size_t> longest_at(std::string_view text, std::size_t pos) const;
    bool empty() const { return nodes.size() == 1; }
  };
  // Splits `text` on the matches of `trie`, appending to out.
  void split(std::string_view text, const Trie& trie, std::vector<Segment>& out) const;

  std::vector<AddedToken> tokens_;
  Trie raw_trie_;
  Trie normalized_trie_;
};

// ---- post-processor ----------------------------------------------------------------------

// The single-sequence template: prefix ids, the sequence (with seq_type_id), suffix ids.
struct SingleTemplate {
  std::vector<std::int64_t> prefix_ids, prefix_types;
  std::vector<std::int64_t> suffix_ids, suffix_types;
  std::int64_t seq_type_id = 0;
  std::size_t added() const { return prefix_ids.size() + suffix_ids.size(); }
};

}  // namespace mmembed::text::detail
