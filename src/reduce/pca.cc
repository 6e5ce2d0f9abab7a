#include "reduce/pca.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "kernels/parallel.h"
#include "reduce/lapack.h"

namespace mmembed::reduce {
namespace {

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

}  // namespace

Pca Pca::fit(const float* x, std::int64_t n, std::int64_t d, const PcaOptions& options) {
  MMEMBED_CHECK(n >= 2, InvalidArgument, "PCA needs at least 2 points (got ", n, ")");
  MMEMBED_CHECK(d >= 1, InvalidArgument, "PCA needs at least 1 dimension (got ", d, ")");
  const std::int64_t r = std::min(n, d), k = options.n_components;
  MMEMBED_CHECK(k >= 1 && k <= r, InvalidArgument, "PCA: n_components must be in [1, min(n, d) = ",
                r, "] (got ", k, ")");
  for (std::int64_t i = 0; i < n * d; ++i) {
    MMEMBED_CHECK(std::isfinite(x[i]), InvalidArgument, "PCA input row ", i / d, ", column ",
                  i % d, ": value ", x[i], " is not finite");
  }
  const lapack::SingleThreaded single_threaded;

  Pca p;
  p.dim_ = d;
  p.k_ = k;
  p.n_samples_ = n;
  p.solver_ = options.solver;
  if (p.solver_ == PcaOptions::Solver::Auto) {
    p.solver_ = (std::max(n, d) <= 500 || static_cast<double>(k) >= 0.8 * static_cast<double>(r))
                    ? PcaOptions::Solver::Full
                    : PcaOptions::Solver::Randomized;
  }

  // Centred data, column-major n x d, in double.
  p.mean_.assign(d, 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < d; ++j) p.mean_[j] += x[i * d + j];
  }
  for (double& m : p.mean_) m /= static_cast<double>(n);
  std::vector<double> a(n * d);
  for (std::int64_t j = 0; j < d; ++j) {
    for (std::int64_t i = 0; i < n; ++i) a[i + j * n] = x[i * d + j] - p.mean_[j];
  }
  const double dof = static_cast<double>(n - 1);

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

  p.components_.resize(k * d);
  p.variance_.resize(k);
  p.ratio_.resize(k);
  p.singular_.resize(k);
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
  return p;
}

void Pca::transform(const float* x, std::int64_t n, float* out) const {
  const std::int64_t d = dim_, k = k_;
  for (std::int64_t i = 0; i < n * d; ++i) {
    MMEMBED_CHECK(std::isfinite(x[i]), InvalidArgument, "PCA transform: row ", i / d, ", column ",
                  i % d, ": value ", x[i], " is not finite");
  }
  kernels::parallel_for(n, kernels::row_grain(d * k), [&](std::int64_t r0, std::int64_t r1) {
    std::vector<double> centred(d);
    for (std::int64_t i = r0; i < r1; ++i) {
      for (std::int64_t j = 0; j < d; ++j) centred[j] = static_cast<double>(x[i * d + j]) - mean_[j];
      for (std::int64_t c = 0; c < k; ++c) {
        const double* comp = components_.data() + c * d;
        double acc = 0.0;
        for (std::int64_t j = 0; j < d; ++j) acc += centred[j] * comp[j];
        out[i * k + c] = static_cast<float>(acc);
      }
    }
  });
}

}  // namespace mmembed::reduce
