#include "reduce/tsne.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "core/check.h"
#include "kernels/parallel.h"
#include "reduce/bh_tree.h"
#include "reduce/pca.h"
#include "kernels/vectorize.h"
#include "search/knn.h"

namespace mmembed::reduce {
namespace {

// Points per parallel chunk for the per-point passes: a chunk must outweigh waking a thread,
// which costs far more on a loaded machine than the ~1 us a point's forces take.
constexpr std::int64_t kPointGrain = 512;

std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
// Standard normal from a counter-based hash (Box-Muller): the same on every platform.
double gaussian(std::uint64_t seed, std::uint64_t i) {
  const std::uint64_t a = mix(seed ^ mix(2 * i)), b = mix(seed ^ mix(2 * i + 1));
  const double u1 = (static_cast<double>(a >> 11) + 1.0) * 0x1.0p-53;
  const double u2 = static_cast<double>(b >> 11) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Coordinates beyond this mean the optimisation has diverged (Tsne::step).
constexpr double kDivergedCoordinate = 1e12;

// The value the Gaussian kernel uses, from a kNN value in the metric's units.
double kernel_distance(kernels::Metric m, float value) {
  const double v = value;
  switch (m) {
    case kernels::Metric::Euclidean: return v * v;
    case kernels::Metric::Cosine: return 1.0 - v;
    default: return v;
  }
}

// kernel_distance of `count` kNN values into out. Values far from 1 (inputs scaled by ~1e20 or
// ~1e-25) are first multiplied by the power of 2 that brings the largest to [1, 2): squared in
// float they would overflow or flush to 0, and the perplexity search (beta from 1 by doubling
// and halving, 100 steps) would not reach their scale. The affinities only depend on
// distance x beta, so this leaves them as for the unscaled input (issue #18).
void kernel_distances(kernels::Metric m, const float* values, std::int64_t count, float* out) {
  double s = 1.0;
  if (m != kernels::Metric::Cosine && m != kernels::Metric::CosineDistance) {
    float largest = 0.0f;
    for (std::int64_t e = 0; e < count; ++e) largest = std::max(largest, std::fabs(values[e]));
    if (largest != 0.0f && (largest < 0x1p-20f || largest > 0x1p20f)) {
      s = std::ldexp(1.0, -std::ilogb(largest));
    }
  }
  for (std::int64_t e = 0; e < count; ++e) {
    out[e] = static_cast<float>(kernel_distance(m, static_cast<float>(values[e] * s)));
  }
}

// attr_i = ex sum_j p_ij w_ij (y_i - y_j) into attr[i * D ..] and, when kl_terms is given,
// kl_terms[i] = -sum_j p_ij log w_ij (un-exaggerated P).
template <int D>
void attract_row(const SparseAffinities& p, const double* y, double exaggeration, std::int64_t i,
                 double* attr, double* kl_terms) {
  double a[D] = {};
  double kl = 0;
  const double* yi = y + i * D;
  for (std::int64_t e = p.indptr[i]; e < p.indptr[i + 1]; ++e) {
    const double* yj = y + p.indices[e] * D;
    double dx[D], d2 = 0;
    for (int c = 0; c < D; ++c) {
      dx[c] = yi[c] - yj[c];
      d2 += dx[c] * dx[c];
    }
    const double pw = p.values[e] / (1.0 + d2);
    for (int c = 0; c < D; ++c) a[c] += pw * dx[c];
    if (kl_terms && p.values[e] > 0) kl += p.values[e] * std::log1p(d2);
  }
  for (int c = 0; c < D; ++c) attr[i * D + c] = exaggeration * a[c];
  if (kl_terms) kl_terms[i] = kl;
}

}  // namespace

// P as the optimizer streams it every iteration: 32-bit columns and float values (half the
// memory traffic of SparseAffinities; p_ij's float rounding, 6e-8 relative, is far below the
// Barnes-Hut error).
struct CompactP {
  std::int64_t n = 0;
  std::vector<std::int64_t> indptr;
  std::vector<std::int32_t> cols;
  std::vector<float> vals;
};

namespace {

CompactP compact(const SparseAffinities& p) {
  CompactP c;
  c.n = p.n;
  c.indptr = p.indptr;
  c.cols.assign(p.indices.begin(), p.indices.end());
  c.vals.assign(p.values.begin(), p.values.end());
  return c;
}

// attr[i * D + c] = ex sum_j p_ij w_ij (y_i - y_j)_c for the rows listed in rows[0..nrows),
// over kLanes independent accumulators (fixed order, vectorizable without reassociation).
constexpr int kAttractLanes = 4;
template <int D>
inline __attribute__((always_inline)) void attract_rows(const CompactP& p, const double* y,
                                                        double exaggeration,
                                                        const std::int64_t* rows,
                                                        std::int64_t nrows, double* attr) {
  for (std::int64_t r = 0; r < nrows; ++r) {
    const std::int64_t i = rows[r];
    const double* yi = y + i * D;
    const std::int32_t* cols = p.cols.data();
    const float* vals = p.vals.data();
    double a[D][kAttractLanes] = {};
    std::int64_t e = p.indptr[i];
    const std::int64_t end = p.indptr[i + 1];
    for (; e + kAttractLanes <= end; e += kAttractLanes) {
      for (int l = 0; l < kAttractLanes; ++l) {
        const double* yj = y + static_cast<std::int64_t>(cols[e + l]) * D;
        double dx[D], d2 = 0;
        for (int c = 0; c < D; ++c) {
          dx[c] = yi[c] - yj[c];
          d2 += dx[c] * dx[c];
        }
        const double pw = static_cast<double>(vals[e + l]) / (1.0 + d2);
        for (int c = 0; c < D; ++c) a[c][l] += pw * dx[c];
      }
    }
    for (int l = 0; e < end; ++e, ++l) {
      const double* yj = y + static_cast<std::int64_t>(cols[e]) * D;
      double dx[D], d2 = 0;
      for (int c = 0; c < D; ++c) {
        dx[c] = yi[c] - yj[c];
        d2 += dx[c] * dx[c];
      }
      const double pw = static_cast<double>(vals[e]) / (1.0 + d2);
      for (int c = 0; c < D; ++c) a[c][l] += pw * dx[c];
    }
    for (int c = 0; c < D; ++c) {
      double s = 0;
      for (int l = 0; l < kAttractLanes; ++l) s += a[c][l];
      attr[i * D + c] = exaggeration * s;
    }
  }
}

MMEMBED_TARGET_CLONES void attract_rows_1(const CompactP& p, const double* y, double ex,
                                          const std::int64_t* rows, std::int64_t nrows, double* attr) {
  attract_rows<1>(p, y, ex, rows, nrows, attr);
}
MMEMBED_TARGET_CLONES void attract_rows_2(const CompactP& p, const double* y, double ex,
                                          const std::int64_t* rows, std::int64_t nrows, double* attr) {
  attract_rows<2>(p, y, ex, rows, nrows, attr);
}
MMEMBED_TARGET_CLONES void attract_rows_3(const CompactP& p, const double* y, double ex,
                                          const std::int64_t* rows, std::int64_t nrows, double* attr) {
  attract_rows<3>(p, y, ex, rows, nrows, attr);
}

// -sum_j p_ij log w_ij for row i (the KL's cross term), from the compact P.
template <int D>
double kl_row(const CompactP& p, const double* y, std::int64_t i) {
  double kl = 0;
  for (std::int64_t e = p.indptr[i]; e < p.indptr[i + 1]; ++e) {
    const double* yj = y + static_cast<std::int64_t>(p.cols[e]) * D;
    double d2 = 0;
    for (int c = 0; c < D; ++c) d2 += (y[i * D + c] - yj[c]) * (y[i * D + c] - yj[c]);
    if (p.vals[e] > 0) kl += static_cast<double>(p.vals[e]) * std::log1p(d2);
  }
  return kl;
}

// The two halves of the gradient for every point, each point on its own: rep (sum w^2 (y_i -
// y_j), by Barnes-Hut), attr (exaggerated), z_i (sum_j w_ij) and optionally the KL terms.
struct Forces {
  std::vector<double> rep, attr, z, kl_terms;
  double zsum = 0;
};

template <int D>
void forces_bh(const CompactP& p, const double* y, double exaggeration, double theta,
               bool with_kl, Forces& f) {
  const std::int64_t n = p.n;
  const BhTree<D> tree(y, n);
  const double theta2 = theta * theta;
  f.rep.resize(n * D);
  f.attr.resize(n * D);
  f.z.resize(n);
  f.kl_terms.resize(with_kl ? n : 0);
  // One pass over the points split into chunks [begin, end): a chunk does the repulsion of the
  // groups (of neighbouring points) that start at tree positions in [begin, end) and the
  // attraction of rows [begin, end) in index order (P streams from memory sequentially). Every
  // group and row is computed on its own, so the split does not change any result.
  std::vector<std::int64_t> firsts(tree.group_count());
  for (std::int64_t g = 0; g < tree.group_count(); ++g) firsts[g] = tree.group_first(g);
  kernels::parallel_for(n, kPointGrain, [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> scratch;
    const auto g0 = std::lower_bound(firsts.begin(), firsts.end(), begin) - firsts.begin();
    const auto g1 = std::lower_bound(firsts.begin(), firsts.end(), end) - firsts.begin();
    for (auto g = g0; g < g1; ++g) tree.group_repulsion(g, theta2, f.rep.data(), f.z.data(), scratch);
    std::vector<std::int64_t> rows(end - begin);
    for (std::int64_t i = begin; i < end; ++i) rows[i - begin] = i;
    const std::int64_t nrows = end - begin;
    if constexpr (D == 1) attract_rows_1(p, y, exaggeration, rows.data(), nrows, f.attr.data());
    if constexpr (D == 2) attract_rows_2(p, y, exaggeration, rows.data(), nrows, f.attr.data());
    if constexpr (D == 3) attract_rows_3(p, y, exaggeration, rows.data(), nrows, f.attr.data());
    if (with_kl) {
      for (std::int64_t i = begin; i < end; ++i) f.kl_terms[i] = kl_row<D>(p, y, i);
    }
  });
  f.zsum = 0;
  for (std::int64_t i = 0; i < n; ++i) f.zsum += f.z[i];
}

// KL(P || Q) from the terms of forces_bh (or an exact Z): sum p log p - sum p log w + sum p log Z.
double kl_from_terms(const SparseAffinities& p, double p_log_p, const std::vector<double>& terms,
                     double zsum) {
  double s = 0, psum = 0;
  for (double t : terms) s += t;
  for (double v : p.values) psum += v;
  return p_log_p + s + psum * std::log(zsum);
}

template <int D>
double gradient_bh_impl(const SparseAffinities& p, const double* y, double exaggeration,
                        double theta, double* grad) {
  Forces f;
  forces_bh<D>(compact(p), y, exaggeration, theta, false, f);
  const double inv_z = 1.0 / f.zsum;
  for (std::int64_t e = 0; e < p.n * D; ++e) grad[e] = 4.0 * (f.attr[e] - f.rep[e] * inv_z);
  return f.zsum;
}

template <int D>
double gradient_exact_impl(const SparseAffinities& p, const double* y, double exaggeration,
                           double* grad) {
  const std::int64_t n = p.n;
  std::vector<double> rep(n * D, 0.0), z(n);
  kernels::parallel_for(n, 64, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      double f[D] = {}, zi = 0;
      for (std::int64_t j = 0; j < n; ++j) {
        if (j == i) continue;
        double dx[D], d2 = 0;
        for (int c = 0; c < D; ++c) {
          dx[c] = y[i * D + c] - y[j * D + c];
          d2 += dx[c] * dx[c];
        }
        const double w = 1.0 / (1.0 + d2);
        zi += w;
        for (int c = 0; c < D; ++c) f[c] += w * w * dx[c];
      }
      z[i] = zi;
      for (int c = 0; c < D; ++c) rep[i * D + c] = f[c];
    }
  });
  for (std::int64_t i = 0; i < n; ++i) attract_row<D>(p, y, exaggeration, i, grad, nullptr);
  double zsum = 0;
  for (std::int64_t i = 0; i < n; ++i) zsum += z[i];
  for (std::int64_t e = 0; e < n * D; ++e) grad[e] = 4.0 * (grad[e] - rep[e] / zsum);
  return zsum;
}

template <int D>
double z_exact_impl(const double* y, std::int64_t n) {
  std::vector<double> z(n);
  kernels::parallel_for(n, 64, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      double zi = 0;
      for (std::int64_t j = 0; j < n; ++j) {
        if (j == i) continue;
        double d2 = 0;
        for (int c = 0; c < D; ++c) {
          const double t = y[i * D + c] - y[j * D + c];
          d2 += t * t;
        }
        zi += 1.0 / (1.0 + d2);
      }
      z[i] = zi;
    }
  });
  double zsum = 0;
  for (std::int64_t i = 0; i < n; ++i) zsum += z[i];
  return zsum;
}

