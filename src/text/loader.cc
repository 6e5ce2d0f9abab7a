// Builds a PipelineTokenizer from tokenizer.json (tokenizers' serialization, spec
// clip-and-formats.md C.4) or from the legacy files the slow tokenizers read, as transformers'
// converters (convert_slow_tokenizer.py) would turn them into a tokenizers pipeline.
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/file.h"
#include "text/pipeline_tokenizer.h"
#include "text/tokenizer.h"

namespace mmembed::text {

namespace {

using nlohmann::json;
using namespace detail;

// transformers' VERY_LARGE_INTEGER (1e30) marks an unset model_max_length.
constexpr double kUnsetMaxLength = 1e9;

json parse_json(const std::string& text, const std::string& name) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw FormatError(str_cat(name, ": not valid JSON: ", e.what()));
  }
}

// Typed field access with messages naming the file and the field.
struct Reader {
  std::string name;  // "<origin>/tokenizer.json"

  const json& at(const json& obj, const char* key, const std::string& where) const {
    MMEMBED_CHECK(obj.is_object() && obj.contains(key), FormatError, name, ": ", where,
                  " has no \"", key, "\"");
    return obj.at(key);
  }
  std::string str(const json& obj, const char* key, const std::string& where) const {
    const json& v = at(obj, key, where);
    MMEMBED_CHECK(v.is_string(), FormatError, name, ": ", where, ".", key, " must be a string");
    return v.get<std::string>();
  }
  bool flag(const json& obj, const char* key, bool fallback, const std::string& where) const {
    if (!obj.contains(key) || obj.at(key).is_null()) return fallback;
    const json& v = obj.at(key);
    MMEMBED_CHECK(v.is_boolean(), FormatError, name, ": ", where, ".", key, " must be a bool");
    return v.get<bool>();
  }
  std::int64_t integer(const json& v, const std::string& where) const {
    MMEMBED_CHECK(v.is_number_integer(), FormatError, name, ": ", where, " must be an integer");
    return v.get<std::int64_t>();
  }
  // {"String": s} or {"Regex": r} -> (text, is_regex)
  std::pair<std::string, bool> pattern(const json& obj, const std::string& where) const {
    const json& p = at(obj, "pattern", where);
    if (p.is_object() && p.contains("String") && p["String"].is_string())
      return {p["String"].get<std::string>(), false};
    if (p.is_object() && p.contains("Regex") && p["Regex"].is_string())
      return {p["Regex"].get<std::string>(), true};
    throw FormatError(str_cat(name, ": ", where, ".pattern must be {\"String\": ...} or {\"Regex\": ...}"));
  }
};

std::unique_ptr<Normalizer> build_normalizer(const json& j, const Reader& r,
                                             const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = r.str(j, "type", where);
  if (type == "NFC") return make_unicode_normalizer(NormalForm::kNfc);
  if (type == "NFD") return make_unicode_normalizer(NormalForm::kNfd);
  if (type == "NFKC") return make_unicode_normalizer(NormalForm::kNfkc);
  if (type == "NFKD") return make_unicode_normalizer(NormalForm::kNfkd);
  if (type == "Lowercase") return make_lowercase();
  if (type == "Strip")
    return make_strip(r.flag(j, "strip_left", true, where), r.flag(j, "strip_right", true, where));
  if (type == "Prepend") return make_prepend(r.str(j, "prepend", where));
  if (type == "Replace") {
    auto [pattern, is_regex] = r.pattern(j, where);
    return make_replace(pattern, is_regex, r.str(j, "content", where));
  }
  if (type == "Sequence") {
    const json& list = r.at(j, "normalizers", where);
    MMEMBED_CHECK(list.is_array(), FormatError, r.name, ": ", where, ".normalizers must be an array");
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (std::size_t i = 0; i < list.size(); ++i)
      if (auto n = build_normalizer(list[i], r, str_cat(where, ".normalizers[", i, "]")))
        parts.push_back(std::move(n));
    return make_sequence(std::move(parts));
  }
  if (type == "BertNormalizer") {
    const bool lowercase = r.flag(j, "lowercase", true, where);
    return make_bert_normalizer(r.flag(j, "clean_text", true, where),
                                r.flag(j, "handle_chinese_chars", true, where),
                                r.flag(j, "strip_accents", lowercase, where), lowercase);
  }
  throw Unsupported(str_cat(r.name, ": ", where, ": normalizer type \"", type, "\" is not supported"));
}

