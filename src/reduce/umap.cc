#include "reduce/umap.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

#include "core/check.h"
#include "kernels/parallel.h"
#include "reduce/lapack.h"
#include "reduce/pca.h"
#include "reduce/spectra_eigs.h"
#include "reduce/umap_sgd.h"
#include "search/flat_index.h"
#include "search/nn_descent.h"

namespace mmembed::reduce {
namespace {

// ---- random numbers: splitmix64, a pure function of its state, so streams are reproducible ----

using detail::stream_seed;

class Rng {
 public:
  explicit Rng(std::uint64_t state) : state_(state) {}
  std::uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ull;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal() {  // Box-Muller, one value per call
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  std::uint64_t state_;
};

// Streams of the seed: one per purpose, and per (epoch, vertex) in the SGD.
enum Stream : std::uint64_t { kInit = 1, kFitSgd = 2, kTransformSgd = 3 };

bool known_metric(kernels::Metric m) {
  switch (m) {
    case kernels::Metric::Cosine:
    case kernels::Metric::CosineDistance:
    case kernels::Metric::Euclidean:
    case kernels::Metric::SqEuclidean:
    case kernels::Metric::Dot:
    case kernels::Metric::Manhattan:
    case kernels::Metric::Minkowski:
    case kernels::Metric::Chebyshev:
      return true;
  }
  return false;
}

// A kNN value in the metric's units -> a UMAP distance (>= 0, smaller is closer).
float to_distance(kernels::Metric m, float value, float dot_shift) {
  switch (m) {
    case kernels::Metric::Cosine:
      return std::max(0.0f, 1.0f - value);
    case kernels::Metric::Dot:
      return std::max(0.0f, dot_shift - value);
    default:
      return value;
  }
}

// ---- a, b ----

void ab_residuals(const std::vector<double>& xv, const std::vector<double>& yv, double a, double b,
                  std::vector<double>& r, std::vector<double>* ja, std::vector<double>* jb) {
  for (std::size_t i = 0; i < xv.size(); ++i) {
    const double x = xv[i];
    const double u = x > 0 ? std::pow(x, 2 * b) : 0.0;
    const double f = 1.0 / (1.0 + a * u);
    r[i] = f - yv[i];
    if (ja) {
      (*ja)[i] = -u * f * f;
      (*jb)[i] = x > 0 ? -a * u * 2.0 * std::log(x) * f * f : 0.0;
    }
  }
}

double sum_sq(const std::vector<double>& r) {
  double s = 0;
  for (double v : r) s += v * v;
  return s;
}

// ---- graphs ----

struct Triplet {
  std::int64_t row, col;
  float val;
  bool transposed;
};

// w + w^T - w o w^T (mix 1) or w o w^T (mix 0) and the blend between, in float as scipy's float32
// sparse arithmetic: mix * (w + w^T - w o w^T) + (1 - mix) * (w o w^T).
FuzzyGraph fuzzy_union(std::int64_t n, const std::vector<Triplet>& entries, double mix) {
  // Every row gets its own entries and the transposes of the entries naming it (a counting
  // sort by row, serial and in entry order), then each row's list is sorted by (column,
  // transposed) and combined on its own, rows in parallel: the same sums as one global sort.
  std::vector<std::int64_t> start(static_cast<std::size_t>(n + 1), 0);
  for (const Triplet& t : entries) ++start[t.row + 1], ++start[t.col + 1];
  for (std::int64_t r = 0; r < n; ++r) start[r + 1] += start[r];
  std::vector<Triplet> all(static_cast<std::size_t>(start[n]));
  {
    std::vector<std::int64_t> fill(start.begin(), start.end() - 1);
    for (const Triplet& t : entries) {
      all[fill[t.row]++] = t;
      all[fill[t.col]++] = {t.col, t.row, t.val, true};
    }
  }
  const float fmix = static_cast<float>(mix), fkeep = static_cast<float>(1.0 - mix);
  std::vector<std::int64_t> kept(static_cast<std::size_t>(n), 0);  // per row, then written in place
  kernels::parallel_for(n, 1024, [&](std::int64_t a, std::int64_t b) {
    for (std::int64_t r = a; r < b; ++r) {
      const auto first = all.begin() + start[r], last = all.begin() + start[r + 1];
      std::sort(first, last, [](const Triplet& p, const Triplet& q) {
        return p.col != q.col ? p.col < q.col : p.transposed < q.transposed;
      });
      // Combine in place: the row's kept entries go to its front (val = the union's value).
      std::int64_t w = start[r];
      for (std::int64_t i = start[r]; i < start[r + 1];) {
        float wv = 0, wt = 0;
        std::int64_t j = i;
        for (; j < start[r + 1] && all[j].col == all[i].col; ++j) {
          (all[j].transposed ? wt : wv) += all[j].val;
        }
        const float prod = wv * wt;
        const float v = fmix * ((wv + wt) - prod) + fkeep * prod;
        if (v != 0.0f) all[w++] = {r, all[i].col, v, false};
        i = j;
      }
      kept[r] = w - start[r];
    }
  });
  FuzzyGraph g;
  g.n = n;
  g.offsets.assign(n + 1, 0);
  for (std::int64_t r = 0; r < n; ++r) g.offsets[r + 1] = g.offsets[r] + kept[r];
  g.cols.resize(static_cast<std::size_t>(g.offsets[n]));
  g.vals.resize(static_cast<std::size_t>(g.offsets[n]));
  kernels::parallel_for(n, 4096, [&](std::int64_t a, std::int64_t b) {
    for (std::int64_t r = a; r < b; ++r) {
      for (std::int64_t t = 0; t < kept[r]; ++t) {
        g.cols[g.offsets[r] + t] = all[start[r] + t].col;
        g.vals[g.offsets[r] + t] = all[start[r] + t].val;
      }
    }
  });
  return g;
}

// Converts graph values to distances, prepends the point itself at distance 0 (umap-learn's kNN
// lists the point first), and returns (indices, dists) of [n, k + 1].
void with_self(const search::KnnGraph& knn, float dot_shift, std::vector<std::int64_t>& idx,
               std::vector<float>& dist) {
  const std::int64_t n = knn.n, k = knn.k, kk = k + 1;
  idx.assign(n * kk, 0);
  dist.assign(n * kk, 0.0f);
  for (std::int64_t i = 0; i < n; ++i) {
    idx[i * kk] = i;
    for (std::int64_t j = 0; j < k; ++j) {
      idx[i * kk + 1 + j] = knn.neighbours(i)[j];
      dist[i * kk + 1 + j] = to_distance(knn.metric.metric, knn.distances(i)[j], dot_shift);
    }
  }
}

float dot_shift_of(const search::KnnGraph& knn) {
  if (knn.metric.metric != kernels::Metric::Dot) return 0;
  float m = -std::numeric_limits<float>::infinity();
  for (float v : knn.values) m = std::max(m, v);
  return m;
}

float membership(float d, float rho, float sigma) {
  const float x = d - rho;
  if (x <= 0.0f || sigma == 0.0f) return 1.0f;
  return static_cast<float>(std::exp(-(static_cast<double>(x) / static_cast<double>(sigma))));
}

FuzzyGraph build_fuzzy(const search::KnnGraph& knn, float dot_shift, double local_connectivity,
                       double mix) {
  std::vector<std::int64_t> idx;
  std::vector<float> dist;
  with_self(knn, dot_shift, idx, dist);
  const std::int64_t n = knn.n, kk = knn.k + 1;
  std::vector<float> sigmas(n), rhos(n);
  smooth_knn_dist(dist.data(), n, kk, local_connectivity, sigmas.data(), rhos.data());
  std::vector<Triplet> entries;
  entries.reserve(n * knn.k);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < kk; ++j) {
      const std::int64_t c = idx[i * kk + j];
      if (c == i || c < 0) continue;  // the point itself: membership 0, dropped
      const float v = membership(dist[i * kk + j], rhos[i], sigmas[i]);
      if (v != 0.0f) entries.push_back({i, c, v, false});
    }
  }
  FuzzyGraph g = fuzzy_union(n, entries, mix);
  g.sigmas = std::move(sigmas);
  g.rhos = std::move(rhos);
  return g;
}

// Drops the entries below max / n_epochs (umap-learn's pruning before the layout).
void prune(FuzzyGraph& g, int n_epochs) {
  float mx = 0;
  for (float v : g.vals) mx = std::max(mx, v);
  const float threshold = static_cast<float>(static_cast<double>(mx) / n_epochs);
  std::int64_t w = 0;
  std::vector<std::int64_t> offsets(g.n + 1, 0);
  for (std::int64_t r = 0; r < g.n; ++r) {
    for (std::int64_t e = g.offsets[r]; e < g.offsets[r + 1]; ++e) {
      if (g.vals[e] < threshold) continue;
      g.cols[w] = g.cols[e];
      g.vals[w] = g.vals[e];
      ++w;
    }
    offsets[r + 1] = w;
  }
  g.cols.resize(w);
  g.vals.resize(w);
  g.offsets = std::move(offsets);
}

// Connected components, labelled in order of their lowest vertex (as scipy's).
std::int64_t components(const FuzzyGraph& g, std::vector<std::int64_t>& label) {
  label.assign(g.n, -1);
  std::int64_t count = 0;
  std::vector<std::int64_t> stack;
  for (std::int64_t s = 0; s < g.n; ++s) {
    if (label[s] >= 0) continue;
    label[s] = count;
    stack.push_back(s);
    while (!stack.empty()) {
      const std::int64_t v = stack.back();
      stack.pop_back();
      for (std::int64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e) {
        if (label[g.cols[e]] < 0) {
          label[g.cols[e]] = count;
          stack.push_back(g.cols[e]);
        }
      }
    }
    ++count;
  }
  return count;
}

// ---- spectral layout ----

// Graphs (components) of up to this many vertices are solved densely (LAPACK dsyevr), larger
// ones by Lanczos (Spectra).
constexpr std::int64_t kDenseMax = 512;

// The eigenvectors of the 2nd..(dim+1)th smallest eigenvalues of I - D^-1/2 W D^-1/2 of the
// subgraph on `verts` (ascending vertex ids; W symmetric), i.e. of the 2nd..(dim+1)th largest of
// M = D^-1/2 W D^-1/2. out [verts.size(), dim]. False when the eigen-solver fails.
bool spectral_vectors(const FuzzyGraph& g, const std::vector<std::int64_t>& verts, std::int64_t dim,
                      std::vector<double>& out) {
  const std::int64_t m = static_cast<std::int64_t>(verts.size());
  const std::int64_t nev = dim + 1;
  if (m <= nev) return false;
  std::vector<std::int64_t> local(g.n, -1);
  for (std::int64_t i = 0; i < m; ++i) local[verts[i]] = i;
  // Local CSR of M.
  std::vector<std::int64_t> off(m + 1, 0), col;
  std::vector<double> val, inv_sqrt_deg(m);
  for (std::int64_t i = 0; i < m; ++i) {
    double deg = 0;
    const std::int64_t v = verts[i];
    for (std::int64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e) {
      if (local[g.cols[e]] < 0) continue;
      col.push_back(local[g.cols[e]]);
      val.push_back(g.vals[e]);
      deg += g.vals[e];
    }
    off[i + 1] = static_cast<std::int64_t>(col.size());
    inv_sqrt_deg[i] = deg > 0 ? 1.0 / std::sqrt(deg) : 0.0;
  }
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t e = off[i]; e < off[i + 1]; ++e) val[e] *= inv_sqrt_deg[i] * inv_sqrt_deg[col[e]];
  }
  std::vector<double> values(nev), vectors(m * nev);
  if (m <= kDenseMax) {
    std::vector<double> dense(m * m, 0.0);
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t e = off[i]; e < off[i + 1]; ++e) dense[col[e] * m + i] = val[e];
    }
    lapack::symmetric_eigen_largest(m, dense.data(), nev, values.data(), vectors.data());
  } else {
    const std::int64_t ncv = std::min(m, std::max<std::int64_t>(2 * nev + 1,
                                          static_cast<std::int64_t>(std::sqrt(static_cast<double>(m)))));
    auto op = [&](const double* x, double* y) {
      kernels::parallel_for(m, 4096, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) {
          double s = 0;
          for (std::int64_t t = off[i]; t < off[i + 1]; ++t) s += val[t] * x[col[t]];
          y[i] = s;
        }
      });
    };
    if (!spectra_largest(m, nev, ncv, 1e-4, static_cast<int>(std::min<std::int64_t>(m * 5, 1 << 30)),
                         op, values.data(), vectors.data())) {
      return false;
    }
  }
  // Order by eigenvalue, largest first; drop the first (the trivial sqrt(degree) vector).
  std::vector<std::int64_t> order(nev);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t p, std::int64_t q) { return values[p] > values[q]; });
  out.assign(m * dim, 0.0);
  for (std::int64_t c = 0; c < dim; ++c) {
    const double* v = vectors.data() + order[c + 1] * m;
    for (std::int64_t i = 0; i < m; ++i) out[i * dim + c] = v[i];
  }
  for (double v : out) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

