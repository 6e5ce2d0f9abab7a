#include "kernels/distance.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/check.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "kernels/vectorize.h"

namespace mmembed::kernels {
namespace {

using detail::kLanes;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Below this fraction of |a|^2 + |b|^2 (of 1 for cosine distance) a GEMM entry is recomputed.
constexpr double kRefineFraction = 1.0 / 64.0;

// Reductions over kLanes double accumulators: the order is fixed by the source, so every thread
// count and call site gives the same bits.
MMEMBED_TARGET_CLONES double dot_f64(const float* a, const float* b, std::int64_t d) {
  double acc[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= d; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(a[i + l]) * b[i + l];
  }
  for (int l = 0; i < d; ++i, ++l) acc[l] += static_cast<double>(a[i]) * b[i];
  double s = 0.0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

MMEMBED_TARGET_CLONES double sq_diff_f64(const float* a, const float* b, std::int64_t d) {
  double acc[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= d; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const double t = static_cast<double>(a[i + l]) - b[i + l];
      acc[l] += t * t;
    }
  }
  for (int l = 0; i < d; ++i, ++l) {
    const double t = static_cast<double>(a[i]) - b[i];
    acc[l] += t * t;
  }
  double s = 0.0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

MMEMBED_TARGET_CLONES double abs_diff_f64(const float* a, const float* b, std::int64_t d) {
  double acc[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= d; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += std::fabs(static_cast<double>(a[i + l]) - b[i + l]);
  }
  for (int l = 0; i < d; ++i, ++l) acc[l] += std::fabs(static_cast<double>(a[i]) - b[i]);
  double s = 0.0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

MMEMBED_TARGET_CLONES double max_diff_f64(const float* a, const float* b, std::int64_t d) {
  double m = 0.0;
  for (std::int64_t i = 0; i < d; ++i) {
    const double t = std::fabs(static_cast<double>(a[i]) - b[i]);
    m = t > m ? t : m;
  }
  return m;
}

double pow_diff_f64(const float* a, const float* b, std::int64_t d, double p) {
  // Scaled by the largest difference so that large p neither overflows nor underflows.
  const double m = max_diff_f64(a, b, d);
  if (m == 0.0) return 0.0;
  double s = 0.0;
  for (std::int64_t i = 0; i < d; ++i) {
    s += std::pow(std::fabs(static_cast<double>(a[i]) - b[i]) / m, p);
  }
  return m * std::pow(s, 1.0 / p);
}

double cosine_f64(double dot, double na2, double nb2) {
  if (na2 == 0.0 || nb2 == 0.0) return kNaN;
  // sqrt(na2 * nb2), not sqrt(na2) * sqrt(nb2): a row against itself then gives exactly 1.
  const double c = dot / std::sqrt(na2 * nb2);
  return std::clamp(c, -1.0, 1.0);
}

double direct(const MetricSpec& s, const float* a, const float* b, std::int64_t d) {
  switch (s.metric) {
    case Metric::Cosine:
      return cosine_f64(dot_f64(a, b, d), dot_f64(a, a, d), dot_f64(b, b, d));
    case Metric::CosineDistance:
      return 1.0 - cosine_f64(dot_f64(a, b, d), dot_f64(a, a, d), dot_f64(b, b, d));
    case Metric::Euclidean: return std::sqrt(sq_diff_f64(a, b, d));
    case Metric::SqEuclidean: return sq_diff_f64(a, b, d);
    case Metric::Dot: return dot_f64(a, b, d);
    case Metric::Manhattan: return abs_diff_f64(a, b, d);
    case Metric::Chebyshev: return max_diff_f64(a, b, d);
    case Metric::Minkowski:
      if (s.p == 1.0) return abs_diff_f64(a, b, d);
      if (s.p == 2.0) return std::sqrt(sq_diff_f64(a, b, d));
      if (std::isinf(s.p)) return max_diff_f64(a, b, d);
      return pow_diff_f64(a, b, d, s.p);
  }
  MMEMBED_ASSERT(false);
}

bool uses_gemm(Metric m) {
  return m == Metric::Cosine || m == Metric::CosineDistance || m == Metric::Euclidean ||
         m == Metric::SqEuclidean || m == Metric::Dot;
}

}  // namespace

Metric parse_metric(std::string_view name) {
  if (name == "cosine") return Metric::Cosine;
  if (name == "cosine-distance" || name == "cosine_distance") return Metric::CosineDistance;
  if (name == "euclidean" || name == "l2") return Metric::Euclidean;
  if (name == "sqeuclidean") return Metric::SqEuclidean;
  if (name == "dot") return Metric::Dot;
  if (name == "manhattan" || name == "cityblock" || name == "l1") return Metric::Manhattan;
  if (name == "minkowski") return Metric::Minkowski;
  if (name == "chebyshev") return Metric::Chebyshev;
  throw InvalidArgument(str_cat("unknown metric '", name,
                                "' (known: cosine, cosine-distance, euclidean, sqeuclidean, dot, "
                                "manhattan, minkowski, chebyshev)"));
}

const char* metric_name(Metric metric) {
  switch (metric) {
    case Metric::Cosine: return "cosine";
    case Metric::CosineDistance: return "cosine-distance";
    case Metric::Euclidean: return "euclidean";
    case Metric::SqEuclidean: return "sqeuclidean";
    case Metric::Dot: return "dot";
    case Metric::Manhattan: return "manhattan";
    case Metric::Minkowski: return "minkowski";
    case Metric::Chebyshev: return "chebyshev";
  }
  return "?";
}

void validate(const MetricSpec& spec) {
  if (spec.metric == Metric::Minkowski) {
    MMEMBED_CHECK(spec.p >= 1.0, InvalidArgument, "minkowski: p must be >= 1 (got ", spec.p, ")");
  }
}

float distance(const MetricSpec& spec, const float* a, const float* b, std::int64_t d) {
  return static_cast<float>(direct(spec, a, b, d));
}

void row_sq_norms(const float* x, std::int64_t n, std::int64_t d, double* out) {
  parallel_for(n, row_grain(d), [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) out[r] = dot_f64(x + r * d, x + r * d, d);
  });
}

void pairwise(const MetricSpec& spec, const float* x, std::int64_t n, const float* y,
              std::int64_t m, std::int64_t d, float* out, std::int64_t ldo) {
  pairwise(spec, x, n, y, m, d, out, ldo, nullptr);
}

void pairwise(const MetricSpec& spec, const float* x, std::int64_t n, const float* y,
              std::int64_t m, std::int64_t d, float* out, std::int64_t ldo,
              const double* y_sq_norms) {
  validate(spec);
  MMEMBED_ASSERT(n >= 0 && m >= 0 && d >= 0 && ldo >= m);
  if (n == 0 || m == 0) return;
  const Metric metric = spec.metric;
  const std::int64_t grain = std::max<std::int64_t>(1, row_grain(m * std::max<std::int64_t>(d, 1)));
  if (!uses_gemm(metric) || d == 0) {
    parallel_for(n, grain, [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t i = r0; i < r1; ++i) {
        for (std::int64_t j = 0; j < m; ++j) {
          out[i * ldo + j] = static_cast<float>(direct(spec, x + i * d, y + j * d, d));
        }
      }
    });
    return;
  }

