#include "reduce/pca.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <limits>
#include <utility>

#include "core/check.h"
#include "core/finite.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "kernels/vectorize.h"
#include "reduce/lapack.h"

namespace mmembed::reduce {
namespace {

using kernels::detail::kLanes;

// Standard normal numbers from a counter-based hash (Box-Muller): the same on every platform,
// unlike std::normal_distribution.
std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
double gaussian(std::uint64_t seed, std::uint64_t i) {
  const std::uint64_t a = mix(seed ^ mix(2 * i)), b = mix(seed ^ mix(2 * i + 1));
  const double u1 = (static_cast<double>(a >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
  const double u2 = static_cast<double>(b >> 11) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Rows per block of the mean's partial sums and of the covariance's Gram blocks, and columns per
// Gram panel: fixed, so that the summation order (and the bits) do not depend on the threads.
constexpr std::int64_t kSumRows = 4096;
constexpr std::int64_t kGramRows = 1024;
constexpr std::int64_t kPanel = 128;

// Throws InvalidArgument naming the first non-finite value of x [n, d] (`what` starts the message).
void check_finite(const float* x, std::int64_t n, std::int64_t d, const char* what) {
  std::atomic<bool> ok{true};
  kernels::parallel_for(n, kernels::row_grain(d), [&](std::int64_t r0, std::int64_t r1) {
    if (!all_finite(x + r0 * d, (r1 - r0) * d)) ok.store(false, std::memory_order_relaxed);
  });
  if (ok.load()) return;
  for (std::int64_t i = 0; i < n * d; ++i) {
    MMEMBED_CHECK(std::isfinite(x[i]), InvalidArgument, what, i / d, ", column ", i % d,
                  ": value ", x[i], " is not finite");
  }
}

// Scores are computed in double; one beyond float's range (data near FLT_MAX, whose centred
// rows are longer than FLT_MAX) would be written as inf: refused, naming the row.
void check_scores(const float* out, std::int64_t n, std::int64_t k) {
  if (all_finite(out, n * k)) return;
  for (std::int64_t i = 0; i < n * k; ++i) {
    MMEMBED_CHECK(std::isfinite(out[i]), InvalidArgument, "PCA: the score of row ", i / k,
                  " on component ", i % k + 1, " is beyond float32's range (above ",
                  std::numeric_limits<float>::max(), " in magnitude); scale the data down");
  }
}

// acc[j] += sum of column j of x [rows, d]; returns false when some element is not finite.
MMEMBED_TARGET_CLONES bool add_rows(const float* x, std::int64_t rows, std::int64_t d, double* acc) {
  std::uint32_t bad = 0;
  for (std::int64_t i = 0; i < rows; ++i) {
    const float* r = x + i * d;
    for (std::int64_t j = 0; j < d; ++j) {
      acc[j] += static_cast<double>(r[j]);
      bad |= static_cast<std::uint32_t>((std::bit_cast<std::uint32_t>(r[j]) & 0x7f800000u) ==
                                        0x7f800000u);
    }
  }
  return bad == 0;
}

// Column means of x [n, d] in double: partial sums over fixed blocks of kSumRows rows, added in
// block order. Checks that every value is finite on the way (`what` starts the message).
std::vector<double> column_means(const float* x, std::int64_t n, std::int64_t d, const char* what) {
  const std::int64_t blocks = (n + kSumRows - 1) / kSumRows;
  std::vector<double> partial(blocks * d, 0.0), mean(d, 0.0);
  std::atomic<bool> ok{true};
  kernels::parallel_tasks(blocks, [&](std::int64_t b) {
    const std::int64_t r0 = b * kSumRows, r1 = std::min(n, r0 + kSumRows);
    if (!add_rows(x + r0 * d, r1 - r0, d, partial.data() + b * d)) {
      ok.store(false, std::memory_order_relaxed);
    }
  });
  if (!ok.load()) check_finite(x, n, d, what);  // throws, naming the first bad value
  for (std::int64_t b = 0; b < blocks; ++b) {
    for (std::int64_t j = 0; j < d; ++j) mean[j] += partial[b * d + j];
  }
  for (double& m : mean) m /= static_cast<double>(n);
  return mean;
}

MMEMBED_TARGET_CLONES void centre_rows(const float* x, std::int64_t rows, std::int64_t d,
                                       const float* mean, float* out) {
  for (std::int64_t i = 0; i < rows; ++i) {
    for (std::int64_t j = 0; j < d; ++j) out[i * d + j] = x[i * d + j] - mean[j];
  }
}

MMEMBED_TARGET_CLONES void accumulate(const float* c, std::int64_t rows, std::int64_t cols,
                                      double* acc, std::int64_t ld) {
  for (std::int64_t a = 0; a < rows; ++a) {
    for (std::int64_t b = 0; b < cols; ++b) acc[a * ld + b] += static_cast<double>(c[a * cols + b]);
  }
}

// The upper panels (and the diagonal panels whole) of sum_i (x_i - mean)(x_i - mean)^T, row-major
// [d, d], which is also the lower triangle column-major, as LAPACK reads it.
std::vector<double> centred_gram(const float* x, std::int64_t n, std::int64_t d,
                                 const std::vector<double>& mean) {
  std::vector<float> mean_f(mean.begin(), mean.end());
  const std::int64_t panels = (d + kPanel - 1) / kPanel;
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
  for (std::int64_t a = 0; a < panels; ++a) {
    for (std::int64_t b = a; b < panels; ++b) pairs.emplace_back(a, b);
  }
  const std::int64_t n_pairs = static_cast<std::int64_t>(pairs.size());
  std::vector<double> gram(d * d, 0.0);
  std::vector<float> block(std::min(n, kGramRows) * d), tile(n_pairs * kPanel * kPanel);
  for (std::int64_t r0 = 0; r0 < n; r0 += kGramRows) {
    const std::int64_t rows = std::min(kGramRows, n - r0);
    kernels::parallel_for(rows, kernels::row_grain(d), [&](std::int64_t i0, std::int64_t i1) {
      centre_rows(x + (r0 + i0) * d, i1 - i0, d, mean_f.data(), block.data() + i0 * d);
    });
    kernels::parallel_tasks(n_pairs, [&](std::int64_t t) {
      const std::int64_t ca = pairs[t].first * kPanel, cb = pairs[t].second * kPanel;
      const std::int64_t wa = std::min(kPanel, d - ca), wb = std::min(kPanel, d - cb);
      float* c = tile.data() + t * kPanel * kPanel;
      // Inside a task the GEMM runs on this thread alone: the same bits on any thread count.
      kernels::sgemm(kernels::Trans::Yes, kernels::Trans::No, wa, wb, rows, 1.0f,
                     block.data() + ca, d, block.data() + cb, d, 0.0f, c, wb);
      accumulate(c, wa, wb, gram.data() + ca * d + cb, d);
    });
  }
  return gram;
}

// sum a[j] b[j] in double over kLanes accumulators (a fixed order); inlined into the callers'
// AVX-512 / AVX2 / baseline clones.
__attribute__((always_inline)) inline double dot(const double* a, const double* b,
                                                 std::int64_t d) {
  double acc[kLanes] = {};
  std::int64_t j = 0;
  for (; j + kLanes <= d; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += a[j + l] * b[j + l];
  }
  for (int l = 0; j < d; ++j, ++l) acc[l] += a[j] * b[j];
  double s = 0.0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// out [rows, k] = (x - mean) components^T for x [rows, d], in double over kLanes accumulators.
MMEMBED_TARGET_CLONES void project_rows(const float* x, std::int64_t rows, std::int64_t d,
                                        const double* mean, const double* components,
                                        std::int64_t k, double* centred, double* out) {
  for (std::int64_t i = 0; i < rows; ++i) {
    const float* r = x + i * d;
    for (std::int64_t j = 0; j < d; ++j) centred[j] = static_cast<double>(r[j]) - mean[j];
    for (std::int64_t c = 0; c < k; ++c) out[i * k + c] = dot(centred, components + c * d, d);
  }
}

// Scores of all rows in double, split by rows only.
std::vector<double> project(const float* x, std::int64_t n, std::int64_t d,
                            const std::vector<double>& mean, const std::vector<double>& components,
                            std::int64_t k) {
  std::vector<double> scores(n * k);
  kernels::parallel_for(n, kernels::row_grain(d * k), [&](std::int64_t r0, std::int64_t r1) {
    std::vector<double> centred(d);
    project_rows(x + r0 * d, r1 - r0, d, mean.data(), components.data(), k, centred.data(),
                 scores.data() + r0 * k);
  });
  return scores;
}

// out = a v for a [d, d] row-major, in double over kLanes accumulators.
MMEMBED_TARGET_CLONES void matrix_vector(const double* a, std::int64_t d, const double* v,
                                         double* out) {
  for (std::int64_t i = 0; i < d; ++i) out[i] = dot(a + i * d, v, d);
}

// The k largest eigenpairs of the symmetric d x d matrix c (lower triangle, column-major;
// overwritten): values [k] ascending, vectors [d, k]. Lanczos (ARPACK) to machine precision on
// the full matrix from a fixed pseudo-random start (deterministic; a start orthogonal to the
// wanted vectors is then out of the question): a few dozen products with c instead of dsyevr's
// full tridiagonal reduction (~19 ms at d = 512 with Debian's OpenBLAS here, measured). Falls
// back to dsyevr for small d or when ARPACK does not converge.
void largest_eigenpairs(std::int64_t d, std::vector<double>& c, std::int64_t k, double* values,
                        double* vectors) {
  const std::int64_t ncv = std::min(d, std::max<std::int64_t>(2 * k + 1, 24));
  if (d >= 64 && k < ncv) {
    std::vector<double> full(c);  // both triangles, for a plain product
    for (std::int64_t j = 0; j < d; ++j) {
      for (std::int64_t i = j + 1; i < d; ++i) full[i * d + j] = c[j * d + i];
    }
    std::vector<double> start(d);
    for (std::int64_t i = 0; i < d; ++i) start[i] = gaussian(0x5eed, i);
    const auto product = [&](const double* v, double* out) {
      matrix_vector(full.data(), d, v, out);
    };
    if (lapack::lanczos_largest(d, k, ncv, 0.0, 1000, product, values, vectors, start.data())) {
      return;
    }
  }
  lapack::symmetric_eigen_largest(d, c.data(), k, values, vectors);
}

}  // namespace

Pca Pca::fit(const float* x, std::int64_t n, std::int64_t d, const PcaOptions& options) {
  return fit_impl(x, n, d, options, nullptr);
}

Pca Pca::fit_transform(const float* x, std::int64_t n, std::int64_t d, const PcaOptions& options,
                       float* out) {
  MMEMBED_CHECK(out != nullptr, InvalidArgument, "PCA fit_transform: no output buffer");
  return fit_impl(x, n, d, options, out);
}

Pca Pca::fit_impl(const float* x, std::int64_t n, std::int64_t d, const PcaOptions& options,
                  float* transformed) {
  MMEMBED_CHECK(n >= 2, InvalidArgument, "PCA needs at least 2 points (got ", n, ")");
  MMEMBED_CHECK(d >= 1, InvalidArgument, "PCA needs at least 1 dimension (got ", d, ")");
  const std::int64_t r = std::min(n, d), k = options.n_components;
  MMEMBED_CHECK(k >= 1 && k <= r, InvalidArgument, "PCA: n_components must be in [1, min(n, d) = ",
                r, "] (got ", k, ")");
  const lapack::SingleThreaded single_threaded;

  Pca p;
  p.dim_ = d;
  p.k_ = k;
  p.n_samples_ = n;
  p.solver_ = options.solver;
  if (p.solver_ == PcaOptions::Solver::Auto) {
    if (d <= 1000 && n >= 10 * d) {
      p.solver_ = PcaOptions::Solver::Covariance;
    } else if (std::max(n, d) <= 500 || static_cast<double>(k) >= 0.8 * static_cast<double>(r)) {
      p.solver_ = PcaOptions::Solver::Full;
    } else {
      p.solver_ = PcaOptions::Solver::Randomized;
    }
  }
  p.mean_ = column_means(x, n, d, "PCA input row ");
  if (p.solver_ == PcaOptions::Solver::Covariance) {
    // Its Gram blocks are float GEMMs: squares of values beyond ~2^58 overflow and those below
    // ~2^-63 lose bits. PCA is scale-equivariant, so data whose largest |value| is outside
    // [2^-40, 2^40] is fitted scaled by a power of 2 (exact) and the results scaled back.
    float max_abs = 0.0f;
    for (std::int64_t i = 0; i < n * d; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
    if (max_abs != 0.0f && (max_abs < 0x1p-40f || max_abs > 0x1p40f)) {
      const int e = std::ilogb(max_abs);
      std::vector<float> scaled(x, x + n * d);
      const double down = std::ldexp(1.0, -e);  // up to 2^149: in double, exact
      for (float& v : scaled) v = static_cast<float>(v * down);
      PcaOptions o = options;
      o.solver = PcaOptions::Solver::Covariance;
      Pca q = fit_impl(scaled.data(), n, d, o, transformed);
      const double up = std::ldexp(1.0, e);
      for (double& v : q.mean_) v *= up;
      for (double& v : q.singular_) v *= up;
      for (double& v : q.variance_) v *= up * up;
      if (transformed != nullptr) {
        for (std::int64_t i = 0; i < n * k; ++i) {
          transformed[i] = static_cast<float>(transformed[i] * up);
        }
        check_scores(transformed, n, k);
      }
      return q;
    }
  }
  const double dof = static_cast<double>(n - 1);
  p.components_.resize(k * d);
  p.variance_.resize(k);
  p.ratio_.resize(k);
  p.singular_.resize(k);

  if (p.solver_ == PcaOptions::Solver::Covariance) {
    std::vector<double> cov = centred_gram(x, n, d, p.mean_);
    double total_variance = 0.0;
    for (std::int64_t j = 0; j < d; ++j) total_variance += cov[j * d + j];
    total_variance /= dof;
    for (std::int64_t j = 0; j < d; ++j) {  // the lower triangle, column-major
      for (std::int64_t i = j; i < d; ++i) cov[j * d + i] /= dof;
    }
    std::vector<double> values(k), vectors(d * k);
    largest_eigenpairs(d, cov, k, values.data(), vectors.data());
    for (std::int64_t c = 0; c < k; ++c) {  // descending
      const double v = std::max(0.0, values[k - 1 - c]);
      std::copy(vectors.begin() + (k - 1 - c) * d, vectors.begin() + (k - c) * d,
                p.components_.begin() + c * d);
      p.variance_[c] = v;
      p.singular_[c] = std::sqrt(v * dof);
      p.ratio_[c] = total_variance > 0 ? v / total_variance : 0.0;
    }
    // Signs: the training point with the largest |score| on a component scores positive.
    std::vector<double> scores = project(x, n, d, p.mean_, p.components_, k);
    for (std::int64_t c = 0; c < k; ++c) {
      std::int64_t arg = 0;
      for (std::int64_t i = 1; i < n; ++i) {
        if (std::fabs(scores[i * k + c]) > std::fabs(scores[arg * k + c])) arg = i;
      }
      if (scores[arg * k + c] >= 0) continue;
      for (std::int64_t j = 0; j < d; ++j) p.components_[c * d + j] = -p.components_[c * d + j];
      for (std::int64_t i = 0; i < n; ++i) scores[i * k + c] = -scores[i * k + c];
    }
    if (transformed != nullptr) {
      for (std::int64_t e = 0; e < n * k; ++e) transformed[e] = static_cast<float>(scores[e]);
      check_scores(transformed, n, k);
    }
    return p;
  }

  // Centred data, column-major n x d, in double.
  std::vector<double> a(n * d);
  kernels::parallel_for(d, 1, [&](std::int64_t j0, std::int64_t j1) {
    for (std::int64_t j = j0; j < j1; ++j) {
      for (std::int64_t i = 0; i < n; ++i) a[i + j * n] = x[i * d + j] - p.mean_[j];
    }
  });

  std::vector<double> u, s, vt;  // u [n, l], s [l], vt [l, d], column-major
  std::int64_t l = 0;
  double total_variance = 0.0;
  if (p.solver_ == PcaOptions::Solver::Full) {
    l = r;
    u.resize(n * l);
    s.resize(l);
    vt.resize(l * d);
    std::vector<double> work = a;
    lapack::svd(n, d, work.data(), s.data(), u.data(), vt.data());
    for (double v : s) total_variance += v * v / dof;
  } else {
    l = std::min(r, k + std::max<std::int64_t>(0, options.n_oversamples));
    const int n_iter = options.n_iter >= 0 ? options.n_iter
                       : (static_cast<double>(k) < 0.1 * static_cast<double>(r) ? 7 : 4);
    std::vector<double> omega(d * l), y(n * l), z(d * l);
    for (std::int64_t i = 0; i < d * l; ++i) omega[i] = gaussian(options.seed, i);
    lapack::gemm(false, false, n, l, d, 1.0, a.data(), n, omega.data(), d, 0.0, y.data(), n);
    for (int it = 0; it < n_iter; ++it) {
      lapack::orthonormalize(n, l, y.data());
      lapack::gemm(true, false, d, l, n, 1.0, a.data(), n, y.data(), n, 0.0, z.data(), d);
      lapack::orthonormalize(d, l, z.data());
      lapack::gemm(false, false, n, l, d, 1.0, a.data(), n, z.data(), d, 0.0, y.data(), n);
    }
    lapack::orthonormalize(n, l, y.data());  // Q [n, l]
    std::vector<double> b(l * d), ub(l * l);
    lapack::gemm(true, false, l, d, n, 1.0, y.data(), n, a.data(), n, 0.0, b.data(), l);
    s.resize(l);
    vt.resize(l * d);
    lapack::svd(l, d, b.data(), s.data(), ub.data(), vt.data());
    u.resize(n * l);
    lapack::gemm(false, false, n, l, l, 1.0, y.data(), n, ub.data(), l, 0.0, u.data(), n);
    for (double v : a) total_variance += v * v;
    total_variance /= dof;
  }

  for (std::int64_t c = 0; c < k; ++c) {
    std::int64_t arg = 0;
    for (std::int64_t i = 1; i < n; ++i) {
      if (std::fabs(u[i + c * n]) > std::fabs(u[arg + c * n])) arg = i;
    }
    const double sign = u[arg + c * n] < 0 ? -1.0 : 1.0;
    for (std::int64_t j = 0; j < d; ++j) p.components_[c * d + j] = sign * vt[c + j * l];
    p.singular_[c] = s[c];
    p.variance_[c] = s[c] * s[c] / dof;
    p.ratio_[c] = total_variance > 0 ? p.variance_[c] / total_variance : 0.0;
  }
  if (transformed != nullptr) p.transform(x, n, transformed);
  return p;
}

void Pca::transform(const float* x, std::int64_t n, float* out) const {
  const std::int64_t d = dim_, k = k_;
  check_finite(x, n, d, "PCA transform: row ");
  kernels::parallel_for(n, kernels::row_grain(d * k), [&](std::int64_t r0, std::int64_t r1) {
    std::vector<double> centred(d), scores((r1 - r0) * k);
    project_rows(x + r0 * d, r1 - r0, d, mean_.data(), components_.data(), k, centred.data(),
                 scores.data());
    for (std::int64_t e = 0; e < (r1 - r0) * k; ++e) out[r0 * k + e] = static_cast<float>(scores[e]);
  });
  check_scores(out, n, k);
}

}  // namespace mmembed::reduce