// umap-learn's component_layout: centroids of the components in the input space, affinities
// exp(-dist^2), and a spectral embedding of that small dense graph (eigenvectors of the
// normalized affinity divided by sqrt(degree), as sklearn's SpectralEmbedding, oriented so
// that the largest |entry| is positive), scaled to max 1.
std::vector<double> component_layout(const float* x, std::int64_t d, const kernels::MetricSpec& metric,
                                     const std::vector<std::int64_t>& label, std::int64_t nc,
                                     std::int64_t dim) {
  std::vector<float> centroid(nc * d, 0.0f);
  {
    std::vector<double> sum(nc * d, 0.0);
    std::vector<std::int64_t> count(nc, 0);
    for (std::size_t i = 0; i < label.size(); ++i) {
      ++count[label[i]];
      for (std::int64_t c = 0; c < d; ++c) sum[label[i] * d + c] += x[i * d + c];
    }
    for (std::int64_t l = 0; l < nc; ++l) {
      for (std::int64_t c = 0; c < d; ++c) centroid[l * d + c] = static_cast<float>(sum[l * d + c] / count[l]);
    }
  }
  kernels::MetricSpec m = metric;
  if (m.metric == kernels::Metric::Cosine) m.metric = kernels::Metric::CosineDistance;
  if (m.metric == kernels::Metric::Dot) m.metric = kernels::Metric::Euclidean;
  std::vector<double> aff(nc * nc), deg(nc, 0.0);
  for (std::int64_t i = 0; i < nc; ++i) {
    for (std::int64_t j = 0; j < nc; ++j) {
      const double dist = kernels::ref::distance(m, centroid.data() + i * d, centroid.data() + j * d, d);
      aff[i * nc + j] = std::exp(-dist * dist);
    }
  }
  for (std::int64_t i = 0; i < nc; ++i) {
    for (std::int64_t j = 0; j < nc; ++j) deg[i] += aff[i * nc + j];
  }
  std::vector<double> mat(nc * nc);
  for (std::int64_t i = 0; i < nc; ++i) {
    for (std::int64_t j = 0; j < nc; ++j) mat[j * nc + i] = aff[i * nc + j] / std::sqrt(deg[i] * deg[j]);
  }
  std::vector<double> values(dim + 1), vectors(nc * (dim + 1));
  {
    lapack::SingleThreaded single;
    lapack::symmetric_eigen_largest(nc, mat.data(), dim + 1, values.data(), vectors.data());
  }
  std::vector<double> meta(nc * dim);
  for (std::int64_t c = 0; c < dim; ++c) {
    const double* v = vectors.data() + (dim - 1 - c) * nc;  // ascending: skip the largest
    std::int64_t arg = 0;
    for (std::int64_t i = 0; i < nc; ++i) {
      if (std::fabs(v[i] / std::sqrt(deg[i])) > std::fabs(v[arg] / std::sqrt(deg[arg]))) arg = i;
    }
    const double sign = v[arg] < 0 ? -1.0 : 1.0;
    for (std::int64_t i = 0; i < nc; ++i) meta[i * dim + c] = sign * v[i] / std::sqrt(deg[i]);
  }
  const double mx = *std::max_element(meta.begin(), meta.end());
  if (mx > 0) {
    for (double& v : meta) v /= mx;
  }
  return meta;
}

