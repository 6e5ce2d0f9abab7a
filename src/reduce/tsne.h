// t-SNE (van der Maaten & Hinton 2008) with Barnes–Hut gradients (van der Maaten 2014), set up
// as openTSNE and scikit-learn set it up.
//
//   reduce::TsneOptions opt;  opt.perplexity = 30;  opt.seed = 7;
//   reduce::Tsne tsne(x, n, d, opt);         // x [n, d] row-major: affinities + PCA init
//   tsne.run();                              // 250 exaggerated + 750 normal iterations
//   const std::vector<double>& y = tsne.embedding();   // [n, 2]
//   double kl = tsne.kl_divergence();
//   std::vector<double> y_new(m * 2);
//   tsne.transform(x_new, m, y_new.data());   // new points placed into the finished map
//
// Steps (docs/numerics.md, "t-SNE"):
//  1. Neighbours: the k = min(n - 1, floor(3 perplexity)) nearest others of every point (exact
//     search::FlatIndex up to `exact_knn_max_points`, NN-descent beyond) in `metric`.
//  2. Conditional affinities p_{j|i} = exp(-beta_i d_ij) / sum, beta_i by bisection until the
//     entropy matches log(perplexity) within `perplexity_tolerance` (scikit-learn's
//     _binary_search_perplexity: same start, steps and stopping rule). d_ij is the squared
//     distance for Euclidean (as scikit-learn), 1 - cos for Cosine, the metric itself otherwise;
//     Dot is refused (not a distance).
//  3. Joint P = (P_cond + P_cond^T) / sum, i.e. / 2n: symmetric, sums to 1.
//  4. Initialization: PCA of x scaled so that the first coordinate has standard deviation 1e-4
//     (openTSNE's convention), or Gaussian noise of that scale (also when d < n_components).
//  5. Gradient descent on KL(P || Q), Student-t kernel w_ij = 1 / (1 + |y_i - y_j|^2):
//       grad_i = 4 (ex sum_j p_ij w_ij (y_i - y_j) - sum_j w_ij^2 (y_i - y_j) / Z),  Z = sum w,
//     the repulsive sums by Barnes–Hut (reduce/bh_tree.h, `theta`; one tree walk per group of up
//     to 32 neighbouring points), the attractive ones over P held as float. Early exaggeration `ex` = 12
//     for 250 iterations with momentum 0.5, then ex = 1 with momentum 0.8; gains +0.2 / x0.8
//     (floor 0.01); the embedding is re-centred after every step (openTSNE). Learning rate
//     "auto" per phase: max(n / ex / 4, 50), i.e. n / 48 during early exaggeration and n / 4
//     after (openTSNE's n / ex, Belkina et al. 2019, in the units of this gradient's factor 4;
//     scikit-learn keeps the early-phase rate for both phases).
//
// Determinism: the same inputs and seed give the same bits on any thread count. Each point's
// forces are computed on their own from one serially built tree, Z and the KL terms are summed
// per point and then serially in index order, and every other step is per element. (Exact kNN
// uses the GEMM seam: thread-count independent with oneDNN, the default backend.)
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/distance.h"
#include "reduce/progress.h"

namespace mmembed::search {
class Knn;
}

