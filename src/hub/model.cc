// resolve_model(): which files a model needs, and the errors a user sees when they are missing.
#include <nlohmann/json.hpp>

#include <cctype>
#include <cmath>
#include <set>
#include <system_error>

#include "hub/cache.h"
#include "core/file.h"
#include "hub/resolve.h"
#include "mmembed/hub.h"

namespace mmembed::hub {
namespace {

// Files a model family may need besides config.json and the weights; each is optional.
const char* const kOptionalFiles[] = {
    "tokenizer.json",        "tokenizer_config.json",  "special_tokens_map.json",
    "added_tokens.json",     "vocab.json",             "merges.txt",
    "vocab.txt",             "preprocessor_config.json",
    // sentence-transformers
    "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
    "1_Pooling/config.json",
};

// Weight layouts in the order transformers prefers them.
struct WeightLayout {
  const char* file;
  bool index;  // a sharded index whose weight_map names the shard files
};
const WeightLayout kWeights[] = {
    {"model.safetensors", false},
    {"model.safetensors.index.json", true},
    {"pytorch_model.bin", false},
    {"pytorch_model.bin.index.json", true},
};
const char* kWeightsText =
    "model weights (model.safetensors, model.safetensors.index.json and its shards, "
    "pytorch_model.bin or pytorch_model.bin.index.json and its shards)";

std::vector<std::string> shards_of(const fs::path& index_file) {
  const std::string text = read_input_file(index_file.string(), kMaxConfigFileBytes);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(index_file.string() + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw FormatError(index_file.string() + ": no \"weight_map\" object");
  std::set<std::string> shards;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string())
      throw FormatError(index_file.string() + ": weight_map[\"" + name + "\"] is not a string");
    shards.insert(file.get<std::string>());
  }
  return {shards.begin(), shards.end()};
}

// sentence-transformers' ORIGINAL_TRANSFORMER_MODELS (util/misc.py in 6.3.0; the same 68 names as
// `basic_transformer_models` in SentenceTransformer.py of 2.2.2, 3.0.1 and 5.1.2): repositories
// without an organization that a short name must not be prefixed for. All lower case.
const char* const kOriginalTransformerModels[] = {
    "albert-base-v1", "albert-base-v2", "albert-large-v1", "albert-large-v2", "albert-xlarge-v1",
    "albert-xlarge-v2", "albert-xxlarge-v1", "albert-xxlarge-v2", "bert-base-cased-finetuned-mrpc",
    "bert-base-cased", "bert-base-chinese", "bert-base-german-cased",
    "bert-base-german-dbmdz-cased", "bert-base-german-dbmdz-uncased",
    "bert-base-multilingual-cased", "bert-base-multilingual-uncased", "bert-base-uncased",
    "bert-large-cased-whole-word-masking-finetuned-squad", "bert-large-cased-whole-word-masking",
    "bert-large-cased", "bert-large-uncased-whole-word-masking-finetuned-squad",
    "bert-large-uncased-whole-word-masking", "bert-large-uncased", "camembert-base", "ctrl",
    "distilbert-base-cased-distilled-squad", "distilbert-base-cased",
    "distilbert-base-german-cased", "distilbert-base-multilingual-cased",
    "distilbert-base-uncased-distilled-squad", "distilbert-base-uncased-finetuned-sst-2-english",
    "distilbert-base-uncased", "distilgpt2", "distilroberta-base", "gpt2-large", "gpt2-medium",
    "gpt2-xl", "gpt2", "openai-gpt", "roberta-base-openai-detector", "roberta-base",
    "roberta-large-mnli", "roberta-large-openai-detector", "roberta-large", "t5-11b", "t5-3b",
    "t5-base", "t5-large", "t5-small", "transfo-xl-wt103", "xlm-clm-ende-1024",
    "xlm-clm-enfr-1024", "xlm-mlm-100-1280", "xlm-mlm-17-1280", "xlm-mlm-en-2048",
    "xlm-mlm-ende-1024", "xlm-mlm-enfr-1024", "xlm-mlm-enro-1024", "xlm-mlm-tlm-xnli15-1024",
    "xlm-mlm-xnli15-1024", "xlm-roberta-base", "xlm-roberta-large-finetuned-conll02-dutch",
    "xlm-roberta-large-finetuned-conll02-spanish", "xlm-roberta-large-finetuned-conll03-english",
    "xlm-roberta-large-finetuned-conll03-german", "xlm-roberta-large", "xlnet-base-cased",
    "xlnet-large-cased",
};

}  // namespace

bool is_repo_id(const std::string& spec) {
  std::error_code ec;
  if (spec.empty() || fs::exists(spec, ec)) return false;
  return valid_repo_id(spec);
}

std::string sentence_transformers_repo_id(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) return name;
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* original : kOriginalTransformerModels) {
    if (lower == original) return name;
  }
  return "sentence-transformers/" + name;
}

