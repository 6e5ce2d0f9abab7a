// Internal to the index layer and its front ends: an index's ANN options as JSON, the form the
// index saves in its database and `mmembed index info --json` prints (keys in this order).
#pragma once

#include <nlohmann/json.hpp>

#include "mmembed/index.h"

namespace mmembed::index {

nlohmann::ordered_json ann_to_json(const AnnOptions& options);

}  // namespace mmembed::index