// umap-learn's spectral_layout / multi_component_layout. Returns false when an eigen-solve
// failed for a connected graph (the caller falls back to a random layout).
bool spectral_layout(const FuzzyGraph& g, const float* x, std::int64_t d,
                     const kernels::MetricSpec& metric, std::int64_t dim, Rng& rng,
                     std::vector<double>& out, std::int64_t* n_components) {
  std::vector<std::int64_t> label;
  const std::int64_t nc = components(g, label);
  *n_components = nc;
  // OpenBLAS on one thread for the dense solves of small components (the same bits on any
  // --threads); held here, around the solves that run side by side below.
  lapack::SingleThreaded single;
  if (nc == 1) {
    std::vector<std::int64_t> all(g.n);
    std::iota(all.begin(), all.end(), 0);
    return spectral_vectors(g, all, dim, out);
  }
  std::vector<double> meta;
  if (nc > 2 * dim) {
    meta = component_layout(x, d, metric, label, nc, dim);
  } else {
    const std::int64_t k = (nc + 1) / 2;
    meta.assign(nc * dim, 0.0);
    for (std::int64_t l = 0; l < nc; ++l) meta[l * dim + (l % k)] = l < k ? 1.0 : -1.0;
  }
  out.assign(g.n * dim, 0.0);
  std::vector<std::vector<std::int64_t>> members(nc);
  for (std::int64_t i = 0; i < g.n; ++i) members[label[i]].push_back(i);
  // The components' eigenvectors: the Lanczos solves side by side (each serial; spectra_eigs.h
  // is reentrant), the small dense ones (LAPACK) one after another; then the components placed
  // in order (the random fallback draws in component order).
  auto is_tiny = [&](std::int64_t m) { return m < 2 * dim || m <= dim + 1; };
  std::vector<std::vector<double>> solved(static_cast<std::size_t>(nc));
  std::vector<std::uint8_t> ok(static_cast<std::size_t>(nc), 0);
  auto solve = [&](std::int64_t l) {
    ok[l] = spectral_vectors(g, members[l], dim, solved[l]) ? 1 : 0;
  };
  kernels::parallel_tasks(nc, [&](std::int64_t l) {
    const auto m = static_cast<std::int64_t>(members[l].size());
    if (!is_tiny(m) && m > kDenseMax) solve(l);
  });
  for (std::int64_t l = 0; l < nc; ++l) {
    const auto m = static_cast<std::int64_t>(members[l].size());
    if (!is_tiny(m) && m <= kDenseMax) solve(l);
  }
  for (std::int64_t l = 0; l < nc; ++l) {
    double range = std::numeric_limits<double>::infinity();
    for (std::int64_t o = 0; o < nc; ++o) {
      double s = 0;
      for (std::int64_t c = 0; c < dim; ++c) {
        const double t = meta[l * dim + c] - meta[o * dim + c];
        s += t * t;
      }
      if (s > 0) range = std::min(range, std::sqrt(s));
    }
    range = std::isfinite(range) ? range / 2.0 : 1.0;
    const std::vector<std::int64_t>& verts = members[l];
    const std::int64_t m = static_cast<std::int64_t>(verts.size());
    const std::vector<double>& local = solved[l];
    if (ok[l]) {
      double mx = 0;
      for (double v : local) mx = std::max(mx, std::fabs(v));
      const double scale = mx > 0 ? range / mx : 0.0;
      for (std::int64_t i = 0; i < m; ++i) {
        for (std::int64_t c = 0; c < dim; ++c) out[verts[i] * dim + c] = local[i * dim + c] * scale + meta[l * dim + c];
      }
    } else {
      for (std::int64_t i = 0; i < m; ++i) {
        for (std::int64_t c = 0; c < dim; ++c) out[verts[i] * dim + c] = rng.uniform(-range, range) + meta[l * dim + c];
      }
    }
  }
  return true;
}