SplitBehavior parse_behavior(const std::string& s, const Reader& r, const std::string& where) {
  if (s == "Removed") return SplitBehavior::kRemoved;
  if (s == "Isolated") return SplitBehavior::kIsolated;
  if (s == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (s == "Contiguous") return SplitBehavior::kContiguous;
  throw FormatError(str_cat(r.name, ": ", where, ".behavior \"", s, "\" is unknown"));
}

std::unique_ptr<PreTokenizer> build_pre_tokenizer(const json& j, const Reader& r,
                                                  const std::string& where, bool& has_byte_level) {
  if (j.is_null()) return nullptr;
  const std::string type = r.str(j, "type", where);
  if (type == "ByteLevel") {
    has_byte_level = true;
    return make_byte_level(r.flag(j, "add_prefix_space", true, where),
                           r.flag(j, "use_regex", true, where));
  }
  if (type == "Split") {
    auto [pattern, is_regex] = r.pattern(j, where);
    return make_split(pattern, is_regex, parse_behavior(r.str(j, "behavior", where), r, where),
                      r.flag(j, "invert", false, where));
  }
  if (type == "BertPreTokenizer") return make_bert_pre_tokenizer();
  if (type == "WhitespaceSplit") return make_whitespace_split();
  if (type == "Whitespace")
    return make_split(R"(\w+|[^\w\s]+)", true, SplitBehavior::kRemoved, true);
  if (type == "Sequence") {
    const json& list = r.at(j, "pretokenizers", where);
    MMEMBED_CHECK(list.is_array(), FormatError, r.name, ": ", where, ".pretokenizers must be an array");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (std::size_t i = 0; i < list.size(); ++i)
      if (auto p = build_pre_tokenizer(list[i], r, str_cat(where, ".pretokenizers[", i, "]"),
                                       has_byte_level))
        parts.push_back(std::move(p));
    return make_pre_sequence(std::move(parts));
  }
  throw Unsupported(str_cat(r.name, ": ", where, ": pre-tokenizer type \"", type, "\" is not supported"));
}

Vocab parse_vocab_object(const json& v, const Reader& r, const std::string& where) {
  MMEMBED_CHECK(v.is_object(), FormatError, r.name, ": ", where, " must be an object token -> id");
  Vocab vocab;
  vocab.reserve(v.size());
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::int64_t id = r.integer(it.value(), str_cat(where, "[\"", it.key(), "\"]"));
    MMEMBED_CHECK(id >= 0 && id < (std::int64_t{1} << 31), FormatError, r.name, ": ", where,
                  "[\"", it.key(), "\"] = ", id, " is out of range");
    vocab.emplace(it.key(), static_cast<std::int32_t>(id));
  }
  return vocab;
}

std::pair<std::string, std::string> split_merge_line(std::string_view line, const Reader& r,
                                                     const std::string& where) {
  const std::size_t sp = line.find(' ');
  MMEMBED_CHECK(sp != std::string_view::npos && sp > 0 && sp + 1 < line.size() &&
                    line.find(' ', sp + 1) == std::string_view::npos,
                FormatError, r.name, ": ", where, " \"", line, "\" is not two tokens separated by one space");
  return {std::string(line.substr(0, sp)), std::string(line.substr(sp + 1))};
}

