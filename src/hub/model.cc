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

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

}  // namespace

bool is_repo_id(const std::string& spec) {
  std::error_code ec;
  if (spec.empty() || fs::exists(spec, ec)) return false;
  auto slash = spec.find('/');
  auto part_ok = [](std::string_view p) {
    if (p.empty() || p.size() > 96 || p == "." || p == "..") return false;
    if (p.front() == '-' || p.front() == '.' || p.back() == '.' || p.back() == '-') return false;
    if (p.find("--") != std::string_view::npos || p.find("..") != std::string_view::npos) return false;
    for (char c : p) {
      if (!is_name_char(c)) return false;
    }
    return true;
  };
  if (slash == std::string::npos) return part_ok(spec);
  std::string_view v(spec);
  return part_ok(v.substr(0, slash)) && part_ok(v.substr(slash + 1));
}

ResolvedModel resolve_model_info(const std::string& spec, const ResolveOptions& options) {
  if (spec.empty()) throw InvalidArgument("model: empty model name");
  std::error_code ec;
  std::string expanded = expand_path(spec, process_env());
  if (fs::is_directory(expanded, ec)) {
    ResolvedModel m;
    m.dir = fs::absolute(expanded, ec);
    m.local_dir = true;
    for (const auto& e : fs::recursive_directory_iterator(m.dir, ec)) {
      if (e.is_regular_file(ec)) m.files.push_back(fs::relative(e.path(), m.dir, ec).string());
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
  HubRepo repo(config, spec, revision, http, progress);

  ResolvedModel m;
  m.repo_id = spec;
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
        throw HubError("model " + spec + " (revision " + revision + "): required file " + name +
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
      throw HubError("model " + spec + " (revision " + revision + "): the repository has no " +
                     kWeightsText);
    missing.push_back(kWeightsText);
    if (reason.empty()) reason = "not in the cache";
  }

  auto commit = repo.commit();
  if (!missing.empty() || !commit) {
    std::string list;
    for (const auto& f : missing) list += (list.empty() ? "" : ", ") + f;
    std::string msg = "model " + spec + " (revision " + revision + ") is not available: missing ";
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
