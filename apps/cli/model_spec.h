// `--model` for every command: a local model folder, or a Hugging Face repo id resolved through
// the Hub cache (downloading missing files unless offline; docs/hub.md).
#pragma once

#include <string>

namespace mmembed::cli {

// Returns the local folder to load. `revision` applies to repo ids only.
std::string resolve_model_dir(const std::string& spec, const std::string& revision = "main");

}  // namespace mmembed::cli
