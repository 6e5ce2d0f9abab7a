// Progress of a long projection, reported to the caller (the CLI draws it; the library prints
// nothing). Called from the thread that runs fit()/run(), never concurrently.
//   phase: "knn", "graph", "init", "epochs" (UMAP), "affinities", "iterations" (t-SNE)
//   done / total: units of the phase finished (epochs, iterations); total 0 = one step
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace mmembed::reduce {

using ProgressFn =
    std::function<void(std::string_view phase, std::int64_t done, std::int64_t total)>;

}  // namespace mmembed::reduce
