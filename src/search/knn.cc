#include "search/knn.h"

#include <cmath>

#include "core/check.h"
#include "search/flat_index.h"
#include "search/nn_descent.h"

namespace mmembed::search {

void check_rows(const float* x, std::int64_t n, std::int64_t d, const kernels::MetricSpec& metric,
                const char* what, std::int64_t first_row) {
  const bool nonzero = kernels::needs_nonzero(metric.metric);
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = x + i * d;
    bool any = false;
    for (std::int64_t j = 0; j < d; ++j) {
      MMEMBED_CHECK(std::isfinite(row[j]), InvalidArgument, what, " row ", first_row + i,
                    ", column ", j, ": value ", row[j], " is not finite");
      any |= row[j] != 0.0f;
    }
    MMEMBED_CHECK(!nonzero || any, InvalidArgument, what, " row ", first_row + i,
                  ": all-zero vector has no direction (metric ", kernels::metric_name(metric.metric),
                  ")");
  }
}

std::unique_ptr<Knn> make_knn(const float* x, std::int64_t n, std::int64_t d,
                              const kernels::MetricSpec& metric, const KnnOptions& options) {
  const bool exact = options.method == KnnOptions::Method::Exact ||
                     (options.method == KnnOptions::Method::Auto && n <= options.exact_max_points);
  if (exact) {
    auto index = std::make_unique<FlatIndex>(d, metric);
    index->add(x, n);
    return index;
  }
  NNDescentOptions nn;
  nn.n_neighbors = options.n_neighbors;
  nn.seed = options.seed;
  return std::make_unique<NNDescentIndex>(x, n, d, metric, nn);
}

}  // namespace mmembed::search
