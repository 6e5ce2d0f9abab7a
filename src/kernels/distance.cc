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

constexpr int kLanesF32 = 32;

}  // namespace

MMEMBED_TARGET_CLONES float dot_f32(const float* a, const float* b, std::int64_t d) {
  float acc[kLanesF32] = {};
  std::int64_t i = 0;
  for (; i + kLanesF32 <= d; i += kLanesF32) {
    for (int l = 0; l < kLanesF32; ++l) acc[l] += a[i + l] * b[i + l];
  }
  for (int l = 0; i < d; ++i, ++l) acc[l] += a[i] * b[i];
  for (int w = kLanesF32 / 2; w >= 1; w /= 2) {
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  }
  return acc[0];
}

MMEMBED_TARGET_CLONES float sq_l2_f32(const float* a, const float* b, std::int64_t d) {
  float acc[kLanesF32] = {};
  std::int64_t i = 0;
  for (; i + kLanesF32 <= d; i += kLanesF32) {
    for (int l = 0; l < kLanesF32; ++l) {
      const float t = a[i + l] - b[i + l];
      acc[l] += t * t;
    }
  }
  for (int l = 0; i < d; ++i, ++l) {
    const float t = a[i] - b[i];
    acc[l] += t * t;
  }
  for (int w = kLanesF32 / 2; w >= 1; w /= 2) {
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  }
  return acc[0];
}

namespace {

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

// The float GEMM is exact enough for rows whose squared norms (in double) lie in
// [kGemmMinSq, kGemmMaxSq], zero rows included: |a.b| <= |a| |b| <= 2^120 keeps every partial
// sum below FLT_MAX (2^128), and |a| |b| >= 2^-60 keeps the error of products that underflow
// (at most d 2^-149) far below the GEMM's own rounding error (d u |a| |b|, u = 2^-24). Outside
// it (vectors scaled by 1e20 or 1e-25) the products overflow to inf or flush to 0, and every
// cosine came out 1 or 0: such inputs are rescaled by powers of 2 first (pairwise_rescaled).
constexpr double kGemmMinSq = 0x1p-60, kGemmMaxSq = 0x1p120;

bool gemm_safe(const double* sq_norms, std::int64_t n) {
  bool ok = true;
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = sq_norms[i];
    ok &= v == 0.0 || (v >= kGemmMinSq && v <= kGemmMaxSq);
  }
  return ok;
}

// Fixed tiles of out, each a GEMM on one thread (inside a task) followed by its conversion while
// the tile is in cache: the threads stay on the kernels' pool (no GEMM library team spinning
// beside it), and the tiles, thus the bits, do not depend on the thread count. Every result is
// multiplied by `unscale` (in double, before rounding to float). Entries involving a row whose
// squared norm is nonzero but below kGemmMinSq are computed directly from x0, y0 (the caller's
// unscaled rows) when those are given.
// Row tiles of at most this many rows take dot_f32 instead of the GEMM.
constexpr std::int64_t kStreamRows = 2;