// Scale to max |coord| = 10 and add N(0, 1e-4) noise (umap-learn's noisy_scale_coords).
void noisy_scale(std::vector<double>& coords, Rng& rng, std::vector<float>& out) {
  double mx = 0;
  for (double v : coords) mx = std::max(mx, std::fabs(v));
  const double expansion = mx > 0 ? 10.0 / mx : 1.0;
  out.resize(coords.size());
  for (std::size_t i = 0; i < coords.size(); ++i) {
    out[i] = static_cast<float>(coords[i] * expansion) + static_cast<float>(rng.normal() * 1e-4);
  }
}

void check_options(const UmapOptions& o) {
  MMEMBED_CHECK(o.n_components >= 1, InvalidArgument, "UMAP n_components must be >= 1 (got ",
                o.n_components, ")");
  MMEMBED_CHECK(o.n_neighbors >= 2, InvalidArgument, "UMAP n_neighbors must be >= 2 (got ",
                o.n_neighbors, ")");
  MMEMBED_CHECK(std::isfinite(o.spread) && o.spread > 0, InvalidArgument,
                "UMAP spread must be > 0 (got ", o.spread, ")");
  MMEMBED_CHECK(std::isfinite(o.min_dist) && o.min_dist >= 0, InvalidArgument,
                "UMAP min_dist must be >= 0 (got ", o.min_dist, ")");
  MMEMBED_CHECK(o.min_dist <= o.spread, InvalidArgument, "UMAP min_dist (", o.min_dist,
                ") must not exceed spread (", o.spread, ")");
  MMEMBED_CHECK(o.n_epochs >= 0, InvalidArgument, "UMAP n_epochs must be >= 0 (got ", o.n_epochs,
                "; 0 picks 500 or 200)");
  MMEMBED_CHECK(std::isfinite(o.learning_rate) && o.learning_rate > 0, InvalidArgument,
                "UMAP learning_rate must be > 0 (got ", o.learning_rate, ")");
  MMEMBED_CHECK(o.negative_sample_rate >= 0, InvalidArgument,
                "UMAP negative_sample_rate must be >= 0 (got ", o.negative_sample_rate, ")");
  MMEMBED_CHECK(static_cast<double>(std::max(o.negative_sample_rate, 1)) * o.n_epochs < 536870912.0,
                InvalidArgument, "UMAP n_epochs x max(negative_sample_rate, 1) must be below 2^29 (got ",
                o.n_epochs, " x ", o.negative_sample_rate, ")");
  MMEMBED_CHECK(std::isfinite(o.repulsion_strength) && o.repulsion_strength >= 0, InvalidArgument,
                "UMAP repulsion_strength must be >= 0 (got ", o.repulsion_strength, ")");
  MMEMBED_CHECK(std::isfinite(o.local_connectivity) && o.local_connectivity >= 0, InvalidArgument,
                "UMAP local_connectivity must be >= 0 (got ", o.local_connectivity, ")");
  MMEMBED_CHECK(o.set_op_mix_ratio >= 0 && o.set_op_mix_ratio <= 1, InvalidArgument,
                "UMAP set_op_mix_ratio must be in [0, 1] (got ", o.set_op_mix_ratio, ")");
  MMEMBED_CHECK(known_metric(o.metric.metric), InvalidArgument, "UMAP: unknown metric (enum value ",
                static_cast<int>(o.metric.metric), ")");
  kernels::validate(o.metric);
  MMEMBED_CHECK((o.a > 0) == (o.b > 0) && o.a >= 0 && o.b >= 0, InvalidArgument,
                "UMAP a and b must both be > 0 (given) or both 0 (fitted); got a ", o.a, ", b ", o.b);
}

}  // namespace

