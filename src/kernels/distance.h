// Distances and similarities between float vectors: the one metric implementation that search,
// kNN graphs (UMAP, t-SNE), quality metrics and the CLI all call.
//
//   kernels::MetricSpec cos{kernels::Metric::Cosine};
//   kernels::pairwise(cos, x, n, y, m, d, out, m);          // out[n, m] = cos(x_i, y_j)
//   float v = kernels::distance({kernels::Metric::Minkowski, 3.0}, a, b, d);
//
// Definitions (scipy.spatial.distance.cdist's, except dot and cosine similarity, which SciPy
// does not name):
//   Cosine            a.b / (|a| |b|), clamped to [-1, 1]          (similarity: higher = closer)
//   CosineDistance    1 - Cosine                                     (cdist "cosine")
//   Euclidean         sqrt(sum (a_i - b_i)^2)
//   SqEuclidean       sum (a_i - b_i)^2
//   Dot               a.b                                            (similarity: higher = closer)
//   Manhattan         sum |a_i - b_i|                                (cdist "cityblock")
//   Minkowski         (sum |a_i - b_i|^p)^(1/p), p >= 1; p = +inf is Chebyshev
//   Chebyshev         max |a_i - b_i|
// A zero vector has no direction: Cosine and CosineDistance involving one are NaN, as cdist
// gives. Search and the kNN graphs refuse such rows instead (search/flat_index.h).
//
// Accuracy (docs/numerics.md, "Metrics, search and reduction"). `distance` and the direct path
// accumulate in double and round once: within a few float ulps of the exact value. `pairwise`
// computes Cosine, CosineDistance, Euclidean, SqEuclidean and Dot through the GEMM seam
// (kernels::sgemm) with the squared norms in double:
//   SqEuclidean = |a|^2 + |b|^2 - 2 a.b,  clamped at 0.
// That formula cancels when a and b are close: its absolute error is about (d+2)·u·(|a|^2+|b|^2)
// (u = 2^-24), so where the result is below 2^-6·(|a|^2 + |b|^2) (CosineDistance: below 2^-6)
// the entry is recomputed directly. Every entry therefore carries a relative error of at most
// about 64·(d+2)·u in the worst case (typically sqrt(d)·u), and near-duplicates get exact small
// distances (identical rows give exactly 0). The other metrics are always computed directly.
//
// Scale (issue #18): every metric is computed correctly over the whole float range, from
// subnormals to FLT_MAX. The direct paths are in double, where no square or product of floats
// overflows or underflows. The GEMM runs in float, so pairwise() checks the rows' squared norms:
// outside [2^-60, 2^120] (vectors scaled by ~1e20 or ~1e-25) it rescales by powers of 2 first
// (exact): each row on its own for Cosine and CosineDistance, x and y by one common factor for
// Euclidean, SqEuclidean and Dot (results multiplied back in double). A result itself beyond
// float's range (SqEuclidean or Dot above ~3.4e38, e.g. of vectors scaled by 1e20) rounds to
// +-inf on every path, as IEEE rounding does; search, kNN graphs, quality metrics and the CLI
// refuse such values (search::check_values). Results below float's smallest subnormal round to
// 0 (e.g. SqEuclidean of vectors scaled by 1e-25).
//
// Threads: rows of x are split across kernels::parallel_for; each entry is written by one thread.
// The direct paths give the same bits on any thread count; the GEMM entries do when the GEMM
// backend does (oneDNN, the default, does on the shapes tested).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mmembed::kernels {

enum class Metric {
  Cosine,
  CosineDistance,
  Euclidean,
  SqEuclidean,
  Dot,
  Manhattan,
  Minkowski,
  Chebyshev,
};

struct MetricSpec {
  Metric metric = Metric::Euclidean;
  double p = 2.0;  // Minkowski only: p >= 1 (may be +inf)
};

// "cosine", "cosine-distance", "euclidean", "sqeuclidean", "dot", "manhattan", "minkowski",
// "chebyshev" (also SciPy's "cityblock" and "cosine_distance"). Throws InvalidArgument naming
// the known metrics.
Metric parse_metric(std::string_view name);
const char* metric_name(Metric metric);
// Throws InvalidArgument when p < 1 or NaN for Minkowski.
void validate(const MetricSpec& spec);
// Cosine and Dot are similarities: larger values are closer.
inline bool higher_is_closer(Metric m) { return m == Metric::Cosine || m == Metric::Dot; }
// Cosine and CosineDistance are undefined for zero vectors.
inline bool needs_nonzero(Metric m) { return m == Metric::Cosine || m == Metric::CosineDistance; }
// A value where smaller is always closer (negated for similarities): for ordering neighbours.
inline double closeness_key(Metric m, double value) { return higher_is_closer(m) ? -value : value; }

// One pair, direct, accumulated in double. d >= 0.
float distance(const MetricSpec& spec, const float* a, const float* b, std::int64_t d);

// out[i * ldo + j] = metric(x_i, y_j) for x [n, d] and y [m, d] row-major; ldo >= m.
// out must not overlap x or y. y may equal x (a self-distance matrix).
void pairwise(const MetricSpec& spec, const float* x, std::int64_t n, const float* y,
              std::int64_t m, std::int64_t d, float* out, std::int64_t ldo);
// The same with y's squared norms given (row_sq_norms(y, m, d, y_sq_norms)), for callers that
// compare many blocks of x against one y; the results are the same bits.
void pairwise(const MetricSpec& spec, const float* x, std::int64_t n, const float* y,
              std::int64_t m, std::int64_t d, float* out, std::int64_t ldo,
              const double* y_sq_norms);

// out[j] = metric(q, y_j), j < m: one query against many rows.
void one_to_many(const MetricSpec& spec, const float* q, const float* y, std::int64_t m,
                 std::int64_t d, float* out);

// Inner product and squared L2 distance of two rows, in float over 32 accumulators (two AVX-512
// registers), summed in a fixed order: the same bits on every run of one machine. For choosing
// candidates (the approximate indexes' graph walks), where speed matters and the last bits do
// not; scores that are reported come from pairwise()/distance().
float dot_f32(const float* a, const float* b, std::int64_t d);
float sq_l2_f32(const float* a, const float* b, std::int64_t d);

// Squared L2 norms of the rows of x [n, d], in double.
void row_sq_norms(const float* x, std::int64_t n, std::int64_t d, double* out);

namespace ref {
// Textbook loops in double, one entry at a time: the oracle for the tests.
double distance(const MetricSpec& spec, const float* a, const float* b, std::int64_t d);
void pairwise(const MetricSpec& spec, const float* x, std::int64_t n, const float* y,
              std::int64_t m, std::int64_t d, float* out, std::int64_t ldo);
}  // namespace ref

}  // namespace mmembed::kernels
