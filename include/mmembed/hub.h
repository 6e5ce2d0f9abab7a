// Models from the Hugging Face Hub, through the cache layout Python users already have.
//
// resolve_model() turns a model spec into a local folder holding config.json, the tokenizer and
// preprocessor files and the weights:
//  - an existing directory is returned as is;
//  - "org/name" is looked up in the Hugging Face cache ($HF_HUB_CACHE, else
//    $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub), exactly as
//    huggingface_hub lays it out (models--org--name/{blobs,refs,snapshots}); files missing there
//    are downloaded from $HF_ENDPOINT (default https://huggingface.co) with $HF_TOKEN when set,
//    resumably and atomically, and the returned folder is snapshots/<commit>;
//  - a short name without "/" is read as sentence-transformers reads it
//    (sentence_transformers_repo_id below): "all-MiniLM-L6-v2" is the repository
//    "sentence-transformers/all-MiniLM-L6-v2"; only the 68 names of the original transformers
//    checkpoints ("bert-base-uncased", "gpt2", ...) stay as they are. ResolvedModel::repo_id says
//    which repository was used.
// With HF_HUB_OFFLINE=1 (or options.offline) the network is never touched; a model that is not
// fully cached raises HubError naming the missing files and how to provide them.
// See docs/hub.md.
//
//   mmembed::hub::ResolveOptions o;
//   o.revision = "main";
//   std::filesystem::path dir =
//       mmembed::hub::resolve_model("BridgeTower/bridgetower-large-itm-mlm-itc", o);
//
// Thread-safety: concurrent calls (also from several processes, and alongside Python) are safe;
// downloads of one blob are serialised by a lock file in <cache>/.locks, as huggingface_hub does.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "mmembed/error.h"

namespace mmembed {

// The Hub could not be reached or refused a request (HTTP status, token problems), a download
// failed, or offline mode lacks files. The message names the repository, the file and the cause.
class HubError : public IoError {
 public:
  using IoError::IoError;
};

namespace hub {

enum class Progress { kAuto, kAlways, kNever };  // kAuto: only when stderr is a terminal

struct ResolveOptions {
  std::string revision = "main";     // branch, tag or 40-hex commit
  std::string cache_dir;             // empty: from the environment (see above)
  std::string endpoint;              // empty: $HF_ENDPOINT or https://huggingface.co
  std::optional<std::string> token;  // unset: $HF_TOKEN, $HUGGING_FACE_HUB_TOKEN, $HF_HOME/token
  std::optional<bool> offline;       // unset: $HF_HUB_OFFLINE / $TRANSFORMERS_OFFLINE
  Progress progress = Progress::kAuto;
  // Files to fetch besides the default set (config, tokenizer, preprocessor, weights); each is
  // optional (a 404 is skipped).
  std::vector<std::string> extra_files;
  // Network: metadata (HEAD) timeout and download stall timeout in seconds; 0 = from
  // $HF_HUB_ETAG_TIMEOUT / $HF_HUB_DOWNLOAD_TIMEOUT (default 10 each).
  double etag_timeout_s = 0;
  double download_timeout_s = 0;
  double connect_timeout_s = 10;
  int retries = 3;           // retries on transient failures (connect, timeout, 5xx, 429)
  double backoff_s = 0.5;    // first retry delay; doubles each retry
};

struct ResolvedModel {
  std::filesystem::path dir;      // the folder to load from
  bool local_dir = false;         // spec was a directory
  std::string spec;               // the spec as given ("all-MiniLM-L6-v2", "org/name", a folder)
  // The repository used (empty for a directory): the spec itself, or for a short name
  // sentence_transformers_repo_id(spec), e.g. "sentence-transformers/all-MiniLM-L6-v2".
  std::string repo_id;
  std::string revision;
  std::string commit;             // 40-hex commit of the snapshot (empty for a directory)
  std::vector<std::string> files;       // repository paths present in `dir` for this model
  std::vector<std::string> downloaded;  // those that were downloaded by this call
};

// True if spec has the form of a Hub repo id ("name" or "org/name", letters, digits, "-_.")
// and is not an existing path.
bool is_repo_id(const std::string& spec);

// The repository a model name stands for, by sentence-transformers' rule (the same in its
// versions 2.2.2, 3.0.1, 5.1.2 and 6.3.0, `SentenceTransformer.__init__`): a name that is not a
// local folder, has no "/" and is not, lower-cased, one of the 68 original transformers
// checkpoints without an organization (ORIGINAL_TRANSFORMER_MODELS: "bert-base-uncased",
// "gpt2", "t5-small", "xlm-roberta-large", ...) gets "sentence-transformers/" in front, whether
// or not such a repository exists; every other name is returned unchanged.
//   sentence_transformers_repo_id("all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
//   sentence_transformers_repo_id("bert-base-uncased") == "bert-base-uncased"
//   sentence_transformers_repo_id("org/name") == "org/name"
std::string sentence_transformers_repo_id(const std::string& name);

ResolvedModel resolve_model_info(const std::string& spec, const ResolveOptions& options = {});

inline std::filesystem::path resolve_model(const std::string& spec,
                                           const ResolveOptions& options = {}) {
  return resolve_model_info(spec, options).dir;
}

// The tags of the model card in `dir` (README.md, the Hugging Face model card): its YAML front
// matter's `tags:` as a block list ("- a" lines) or a flow list ("[a, b]"). Empty when the folder
// has no card, the card has no closed front matter in its first 64 KiB, or it cannot be read.
// mmembed's own fixtures say what they are: "mmembed-toy" (trained on synthetic scenes) and
// "mmembed-random-weights" (random test weights).
std::vector<std::string> model_card_tags(const std::filesystem::path& dir);

}  // namespace hub
}  // namespace mmembed