namespace mmembed::reduce {

struct CompactP;

struct TsneOptions {
  enum class Init { Pca, Random };
  std::int64_t n_components = 2;        // 1, 2 or 3
  double perplexity = 30;               // 1 <= perplexity < n - 1
  kernels::MetricSpec metric{kernels::Metric::Euclidean};
  double early_exaggeration = 12;
  int early_exaggeration_iter = 250;
  int n_iter = 750;                     // iterations after early exaggeration (sklearn's 1000 total)
  double exaggeration = 1;              // after early exaggeration
  double learning_rate = 0;             // <= 0: "auto", max(n / exaggeration / 4, 50) per phase
  double initial_momentum = 0.5;        // during early exaggeration
  double final_momentum = 0.8;
  double theta = 0.5;                   // Barnes–Hut opening angle; 0: exact sums
  Init init = Init::Pca;
  std::uint64_t seed = 0;               // randomized PCA, random init, NN-descent
  double perplexity_tolerance = 1e-5;   // on the entropy (nats), as scikit-learn
  std::int64_t exact_knn_max_points = 20000;  // exact kNN up to this many points
  std::int64_t exact_kl_max_points = 10000;   // kl_divergence(): exact Z up to this many points
  int kl_every = 50;                    // history(): the KL every this many iterations (0: never)
  // Called as the affinities start ("affinities", 0, 0) and after each iteration of run()
  // ("iterations", done, early_exaggeration_iter + n_iter).
  ProgressFn progress;
};

// Placing new points into a finished map (openTSNE's transform): each new point gets
// conditional affinities to its k = min(n_ref, floor(3 perplexity)) nearest reference points,
// starts at the affinity-weighted mean of those neighbours' positions, and moves alone against
// the fixed reference map (its own Z over the reference points: new points do not interact),
// with openTSNE's defaults. learning_rate and max_grad_norm are in this file's gradient units
// (factor 4): 0.025 and 1.0 are openTSNE's 0.1 and 0.25.
struct TsneTransformOptions {
  double perplexity = 5;
  int n_iter = 250;
  double exaggeration = 1.5;
  double learning_rate = 0.025;
  double momentum = 0.8;
  double max_grad_norm = 1.0;           // per point; <= 0: no clipping
  double theta = 0.5;
};

// Sparse affinities, CSR: row i holds indices[indptr[i] .. indptr[i + 1]) (ascending) and values.
struct SparseAffinities {
  std::int64_t n = 0;
  std::vector<std::int64_t> indptr;   // [n + 1]
  std::vector<std::int64_t> indices;
  std::vector<double> values;
};

struct ConditionalAffinities {
  std::int64_t n = 0, k = 0;
  std::vector<double> p;     // [n, k]: p_{j|i} for the i-th row's k neighbours; rows sum to 1
  std::vector<double> beta;  // [n]: 1 / (2 sigma_i^2) in the units of the distances given
};

// p_{j|i} from dist [n, k] (the values the Gaussian kernel uses, e.g. squared Euclidean), by
// bisection on beta_i to entropy log(perplexity) (natural log) within `tolerance`, at most 100
// steps, as scikit-learn's _binary_search_perplexity. Needs 1 <= perplexity <= k.
ConditionalAffinities conditional_affinities(const float* dist, std::int64_t n, std::int64_t k,
                                             double perplexity, double tolerance = 1e-5);

// P = (C + C^T) / sum(C + C^T) where C[i, neighbours[i * k + r]] = cond.p[i * k + r].
SparseAffinities joint_affinities(const std::int64_t* neighbours, const ConditionalAffinities& cond);

// The t-SNE gradient (formula above) of y [n, dim] (dim 1..3) into grad [n, dim], with P
// multiplied by `exaggeration`; returns Z = sum_{i != j} w_ij. Exact: O(n^2). Barnes–Hut:
// theta as in TsneOptions (0: exact sums through the tree). Both deterministic.
double tsne_gradient_exact(const SparseAffinities& p, const double* y, std::int64_t dim,
                           double exaggeration, double* grad);
double tsne_gradient_bh(const SparseAffinities& p, const double* y, std::int64_t dim,
                        double exaggeration, double theta, double* grad);
// KL(P || Q) = sum p_ij log(p_ij / q_ij), q_ij = w_ij / Z, with Z exact (O(n^2)).
double kl_divergence_exact(const SparseAffinities& p, const double* y, std::int64_t dim);

struct TsneHistoryEntry {
  int iteration = 0;   // iterations done before the evaluation
  double kl = 0;       // KL(P || Q) with the un-exaggerated P, Z by Barnes–Hut
};

class Tsne {
 public:
  // Validates (InvalidArgument: n < 4, perplexity outside [1, n - 1), n_components outside
  // 1..3, theta < 0, the Dot metric, NaN/Inf rows, zero rows for cosine metrics), builds the
  // neighbours and affinities and the initial embedding. Keeps the kNN index for transform().
  Tsne(const float* x, std::int64_t n, std::int64_t d, const TsneOptions& options = {});
  ~Tsne();
  Tsne(Tsne&&) noexcept;
  Tsne& operator=(Tsne&&) noexcept;

  // Runs `iterations` more iterations of the schedule (early exaggeration first); past the
  // end of the schedule the normal phase continues.
  void run(int iterations);
  // Runs to the end of the schedule (early_exaggeration_iter + n_iter).
  void run();

  int iteration() const { return iteration_; }
  std::int64_t size() const { return n_; }
  std::int64_t n_components() const { return dim_; }
  const std::vector<double>& embedding() const { return y_; }  // [n, n_components]
  const SparseAffinities& affinities() const { return p_; }
  const std::vector<TsneHistoryEntry>& history() const { return history_; }
  const TsneOptions& options() const { return options_; }
  std::int64_t n_neighbors() const { return k_; }
  // The learning rate of the phase at `iteration`.
  double learning_rate(int iteration) const;

  // KL(P || Q) of the current embedding: Z exact when n <= exact_kl_max_points (then *exact is
  // set true), else by Barnes–Hut with options().theta.
  double kl_divergence(bool* exact = nullptr) const;

  // Places x_new [m, d] (same d and metric as the fit) into the current map: out [m, n_components].
  void transform(const float* x_new, std::int64_t m, double* out,
                 const TsneTransformOptions& options = {}) const;

 private:
  void step(double exaggeration, double momentum, double learning_rate, bool eval_kl);

  std::int64_t n_ = 0, d_ = 0, dim_ = 2, k_ = 0;
  TsneOptions options_;
  std::unique_ptr<search::Knn> knn_;
  SparseAffinities p_;
  std::unique_ptr<CompactP> pc_;  // p_ as the optimizer streams it
  double p_log_p_ = 0;  // sum p log p, for the KL
  std::vector<double> y_, update_, gains_, grad_;
  std::vector<TsneHistoryEntry> history_;
  int iteration_ = 0;
};

}  // namespace mmembed::reduce
