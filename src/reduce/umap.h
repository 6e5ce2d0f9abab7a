// UMAP (McInnes, Healy & Melville 2018), following umap-learn 0.5's algorithm step by step.
//
//   reduce::UmapOptions opt;  opt.n_neighbors = 15;  opt.min_dist = 0.1;  opt.seed = 7;
//   reduce::Umap umap = reduce::Umap::fit(x, n, d, opt);       // x [n, d] row-major
//   const std::vector<float>& y = umap.embedding();             // [n, n_components]
//   std::vector<float> y_new(m * umap.n_components());
//   umap.transform(x_new, m, y_new.data());                     // new points, old map fixed
//
// Steps (docs/numerics.md, "UMAP"):
//  1. kNN graph of n_neighbors points per point, the point itself included as umap-learn counts
//     it: exact (search::FlatIndex) up to `exact_max_points` points (umap-learn's 4096), else
//     NN-descent (search::nn_descent_graph, search/nn_descent.h, the one make_knn runs; float32
//     keys in its join); transform() then searches new points exactly (search::FlatIndex).
//     Similarities become distances: cosine -> 1 - cos; dot -> max_dot - dot (max_dot the
//     largest dot product in the graph, so every distance is >= 0).
//  2. smooth_knn_dist: per point rho (distance to the nearest other point at distance > 0,
//     interpolated by local_connectivity) and sigma (bisection, 64 steps at most, until
//     sum_j exp(-(d_j - rho) / sigma) = log2(n_neighbors)), floored at 1e-3 x the mean distance.
//  3. membership w_ij = exp(-(d_ij - rho_i) / sigma_i), then the fuzzy union
//     w + w^T - w o w^T (set_op_mix_ratio 1) in float, as umap-learn's float32 sparse matrices.
//  4. a, b of 1 / (1 + a d^(2b)) fitted by least squares (Levenberg-Marquardt, ours) to the
//     curve that is 1 below min_dist and exp(-(d - min_dist) / spread) above, on 300 points of
//     [0, 3 spread], as umap-learn's find_ab_params (scipy curve_fit).
//  5. Edges below max_weight / n_epochs dropped; initial layout: spectral (the eigenvectors
//     of the 2nd..(dim+1)th smallest eigenvalues of the normalized Laplacian I - D^-1/2 W D^-1/2,
//     by implicitly restarted Lanczos (Spectra, reduce/spectra_eigs.h), or LAPACK dsyevr for
//     small graphs; a disconnected graph is laid out component by component, the components
//     solved side by side, around a spectral layout of the component centroids, as
//     umap-learn's multi_component_layout), PCA or uniform random; scaled to max |coord| 10
//     plus N(0, 1e-4) noise, then each axis rescaled to [0, 10].
//  6. SGD with negative sampling, umap-learn's epochs_per_sample schedule (in closed form),
//     learning rate decaying linearly to 0, gradients clipped to [-4, 4]. With 2 or 3 components
//     16 vertices run side by side in SIMD lanes, each its own samples in order, and the power
//     d^(2b) is a vectorised exp(b ln d^2) (reduce/fast_pow.h, relative error ~1e-6) instead of
//     powf; other component counts run one vertex at a time with std::pow.
//
// Deterministic by construction, the same bits on any thread count: each epoch, every vertex
// updates only its own coordinates, reading the others' from a copy made at the start of the
// epoch, and draws its negative samples from a generator seeded by hash(seed, epoch, vertex).
// So the work splits across threads by vertex with nothing shared and nothing to merge. As the
// graph is symmetric, each edge (i, j) moves i towards j (twice the step, standing in for
// umap-learn's move of the tail along the reverse edge). Each eigen-solve runs serially (LAPACK
// with OpenBLAS on one thread).
//
// silhouette_score (below) is here for the tests and benchmarks of every projection.
//
// transform() places new points as umap-learn does: their n_neighbors nearest training points
// (search through the fit's Knn), memberships with local_connectivity - 1, an initial position at
// the membership-weighted mean of those neighbours' coordinates, then n_epochs / 3 epochs
// (100 or 30 when auto) of the same SGD at learning_rate / 4 moving only the new points.
// Each new point is independent of the others.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/distance.h"
#include "reduce/progress.h"
#include "search/knn.h"