  std::vector<double> nx, ny_own;
  const double* ny = y_sq_norms;
  if (metric != Metric::Dot) {
    nx.resize(n);
    row_sq_norms(x, n, d, nx.data());
    if (ny == nullptr && y == x && m == n) {
      ny = nx.data();
    } else if (ny == nullptr) {
      ny_own.resize(m);
      row_sq_norms(y, m, d, ny_own.data());
      ny = ny_own.data();
    }
  }
  // Fixed tiles of out, each a GEMM on one thread (inside a task) followed by its conversion while
  // the tile is in cache: the threads stay on the kernels' pool (no GEMM library team spinning
  // beside it), and the tiles, thus the bits, do not depend on the thread count.
  constexpr std::int64_t kTileRows = 256, kTileCols = 1024;
  const std::int64_t row_tiles = (n + kTileRows - 1) / kTileRows;
  const std::int64_t col_tiles = (m + kTileCols - 1) / kTileCols;
  parallel_tasks(row_tiles * col_tiles, [&](std::int64_t t) {
    const std::int64_t i0 = t / col_tiles * kTileRows, i1 = std::min(n, i0 + kTileRows);
    const std::int64_t j0 = t % col_tiles * kTileCols, j1 = std::min(m, j0 + kTileCols);
    sgemm(Trans::No, Trans::Yes, i1 - i0, j1 - j0, d, 1.0f, x + i0 * d, d, y + j0 * d, d, 0.0f,
          out + i0 * ldo + j0, ldo);
    if (metric == Metric::Dot) return;
    for (std::int64_t i = i0; i < i1; ++i) {
      float* row = out + i * ldo;
      const float* xi = x + i * d;
      for (std::int64_t j = j0; j < j1; ++j) {
        const double dot = row[j];
        double v;
        switch (metric) {
          case Metric::Cosine: v = cosine_f64(dot, nx[i], ny[j]); break;
          case Metric::CosineDistance: {
            v = 1.0 - cosine_f64(dot, nx[i], ny[j]);
            if (v < kRefineFraction) v = direct(spec, xi, y + j * d, d);
            break;
          }
          default: {  // Euclidean, SqEuclidean
            const double sum = nx[i] + ny[j];
            v = std::max(0.0, sum - 2.0 * dot);
            if (v < kRefineFraction * sum) v = sq_diff_f64(xi, y + j * d, d);
            if (metric == Metric::Euclidean) v = std::sqrt(v);
            break;
          }
        }
        row[j] = static_cast<float>(v);
      }
    }
  });
}

void one_to_many(const MetricSpec& spec, const float* q, const float* y, std::int64_t m,
                 std::int64_t d, float* out) {
  pairwise(spec, q, 1, y, m, d, out, m);
}

namespace ref {

double distance(const MetricSpec& spec, const float* a, const float* b, std::int64_t d) {
  double dot = 0, na = 0, nb = 0, sq = 0, l1 = 0, linf = 0, lp = 0;
  for (std::int64_t i = 0; i < d; ++i) {
    const double x = a[i], y = b[i], t = std::fabs(x - y);
    dot += x * y;
    na += x * x;
    nb += y * y;
    sq += t * t;
    l1 += t;
    linf = std::max(linf, t);
    if (spec.metric == Metric::Minkowski && !std::isinf(spec.p)) lp += std::pow(t, spec.p);
  }
  const double cos = (na == 0 || nb == 0) ? kNaN : std::clamp(dot / std::sqrt(na * nb), -1.0, 1.0);
  switch (spec.metric) {
    case Metric::Cosine: return cos;
    case Metric::CosineDistance: return 1.0 - cos;
    case Metric::Euclidean: return std::sqrt(sq);
    case Metric::SqEuclidean: return sq;
    case Metric::Dot: return dot;
    case Metric::Manhattan: return l1;
    case Metric::Chebyshev: return linf;
    case Metric::Minkowski: return std::isinf(spec.p) ? linf : std::pow(lp, 1.0 / spec.p);
  }
  return kNaN;
}

void pairwise(const MetricSpec& spec, const float* x, std::int64_t n, const float* y,
              std::int64_t m, std::int64_t d, float* out, std::int64_t ldo) {
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < m; ++j) {
      out[i * ldo + j] = static_cast<float>(ref::distance(spec, x + i * d, y + j * d, d));
    }
  }
}

}  // namespace ref

}  // namespace mmembed::kernels