template <typename F>
decltype(auto) by_dim(std::int64_t dim, F&& f) {
  switch (dim) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    default: break;
  }
  throw InvalidArgument(str_cat("t-SNE: n_components must be 1, 2 or 3 (got ", dim, ")"));
}

double p_log_p(const SparseAffinities& p) {
  double s = 0;
  for (double v : p.values) {
    if (v > 0) s += v * std::log(v);
  }
  return s;
}

double kl_given_z(const SparseAffinities& p, const double* y, std::int64_t dim, double zsum) {
  return by_dim(dim, [&](auto d) {
    constexpr int D = decltype(d)::value;
    std::vector<double> attr(p.n * D), terms(p.n);
    kernels::parallel_for(p.n, kPointGrain, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) attract_row<D>(p, y, 1.0, i, attr.data(), terms.data());
    });
    return kl_from_terms(p, p_log_p(p), terms, zsum);
  });
}

// The per-point schedule step of gradient descent with momentum and gains (scikit-learn's
// rule: the gain grows by 0.2 when the gradient opposes the last update, else shrinks by 0.8).
inline void descend(double& y, double& update, double& gain, double g, double momentum, double lr) {
  gain = update * g < 0.0 ? gain + 0.2 : gain * 0.8;
  if (gain < 0.01) gain = 0.01;
  update = momentum * update - lr * gain * g;
  y += update;
}

}  // namespace