namespace mmembed::reduce {

struct UmapOptions {
  enum class Init { Spectral, Pca, Random };
  std::int64_t n_components = 2;
  std::int64_t n_neighbors = 15;      // the point itself included; 2 <= n_neighbors < n
  double min_dist = 0.1;              // 0 <= min_dist <= spread
  double spread = 1.0;                // > 0
  kernels::MetricSpec metric{kernels::Metric::Euclidean};
  int n_epochs = 0;                   // 0: 500 when n <= 10000, else 200 (umap-learn's)
  double learning_rate = 1.0;         // > 0
  int negative_sample_rate = 5;       // >= 0
  double repulsion_strength = 1.0;    // gamma, >= 0
  double local_connectivity = 1.0;    // >= 0
  double set_op_mix_ratio = 1.0;      // in [0, 1]: 1 fuzzy union, 0 fuzzy intersection
  Init init = Init::Spectral;
  std::uint64_t seed = 42;
  std::int64_t exact_max_points = 4096;  // exact kNN up to this many points, NN-descent above
  double a = 0, b = 0;                   // both > 0: used as given instead of fitted
  // Called as each phase starts (done 0) and after each SGD epoch ("epochs", e, n_epochs).
  ProgressFn progress;
};

// Wall seconds of the phases of a fit.
struct UmapTimings {
  double knn = 0;    // the kNN graph (exact or NN-descent)
  double graph = 0;  // fuzzy simplicial set and pruning
  double init = 0;   // initial layout (spectral, PCA or random)
  double sgd = 0;    // the layout's SGD
};

// The fitted curve 1 / (1 + a d^(2b)).
struct UmapCurve {
  double a = 0, b = 0;
};
// Least-squares fit as umap-learn's find_ab_params(spread, min_dist). Needs spread > 0 and
// 0 <= min_dist <= spread, else InvalidArgument.
UmapCurve find_ab_params(double spread, double min_dist);

// umap-learn's smooth_knn_dist on dists [n, k] (row i's k distances ascending, column 0 the
// point itself at distance 0 as umap-learn's kNN has it; columns 1.. enter the sum).
// target = log2(k); writes sigmas [n] and rhos [n].
void smooth_knn_dist(const float* dists, std::int64_t n, std::int64_t k, double local_connectivity,
                     float* sigmas, float* rhos);

// A sparse symmetric graph in CSR form, columns ascending within a row.
struct FuzzyGraph {
  std::int64_t n = 0;
  std::vector<std::int64_t> offsets;  // [n + 1]
  std::vector<std::int64_t> cols;
  std::vector<float> vals;
  std::vector<float> sigmas, rhos;    // [n]
};

// The fuzzy simplicial set of a kNN graph of k >= 1 other points per point (search::KnnGraph:
// self excluded; n_neighbors = k + 1 in umap-learn's counting). Values are converted to
// distances as in step 1 above.
FuzzyGraph fuzzy_simplicial_set(const search::KnnGraph& knn, double local_connectivity = 1.0,
                                double set_op_mix_ratio = 1.0);

class Umap {
 public:
  // x [n, d] row-major, finite (non-zero rows for the cosine metrics). Throws InvalidArgument
  // for bad options or input, naming the option or the row.
  static Umap fit(const float* x, std::int64_t n, std::int64_t d, const UmapOptions& options = {});

  // out [m, n_components()] for x [m, dim()]. Deterministic: the same bits on any thread count.
  void transform(const float* x, std::int64_t m, float* out) const;

  std::int64_t n_samples() const { return n_; }
  std::int64_t dim() const { return dim_; }
  std::int64_t n_components() const { return options_.n_components; }
  const UmapOptions& options() const { return options_; }
  const std::vector<float>& embedding() const { return embedding_; }  // [n, n_components]
  UmapCurve curve() const { return curve_; }
  int n_epochs() const { return n_epochs_; }   // the number run
  bool used_exact_knn() const { return exact_; }
  bool spectral_fell_back() const { return spectral_fallback_; }  // spectral -> random
  std::int64_t n_graph_components() const { return graph_components_; }
  const FuzzyGraph& graph() const { return graph_; }  // after pruning
  const UmapTimings& timings() const { return timings_; }

 private:
  std::int64_t n_ = 0, dim_ = 0;
  UmapOptions options_;
  UmapCurve curve_;
  int n_epochs_ = 0;
  bool exact_ = true, spectral_fallback_ = false;
  std::int64_t graph_components_ = 1;
  std::shared_ptr<const search::Knn> knn_;
  float dot_shift_ = 0;  // Dot: max_dot of the fit's graph
  FuzzyGraph graph_;
  std::vector<float> embedding_;
  UmapTimings timings_;
};

// Mean silhouette coefficient of points y [n, dy] under integer labels (Euclidean distance), as
// sklearn.metrics.silhouette_score: a point alone in its cluster scores 0. O(n^2 dy). Needs at
// least 2 distinct labels and fewer labels than points.
double silhouette_score(const float* y, std::int64_t n, std::int64_t dy,
                        const std::vector<std::int64_t>& labels);

}  // namespace mmembed::reduce