std::unique_ptr<Model> build_model(const json& j, const Reader& r, TokenizerKind& family_hint,
                                   std::string& bpe_suffix) {
  const std::string where = "model";
  MMEMBED_CHECK(j.is_object(), FormatError, r.name, ": \"model\" must be an object");
  std::string type = j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
  if (type.empty()) {  // very old files omit the tag
    if (j.contains("merges")) type = "BPE";
    else if (j.contains("max_input_chars_per_word")) type = "WordPiece";
  }
  if (type == "BPE") {
    MMEMBED_CHECK(!j.contains("dropout") || j["dropout"].is_null(), Unsupported, r.name,
                  ": model.dropout is set; BPE dropout is for training and is not supported");
    BpeConfig c;
    c.vocab = parse_vocab_object(r.at(j, "vocab", where), r, "model.vocab");
    const json& merges = r.at(j, "merges", where);
    MMEMBED_CHECK(merges.is_array(), FormatError, r.name, ": model.merges must be an array");
    c.merges.reserve(merges.size());
    for (std::size_t i = 0; i < merges.size(); ++i) {
      const json& m = merges[i];
      const std::string w = str_cat("model.merges[", i, "]");
      if (m.is_string()) {
        c.merges.push_back(split_merge_line(m.get_ref<const std::string&>(), r, w));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        c.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        throw FormatError(str_cat(r.name, ": ", w, " must be \"a b\" or [\"a\", \"b\"]"));
      }
    }
    if (j.contains("unk_token") && j["unk_token"].is_string()) c.unk_token = j["unk_token"].get<std::string>();
    if (j.contains("continuing_subword_prefix") && j["continuing_subword_prefix"].is_string())
      c.continuing_subword_prefix = j["continuing_subword_prefix"].get<std::string>();
    if (j.contains("end_of_word_suffix") && j["end_of_word_suffix"].is_string())
      c.end_of_word_suffix = j["end_of_word_suffix"].get<std::string>();
    c.fuse_unk = r.flag(j, "fuse_unk", false, where);
    c.byte_fallback = r.flag(j, "byte_fallback", false, where);
    c.ignore_merges = r.flag(j, "ignore_merges", false, where);
    bpe_suffix = c.end_of_word_suffix;
    family_hint = TokenizerKind::kByteLevelBpe;
    return std::make_unique<Bpe>(std::move(c), r.name);
  }
  if (type == "WordPiece") {
    WordPieceConfig c;
    c.vocab = parse_vocab_object(r.at(j, "vocab", where), r, "model.vocab");
    if (j.contains("unk_token") && j["unk_token"].is_string()) c.unk_token = j["unk_token"].get<std::string>();
    if (j.contains("continuing_subword_prefix") && j["continuing_subword_prefix"].is_string())
      c.continuing_subword_prefix = j["continuing_subword_prefix"].get<std::string>();
    if (j.contains("max_input_chars_per_word") && j["max_input_chars_per_word"].is_number_unsigned())
      c.max_input_chars_per_word = j["max_input_chars_per_word"].get<std::size_t>();
    family_hint = TokenizerKind::kWordPiece;
    return std::make_unique<WordPiece>(std::move(c), r.name);
  }
  throw Unsupported(str_cat(r.name, ": model type \"", type,
                            "\" is not supported (BPE and WordPiece are)"));
}