ConditionalAffinities conditional_affinities(const float* dist, std::int64_t n, std::int64_t k,
                                             double perplexity, double tolerance) {
  MMEMBED_CHECK(n >= 1 && k >= 1, InvalidArgument, "t-SNE affinities: need n >= 1 and k >= 1 (got n = ",
                n, ", k = ", k, ")");
  MMEMBED_CHECK(std::isfinite(perplexity) && perplexity >= 1 && perplexity <= k, InvalidArgument,
                "t-SNE affinities: perplexity ", perplexity, " must be in [1, k = ", k, "]");
  ConditionalAffinities out;
  out.n = n;
  out.k = k;
  out.p.resize(n * k);
  out.beta.resize(n);
  const double target = std::log(perplexity);
  kernels::parallel_for(n, 64, [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> d(k);
    for (std::int64_t i = begin; i < end; ++i) {
      double d0 = std::numeric_limits<double>::infinity();
      for (std::int64_t r = 0; r < k; ++r) {
        d[r] = dist[i * k + r];
        d0 = std::min(d0, d[r]);
      }
      // Shifting by the smallest distance leaves p and the entropy unchanged and keeps
      // exp() from underflowing to an all-zero row.
      for (std::int64_t r = 0; r < k; ++r) d[r] -= d0;
      double* p = out.p.data() + i * k;
      double beta = 1, lo = -std::numeric_limits<double>::infinity(),
             hi = std::numeric_limits<double>::infinity();
      for (int step = 0; step < 100; ++step) {
        double sum = 0;
        for (std::int64_t r = 0; r < k; ++r) {
          p[r] = std::exp(-d[r] * beta);
          sum += p[r];
        }
        double sum_dp = 0;
        for (std::int64_t r = 0; r < k; ++r) {
          p[r] /= sum;
          sum_dp += d[r] * p[r];
        }
        const double diff = std::log(sum) + beta * sum_dp - target;
        if (std::fabs(diff) <= tolerance) break;
        if (diff > 0) {
          lo = beta;
          beta = hi == std::numeric_limits<double>::infinity() ? beta * 2 : (beta + hi) / 2;
        } else {
          hi = beta;
          beta = lo == -std::numeric_limits<double>::infinity() ? beta / 2 : (beta + lo) / 2;
        }
      }
      out.beta[i] = beta;
    }
  });
  return out;
}

