// `--model` for every command: a local model folder, or a Hugging Face repo id resolved through
// the Hub cache (downloading missing files unless offline; docs/hub.md).
#pragma once

#include <string>

#include "mmembed/hub.h"

namespace mmembed::cli {

// The local folder to load (`local_dir` true when spec is not a repo id: returned as given,
// so that a missing folder is reported by the loader). `revision` applies to repo ids only.
hub::ResolvedModel resolve_model(const std::string& spec, const std::string& revision = "main");
std::string resolve_model_dir(const std::string& spec, const std::string& revision = "main");

}  // namespace mmembed::cli