UmapCurve find_ab_params(double spread, double min_dist) {
  MMEMBED_CHECK(std::isfinite(spread) && spread > 0, InvalidArgument, "UMAP spread must be > 0 (got ",
                spread, ")");
  MMEMBED_CHECK(std::isfinite(min_dist) && min_dist >= 0, InvalidArgument,
                "UMAP min_dist must be >= 0 (got ", min_dist, ")");
  MMEMBED_CHECK(min_dist <= spread, InvalidArgument, "UMAP min_dist (", min_dist,
                ") must not exceed spread (", spread, ")");
  constexpr int kPoints = 300;
  std::vector<double> xv(kPoints), yv(kPoints);
  for (int i = 0; i < kPoints; ++i) {
    xv[i] = spread * 3.0 * i / (kPoints - 1);  // numpy.linspace(0, 3 spread, 300)
    yv[i] = xv[i] < min_dist ? 1.0 : std::exp(-(xv[i] - min_dist) / spread);
  }
  // Levenberg-Marquardt from (1, 1), as scipy's curve_fit default start, on the 2 x 2 normal
  // equations with Marquardt's diagonal scaling.
  double a = 1.0, b = 1.0, lambda = 1e-3;
  std::vector<double> r(kPoints), ja(kPoints), jb(kPoints), r_try(kPoints);
  ab_residuals(xv, yv, a, b, r, &ja, &jb);
  double cost = sum_sq(r);
  for (int iter = 0; iter < 500; ++iter) {
    double haa = 0, hab = 0, hbb = 0, ga = 0, gb = 0;
    for (int i = 0; i < kPoints; ++i) {
      haa += ja[i] * ja[i];
      hab += ja[i] * jb[i];
      hbb += jb[i] * jb[i];
      ga += ja[i] * r[i];
      gb += jb[i] * r[i];
    }
    bool improved = false;
    for (int tries = 0; tries < 60 && !improved; ++tries) {
      const double A = haa * (1 + lambda), B = hbb * (1 + lambda), det = A * B - hab * hab;
      if (!(det > 0)) {
        lambda *= 10;
        continue;
      }
      const double da = -(B * ga - hab * gb) / det, db = -(A * gb - hab * ga) / det;
      const double na = a + da, nb = b + db;
      if (na > 0 && nb > 0) {
        ab_residuals(xv, yv, na, nb, r_try, nullptr, nullptr);
        const double c = sum_sq(r_try);
        if (c <= cost) {
          const double rel = (cost - c) / std::max(cost, 1e-300);
          const double step = std::fabs(da) / (std::fabs(a) + 1e-12) + std::fabs(db) / (std::fabs(b) + 1e-12);
          a = na;
          b = nb;
          cost = c;
          lambda = std::max(lambda / 10, 1e-12);
          improved = true;
          ab_residuals(xv, yv, a, b, r, &ja, &jb);
          if (rel < 1e-15 && step < 1e-12) return {a, b};
          continue;
        }
      }
      lambda *= 10;
    }
    if (!improved) break;
  }
  return {a, b};
}