SparseAffinities joint_affinities(const std::int64_t* neighbours, const ConditionalAffinities& cond) {
  const std::int64_t n = cond.n, k = cond.k;
  // Transposed entries, gathered per target row in ascending source order.
  std::vector<std::int64_t> tcount(n + 1, 0);
  for (std::int64_t e = 0; e < n * k; ++e) {
    MMEMBED_ASSERT(neighbours[e] >= 0 && neighbours[e] < n);
    ++tcount[neighbours[e] + 1];
  }
  for (std::int64_t i = 0; i < n; ++i) tcount[i + 1] += tcount[i];
  std::vector<std::int64_t> tsrc(n * k), fill(tcount.begin(), tcount.end() - 1);
  std::vector<double> tval(n * k);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t r = 0; r < k; ++r) {
      const std::int64_t j = neighbours[i * k + r];
      tsrc[fill[j]] = i;
      tval[fill[j]++] = cond.p[i * k + r];
    }
  }
  SparseAffinities p;
  p.n = n;
  p.indptr.assign(n + 1, 0);
  std::vector<std::pair<std::int64_t, double>> own(k);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t r = 0; r < k; ++r) own[r] = {neighbours[i * k + r], cond.p[i * k + r]};
    std::sort(own.begin(), own.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::int64_t a = 0, b = tcount[i];
    const std::int64_t b_end = tcount[i + 1];
    while (a < k || b < b_end) {
      std::int64_t col;
      double v;
      if (b == b_end || (a < k && own[a].first < tsrc[b])) {
        col = own[a].first;
        v = own[a++].second;
      } else if (a == k || tsrc[b] < own[a].first) {
        col = tsrc[b];
        v = tval[b++];
      } else {
        col = own[a].first;
        v = own[a++].second + tval[b++];
      }
      if (!p.indices.empty() && static_cast<std::int64_t>(p.indices.size()) > p.indptr[i] &&
          p.indices.back() == col) {
        p.values.back() += v;  // a repeated neighbour (not produced by a kNN graph)
      } else {
        p.indices.push_back(col);
        p.values.push_back(v);
      }
    }
    p.indptr[i + 1] = static_cast<std::int64_t>(p.indices.size());
  }
  double sum = 0;
  for (double v : p.values) sum += v;
  for (double& v : p.values) v /= sum;
  return p;
}