// Appends a post-processor's single-sequence template to `t`.
void build_post(const json& j, const Reader& r, const std::string& where, SingleTemplate& t,
                bool& any) {
  if (j.is_null()) return;
  const std::string type = r.str(j, "type", where);
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto special = [&](const char* key) {
      const json& v = r.at(j, key, where);
      MMEMBED_CHECK(v.is_array() && v.size() == 2 && v[1].is_number_integer(), FormatError, r.name,
                    ": ", where, ".", key, " must be [token, id]");
      return v[1].get<std::int64_t>();
    };
    t.prefix_ids.push_back(special("cls"));
    t.prefix_types.push_back(0);
    t.suffix_ids.push_back(special("sep"));
    t.suffix_types.push_back(0);
    any = true;
    return;
  }
  if (type == "ByteLevel") return;  // offsets only
  if (type == "TemplateProcessing") {
    const json& single = r.at(j, "single", where);
    const json& specials = r.at(j, "special_tokens", where);
    MMEMBED_CHECK(single.is_array(), FormatError, r.name, ": ", where, ".single must be an array");
    bool seen_sequence = false;
    for (std::size_t i = 0; i < single.size(); ++i) {
      const json& piece = single[i];
      const std::string w = str_cat(where, ".single[", i, "]");
      if (piece.contains("Sequence")) {
        MMEMBED_CHECK(!seen_sequence, Unsupported, r.name, ": ", w, ": a single template with two sequences");
        seen_sequence = true;
        t.seq_type_id = r.integer(r.at(piece["Sequence"], "type_id", w), w + ".type_id");
      } else if (piece.contains("SpecialToken")) {
        const json& st = piece["SpecialToken"];
        const std::string name = r.str(st, "id", w);
        const std::int64_t type_id = r.integer(r.at(st, "type_id", w), w + ".type_id");
        MMEMBED_CHECK(specials.contains(name), FormatError, r.name, ": ", w, ": special token \"",
                      name, "\" is not in special_tokens");
        const json& ids = r.at(specials[name], "ids", str_cat(where, ".special_tokens.", name));
        auto& dst_ids = seen_sequence ? t.suffix_ids : t.prefix_ids;
        auto& dst_types = seen_sequence ? t.suffix_types : t.prefix_types;
        for (const json& id : ids) {
          dst_ids.push_back(r.integer(id, str_cat(where, ".special_tokens.", name, ".ids")));
          dst_types.push_back(type_id);
        }
      } else {
        throw FormatError(str_cat(r.name, ": ", w, " must be {\"Sequence\": ...} or {\"SpecialToken\": ...}"));
      }
    }
    any = true;
    return;
  }
  if (type == "Sequence") {
    const json& list = r.at(j, "processors", where);
    for (std::size_t i = 0; i < list.size(); ++i)
      build_post(list[i], r, str_cat(where, ".processors[", i, "]"), t, any);
    return;
  }
  throw Unsupported(str_cat(r.name, ": ", where, ": post-processor type \"", type, "\" is not supported"));
}

std::vector<AddedToken> parse_added_tokens(const json& list, const Reader& r) {
  std::vector<AddedToken> out;
  if (list.is_null()) return out;
  MMEMBED_CHECK(list.is_array(), FormatError, r.name, ": added_tokens must be an array");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json& a = list[i];
    const std::string w = str_cat("added_tokens[", i, "]");
    AddedToken t;
    t.id = r.integer(r.at(a, "id", w), w + ".id");
    t.content = r.str(a, "content", w);
    t.special = r.flag(a, "special", false, w);
    t.single_word = r.flag(a, "single_word", false, w);
    t.lstrip = r.flag(a, "lstrip", false, w);
    t.rstrip = r.flag(a, "rstrip", false, w);
    t.normalized = r.flag(a, "normalized", !t.special, w);
    out.push_back(std::move(t));
  }
  return out;
}

// "pad_token": "<pad>" or {"content": "<pad>", ...}
std::optional<std::string> token_string(const json& cfg, const char* key) {
  if (!cfg.is_object() || !cfg.contains(key)) return std::nullopt;
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return std::nullopt;
}

struct Configs {
  json tokenizer_config;  // null when absent
  json special_tokens_map;
  json model_config;
};

Configs parse_configs(const TokenizerFiles& f) {
  Configs c;
  if (!f.tokenizer_config_json.empty())
    c.tokenizer_config = parse_json(f.tokenizer_config_json, f.origin + "/tokenizer_config.json");
  if (!f.special_tokens_map_json.empty())
    c.special_tokens_map = parse_json(f.special_tokens_map_json, f.origin + "/special_tokens_map.json");
  if (!f.config_json.empty()) c.model_config = parse_json(f.config_json, f.origin + "/config.json");
  return c;
}

