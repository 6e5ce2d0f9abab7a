// How well a low-dimensional embedding keeps the neighbourhoods of its input, measured against
// the exact neighbours in both spaces (search::FlatIndex's order: closeness, then lower index).
//
//   auto q = reduce::neighbourhood_quality(x, n, d, y, 2, {});   // k = 5, 10, 15
//   q[1].k == 10;  q[1].trustworthiness;  q[1].continuity;  q[1].knn_preservation;
//
// With r(i, j) the rank of j among i's neighbours in the input space (1 = nearest) and
// U_k(i) the points among i's k nearest in the embedding but not in the input space:
//   trustworthiness(k) = 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in U_k(i)} (r(i, j) - k)
// exactly as sklearn.manifold.trustworthiness (Venna & Kaski 2001); continuity(k) is the same
// with the two spaces swapped (ranks in the embedding, neighbours lost from the input);
// knn_preservation(k) = mean_i |N_k^input(i) ∩ N_k^embedding(i)| / k.
// The input space uses `metric` (every metric of kernels/distance.h), the embedding Euclidean
// distance, as scikit-learn. Needs k < n / 2 (scikit-learn's condition).
// Cost: O(n^2 (d + dy)) time (distances by the GEMM path of kernels::pairwise; per row one pass
// each to pick the k nearest and to rank them in the other space), O(block n) memory; `max_rows` > 0 evaluates the sums over that many
// rows i (evenly spaced, deterministic) against all n points, for large n.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/distance.h"

namespace mmembed::reduce {

struct QualityOptions {
  std::vector<std::int64_t> ks = {5, 10, 15};
  kernels::MetricSpec metric{kernels::Metric::Euclidean};  // input space
  std::int64_t max_rows = 0;                               // 0: every row
};

struct Quality {
  std::int64_t k = 0;
  double trustworthiness = 0;
  double continuity = 0;
  double knn_preservation = 0;
};

// x [n, d] input, y [n, dy] embedding, both row-major. One entry per k, in the order given.
std::vector<Quality> neighbourhood_quality(const float* x, std::int64_t n, std::int64_t d,
                                           const float* y, std::int64_t dy,
                                           const QualityOptions& options = {});

// How well a projection keeps labels together: the mean, over the points, of the share of a
// point's k nearest others in y [n, dy] (Euclidean; ties to the lower index) that carry its
// label. 1 when every neighbourhood is one label; about the label's share of the points when
// the layout ignores labels. Needs 1 <= k < n and labels.size() == n. O(n^2 dy) time, O(n)
// memory per thread.
double knn_label_agreement(const float* y, std::int64_t n, std::int64_t dy,
                           const std::vector<std::int64_t>& labels, std::int64_t k);

}  // namespace mmembed::reduce