double tsne_gradient_exact(const SparseAffinities& p, const double* y, std::int64_t dim,
                           double exaggeration, double* grad) {
  return by_dim(dim, [&](auto d) {
    return gradient_exact_impl<decltype(d)::value>(p, y, exaggeration, grad);
  });
}

double tsne_gradient_bh(const SparseAffinities& p, const double* y, std::int64_t dim,
                        double exaggeration, double theta, double* grad) {
  MMEMBED_CHECK(theta >= 0, InvalidArgument, "t-SNE: theta must be >= 0 (got ", theta, ")");
  return by_dim(dim, [&](auto d) {
    return gradient_bh_impl<decltype(d)::value>(p, y, exaggeration, theta, grad);
  });
}

double kl_divergence_exact(const SparseAffinities& p, const double* y, std::int64_t dim) {
  const double zsum = by_dim(dim, [&](auto d) { return z_exact_impl<decltype(d)::value>(y, p.n); });
  return kl_given_z(p, y, dim, zsum);
}

Tsne::Tsne(const float* x, std::int64_t n, std::int64_t d, const TsneOptions& options)
    : n_(n), d_(d), dim_(options.n_components), options_(options) {
  MMEMBED_CHECK(n >= 4, InvalidArgument, "t-SNE needs at least 4 points (got ", n, ")");
  MMEMBED_CHECK(d >= 1, InvalidArgument, "t-SNE needs at least 1 input dimension (got ", d, ")");
  MMEMBED_CHECK(dim_ >= 1 && dim_ <= 3, InvalidArgument,
                "t-SNE: n_components must be 1, 2 or 3 (got ", dim_, ")");
  const double perp = options.perplexity;
  MMEMBED_CHECK(std::isfinite(perp) && perp >= 1, InvalidArgument, "t-SNE: perplexity ", perp,
                " must be >= 1");
  MMEMBED_CHECK(perp < n - 1, InvalidArgument, "t-SNE: perplexity ", perp, " is too large for ", n,
                " points (needs perplexity < n - 1 = ", n - 1, ")");
  MMEMBED_CHECK(std::isfinite(options.theta) && options.theta >= 0, InvalidArgument,
                "t-SNE: theta must be >= 0 (got ", options.theta, ")");
  MMEMBED_CHECK(options.early_exaggeration_iter >= 0 && options.n_iter >= 0, InvalidArgument,
                "t-SNE: iteration counts must be >= 0 (got early_exaggeration_iter = ",
                options.early_exaggeration_iter, ", n_iter = ", options.n_iter, ")");
  MMEMBED_CHECK(options.early_exaggeration > 0 && options.exaggeration > 0, InvalidArgument,
                "t-SNE: exaggeration factors must be > 0");
  MMEMBED_CHECK(options.metric.metric != kernels::Metric::Dot, InvalidArgument,
                "t-SNE: metric dot is a similarity without a distance; use cosine or euclidean");
  kernels::validate(options.metric);
  if (options.progress) options.progress("affinities", 0, 0);
  search::check_rows(x, n, d, options.metric, "t-SNE input");

  // 1-2. Neighbours and conditional affinities.
  k_ = std::min<std::int64_t>(n - 1, static_cast<std::int64_t>(std::floor(3 * perp)));
  search::KnnOptions knn_opt;
  knn_opt.method = n <= options.exact_knn_max_points ? search::KnnOptions::Method::Exact
                                                     : search::KnnOptions::Method::NNDescent;
  knn_opt.n_neighbors = k_;
  knn_opt.seed = options.seed;
  knn_ = search::make_knn(x, n, d, options.metric, knn_opt);
  const search::KnnGraph graph = knn_->graph(k_);
  std::vector<float> dist(n * k_);
  kernel_distances(options.metric.metric, graph.values.data(), n * k_, dist.data());
  const ConditionalAffinities cond =
      conditional_affinities(dist.data(), n, k_, perp, options.perplexity_tolerance);
  // 3. Joint affinities.
  p_ = joint_affinities(graph.indices.data(), cond);
  p_log_p_ = p_log_p(p_);
  pc_ = std::make_unique<CompactP>(compact(p_));

  // 4. Initialization, first coordinate's standard deviation 1e-4.
  y_.assign(n * dim_, 0.0);
  if (options.init == TsneOptions::Init::Pca && d >= dim_) {
    PcaOptions pca_opt;
    pca_opt.n_components = dim_;
    pca_opt.seed = options.seed;
    const Pca pca = Pca::fit(x, n, d, pca_opt);
    std::vector<float> t(n * dim_);
    pca.transform(x, n, t.data());
    for (std::int64_t e = 0; e < n * dim_; ++e) y_[e] = t[e];
  } else {
    for (std::int64_t e = 0; e < n * dim_; ++e) y_[e] = gaussian(options.seed, e);
  }
  double mean = 0, var = 0;
  for (std::int64_t i = 0; i < n; ++i) mean += y_[i * dim_];
  mean /= n;
  for (std::int64_t i = 0; i < n; ++i) var += (y_[i * dim_] - mean) * (y_[i * dim_] - mean);
  const double sd = std::sqrt(var / n);
  const double scale = sd > 0 ? 1e-4 / sd : 1.0;
  for (double& v : y_) v *= scale;
  if (!(sd > 0)) {  // a constant first principal coordinate: fall back to noise
    for (std::int64_t e = 0; e < n * dim_; ++e) y_[e] = 1e-4 * gaussian(options.seed, e);
  }
  update_.assign(n * dim_, 0.0);
  gains_.assign(n * dim_, 1.0);
  grad_.assign(n * dim_, 0.0);
}