std::optional<std::string> config_token(const Configs& c, const char* key) {
  if (auto s = token_string(c.tokenizer_config, key)) return s;
  return token_string(c.special_tokens_map, key);
}

// The model's own position limit (see LoadOptions::max_length).
std::optional<std::pair<std::size_t, std::string>> model_position_limit(const json& cfg) {
  if (!cfg.is_object()) return std::nullopt;
  const std::string model_type = cfg.value("model_type", std::string());
  const json* text = &cfg;
  std::string where = "config.json max_position_embeddings";
  if (cfg.contains("text_config") && cfg["text_config"].is_object()) {
    text = &cfg["text_config"];
    where = "config.json text_config.max_position_embeddings";
  }
  std::int64_t positions = 0;
  if (text->contains("max_position_embeddings") && (*text)["max_position_embeddings"].is_number_integer()) {
    positions = (*text)["max_position_embeddings"].get<std::int64_t>();
  } else if (model_type == "bridgetower") {
    positions = 514, where = "BridgeTowerTextConfig default max_position_embeddings";
  } else if (model_type == "clip") {
    positions = 77, where = "CLIPTextConfig default max_position_embeddings";
  } else {
    return std::nullopt;
  }
  const bool roberta_like = model_type == "roberta" || model_type == "bridgetower" ||
                            model_type == "xlm-roberta" || model_type == "camembert";
  if (roberta_like) {
    std::int64_t pad = 1;
    if (text->contains("pad_token_id") && (*text)["pad_token_id"].is_number_integer())
      pad = (*text)["pad_token_id"].get<std::int64_t>();
    positions -= pad + 1;  // RoBERTa positions start at padding_idx + 1
    where += " - (pad_token_id + 1)";
  }
  if (positions <= 0) return std::nullopt;
  return std::make_pair(static_cast<std::size_t>(positions), where);
}

void resolve_lengths_and_pad(PipelineParts& parts, const Configs& c, const json& tokenizer_json,
                             const LoadOptions& options, const std::vector<AddedToken>& added,
                             const Model& model) {
  auto id_of = [&](const std::string& tok) -> std::optional<std::int64_t> {
    for (const auto& t : added)
      if (t.content == tok) return t.id;
    if (auto id = model.token_to_id(tok)) return *id;
    return std::nullopt;
  };
  if (options.max_length != 0) {
    parts.max_length = options.max_length;
    parts.max_length_source = "LoadOptions::max_length";
  } else if (c.tokenizer_config.is_object() && c.tokenizer_config.contains("model_max_length") &&
             c.tokenizer_config["model_max_length"].is_number() &&
             c.tokenizer_config["model_max_length"].get<double>() < kUnsetMaxLength &&
             c.tokenizer_config["model_max_length"].get<double>() > 0) {
    parts.max_length = static_cast<std::size_t>(c.tokenizer_config["model_max_length"].get<double>());
    parts.max_length_source = "tokenizer_config.json model_max_length";
  } else if (auto limit = model_position_limit(c.model_config)) {
    parts.max_length = limit->first;
    parts.max_length_source = limit->second;
  } else if (tokenizer_json.is_object() && tokenizer_json.contains("truncation") &&
             tokenizer_json["truncation"].is_object() &&
             tokenizer_json["truncation"].contains("max_length") &&
             tokenizer_json["truncation"]["max_length"].is_number_unsigned()) {
    parts.max_length = tokenizer_json["truncation"]["max_length"].get<std::size_t>();
    parts.max_length_source = "tokenizer.json truncation.max_length";
  }
  if (auto pad = config_token(c, "pad_token")) {
    parts.pad_id = id_of(*pad);
  }
  if (!parts.pad_id && tokenizer_json.is_object() && tokenizer_json.contains("padding") &&
      tokenizer_json["padding"].is_object() && tokenizer_json["padding"].contains("pad_id") &&
      tokenizer_json["padding"]["pad_id"].is_number_integer()) {
    parts.pad_id = tokenizer_json["padding"]["pad_id"].get<std::int64_t>();
  }
}

