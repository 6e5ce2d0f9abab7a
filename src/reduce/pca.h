// Principal component analysis, as scikit-learn's PCA (1.2) computes it.
//
//   reduce::PcaOptions opt;  opt.n_components = 2;
//   reduce::Pca pca = reduce::Pca::fit(x, n, d, opt);      // x [n, d] row-major
//   std::vector<float> y(n * 2);
//   pca.transform(x, n, y.data());                          // y = (x - mean) components^T
//   pca.explained_variance_ratio();                         // [2]
//
// Solvers: Full is the exact thin SVD of the centred data (LAPACK dgesdd in double, as
// scipy.linalg.svd); Randomized is Halko, Martinsson & Tropp's range finder (Gaussian test
// matrix from `seed`, n_oversamples extra columns, n_iter power iterations with QR
// re-orthonormalization) followed by an exact SVD of the small projected matrix; Covariance is
// scikit-learn >= 1.5's "covariance_eigh": the d x d covariance matrix of the centred data, then
// its largest eigenpairs in double. The covariance is summed over fixed blocks of
// 1,024 rows: each block is centred in float, its Gram matrix computed by the GEMM seam in float
// (upper panels of 128 columns only), and the blocks added up in double; its k largest
// eigenpairs by Lanczos (ARPACK, to machine precision, fixed pseudo-random start; LAPACK dsyevr
// for d < 64 or if ARPACK does not converge). Auto follows
// scikit-learn >= 1.5: Covariance when d <= 1000 and n >= 10 d; else Full when max(n, d) <= 500
// or n_components >= 0.8 min(n, d); else Randomized.
//
// Signs (fixed, as scikit-learn 1.2's svd_flip with u_based_decision=True): each component is
// oriented so that the training point with the largest |score| on it (the first such point on
// ties) has a positive score. (scikit-learn >= 1.5 orients by the component's largest |loading|
// instead; compare across versions up to sign.)
//
// Full and Randomized compute in double from the float inputs, Covariance its Gram blocks in
// float (docs/numerics.md); the results are stored in double. Deterministic: the same inputs and
// seed give the same bits on any thread count (LAPACK runs single-threaded: OpenBLAS's threaded
// dgesdd differs in the last bits between thread counts; the covariance's blocks and panels are
// fixed and each GEMM runs on one thread; transform() splits rows only).
#pragma once

#include <cstdint>
#include <vector>

namespace mmembed::reduce {

struct PcaOptions {
  enum class Solver { Auto, Full, Randomized, Covariance };
  std::int64_t n_components = 2;  // 1 <= n_components <= min(n, d)
  Solver solver = Solver::Auto;
  std::int64_t n_oversamples = 10;  // Randomized only
  int n_iter = -1;                  // Randomized only; -1: 7 if n_components < 0.1 min(n, d), else 4
  std::uint64_t seed = 0;           // Randomized only
};

class Pca {
 public:
  // Needs n >= 2, d >= 1, finite values; throws InvalidArgument otherwise.
  static Pca fit(const float* x, std::int64_t n, std::int64_t d, const PcaOptions& options = {});

  // fit(), and out [n, n_components()] = transform(x) (the same bits), in one pass over x fewer
  // where the solver allows.
  static Pca fit_transform(const float* x, std::int64_t n, std::int64_t d,
                           const PcaOptions& options, float* out);

  // out [n, n_components()] = (x - mean) components^T, accumulated in double. x [n, dim()].
  void transform(const float* x, std::int64_t n, float* out) const;

  std::int64_t dim() const { return dim_; }
  std::int64_t n_components() const { return k_; }
  std::int64_t n_samples() const { return n_samples_; }
  PcaOptions::Solver solver() const { return solver_; }  // the one used (never Auto)
  const std::vector<double>& mean() const { return mean_; }                   // [d]
  const std::vector<double>& components() const { return components_; }       // [k, d] row-major
  const std::vector<double>& explained_variance() const { return variance_; } // [k], ddof 1
  const std::vector<double>& explained_variance_ratio() const { return ratio_; }  // [k]
  const std::vector<double>& singular_values() const { return singular_; }    // [k]

 private:
  static Pca fit_impl(const float* x, std::int64_t n, std::int64_t d, const PcaOptions& options,
                      float* transformed);

  std::int64_t dim_ = 0, k_ = 0, n_samples_ = 0;
  PcaOptions::Solver solver_ = PcaOptions::Solver::Full;
  std::vector<double> mean_, components_, variance_, ratio_, singular_;
};

}  // namespace mmembed::reduce