Tsne::~Tsne() = default;
Tsne::Tsne(Tsne&&) noexcept = default;
Tsne& Tsne::operator=(Tsne&&) noexcept = default;

double Tsne::learning_rate(int iteration) const {
  if (options_.learning_rate > 0) return options_.learning_rate;
  const double ex = iteration < options_.early_exaggeration_iter ? options_.early_exaggeration
                                                                 : options_.exaggeration;
  return std::max(static_cast<double>(n_) / ex / 4.0, 50.0);
}

void Tsne::step(double exaggeration, double momentum, double lr, bool eval_kl) {
  by_dim(dim_, [&](auto dd) {
    constexpr int D = decltype(dd)::value;
    Forces f;
    forces_bh<D>(*pc_, y_.data(), exaggeration, options_.theta, eval_kl, f);
    if (eval_kl) history_.push_back({iteration_, kl_from_terms(p_, p_log_p_, f.kl_terms, f.zsum)});
    const double inv_z = 1.0 / f.zsum;
    kernels::parallel_for(n_, kPointGrain, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t e = begin * D; e < end * D; ++e) {
        grad_[e] = 4.0 * (f.attr[e] - f.rep[e] * inv_z);
        descend(y_[e], update_[e], gains_[e], grad_[e], momentum, lr);
      }
    });
    return 0;
  });
  double largest = 0;  // NaN-sticky: std::max would drop a NaN
  for (std::int64_t c = 0; c < dim_; ++c) {
    double mean = 0;
    for (std::int64_t i = 0; i < n_; ++i) mean += y_[i * dim_ + c];
    mean /= static_cast<double>(n_);
    for (std::int64_t i = 0; i < n_; ++i) {
      y_[i * dim_ + c] -= mean;
      const double a = std::fabs(y_[i * dim_ + c]);
      largest = a > largest || std::isnan(a) ? a : largest;
    }
  }
  // A converging map spans ~1e1..1e3; far beyond that (a learning rate such as 1e300) the
  // squared distances overflow and every later value, the KL divergence and the quality
  // metrics of the map are NaN. Stopped here with the reason instead.
  MMEMBED_CHECK(largest <= kDivergedCoordinate, InvalidArgument, "t-SNE diverged at iteration ",
                iteration_ + 1, ": a coordinate reached ", largest, " (learning rate ", lr,
                "); use a smaller learning rate (auto: max(n / exaggeration / 4, 50))");
}