std::unique_ptr<Tokenizer> from_tokenizer_json(const TokenizerFiles& f, const Configs& c,
                                                const LoadOptions& options) {
  Reader r{f.origin.empty() ? std::string("tokenizer.json") : f.origin + "/tokenizer.json"};
  const json j = parse_json(f.tokenizer_json, r.name);
  MMEMBED_CHECK(j.is_object(), FormatError, r.name, ": top level must be an object");
  PipelineParts parts;
  TokenizerKind hint = TokenizerKind::kByteLevelBpe;
  std::string suffix;
  parts.model = build_model(r.at(j, "model", "top level"), r, hint, suffix);
  parts.normalizer = build_normalizer(j.value("normalizer", json()), r, "normalizer");
  bool has_byte_level = false;
  parts.pre_tokenizer =
      build_pre_tokenizer(j.value("pre_tokenizer", json()), r, "pre_tokenizer", has_byte_level);
  if (hint == TokenizerKind::kWordPiece) {
    parts.kind = TokenizerKind::kWordPiece;
  } else {
    MMEMBED_CHECK(has_byte_level, Unsupported, r.name,
                  ": BPE without a ByteLevel pre-tokenizer (e.g. SentencePiece-style) is not supported");
    parts.kind = suffix.empty() ? TokenizerKind::kByteLevelBpe : TokenizerKind::kClipBpe;
  }
  parts.added_tokens = parse_added_tokens(j.value("added_tokens", json()), r);
  SingleTemplate t;
  bool any = false;
  build_post(j.value("post_processor", json()), r, "post_processor", t, any);
  if (any) parts.post = std::move(t);
  resolve_lengths_and_pad(parts, c, j, options, parts.added_tokens, *parts.model);
  return std::make_unique<PipelineTokenizer>(std::move(parts));
}

// The post-processor of every legacy converter: `first` sequence `last`, all with type id 0.
SingleTemplate wrap_sequence(std::int64_t first, std::int64_t last) {
  SingleTemplate t;
  t.prefix_ids = {first};
  t.prefix_types = {0};
  t.suffix_ids = {last};
  t.suffix_types = {0};
  return t;
}