ResolvedModel resolve_model_info(const std::string& spec, const ResolveOptions& options) {
  if (spec.empty()) throw InvalidArgument("model: empty model name");
  std::error_code ec;
  std::string expanded = expand_path(spec, process_env());
  if (fs::is_directory(expanded, ec)) {
    ResolvedModel m;
    m.spec = spec;
    m.dir = fs::absolute(expanded, ec);
    m.local_dir = true;
    for (const auto& e : fs::recursive_directory_iterator(m.dir, ec)) {
      if (e.is_regular_file(ec))
        m.files.push_back(e.path().lexically_relative(m.dir).generic_string());
    }
    std::sort(m.files.begin(), m.files.end());
    return m;
  }
  if (fs::exists(expanded, ec))
    throw InvalidArgument("model '" + spec + "': is a file; pass the folder that holds config.json");
  if (!is_repo_id(spec)) {
    throw InvalidArgument("model '" + spec +
                          "': no such directory, and not a Hugging Face repo id (org/name)");
  }
  // A short name is looked up as sentence-transformers looks it up (see hub.h).
  const std::string repo_id = sentence_transformers_repo_id(spec);

  HubConfig config = read_hub_config(process_env());
  if (!options.cache_dir.empty()) config.cache_dir = expand_path(options.cache_dir, process_env());
  if (!options.endpoint.empty()) {
    config.endpoint = options.endpoint;
    while (!config.endpoint.empty() && config.endpoint.back() == '/') config.endpoint.pop_back();
  }
  if (options.token) config.token = options.token->empty() ? std::nullopt : options.token;
  if (options.offline) config.offline = *options.offline;
  if (options.etag_timeout_s > 0) config.etag_timeout_s = options.etag_timeout_s;
  if (options.download_timeout_s > 0) config.download_timeout_s = options.download_timeout_s;

  HttpOptions http;
  http.connect_timeout_ms = static_cast<long>(std::llround(options.connect_timeout_s * 1000));
  http.retries = std::max(0, options.retries);
  http.backoff_ms = static_cast<long>(std::llround(options.backoff_s * 1000));
  ProgressMode progress = options.progress == Progress::kAlways  ? ProgressMode::kAlways
                          : options.progress == Progress::kNever ? ProgressMode::kNever
                                                                 : ProgressMode::kAuto;
  const std::string revision = options.revision.empty() ? "main" : options.revision;
  // How messages name the model: "org/name (revision main)", or for a short name
  // "sentence-transformers/x (short name 'x', revision main)".
  const std::string model_name = repo_id +
                                 (repo_id == spec ? " (" : " (short name '" + spec + "', ") +
                                 "revision " + revision + ")";
  HubRepo repo(config, repo_id, revision, http, progress);

  ResolvedModel m;
  m.spec = spec;
  m.repo_id = repo_id;
  m.revision = revision;
  std::vector<std::string> missing;  // required files neither cached nor downloadable
  std::string reason;                // why the first of them could not be fetched

  auto take = [&](const std::string& name, bool required) -> FileResult {
    FileResult r = repo.file(name);
    if (r.status == FileResult::Status::kFound) {
      m.files.push_back(name);
      if (r.downloaded) m.downloaded.push_back(name);
    } else if (required) {
      if (r.status == FileResult::Status::kAbsent) {
        throw HubError("model " + model_name + ": required file " + name +
                       " does not exist in the repository");
      }
      missing.push_back(name);
      if (reason.empty()) reason = r.reason;
    }
    return r;
  };

  take("config.json", true);
  std::vector<std::string> optional(std::begin(kOptionalFiles), std::end(kOptionalFiles));
  optional.insert(optional.end(), options.extra_files.begin(), options.extra_files.end());
  for (const auto& name : optional) take(name, false);

  bool have_weights = false;
  bool all_absent = true;
  for (const auto& layout : kWeights) {
    FileResult r = take(layout.file, false);
    if (r.status == FileResult::Status::kNotCached) all_absent = false;
    if (r.status != FileResult::Status::kFound) continue;
    if (layout.index) {
      for (const auto& shard : shards_of(r.path)) {
        check_repo_filename(shard);
        take(shard, true);
      }
    }
    have_weights = true;
    break;
  }
  if (!have_weights) {
    if (all_absent && !config.offline && missing.empty() && reason.empty())
      throw HubError("model " + model_name + ": the repository has no " +
                     kWeightsText);
    missing.push_back(kWeightsText);
    if (reason.empty()) reason = "not in the cache";
  }

  auto commit = repo.commit();
  if (!missing.empty() || !commit) {
    std::string list;
    for (const auto& f : missing) list += (list.empty() ? "" : ", ") + f;
    std::string msg = "model " + model_name + " is not available: missing ";
    msg += list.empty() ? "every file" : list;
    msg += " in the Hugging Face cache " + repo.cache().storage().string();
    if (config.offline) {
      msg += ". Offline mode (HF_HUB_OFFLINE=1) forbids downloads: run once with network access "
             "(unset HF_HUB_OFFLINE) to download them, or pass a local folder holding the files "
             "with --model DIR";
    } else {
      msg += ". Download failed: " + reason +
             ". Check the network (HF_ENDPOINT=" + config.endpoint +
             "), or pass a local folder holding the files with --model DIR";
    }
    throw HubError(msg);
  }
  m.commit = *commit;
  m.dir = repo.cache().snapshot_dir(*commit);
  return m;
}

}  // namespace mmembed::hub
