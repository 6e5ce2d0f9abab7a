// Text tokenizers that reproduce Hugging Face tokenizers (the Rust `tokenizers` 0.19 pipeline
// behind transformers' *TokenizerFast classes) exactly: same token ids, attention masks and
// token type ids.
//
//   auto tok = mmembed::text::load_tokenizer("models/clip-vit-base-patch32");  // dir or tokenizer.json
//   mmembed::text::Encoding e = tok->encode("a photo of a cat");
//   // e.ids = {49406, 320, 1125, 539, 320, 2368, 49407}, e.attention_mask = {1, 1, ...}
//   auto batch = tok->encode_batch({"a cat", "a photo of a dog"});  // padded to the longest
//
// Families (chosen by load_tokenizer from tokenizer.json's model / normalizer / pre_tokenizer):
//   kByteLevelBpe  GPT-2 / RoBERTa / BridgeTower: ByteLevel pre-tokenizer + BPE
//                  (RobertaTokenizerFast: `<s> A </s>`).
//   kClipBpe       CLIP: NFC + `\s+`->" " + lowercase, CLIP split regex, ByteLevel, BPE with
//                  `</w>` (CLIPTokenizerFast: `<|startoftext|> A <|endoftext|>`).
//   kWordPiece     BERT / sentence-transformers: BertNormalizer + BertPreTokenizer + WordPiece
//                  (BertTokenizerFast: `[CLS] A [SEP]`, token_type_ids).
// The pipeline is the one tokenizer.json describes (added tokens -> normalizer -> pre-tokenizer
// -> model -> truncation -> post-processor -> padding), so any tokenizer.json built from the
// supported components works; unsupported components throw Unsupported at load time.
//
// Input text: must be valid UTF-8. Invalid UTF-8 throws InvalidArgument naming the byte offset
// ("text: invalid UTF-8 at byte 3: ..."); the reference takes Python str, so such input never
// reaches it and there is no reference behaviour to copy.
//
// Lengths: `max_length` counts every id, special tokens included. The default is the
// tokenizer's max_length() (see LoadOptions for where it comes from). Over-long input is cut
// at the end (content ids only; special tokens are kept, as HF's truncation before the
// post-processor) with Truncation::kTruncate, and Encoding::truncated_tokens says how many ids
// were dropped; Truncation::kError throws InvalidArgument instead.
//
// Thread-safety: a Tokenizer is immutable after loading except for an internal, mutex-guarded
// BPE word cache; encode/encode_batch are safe to call from several threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mmembed::text {

struct Encoding {
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> attention_mask;  // 1 for real tokens, 0 for padding
  std::vector<std::int64_t> type_ids;        // from the post-processor template; pads get 0
  int truncated_tokens = 0;                  // ids cut by truncation (0 when nothing was cut)
};

enum class TokenizerKind { kByteLevelBpe, kClipBpe, kWordPiece };
const char* kind_name(TokenizerKind kind);

enum class Truncation {
  kTruncate,  // cut the content at the end so that the total fits max_length (HF truncation=True)
  kError,     // throw InvalidArgument when the total would exceed max_length
};

// No length limit (HF: truncation=False). Use as EncodeOptions::max_length.
inline constexpr std::size_t kNoLimit = std::numeric_limits<std::size_t>::max();

struct EncodeOptions {
  bool add_special_tokens = true;  // run the post-processor (`<s> A </s>`, `[CLS] A [SEP]`)
  // Total length limit including special tokens; 0 = the tokenizer's max_length().
  std::size_t max_length = 0;
  Truncation truncation = Truncation::kTruncate;
};

enum class Padding {
  kNone,     // rows keep their own lengths
  kLongest,  // right-pad to the longest row of the batch (HF padding=True)
  kFixed,    // right-pad to pad_length, or to the effective max_length when 0 (padding="max_length")
};

struct BatchOptions {
  EncodeOptions encode;
  Padding padding = Padding::kLongest;
  std::size_t pad_length = 0;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // One text -> ids (+ mask, type ids). Throws InvalidArgument on invalid UTF-8, or when
  // options.truncation is kError and the text is too long.
  virtual Encoding encode(std::string_view text, const EncodeOptions& options = {}) const = 0;

  // Many texts, each encoded as encode() does, then padded on the right with pad_id() (mask 0,
  // type id 0). Padding throws InvalidArgument when the tokenizer has no pad token.
  std::vector<Encoding> encode_batch(std::span<const std::string_view> texts,
                                     const BatchOptions& options = {}) const;
  std::vector<Encoding> encode_batch(const std::vector<std::string>& texts,
                                     const BatchOptions& options = {}) const;

  virtual TokenizerKind kind() const = 0;
  // Default total length limit (special tokens included); kNoLimit when none is known.
  virtual std::size_t max_length() const = 0;
  // Where max_length() came from, e.g. "tokenizer_config.json model_max_length".
  virtual const std::string& max_length_source() const = 0;
  // Id of the pad token (tokenizer_config.json pad_token, else tokenizer.json padding.pad_id).
  virtual std::optional<std::int64_t> pad_id() const = 0;
  // Id of a token string (added tokens first, then the model vocabulary).
  virtual std::optional<std::int64_t> token_to_id(std::string_view token) const = 0;
  // Number of special ids the post-processor adds to one sequence (2 for all three families).
  virtual std::size_t num_special_tokens() const = 0;
};

struct LoadOptions {
  // Overrides max_length(). Otherwise, in this order: tokenizer_config.json `model_max_length`
  // (ignored when >= 1e9, i.e. transformers' "unset" VERY_LARGE_INTEGER); the model's
  // config.json: max_position_embeddings (text_config's for CLIP / BridgeTower) minus the
  // position offset of RoBERTa-style models (pad_token_id + 1 = 2: 514 -> 512); tokenizer.json
  // `truncation.max_length`; else kNoLimit.
  // Note: transformers itself does not truncate when model_max_length is unset (BridgeTower Hub
  // repos) and the model then fails past 512 tokens; taking the model's limit avoids that.
  std::size_t max_length = 0;
};

// The text of the files a tokenizer is built from; empty strings mean "absent".
// Either tokenizer_json, or vocab_json + merges_txt (GPT-2/RoBERTa/CLIP), or vocab_txt (BERT).
struct TokenizerFiles {
  std::string origin;  // named in error messages (a directory or file path)
  std::string tokenizer_json;
  std::string tokenizer_config_json;
  std::string special_tokens_map_json;
  std::string config_json;  // the model's config.json (max length, model_type)
  std::string added_tokens_json;
  std::string vocab_json;
  std::string merges_txt;
  std::string vocab_txt;
};

// `path` is a model directory (tokenizer.json, else vocab.json + merges.txt, else vocab.txt,
// plus tokenizer_config.json / special_tokens_map.json / config.json when present) or a
// tokenizer.json file (its directory's config files are read too). Throws IoError when nothing
// usable is found, FormatError (naming the file) on malformed content, Unsupported for
// components this build does not implement.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path,
                                          const LoadOptions& options = {});
std::unique_ptr<Tokenizer> load_tokenizer(const TokenizerFiles& files,
                                          const LoadOptions& options = {});

}  // namespace mmembed::text