void Tsne::run(int iterations) {
  MMEMBED_CHECK(iterations >= 0, InvalidArgument, "t-SNE: iterations must be >= 0 (got ", iterations, ")");
  for (int t = 0; t < iterations; ++t) {
    const bool early = iteration_ < options_.early_exaggeration_iter;
    const double ex = early ? options_.early_exaggeration : options_.exaggeration;
    const double momentum = early ? options_.initial_momentum : options_.final_momentum;
    const bool eval_kl = options_.kl_every > 0 && iteration_ % options_.kl_every == 0;
    step(ex, momentum, learning_rate(iteration_), eval_kl);
    ++iteration_;
    if (options_.progress) {
      options_.progress("iterations", iteration_,
                        options_.early_exaggeration_iter + options_.n_iter);
    }
  }
}

void Tsne::run() {
  const int total = options_.early_exaggeration_iter + options_.n_iter;
  if (iteration_ < total) run(total - iteration_);
}

double Tsne::kl_divergence(bool* exact) const {
  const bool use_exact = n_ <= options_.exact_kl_max_points;
  if (exact) *exact = use_exact;
  if (use_exact) return kl_divergence_exact(p_, y_.data(), dim_);
  return by_dim(dim_, [&](auto dd) {
    Forces f;
    forces_bh<decltype(dd)::value>(*pc_, y_.data(), 1.0, options_.theta, true, f);
    return kl_from_terms(p_, p_log_p_, f.kl_terms, f.zsum);
  });
}

