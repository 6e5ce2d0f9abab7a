#include "reduce/quality.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "kernels/parallel.h"
#include "search/knn.h"

namespace mmembed::reduce {
namespace {

constexpr std::int64_t kRowBlock = 128;

struct Key {
  double key;
  std::int64_t index;
};
bool closer(const Key& a, const Key& b) {
  return a.key < b.key || (a.key == b.key && a.index < b.index);
}

// The kmax nearest of row i (self excluded), closest first.
void nearest(const float* dist, std::int64_t n, std::int64_t i, kernels::Metric m,
             std::int64_t kmax, std::vector<Key>& out) {
  out.clear();
  for (std::int64_t j = 0; j < n; ++j) {
    if (j != i) out.push_back({kernels::closeness_key(m, dist[j]), j});
  }
  std::partial_sort(out.begin(), out.begin() + kmax, out.end(), closer);
  out.resize(kmax);
}

// Rank (1 = nearest, self excluded) of j in row i.
std::int64_t rank_of(const float* dist, std::int64_t n, std::int64_t i, kernels::Metric m,
                     std::int64_t j) {
  const Key target{kernels::closeness_key(m, dist[j]), j};
  std::int64_t r = 1;
  for (std::int64_t l = 0; l < n; ++l) {
    if (l != i && l != j && closer({kernels::closeness_key(m, dist[l]), l}, target)) ++r;
  }
  return r;
}

}  // namespace

std::vector<Quality> neighbourhood_quality(const float* x, std::int64_t n, std::int64_t d,
                                           const float* y, std::int64_t dy,
                                           const QualityOptions& options) {
  kernels::validate(options.metric);
  MMEMBED_CHECK(!options.ks.empty(), InvalidArgument, "quality: no k given");
  std::int64_t kmax = 0;
  for (std::int64_t k : options.ks) {
    MMEMBED_CHECK(k >= 1 && 2 * k < n, InvalidArgument, "quality: k = ", k,
                  " needs 1 <= k < n / 2 (n = ", n, " points)");
    kmax = std::max(kmax, k);
  }
  MMEMBED_CHECK(d >= 1 && dy >= 1, InvalidArgument, "quality: dimensions must be >= 1");
  search::check_rows(x, n, d, options.metric, "quality: input");
  search::check_rows(y, n, dy, {kernels::Metric::Euclidean}, "quality: embedding");

  std::vector<std::int64_t> rows;
  if (options.max_rows > 0 && options.max_rows < n) {
    for (std::int64_t t = 0; t < options.max_rows; ++t) rows.push_back(t * n / options.max_rows);
  } else {
    for (std::int64_t i = 0; i < n; ++i) rows.push_back(i);
  }
  const std::int64_t nr = static_cast<std::int64_t>(rows.size());
  const std::size_t nk = options.ks.size();
  // Per evaluated row and k: trust penalty, continuity penalty, shared neighbours.
  std::vector<double> trust_pen(nr * nk), cont_pen(nr * nk), shared(nr * nk);
  const kernels::Metric mx = options.metric.metric, my = kernels::Metric::Euclidean;
  const kernels::MetricSpec spec_y{my};

  std::vector<float> xb, yb, dx, dyv;
  for (std::int64_t r0 = 0; r0 < nr; r0 += kRowBlock) {
    const std::int64_t br = std::min(kRowBlock, nr - r0);
    xb.resize(br * d);
    yb.resize(br * dy);
    for (std::int64_t t = 0; t < br; ++t) {
      std::copy(x + rows[r0 + t] * d, x + (rows[r0 + t] + 1) * d, xb.begin() + t * d);
      std::copy(y + rows[r0 + t] * dy, y + (rows[r0 + t] + 1) * dy, yb.begin() + t * dy);
    }
    dx.resize(br * n);
    dyv.resize(br * n);
    kernels::pairwise(options.metric, xb.data(), br, x, n, d, dx.data(), n);
    kernels::pairwise(spec_y, yb.data(), br, y, n, dy, dyv.data(), n);
    kernels::parallel_for(br, 1, [&](std::int64_t a, std::int64_t b) {
      std::vector<Key> nx, ny;
      for (std::int64_t t = a; t < b; ++t) {
        const std::int64_t i = rows[r0 + t];
        const float* rx = dx.data() + t * n;
        const float* ry = dyv.data() + t * n;
        nearest(rx, n, i, mx, kmax, nx);
        nearest(ry, n, i, my, kmax, ny);
        for (std::size_t c = 0; c < nk; ++c) {
          const std::int64_t k = options.ks[c];
          auto in_first_k = [k](const std::vector<Key>& v, std::int64_t j) {
            for (std::int64_t s = 0; s < k; ++s) {
              if (v[s].index == j) return true;
            }
            return false;
          };
          double tp = 0, cp = 0, sh = 0;
          for (std::int64_t s = 0; s < k; ++s) {
            const std::int64_t j_emb = ny[s].index, j_in = nx[s].index;
            if (in_first_k(nx, j_emb)) sh += 1;
            else tp += static_cast<double>(rank_of(rx, n, i, mx, j_emb) - k);
            if (!in_first_k(ny, j_in)) cp += static_cast<double>(rank_of(ry, n, i, my, j_in) - k);
          }
          trust_pen[(r0 + t) * nk + c] = tp;
          cont_pen[(r0 + t) * nk + c] = cp;
          shared[(r0 + t) * nk + c] = sh;
        }
      }
    });
  }

  std::vector<Quality> out(nk);
  for (std::size_t c = 0; c < nk; ++c) {
    const double k = static_cast<double>(options.ks[c]);
    double tp = 0, cp = 0, sh = 0;
    for (std::int64_t t = 0; t < nr; ++t) {  // fixed order: independent of the thread count
      tp += trust_pen[t * nk + c];
      cp += cont_pen[t * nk + c];
      sh += shared[t * nk + c];
    }
    // Sums over a subset of rows are scaled to n rows.
    const double scale = static_cast<double>(n) / static_cast<double>(nr);
    const double norm = 2.0 / (static_cast<double>(n) * k * (2.0 * n - 3.0 * k - 1.0));
    out[c].k = options.ks[c];
    out[c].trustworthiness = 1.0 - norm * tp * scale;
    out[c].continuity = 1.0 - norm * cp * scale;
    out[c].knn_preservation = sh / (static_cast<double>(nr) * k);
  }
  return out;
}

}  // namespace mmembed::reduce
