#include "reduce/quality.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "kernels/parallel.h"
#include "kernels/vectorize.h"
#include "search/knn.h"

namespace mmembed::reduce {
namespace {

constexpr std::int64_t kRowBlock = 128;

// A point's place in a row's order: closeness key (the distance, or minus a similarity), then
// the lower index first. Keys are floats scaled by +-1, so the order is the distances' own.
struct Key {
  float key;
  std::int64_t index;
};
bool closer(const Key& a, const Key& b) {
  return a.key < b.key || (a.key == b.key && a.index < b.index);
}

// The kmax nearest of row i (self excluded), closest first: one pass with a max-heap of kmax.
// Blocks of 16 keys none of which can enter the heap (all above its farthest) are skipped by one
// vectorizable test.
void nearest(const float* key, std::int64_t n, std::int64_t i, std::int64_t kmax,
             std::vector<Key>& out) {
  constexpr std::int64_t kBlock = 16;
  out.clear();
  float worst = std::numeric_limits<float>::infinity();  // the heap's farthest key once full
  for (std::int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const std::int64_t j1 = std::min(n, j0 + kBlock);
    bool any = false;
    for (std::int64_t j = j0; j < j1; ++j) any |= key[j] <= worst;
    if (!any) continue;
    for (std::int64_t j = j0; j < j1; ++j) {
      if (j == i) continue;
      const Key c{key[j], j};
      if (static_cast<std::int64_t>(out.size()) < kmax) {
        out.push_back(c);
        std::push_heap(out.begin(), out.end(), closer);
        if (static_cast<std::int64_t>(out.size()) == kmax) worst = out.front().key;
      } else if (closer(c, out.front())) {
        std::pop_heap(out.begin(), out.end(), closer);
        out.back() = c;
        std::push_heap(out.begin(), out.end(), closer);
        worst = out.front().key;
      }
    }
  }
  std::sort_heap(out.begin(), out.end(), closer);
}

// #{l : (key[l], l) < (kt, it)}: keys below kt, and keys equal to kt at a lower index.
// Branch-free loops over the row, which the compiler vectorizes.
MMEMBED_TARGET_CLONES std::int64_t count_before(const float* key, std::int64_t n, float kt,
                                                std::int64_t it) {
  std::int32_t c = 0;  // n < 2^31 (kernels::pairwise's rows)
  for (std::int64_t l = 0; l < it; ++l) c += static_cast<std::int32_t>(key[l] <= kt);
  for (std::int64_t l = it; l < n; ++l) c += static_cast<std::int32_t>(key[l] < kt);
  return c;
}

// ranks[s] = rank of targets[s].index in row i (1 = nearest, self excluded): one vectorized
// count per target over the row's keys.
void ranks_of(const float* key, std::int64_t n, std::int64_t i, const std::vector<Key>& targets,
              std::vector<std::int64_t>& ranks) {
  const std::size_t m = targets.size();
  ranks.resize(m);
  const Key self{key[i], i};
  for (std::size_t s = 0; s < m; ++s) {
    const Key t{key[targets[s].index], targets[s].index};
    ranks[s] = 1 + count_before(key, n, t.key, t.index) - (closer(self, t) ? 1 : 0);
  }
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
  const float sign_x = kernels::higher_is_closer(options.metric.metric) ? -1.0f : 1.0f;
  const kernels::MetricSpec spec_y{kernels::Metric::Euclidean};

  std::vector<float> xb, yb, dx, dyv;
  std::vector<double> x_sq_norms(n);  // once, for every block
  kernels::row_sq_norms(x, n, d, x_sq_norms.data());
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
    kernels::pairwise(options.metric, xb.data(), br, x, n, d, dx.data(), n, x_sq_norms.data());
    kernels::pairwise(spec_y, yb.data(), br, y, n, dy, dyv.data(), n);
    for (std::int64_t t = 0; t < br; ++t) {
      search::check_values(dx.data() + t * n, 1, n, n, options.metric, "quality: input",
                           rows[r0 + t], "input", 0, true);
      search::check_values(dyv.data() + t * n, 1, n, n, spec_y, "quality: embedding",
                           rows[r0 + t], "embedding", 0, true);
    }
    kernels::parallel_for(br, 1, [&](std::int64_t a, std::int64_t b) {
      std::vector<Key> nx, ny;
      std::vector<std::int64_t> rank_x, rank_y;  // ranks in x of ny, in y of nx
      std::vector<float> keys;
      for (std::int64_t t = a; t < b; ++t) {
        const std::int64_t i = rows[r0 + t];
        // Closeness keys: the distance, or minus a similarity (exact, so the same order).
        const float* kx = dx.data() + t * n;
        if (sign_x != 1.0f) {
          keys.resize(n);
          for (std::int64_t l = 0; l < n; ++l) keys[l] = sign_x * kx[l];
          kx = keys.data();
        }
        const float* ky = dyv.data() + t * n;  // Euclidean
        nearest(kx, n, i, kmax, nx);
        nearest(ky, n, i, kmax, ny);
        ranks_of(kx, n, i, ny, rank_x);
        ranks_of(ky, n, i, nx, rank_y);
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
            if (in_first_k(nx, ny[s].index)) sh += 1;
            else tp += static_cast<double>(rank_x[s] - k);
            if (!in_first_k(ny, nx[s].index)) cp += static_cast<double>(rank_y[s] - k);
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

double knn_label_agreement(const float* y, std::int64_t n, std::int64_t dy,
                           const std::vector<std::int64_t>& labels, std::int64_t k) {
  MMEMBED_CHECK(y != nullptr && n >= 2 && dy >= 1, InvalidArgument,
                "kNN label agreement needs at least 2 points of at least 1 dimension");
  MMEMBED_CHECK(static_cast<std::int64_t>(labels.size()) == n, InvalidArgument,
                "kNN label agreement: ", labels.size(), " labels for ", n, " points");
  MMEMBED_CHECK(k >= 1 && k < n, InvalidArgument, "kNN label agreement: k = ", k,
                " must be in [1, ", n - 1, "]");
  for (std::int64_t i = 0; i < n * dy; ++i)
    MMEMBED_CHECK(std::isfinite(y[i]), InvalidArgument, "kNN label agreement: point ", i / dy,
                  " has a non-finite coordinate");
  std::vector<double> share(static_cast<std::size_t>(n), 0.0);
  kernels::parallel_for(n, 16, [&](std::int64_t a, std::int64_t b) {
    std::vector<float> dist(static_cast<std::size_t>(n));
    std::vector<Key> near;
    for (std::int64_t i = a; i < b; ++i) {
      const float* yi = y + i * dy;
      for (std::int64_t j = 0; j < n; ++j) {
        const float* yj = y + j * dy;
        double s = 0;
        for (std::int64_t c = 0; c < dy; ++c) {
          const double diff = double(yi[c]) - double(yj[c]);
          s += diff * diff;
        }
        dist[static_cast<std::size_t>(j)] = static_cast<float>(s);
      }
      nearest(dist.data(), n, i, k, near);
      std::int64_t same = 0;
      const std::int64_t mine = labels[static_cast<std::size_t>(i)];
      for (const Key& e : near) same += labels[static_cast<std::size_t>(e.index)] == mine;
      share[static_cast<std::size_t>(i)] = double(same) / double(k);
    }
  });
  double total = 0;
  for (double v : share) total += v;
  return total / double(n);
}

}  // namespace mmembed::reduce
