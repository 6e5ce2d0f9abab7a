#include "search/knn.h"

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/check.h"
#include "core/finite.h"
#include "kernels/parallel.h"
#include "search/flat_index.h"
#include "search/nn_descent.h"

namespace mmembed::search {

namespace {

// Bit 0: some element of the row is NaN or +-inf; bit 1: some element is nonzero. Branch-free,
// so the compiler vectorizes it.
unsigned row_flags(const float* row, std::int64_t d) {
  std::uint32_t bad = 0, any = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(row[j]);
    bad |= static_cast<std::uint32_t>((u & 0x7f800000u) == 0x7f800000u);
    any |= static_cast<std::uint32_t>((u & 0x7fffffffu) != 0);
  }
  return bad | (any << 1);
}

}  // namespace

void check_rows(const float* x, std::int64_t n, std::int64_t d, const kernels::MetricSpec& metric,
                const char* what, std::int64_t first_row) {
  const bool nonzero = kernels::needs_nonzero(metric.metric);
  std::atomic<bool> ok{true};  // the fast pass; the loop below finds and names the first problem
  kernels::parallel_for(n, kernels::row_grain(d), [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t i = r0; i < r1; ++i) {
      const unsigned f = row_flags(x + i * d, d);
      if ((f & 1u) != 0 || (nonzero && (f & 2u) == 0)) ok.store(false, std::memory_order_relaxed);
    }
  });
  if (ok.load()) return;
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

void check_values(const float* v, std::int64_t n, std::int64_t m, std::int64_t ldo,
                  const kernels::MetricSpec& metric, const char* what_x, std::int64_t first_x,
                  const char* what_y, std::int64_t first_y, bool skip_self) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = v + i * ldo;
    if (all_finite(row, m)) continue;
    for (std::int64_t j = 0; j < m; ++j) {
      if (skip_self && first_x + i == first_y + j) continue;
      MMEMBED_CHECK(std::isfinite(row[j]), InvalidArgument, what_x, " row ", first_x + i, " and ",
                    what_y, " row ", first_y + j, ": the ", kernels::metric_name(metric.metric),
                    " value is ", row[j] > 0 ? "above " : "below -",
                    std::numeric_limits<float>::max(),
                    ", beyond float32's range; scale the vectors down, or use a metric that grows "
                    "less with their scale (euclidean, cosine)");
    }
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