void smooth_knn_dist(const float* dists, std::int64_t n, std::int64_t k, double local_connectivity,
                     float* sigmas, float* rhos) {
  constexpr double kTolerance = 1e-5, kMinScale = 1e-3;
  constexpr int kIterations = 64;
  const double target = std::log2(static_cast<double>(k));
  double total = 0;
  for (std::int64_t i = 0; i < n * k; ++i) total += dists[i];
  const double mean_all = n * k > 0 ? total / static_cast<double>(n * k) : 0.0;
  // The search for sigma starts at 1 and doubles or halves: 64 steps reach 2^+-64 only, so
  // distances of ~1e20 or ~1e-25 got a wrong sigma (issue #18). Far from 1, it starts at the
  // power of 2 of the mean distance instead: then every step is the unscaled one times that
  // power (exact), and the fuzzy set does not depend on the input's scale.
  const double start = mean_all > 0 && (mean_all < 0x1p-20 || mean_all > 0x1p20)
                           ? std::ldexp(1.0, std::ilogb(mean_all))
                           : 1.0;
  kernels::parallel_for(n, 256, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> nonzero;
    for (std::int64_t i = begin; i < end; ++i) {
      const float* row = dists + i * k;
      nonzero.clear();
      for (std::int64_t j = 0; j < k; ++j) {
        if (row[j] > 0.0f) nonzero.push_back(row[j]);
      }
      float rho = 0.0f;
      if (static_cast<double>(nonzero.size()) >= local_connectivity) {
        const std::int64_t index = static_cast<std::int64_t>(std::floor(local_connectivity));
        const double interpolation = local_connectivity - static_cast<double>(index);
        if (index > 0) {
          double r = nonzero[index - 1];
          if (interpolation > kTolerance) r += interpolation * (nonzero[index] - nonzero[index - 1]);
          rho = static_cast<float>(r);
        } else {
          rho = static_cast<float>(interpolation * nonzero[0]);
        }
      } else if (!nonzero.empty()) {
        rho = *std::max_element(nonzero.begin(), nonzero.end());
      }
      double lo = 0.0, hi = std::numeric_limits<double>::infinity(), mid = start;
      for (int it = 0; it < kIterations; ++it) {
        double psum = 0.0;
        for (std::int64_t j = 1; j < k; ++j) {
          const double dd = static_cast<double>(row[j] - rho);
          psum += dd > 0 ? std::exp(-(dd / mid)) : 1.0;
        }
        if (std::fabs(psum - target) < kTolerance) break;
        if (psum > target) {
          hi = mid;
          mid = (lo + hi) / 2.0;
        } else {
          lo = mid;
          mid = std::isinf(hi) ? mid * 2 : (lo + hi) / 2.0;
        }
      }
      float sigma = static_cast<float>(mid);
      if (rho > 0.0f) {
        double s = 0;
        for (std::int64_t j = 0; j < k; ++j) s += row[j];
        const double floor_ = kMinScale * (s / static_cast<double>(k));
        if (sigma < floor_) sigma = static_cast<float>(floor_);
      } else if (sigma < kMinScale * mean_all) {
        sigma = static_cast<float>(kMinScale * mean_all);
      }
      sigmas[i] = sigma;
      rhos[i] = rho;
    }
  });
}

FuzzyGraph fuzzy_simplicial_set(const search::KnnGraph& knn, double local_connectivity,
                                double set_op_mix_ratio) {
  MMEMBED_CHECK(knn.k >= 1 && knn.n > knn.k, InvalidArgument, "UMAP: the kNN graph needs 1 <= k < n (k ",
                knn.k, ", n ", knn.n, ")");
  return build_fuzzy(knn, dot_shift_of(knn), local_connectivity, set_op_mix_ratio);
}