// Added tokens of a legacy folder: tokenizer_config.json added_tokens_decoder (id -> flags),
// plus added_tokens.json (content -> id) for tokens not listed there.
std::vector<AddedToken> legacy_added_tokens(const TokenizerFiles& f, const Configs& c) {
  std::vector<AddedToken> out;
  Reader r{f.origin + "/tokenizer_config.json"};
  if (c.tokenizer_config.is_object() && c.tokenizer_config.contains("added_tokens_decoder")) {
    const json& dec = c.tokenizer_config["added_tokens_decoder"];
    for (auto it = dec.begin(); it != dec.end(); ++it) {
      const std::string w = str_cat("added_tokens_decoder[\"", it.key(), "\"]");
      AddedToken t;
      try {
        t.id = std::stoll(it.key());
      } catch (const std::exception&) {
        throw FormatError(str_cat(r.name, ": ", w, ": key is not an id"));
      }
      t.content = r.str(it.value(), "content", w);
      t.special = r.flag(it.value(), "special", false, w);
      t.single_word = r.flag(it.value(), "single_word", false, w);
      t.lstrip = r.flag(it.value(), "lstrip", false, w);
      t.rstrip = r.flag(it.value(), "rstrip", false, w);
      t.normalized = r.flag(it.value(), "normalized", !t.special, w);
      out.push_back(std::move(t));
    }
  }
  if (!f.added_tokens_json.empty()) {
    const json a = parse_json(f.added_tokens_json, f.origin + "/added_tokens.json");
    for (auto it = a.begin(); it != a.end(); ++it) {
      bool known = false;
      for (const auto& t : out) known = known || t.content == it.key();
      if (!known && it.value().is_number_integer())
        out.push_back(AddedToken{it.value().get<std::int64_t>(), it.key(), false, false, false, true, false});
    }
  }
  std::sort(out.begin(), out.end(), [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  return out;
}

std::unique_ptr<Tokenizer> from_legacy(const TokenizerFiles& f, const Configs& c,
                                       const LoadOptions& options) {
  PipelineParts parts;
  const std::string tclass = c.tokenizer_config.is_object()
                                 ? c.tokenizer_config.value("tokenizer_class", std::string())
                                 : std::string();
  const std::string model_type =
      c.model_config.is_object() ? c.model_config.value("model_type", std::string()) : std::string();
  auto cfg_flag = [&](const char* key, bool fallback) {
    if (c.tokenizer_config.is_object() && c.tokenizer_config.contains(key) &&
        c.tokenizer_config[key].is_boolean())
      return c.tokenizer_config[key].get<bool>();
    return fallback;
  };
  parts.added_tokens = legacy_added_tokens(f, c);

  auto special_id = [&](const char* key, const std::string& fallback) -> std::int64_t {
    const std::string tok = config_token(c, key).value_or(fallback);
    for (const auto& t : parts.added_tokens)
      if (t.content == tok) return t.id;
    auto id = parts.model->token_to_id(tok);
    MMEMBED_CHECK(id, FormatError, f.origin, ": special token '", tok, "' (", key,
                  ") is neither an added token nor in the vocabulary");
    return *id;
  };

  if (!f.vocab_json.empty() && !f.merges_txt.empty()) {
    Reader r{f.origin + "/merges.txt"};
    BpeConfig b;
    b.vocab = parse_vocab_object(parse_json(f.vocab_json, f.origin + "/vocab.json"),
                                 Reader{f.origin + "/vocab.json"}, "vocab");
    std::istringstream in(f.merges_txt);
    std::string line;
    for (std::size_t n = 1; std::getline(in, line); ++n) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line.rfind("#version", 0) == 0) continue;
      b.merges.push_back(split_merge_line(line, r, str_cat("line ", n)));
    }
    const bool clip = tclass.rfind("CLIPTokenizer", 0) == 0 || model_type == "clip";
    if (clip) {
      // transformers' CLIPConverter.
      b.unk_token = config_token(c, "unk_token").value_or("<|endoftext|>");
      b.end_of_word_suffix = "</w>";
      parts.kind = TokenizerKind::kClipBpe;
      std::vector<std::unique_ptr<Normalizer>> norms;
      norms.push_back(make_unicode_normalizer(NormalForm::kNfc));
      norms.push_back(make_replace(R"(\s+)", true, " "));
      norms.push_back(make_lowercase());
      parts.normalizer = make_sequence(std::move(norms));
      std::vector<std::unique_ptr<PreTokenizer>> pres;
      pres.push_back(make_split(R"('s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+)", true,
                                SplitBehavior::kRemoved, true));
      pres.push_back(make_byte_level(false, true));
      parts.pre_tokenizer = make_pre_sequence(std::move(pres));
      parts.model = std::make_unique<Bpe>(std::move(b), f.origin + "/vocab.json");
      parts.post = wrap_sequence(special_id("bos_token", "<|startoftext|>"),
                                 special_id("eos_token", "<|endoftext|>"));
    } else {
      // transformers' RobertaConverter / GPT2Converter.
      parts.kind = TokenizerKind::kByteLevelBpe;
      parts.pre_tokenizer = make_byte_level(cfg_flag("add_prefix_space", false), true);
      parts.model = std::make_unique<Bpe>(std::move(b), f.origin + "/vocab.json");
      const bool gpt2 = tclass.rfind("GPT2Tokenizer", 0) == 0 || model_type == "gpt2";
      if (!gpt2) {
        parts.post = wrap_sequence(special_id("cls_token", "<s>"), special_id("sep_token", "</s>"));
      }
    }
  } else if (!f.vocab_txt.empty()) {
    // transformers' BertConverter.
    WordPieceConfig w;
    std::istringstream in(f.vocab_txt);
    std::string line;
    for (std::int32_t id = 0; std::getline(in, line); ++id) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      w.vocab.emplace(line, id);  // a repeated line keeps its first id
    }
    w.unk_token = config_token(c, "unk_token").value_or("[UNK]");
    parts.kind = TokenizerKind::kWordPiece;
    const bool lower = cfg_flag("do_lower_case", true);
    bool strip = lower;
    if (c.tokenizer_config.is_object() && c.tokenizer_config.contains("strip_accents") &&
        c.tokenizer_config["strip_accents"].is_boolean())
      strip = c.tokenizer_config["strip_accents"].get<bool>();
    parts.normalizer =
        make_bert_normalizer(true, cfg_flag("tokenize_chinese_chars", true), strip, lower);
    parts.pre_tokenizer = make_bert_pre_tokenizer();
    parts.model = std::make_unique<WordPiece>(std::move(w), f.origin + "/vocab.txt");
    parts.post = wrap_sequence(special_id("cls_token", "[CLS]"), special_id("sep_token", "[SEP]"));
  } else {
    throw IoError(str_cat(f.origin, ": no tokenizer.json, vocab.json + merges.txt, or vocab.txt"));
  }
  resolve_lengths_and_pad(parts, c, json(), options, parts.added_tokens, *parts.model);
  return std::make_unique<PipelineTokenizer>(std::move(parts));
}