void gemm_tiles(const MetricSpec& spec, const float* x, std::int64_t n, const float* y,
                std::int64_t m, std::int64_t d, float* out, std::int64_t ldo, const double* nx,
                const double* ny, double unscale, const float* x0, const float* y0) {
  const Metric metric = spec.metric;
  auto tiny = [](double sq) { return sq != 0.0 && sq < kGemmMinSq; };
  constexpr std::int64_t kTileRows = 256, kTileCols = 1024;
  const std::int64_t row_tiles = (n + kTileRows - 1) / kTileRows;
  const std::int64_t col_tiles = (m + kTileCols - 1) / kTileCols;
  parallel_tasks(row_tiles * col_tiles, [&](std::int64_t t) {
    const std::int64_t i0 = t / col_tiles * kTileRows, i1 = std::min(n, i0 + kTileRows);
    const std::int64_t j0 = t % col_tiles * kTileCols, j1 = std::min(m, j0 + kTileCols);
    if (i1 - i0 <= kStreamRows) {
      // One or two rows against many (a search query): the GEMM would stream y through its
      // packing; plain dot products read each y row once, at the memory's pace.
      for (std::int64_t i = i0; i < i1; ++i) {
        for (std::int64_t j = j0; j < j1; ++j) {
          out[i * ldo + j] = dot_f32(x + i * d, y + j * d, d);
        }
      }
    } else {
      sgemm(Trans::No, Trans::Yes, i1 - i0, j1 - j0, d, 1.0f, x + i0 * d, d, y + j0 * d, d, 0.0f,
            out + i0 * ldo + j0, ldo);
    }
    if (metric == Metric::Dot && x0 == nullptr) return;
    for (std::int64_t i = i0; i < i1; ++i) {
      float* row = out + i * ldo;
      const float* xi = x + i * d;
      for (std::int64_t j = j0; j < j1; ++j) {
        if (x0 != nullptr && (tiny(nx[i]) || tiny(ny[j]))) {
          row[j] = static_cast<float>(direct(spec, x0 + i * d, y0 + j * d, d));
          continue;
        }
        const double dot = row[j];
        double v;
        switch (metric) {
          case Metric::Dot: v = dot; break;
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
        row[j] = static_cast<float>(v * unscale);
      }
    }
  });
}

// 2^-e with e the exponent of max |x_i| (so the scaled maximum lies in [1, 2)); 1 for zeros.
// Multiplying by it is exact except for elements 2^149 times smaller than the maximum, which
// flush to zero: they change no norm or dot product in double's 53 bits... nor in float's.
double exponent_scale(float max_abs) {
  return max_abs == 0.0f ? 1.0 : std::ldexp(1.0, -std::ilogb(max_abs));
}

float max_abs(const float* x, std::int64_t d) {
  float m = 0.0f;
  for (std::int64_t i = 0; i < d; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

// pairwise() for inputs outside the GEMM's safe range. Cosine and cosine distance do not depend
// on each row's length: every row is scaled by its own power of 2 (exact), which puts all of
// them in range. The other GEMM metrics scale with the inputs (Euclidean by s, SqEuclidean and
// Dot by s^2): x and y are scaled by one common power of 2 that brings the largest row to ~1,
// the results are multiplied back in double, and entries of rows that then fall below the range
// are computed directly. Results beyond float's range round to +-inf, as every path does.
void pairwise_rescaled(const MetricSpec& spec, const float* x, std::int64_t n, const float* y,
                       std::int64_t m, std::int64_t d, float* out, std::int64_t ldo) {
  const bool per_row = needs_nonzero(spec.metric);
  const bool same = x == y && n == m;
  std::vector<float> xs(x, x + n * d), ys;
  if (!same) ys.assign(y, y + m * d);
  float* ysp = same ? xs.data() : ys.data();
  auto scale_rows = [&](float* v, std::int64_t rows, double common) {
    parallel_for(rows, row_grain(d), [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        float* row = v + r * d;
        // A power of 2, up to 2^149 for subnormal rows: beyond float's range, so the product
        // is taken in double (exact) and rounded back (exact too: the result is in range).
        const double s = per_row ? exponent_scale(max_abs(row, d)) : common;
        for (std::int64_t c = 0; c < d; ++c) row[c] = static_cast<float>(row[c] * s);
      }
    });
  };
  double common = 1.0, unscale = 1.0;
  if (!per_row) {
    const float mx = std::max(max_abs(x, n * d), max_abs(y, m * d));
    common = exponent_scale(mx);
    const double back = 1.0 / common;
    unscale = spec.metric == Metric::Euclidean ? back : back * back;
  }
  scale_rows(xs.data(), n, common);
  if (!same) scale_rows(ysp, m, common);
  std::vector<double> nx(n), ny_own;
  row_sq_norms(xs.data(), n, d, nx.data());
  const double* ny = nx.data();
  if (!same) {
    ny_own.resize(m);
    row_sq_norms(ysp, m, d, ny_own.data());
    ny = ny_own.data();
  }
  gemm_tiles(spec, xs.data(), n, ysp, m, d, out, ldo, nx.data(), ny, unscale,
             per_row ? nullptr : x, per_row ? nullptr : y);
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
  nx.resize(n);
  row_sq_norms(x, n, d, nx.data());
  if (ny == nullptr && y == x && m == n) {
    ny = nx.data();
  } else if (ny == nullptr) {
    ny_own.resize(m);
    row_sq_norms(y, m, d, ny_own.data());
    ny = ny_own.data();
  }
  if (!gemm_safe(nx.data(), n) || !gemm_safe(ny, m)) {
    pairwise_rescaled(spec, x, n, y, m, d, out, ldo);
    return;
  }
  gemm_tiles(spec, x, n, y, m, d, out, ldo, nx.data(), ny, 1.0, nullptr, nullptr);
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