Umap Umap::fit(const float* x, std::int64_t n, std::int64_t d, const UmapOptions& options) {
  check_options(options);
  MMEMBED_CHECK(d >= 1, InvalidArgument, "UMAP input has no columns");
  MMEMBED_CHECK(n > options.n_neighbors, InvalidArgument, "UMAP needs more points than n_neighbors (",
                options.n_neighbors, "): the input has ", n, " point(s)");
  MMEMBED_CHECK(options.init != UmapOptions::Init::Pca || d >= options.n_components, InvalidArgument,
                "UMAP init pca needs at least n_components (", options.n_components,
                ") input dimensions (got ", d, ")");
  search::check_rows(x, n, d, options.metric, "UMAP input");

  Umap u;
  u.n_ = n;
  u.dim_ = d;
  u.options_ = options;
  u.curve_ = options.a > 0 ? UmapCurve{options.a, options.b} : find_ab_params(options.spread, options.min_dist);
  u.n_epochs_ = options.n_epochs > 0 ? options.n_epochs : (n <= 10000 ? 500 : 200);
  using Clock = std::chrono::steady_clock;
  Clock::time_point mark = Clock::now();
  auto lap = [&mark] {
    const Clock::time_point now = Clock::now();
    const double s = std::chrono::duration<double>(now - mark).count();
    mark = now;
    return s;
  };

  const auto report = [&](std::string_view phase, std::int64_t done, std::int64_t total) {
    if (options.progress) options.progress(phase, done, total);
  };
  // 1-3: kNN graph and fuzzy simplicial set.
  report("knn", 0, 0);
  search::KnnOptions knn_opt;
  knn_opt.n_neighbors = options.n_neighbors - 1;
  knn_opt.exact_max_points = options.exact_max_points;
  knn_opt.seed = options.seed;
  u.exact_ = n <= options.exact_max_points;
  search::KnnGraph knn;
  if (u.exact_) {
    u.knn_ = search::make_knn(x, n, d, options.metric, knn_opt);
    knn = u.knn_->graph(options.n_neighbors - 1);
  } else {
    // search/nn_descent.h: the graph alone (no index kept); transform() searches new points
    // exactly.
    search::NNDescentOptions nn_opt;
    nn_opt.n_neighbors = options.n_neighbors - 1;
    nn_opt.seed = options.seed;
    knn = search::nn_descent_graph(x, n, d, options.metric, nn_opt);
    auto flat = std::make_shared<search::FlatIndex>(d, options.metric);
    flat->add(x, n);
    u.knn_ = std::move(flat);
  }
  u.timings_.knn = lap();
  report("graph", 0, 0);
  u.dot_shift_ = dot_shift_of(knn);
  FuzzyGraph g = build_fuzzy(knn, u.dot_shift_, options.local_connectivity, options.set_op_mix_ratio);
  const int default_epochs = n <= 10000 ? 500 : 200;
  prune(g, u.n_epochs_ > 10 ? u.n_epochs_ : default_epochs);
  u.timings_.graph = lap();
  report("init", 0, 0);

  // 5: initial layout.
  const std::int64_t dim = options.n_components;
  Rng init_rng(stream_seed(options.seed, kInit, 0, 0));
  std::vector<float> y;
  bool random = options.init == UmapOptions::Init::Random;
  if (options.init == UmapOptions::Init::Spectral) {
    std::vector<double> coords;
    if (spectral_layout(g, x, d, options.metric, dim, init_rng, coords, &u.graph_components_)) {
      noisy_scale(coords, init_rng, y);
    } else {
      u.spectral_fallback_ = true;
      random = true;
    }
  } else if (options.init == UmapOptions::Init::Pca) {
    PcaOptions pca_opt;
    pca_opt.n_components = dim;
    pca_opt.seed = options.seed;
    const Pca pca = Pca::fit(x, n, d, pca_opt);
    std::vector<float> t(n * dim);
    pca.transform(x, n, t.data());
    std::vector<double> coords(t.begin(), t.end());
    noisy_scale(coords, init_rng, y);
  }
  if (random) {
    y.resize(n * dim);
    for (float& v : y) v = static_cast<float>(init_rng.uniform(-10.0, 10.0));
  }
  // Each axis to [0, 10].
  for (std::int64_t c = 0; c < dim; ++c) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (std::int64_t i = 0; i < n; ++i) {
      lo = std::min(lo, y[i * dim + c]);
      hi = std::max(hi, y[i * dim + c]);
    }
    const float range = hi - lo;
    for (std::int64_t i = 0; i < n; ++i) {
      y[i * dim + c] = range > 0 ? 10.0f * (y[i * dim + c] - lo) / range : 0.0f;
    }
  }

  u.timings_.init = lap();

  // 6: SGD.
  detail::SgdSchedule sched(g.vals, options.negative_sample_rate, u.n_epochs_);
  detail::SgdProblem p;
  p.n_heads = n;
  p.offsets = g.offsets.data();
  p.tails = g.cols.data();
  p.head = y.data();
  p.n_tail = n;
  p.dim = dim;
  p.a = static_cast<float>(u.curve_.a);
  p.b = static_cast<float>(u.curve_.b);
  p.gamma = static_cast<float>(options.repulsion_strength);
  p.attract_scale = 2.0f;
  p.learning_rate = options.learning_rate;
  p.n_epochs = u.n_epochs_;
  p.seed = options.seed;
  p.stream = kFitSgd;
  report("epochs", 0, u.n_epochs_);
  const std::function<void(int)> after_epoch = [&](int done) {
    report("epochs", done, u.n_epochs_);
  };
  if (options.progress) p.after_epoch = &after_epoch;
  detail::optimize_layout(p, sched);
  u.timings_.sgd = lap();

  u.graph_ = std::move(g);
  u.embedding_ = std::move(y);
  return u;
}

