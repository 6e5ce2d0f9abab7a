// Nearest neighbours: the interface shared by search, UMAP/t-SNE neighbour graphs and the
// quality metrics, with an exact implementation (FlatIndex, the oracle) and an approximate one
// (NNDescentIndex) behind it.
//
//   search::FlatIndex index(d, {kernels::Metric::Cosine});
//   index.add(x, n);                                        // x [n, d] row-major, copied
//   std::vector<std::int64_t> labels(nq * k);
//   std::vector<float> values(nq * k);
//   index.search(queries, nq, k, labels.data(), values.data());   // faiss's convention
//   search::KnnGraph g = index.graph(15);                   // every point's 15 others
//
//   auto knn = search::make_knn(x, n, d, {kernels::Metric::Euclidean}, {.n_neighbors = 15});
//
// Conventions for every Knn:
//  - values are in the metric's own units (kernels/distance.h): cosine similarity and dot are
//    similarities, listed largest first; distances are listed smallest first;
//  - ties are broken by the lower index, so results are a function of the data alone;
//  - inputs must be finite, and for cosine metrics non-zero (a zero vector has no direction):
//    otherwise InvalidArgument names the row (0-based);
//  - search() and graph() are const and safe to call from several threads at once;
//  - results do not depend on kernels::set_num_threads (tested with 1 and 2 threads; for the
//    GEMM metrics this holds when the GEMM backend is thread-count deterministic, as oneDNN is).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/distance.h"

namespace mmembed::search {

// The k nearest other points of each of n points, closest first, self excluded.
struct KnnGraph {
  std::int64_t n = 0;
  std::int64_t k = 0;
  kernels::MetricSpec metric;
  std::vector<std::int64_t> indices;  // [n, k]
  std::vector<float> values;          // [n, k]

  // A graph of n rows of k entries, to be filled.
  static KnnGraph sized(std::int64_t n, std::int64_t k, const kernels::MetricSpec& metric) {
    return {n, k, metric, std::vector<std::int64_t>(n * k), std::vector<float>(n * k)};
  }

  const std::int64_t* neighbours(std::int64_t i) const { return indices.data() + i * k; }
  const float* distances(std::int64_t i) const { return values.data() + i * k; }
};

class Knn {
 public:
  virtual ~Knn() = default;
  virtual std::int64_t size() const = 0;
  virtual std::int64_t dim() const = 0;
  virtual const kernels::MetricSpec& metric() const = 0;

  // For each of nq queries [nq, dim()] row-major, the k nearest stored points:
  // labels[q * k + r] (index in insertion order) and values[q * k + r], both caller-owned
  // [nq, k]. When fewer than k points are stored the tail has label -1 and value NaN. k >= 0.
  virtual void search(const float* queries, std::int64_t nq, std::int64_t k,
                      std::int64_t* labels, float* values) const = 0;

  // The kNN graph of the stored points, self excluded (a duplicate of a point is a neighbour
  // at distance 0). Needs 1 <= k < size(), else InvalidArgument.
  virtual KnnGraph graph(std::int64_t k) const = 0;
};

struct KnnOptions {
  enum class Method { Auto, Exact, NNDescent };
  Method method = Method::Auto;
  std::int64_t n_neighbors = 15;       // the graph size NN-descent builds
  std::int64_t exact_max_points = 4096;  // Auto: exact up to this many points
  std::uint64_t seed = 42;             // NN-descent only
};

// The Knn for x [n, d] (copied): exact (FlatIndex) for Method::Exact, or Auto with
// n <= exact_max_points; NNDescentIndex otherwise.
std::unique_ptr<Knn> make_knn(const float* x, std::int64_t n, std::int64_t d,
                              const kernels::MetricSpec& metric, const KnnOptions& options = {});

// Throws InvalidArgument naming `what` and the row when x [n, d] holds a NaN or Inf, or, for
// the cosine metrics, an all-zero row.
void check_rows(const float* x, std::int64_t n, std::int64_t d, const kernels::MetricSpec& metric,
                const char* what, std::int64_t first_row = 0);

// Throws InvalidArgument when v [n, m] (row stride ldo), the metric's values between rows
// first_x + i of `what_x` and first_y + j of `what_y`, holds one beyond float's range (+-inf,
// as kernels::pairwise rounds e.g. a squared distance over 3.4e38: kernels/distance.h, "Scale"),
// naming both rows, the metric and what to do. Ties of infinities would rank neighbours wrongly.
// With `skip_self`, entries where first_x + i == first_y + j (a row against itself in a kNN
// graph, never a neighbour) are not checked.
void check_values(const float* v, std::int64_t n, std::int64_t m, std::int64_t ldo,
                  const kernels::MetricSpec& metric, const char* what_x, std::int64_t first_x,
                  const char* what_y, std::int64_t first_y, bool skip_self = false);

}  // namespace mmembed::search
