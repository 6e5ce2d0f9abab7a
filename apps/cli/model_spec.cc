#include "model_spec.h"

#include "mmembed/hub.h"

namespace mmembed::cli {

hub::ResolvedModel resolve_model(const std::string& spec, const std::string& revision) {
  if (!hub::is_repo_id(spec)) {  // is_repo_id is false for every existing path
    hub::ResolvedModel local;
    local.spec = spec;
    local.dir = spec;
    local.local_dir = true;
    return local;
  }
  hub::ResolveOptions options;
  options.revision = revision;
  return hub::resolve_model_info(spec, options);
}

std::string resolve_model_dir(const std::string& spec, const std::string& revision) {
  return resolve_model(spec, revision).dir.string();
}

}  // namespace mmembed::cli