void Umap::transform(const float* x, std::int64_t m, float* out) const {
  if (m == 0) return;
  MMEMBED_ASSERT(knn_ != nullptr);
  search::check_rows(x, m, dim_, options_.metric, "UMAP transform input");
  const std::int64_t k = options_.n_neighbors, dim = options_.n_components;
  std::vector<std::int64_t> idx(m * k);
  std::vector<float> vals(m * k);
  knn_->search(x, m, k, idx.data(), vals.data());
  for (float& v : vals) v = to_distance(options_.metric.metric, v, dot_shift_);
  std::vector<float> sigmas(m), rhos(m);
  smooth_knn_dist(vals.data(), m, k, std::max(0.0, options_.local_connectivity - 1.0), sigmas.data(),
                  rhos.data());
  std::vector<float> w(m * k);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < k; ++j) w[i * k + j] = membership(vals[i * k + j], rhos[i], sigmas[i]);
  }
  // Initial positions: membership-weighted means of the neighbours' coordinates.
  for (std::int64_t i = 0; i < m; ++i) {
    double total = 0;
    for (std::int64_t j = 0; j < k; ++j) total += w[i * k + j];
    for (std::int64_t c = 0; c < dim; ++c) {
      double s = 0;
      for (std::int64_t j = 0; j < k; ++j) {
        const double wj = total > 0 ? w[i * k + j] / total : 1.0 / k;
        s += wj * embedding_[idx[i * k + j] * dim + c];
      }
      out[i * dim + c] = static_cast<float>(s);
    }
  }
  const int epochs = options_.n_epochs > 0 ? std::max(1, options_.n_epochs / 3) : (m <= 10000 ? 100 : 30);
  float mx = 0;
  for (float v : w) mx = std::max(mx, v);
  const float threshold = static_cast<float>(static_cast<double>(mx) / epochs);
  std::vector<std::int64_t> offsets(m + 1, 0), tails;
  std::vector<float> kept;
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < k; ++j) {
      if (w[i * k + j] < threshold || w[i * k + j] == 0.0f) continue;
      tails.push_back(idx[i * k + j]);
      kept.push_back(w[i * k + j]);
    }
    offsets[i + 1] = static_cast<std::int64_t>(tails.size());
  }
  if (kept.empty()) return;
  detail::SgdSchedule sched(kept, options_.negative_sample_rate, epochs);
  detail::SgdProblem p;
  p.n_heads = m;
  p.offsets = offsets.data();
  p.tails = tails.data();
  p.head = out;
  p.tail_fixed = embedding_.data();
  p.n_tail = n_;
  p.dim = dim;
  p.a = static_cast<float>(curve_.a);
  p.b = static_cast<float>(curve_.b);
  p.gamma = static_cast<float>(options_.repulsion_strength);
  p.attract_scale = 1.0f;
  p.learning_rate = options_.learning_rate / 4.0;
  p.n_epochs = epochs;
  p.seed = options_.seed;
  p.stream = kTransformSgd;
  detail::optimize_layout(p, sched);
}

double silhouette_score(const float* y, std::int64_t n, std::int64_t dy,
                        const std::vector<std::int64_t>& labels) {
  MMEMBED_CHECK(static_cast<std::int64_t>(labels.size()) == n, InvalidArgument, "silhouette: ",
                labels.size(), " labels for ", n, " points");
  std::vector<std::int64_t> ids(labels);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const std::int64_t nl = static_cast<std::int64_t>(ids.size());
  MMEMBED_CHECK(nl >= 2 && nl < n, InvalidArgument, "silhouette needs 2 <= labels < points (",
                nl, " labels, ", n, " points)");
  std::vector<std::int64_t> lab(n), size(nl, 0);
  for (std::int64_t i = 0; i < n; ++i) {
    lab[i] = std::lower_bound(ids.begin(), ids.end(), labels[i]) - ids.begin();
    ++size[lab[i]];
  }
  std::vector<double> s(n, 0.0);
  kernels::parallel_for(n, 64, [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> sum(nl);
    for (std::int64_t i = begin; i < end; ++i) {
      std::fill(sum.begin(), sum.end(), 0.0);
      for (std::int64_t j = 0; j < n; ++j) {
        double t = 0;
        for (std::int64_t c = 0; c < dy; ++c) {
          const double u = static_cast<double>(y[i * dy + c]) - y[j * dy + c];
          t += u * u;
        }
        sum[lab[j]] += std::sqrt(t);
      }
      if (size[lab[i]] <= 1) continue;
      const double a = sum[lab[i]] / static_cast<double>(size[lab[i]] - 1);
      double b = std::numeric_limits<double>::infinity();
      for (std::int64_t l = 0; l < nl; ++l) {
        if (l != lab[i]) b = std::min(b, sum[l] / static_cast<double>(size[l]));
      }
      const double den = std::max(a, b);
      s[i] = den > 0 ? (b - a) / den : 0.0;
    }
  });
  double total = 0;
  for (double v : s) total += v;
  return total / static_cast<double>(n);
}

}  // namespace mmembed::reduce