void Tsne::transform(const float* x_new, std::int64_t m, double* out,
                     const TsneTransformOptions& opt) const {
  MMEMBED_CHECK(m >= 0, InvalidArgument, "t-SNE transform: m must be >= 0 (got ", m, ")");
  if (m == 0) return;
  const double perp = opt.perplexity;
  MMEMBED_CHECK(std::isfinite(perp) && perp >= 1 && perp < n_, InvalidArgument,
                "t-SNE transform: perplexity ", perp, " must be in [1, ", n_,
                ") for a map of ", n_, " points");
  MMEMBED_CHECK(opt.n_iter >= 0 && std::isfinite(opt.theta) && opt.theta >= 0 &&
                    opt.learning_rate > 0 && opt.exaggeration > 0,
                InvalidArgument,
                "t-SNE transform: needs n_iter >= 0, theta >= 0, learning_rate > 0, exaggeration > 0");
  search::check_rows(x_new, m, d_, options_.metric, "t-SNE transform input");
  const std::int64_t k = std::min<std::int64_t>(n_, static_cast<std::int64_t>(std::floor(3 * perp)));
  std::vector<std::int64_t> nb(m * k);
  std::vector<float> values(m * k);
  knn_->search(x_new, m, k, nb.data(), values.data());
  for (std::int64_t e = 0; e < m * k; ++e) MMEMBED_ASSERT(nb[e] >= 0);
  kernel_distances(options_.metric.metric, values.data(), m * k, values.data());
  const ConditionalAffinities cond =
      conditional_affinities(values.data(), m, k, perp, options_.perplexity_tolerance);

  by_dim(dim_, [&](auto dd) {
    constexpr int D = decltype(dd)::value;
    const BhTree<D> tree(y_.data(), n_);
    const double theta2 = opt.theta * opt.theta;
    kernels::parallel_for(m, 16, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) {
        const std::int64_t* nbi = nb.data() + i * k;
        const double* pi = cond.p.data() + i * k;
        double yi[D] = {}, update[D] = {}, gain[D], g[D];
        for (int c = 0; c < D; ++c) gain[c] = 1.0;
        for (std::int64_t r = 0; r < k; ++r) {  // affinity-weighted mean of the neighbours
          for (int c = 0; c < D; ++c) yi[c] += pi[r] * y_[nbi[r] * D + c];
        }
        for (int it = 0; it < opt.n_iter; ++it) {
          double rep[D] = {};
          const double z = tree.repulsion(yi, -1, theta2, rep);
          double a[D] = {};
          for (std::int64_t r = 0; r < k; ++r) {
            double dx[D], d2 = 0;
            for (int c = 0; c < D; ++c) {
              dx[c] = yi[c] - y_[nbi[r] * D + c];
              d2 += dx[c] * dx[c];
            }
            const double pw = pi[r] / (1.0 + d2);
            for (int c = 0; c < D; ++c) a[c] += pw * dx[c];
          }
          double norm2 = 0;
          for (int c = 0; c < D; ++c) {
            g[c] = 4.0 * (opt.exaggeration * a[c] - rep[c] / z);
            norm2 += g[c] * g[c];
          }
          if (opt.max_grad_norm > 0 && norm2 > opt.max_grad_norm * opt.max_grad_norm) {
            const double s = opt.max_grad_norm / std::sqrt(norm2);
            for (int c = 0; c < D; ++c) g[c] *= s;
          }
          for (int c = 0; c < D; ++c) {
            descend(yi[c], update[c], gain[c], g[c], opt.momentum, opt.learning_rate);
          }
        }
        for (int c = 0; c < D; ++c) out[i * D + c] = yi[c];
      }
    });
    return 0;
  });
}

}  // namespace mmembed::reduce
