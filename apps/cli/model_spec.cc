#include "model_spec.h"

#include <filesystem>

#include "mmembed/hub.h"

namespace mmembed::cli {

std::string resolve_model_dir(const std::string& spec, const std::string& revision) {
  std::error_code ec;
  if (std::filesystem::exists(spec, ec) || !hub::is_repo_id(spec)) return spec;
  hub::ResolveOptions options;
  options.revision = revision;
  return hub::resolve_model(spec, options).string();
}

}  // namespace mmembed::cli