std::string read_file(const std::filesystem::path& p) {
  std::string text = read_input_file(p.string(), kMaxTokenizerFileBytes);
  // An empty string means "no such file" in TokenizerFiles, so a present but empty file would
  // otherwise be reported as missing.
  MMEMBED_CHECK(!text.empty(), FormatError, escape_for_message(p.string()), ": empty file");
  return text;
}

// The file's text, or "" when there is no such file. A path that exists but is not a regular
// file (a FIFO, a directory) is an error, not a missing file.
std::string read_if_exists(const std::filesystem::path& p) {
  std::error_code ec;
  if (!std::filesystem::exists(p, ec)) return std::string();
  return read_file(p);
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const TokenizerFiles& files, const LoadOptions& options) {
  const Configs c = parse_configs(files);
  if (!files.tokenizer_json.empty()) return from_tokenizer_json(files, c, options);
  return from_legacy(files, c, options);
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path,
                                          const LoadOptions& options) {
  std::error_code ec;
  TokenizerFiles f;
  std::filesystem::path dir = path;
  MMEMBED_CHECK(std::filesystem::exists(path, ec), IoError, escape_for_message(path.string()),
                ": no such file or directory");
  if (!std::filesystem::is_directory(path, ec)) {
    // A file: read_file names what is wrong when it is missing, a FIFO or a device.
    dir = path.parent_path();
    f.tokenizer_json = read_file(path);
  } else {
    f.tokenizer_json = read_if_exists(dir / "tokenizer.json");
  }
  f.origin = dir.string();
  f.tokenizer_config_json = read_if_exists(dir / "tokenizer_config.json");
  f.special_tokens_map_json = read_if_exists(dir / "special_tokens_map.json");
  f.config_json = read_if_exists(dir / "config.json");
  if (f.tokenizer_json.empty()) {
    f.added_tokens_json = read_if_exists(dir / "added_tokens.json");
    f.vocab_json = read_if_exists(dir / "vocab.json");
    f.merges_txt = read_if_exists(dir / "merges.txt");
    f.vocab_txt = read_if_exists(dir / "vocab.txt");
  }
  return load_tokenizer(f, options);
}

}  // namespace mmembed::text
