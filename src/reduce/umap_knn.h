// UMAP's approximate kNN graph for large inputs: NN-descent (Dong, Moses & Li 2011) as
// search::NNDescentIndex runs it (random start, sampled new/old candidates with their reverse
// lists, local joins whose proposals are applied block by block as sorted sets, so the graph is
// the same bits on any thread count), with the inner loop made cheap for the metrics where it
// matters most:
//  - distances in float32 over 16 lanes (AVX-512 / AVX2 / baseline clones) instead of double;
//    Euclidean and SqEuclidean compare squared distances, Cosine and CosineDistance compare
//    squared distances of the unit-normalised rows (2 - 2 cos: the same order);
//  - 32-bit indices;
//  - the local join of a point computes all its candidate pairs in one function, so the
//    distance is inlined.
// The values handed back are recomputed exactly (kernels::distance, in double) for the k final
// neighbours of every point, which are then sorted by them (ties by index).
//
//   search::KnnGraph g = reduce::umap_nn_descent(x, n, d, {kernels::Metric::Euclidean}, 14, seed);
#pragma once

#include <cstdint>

#include "kernels/distance.h"
#include "search/knn.h"

namespace mmembed::reduce {

// True for the metrics umap_nn_descent takes: Euclidean, SqEuclidean, Cosine, CosineDistance.
bool umap_nn_descent_supports(kernels::Metric metric);

struct UmapNNDescentStats {
  int rounds = 0;
};

// k other points per point (self excluded), as search::KnnGraph: indices [n, k] and values in
// the metric's units (Cosine: similarity), closest first. Needs 1 <= k < n, n < 2^31, a
// supported metric, finite rows (non-zero for the cosine metrics); else InvalidArgument.
// max_candidates 0: max(k, 20); rounds stop early when fewer than delta n k entries change.
search::KnnGraph umap_nn_descent(const float* x, std::int64_t n, std::int64_t d,
                                 const kernels::MetricSpec& metric, std::int64_t k,
                                 std::uint64_t seed, std::int64_t max_candidates = 0,
                                 int max_rounds = 20, double delta = 0.001,
                                 UmapNNDescentStats* stats = nullptr);

}  // namespace mmembed::reduce
