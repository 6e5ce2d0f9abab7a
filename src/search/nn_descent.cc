#include "search/nn_descent.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <utility>

#include "core/check.h"
#include "kernels/parallel.h"
#include "kernels/vectorize.h"
#include "search/top_k.h"

namespace mmembed::search {
namespace {

// Points whose candidates meet in one step; their proposals are applied together. Fixed, so the
// schedule (and the result) does not depend on the thread count.
constexpr std::int64_t kJoinBlock = 2048;
constexpr std::uint64_t kInitStream = 0x756d6170;
constexpr std::uint64_t kEntryStream = 0xe7e7;
constexpr int kDistLanes = 16;

std::uint64_t mix(std::uint64_t z) {  // splitmix64's finalizer
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
std::uint64_t hash(std::uint64_t seed, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  return mix(mix(mix(seed ^ a) ^ b) ^ c);
}

// The metrics whose join runs on squared float32 distances (of unit rows for the cosine ones).
bool squared_l2_keys(kernels::Metric m) {
  return m == kernels::Metric::Euclidean || m == kernels::Metric::SqEuclidean ||
         m == kernels::Metric::Cosine || m == kernels::Metric::CosineDistance;
}

// Squared Euclidean distance in float over kDistLanes accumulators (a fixed summation order).
[[gnu::always_inline]] inline float sq_dist(const float* a, const float* b, std::int64_t d) {
  float acc[kDistLanes] = {};
  std::int64_t i = 0;
  for (; i + kDistLanes <= d; i += kDistLanes) {
    for (int l = 0; l < kDistLanes; ++l) {
      const float t = a[i + l] - b[i + l];
      acc[l] += t * t;
    }
  }
  for (int l = 0; i < d; ++i, ++l) {
    const float t = a[i] - b[i];
    acc[l] += t * t;
  }
  float s = 0.0f;
  for (int l = 0; l < kDistLanes; ++l) s += acc[l];
  return s;
}

// sq_dist of row a to the four rows b0..b3 at once (a is loaded once for all four: the join is
// bound by loads from L2, not by arithmetic). Each result is the same bits as sq_dist(a, bk, d).
[[gnu::always_inline]] inline void sq_dist4(const float* a, const float* b0, const float* b1,
                                            const float* b2, const float* b3, std::int64_t d,
                                            float* out) {
  float acc0[kDistLanes] = {}, acc1[kDistLanes] = {}, acc2[kDistLanes] = {}, acc3[kDistLanes] = {};
  std::int64_t i = 0;
  for (; i + kDistLanes <= d; i += kDistLanes) {
    for (int l = 0; l < kDistLanes; ++l) {
      const float av = a[i + l];
      const float t0 = av - b0[i + l], t1 = av - b1[i + l], t2 = av - b2[i + l], t3 = av - b3[i + l];
      acc0[l] += t0 * t0;
      acc1[l] += t1 * t1;
      acc2[l] += t2 * t2;
      acc3[l] += t3 * t3;
    }
  }
  for (int l = 0; i < d; ++i, ++l) {
    const float av = a[i];
    const float t0 = av - b0[i], t1 = av - b1[i], t2 = av - b2[i], t3 = av - b3[i];
    acc0[l] += t0 * t0;
    acc1[l] += t1 * t1;
    acc2[l] += t2 * t2;
    acc3[l] += t3 * t3;
  }
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  for (int l = 0; l < kDistLanes; ++l) s0 += acc0[l], s1 += acc1[l], s2 += acc2[l], s3 += acc3[l];
  out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

// Squared distances of row p to rows js[0..m), four partners at a time.
MMEMBED_TARGET_CLONES void sq_dists_to(const float* X, std::int64_t d, std::int32_t p,
                                       const std::int32_t* js, std::int64_t m, float* out) {
  auto row = [&](std::int32_t i) { return X + static_cast<std::int64_t>(i) * d; };
  const float* a = row(p);
  std::int64_t r = 0;
  for (; r + 4 <= m; r += 4) sq_dist4(a, row(js[r]), row(js[r + 1]), row(js[r + 2]), row(js[r + 3]), d, out + r);
  for (; r < m; ++r) out[r] = sq_dist(a, row(js[r]), d);
}

// The rows the join reads and how it turns a pair into a key (smaller is closer).
struct JoinKeys {
  const float* X;  // x, or its unit rows for the cosine metrics
  std::int64_t d;
  bool squared_l2;            // keys are sq_dist of rows of X
  kernels::MetricSpec metric; // else closeness_key(metric, kernels::distance(metric, ...))

  // Keys of row p to rows js[0..m).
  void to(std::int32_t p, const std::int32_t* js, std::int64_t m, float* out) const {
    if (squared_l2) {
      sq_dists_to(X, d, p, js, m, out);
      return;
    }
    const float* a = X + static_cast<std::int64_t>(p) * d;
    for (std::int64_t r = 0; r < m; ++r) {
      const float v = kernels::distance(metric, a, X + static_cast<std::int64_t>(js[r]) * d, d);
      out[r] = static_cast<float>(kernels::closeness_key(metric.metric, v));
    }
  }
};

// A neighbour list entry order: smaller key, then smaller index.
inline bool closer_entry(float ka, std::int32_t ia, float kb, std::int32_t ib) {
  return ka < kb || (ka == kb && ia < ib);
}

struct Proposal {
  std::int32_t target;
  std::int32_t source;
  float key;
};
bool proposal_less(const Proposal& a, const Proposal& b) {
  if (a.target != b.target) return a.target < b.target;
  if (a.key != b.key) return a.key < b.key;
  return a.source < b.source;
}

// Keeps the `limit` entries of v with the smallest hash(seed, round, owner, entry).
void sample(std::vector<std::int32_t>& v, std::size_t limit, std::uint64_t seed, int round,
            std::int64_t owner) {
  if (v.size() <= limit) return;
  auto prio = [&](std::int32_t e) {
    return hash(seed, static_cast<std::uint64_t>(round), static_cast<std::uint64_t>(owner),
                static_cast<std::uint64_t>(e));
  };
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(limit), v.end(),
                   [&](std::int32_t a, std::int32_t b) {
                     const auto pa = prio(a), pb = prio(b);
                     return pa < pb || (pa == pb && a < b);
                   });
  v.resize(limit);
}

struct Graph {
  std::int64_t k = 0;
  std::vector<std::int32_t> idx;  // [n, k], by (key, index)
  std::vector<float> key;         // [n, k]
  float worst_key(std::int64_t p) const { return key[p * k + k - 1]; }
  std::int32_t worst_idx(std::int64_t p) const { return idx[p * k + k - 1]; }
};

// The local joins of points [a, b) of the block starting at v0: every new-new and new-old
// candidate pair of a point, proposed to both ends where closer than their current worst.
void join_range(const JoinKeys& keys, const Graph& g,
                const std::vector<std::vector<std::int32_t>>& new_c,
                const std::vector<std::vector<std::int32_t>>& old_c, std::int64_t v0,
                std::int64_t a, std::int64_t b, std::vector<std::vector<Proposal>>& found) {
  std::vector<std::int32_t> partners;
  std::vector<float> dist;
  for (std::int64_t t = a; t < b; ++t) {
    const std::int64_t v = v0 + t;
    auto& out = found[t];
    out.clear();
    const auto& nw = new_c[v];
    const auto& od = old_c[v];
    for (std::size_t x = 0; x < nw.size(); ++x) {
      const std::int32_t p = nw[x];
      partners.clear();
      for (std::size_t y = x + 1; y < nw.size(); ++y) partners.push_back(nw[y]);
      for (std::int32_t o : od) {
        if (o != p) partners.push_back(o);
      }
      const std::size_t m = partners.size();
      dist.resize(m);
      keys.to(p, partners.data(), static_cast<std::int64_t>(m), dist.data());
      for (std::size_t j = 0; j < m; ++j) {
        const std::int32_t q = partners[j];
        const float k = dist[j];
        if (closer_entry(k, q, g.worst_key(p), g.worst_idx(p))) out.push_back({p, q, k});
        if (closer_entry(k, p, g.worst_key(q), g.worst_idx(q))) out.push_back({q, p, k});
      }
    }
  }
}

}  // namespace

KnnGraph nn_descent_graph(const float* x, std::int64_t n, std::int64_t d,
                          const kernels::MetricSpec& metric, const NNDescentOptions& options,
                          int* rounds_out) {
  kernels::validate(metric);
  const std::int64_t K = options.n_neighbors;
  MMEMBED_CHECK(d >= 1, InvalidArgument, "NN-descent: dimension must be >= 1 (got ", d, ")");
  MMEMBED_CHECK(K >= 1 && K < n, InvalidArgument,
                "NN-descent: need 1 <= n_neighbors < number of points (n_neighbors ", K, ", ", n,
                " points)");
  MMEMBED_CHECK(n < (std::int64_t{1} << 31), InvalidArgument, "NN-descent: ", n,
                " points is more than its 32-bit indices hold");
  MMEMBED_CHECK(options.max_rounds >= 0 && options.max_candidates >= 0, InvalidArgument,
                "NN-descent: max_rounds and max_candidates must be >= 0");
  check_rows(x, n, d, metric, "NN-descent: input");
  const std::size_t S = static_cast<std::size_t>(
      options.max_candidates > 0 ? options.max_candidates : std::max<std::int64_t>(K, 20));
  const std::uint64_t seed = options.seed;

  JoinKeys keys{x, d, squared_l2_keys(metric.metric), metric};
  // Cosine metrics: unit rows, whose squared distances 2 - 2 cos order as the cosine distance.
  std::vector<float> unit;
  if (metric.metric == kernels::Metric::Cosine || metric.metric == kernels::Metric::CosineDistance) {
    unit.resize(static_cast<std::size_t>(n * d));
    kernels::parallel_for(n, 256, [&](std::int64_t a, std::int64_t b) {
      for (std::int64_t i = a; i < b; ++i) {
        double s = 0;
        for (std::int64_t c = 0; c < d; ++c) s += static_cast<double>(x[i * d + c]) * x[i * d + c];
        const double inv = 1.0 / std::sqrt(s);
        for (std::int64_t c = 0; c < d; ++c) unit[i * d + c] = static_cast<float>(x[i * d + c] * inv);
      }
    });
    keys.X = unit.data();
  }

  Graph g;
  g.k = K;
  g.idx.assign(n * K, -1);
  g.key.assign(n * K, 0.0f);
  std::vector<std::uint8_t> is_new(n * K, 1);

  // Random initial neighbours, sorted by (key, index).
  kernels::parallel_for(n, 64, [&](std::int64_t a, std::int64_t b) {
    std::vector<std::int32_t> js;
    std::vector<float> ks;
    std::vector<std::int64_t> order;
    for (std::int64_t i = a; i < b; ++i) {
      js.clear();
      for (std::uint64_t t = 0; static_cast<std::int64_t>(js.size()) < K; ++t) {
        std::int64_t j = static_cast<std::int64_t>(hash(seed, kInitStream, i, t) % static_cast<std::uint64_t>(n - 1));
        if (j >= i) ++j;
        if (std::find(js.begin(), js.end(), static_cast<std::int32_t>(j)) == js.end()) {
          js.push_back(static_cast<std::int32_t>(j));
        }
      }
      ks.resize(js.size());
      keys.to(static_cast<std::int32_t>(i), js.data(), K, ks.data());
      order.resize(K);
      for (std::int64_t r = 0; r < K; ++r) order[r] = r;
      std::sort(order.begin(), order.end(), [&](std::int64_t p, std::int64_t q) {
        return closer_entry(ks[p], js[p], ks[q], js[q]);
      });
      for (std::int64_t r = 0; r < K; ++r) {
        g.idx[i * K + r] = js[order[r]];
        g.key[i * K + r] = ks[order[r]];
      }
    }
  });

  std::vector<std::vector<std::int32_t>> new_c(n), old_c(n), rev_new(n), rev_old(n);
  int rounds = 0;
  for (int round = 1; round <= options.max_rounds; ++round) {
    rounds = round;
    // 1. Each point samples its candidates; the sampled new ones become old.
    kernels::parallel_for(n, 256, [&](std::int64_t a, std::int64_t b) {
      for (std::int64_t i = a; i < b; ++i) {
        new_c[i].clear();
        old_c[i].clear();
        for (std::int64_t r = 0; r < K; ++r) {
          (is_new[i * K + r] ? new_c[i] : old_c[i]).push_back(g.idx[i * K + r]);
        }
        sample(new_c[i], S, seed, 2 * round, i);
        sample(old_c[i], S, seed, 2 * round + 1, i);
        for (std::int64_t r = 0; r < K; ++r) {
          if (is_new[i * K + r] &&
              std::find(new_c[i].begin(), new_c[i].end(), g.idx[i * K + r]) != new_c[i].end()) {
            is_new[i * K + r] = 0;
          }
        }
      }
    });
    // 2. Reverse candidates (serial: a fixed order), sampled to S, merged with the forward ones.
    for (std::int64_t i = 0; i < n; ++i) rev_new[i].clear(), rev_old[i].clear();
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int32_t j : new_c[i]) rev_new[j].push_back(static_cast<std::int32_t>(i));
      for (std::int32_t j : old_c[i]) rev_old[j].push_back(static_cast<std::int32_t>(i));
    }
    kernels::parallel_for(n, 256, [&](std::int64_t a, std::int64_t b) {
      for (std::int64_t i = a; i < b; ++i) {
        sample(rev_new[i], S, seed ^ 0x5eed, 2 * round, i);
        sample(rev_old[i], S, seed ^ 0x5eed, 2 * round + 1, i);
        auto& nw = new_c[i];
        auto& od = old_c[i];
        nw.insert(nw.end(), rev_new[i].begin(), rev_new[i].end());
        std::sort(nw.begin(), nw.end());
        nw.erase(std::unique(nw.begin(), nw.end()), nw.end());
        od.insert(od.end(), rev_old[i].begin(), rev_old[i].end());
        std::sort(od.begin(), od.end());
        od.erase(std::unique(od.begin(), od.end()), od.end());
      }
    });

    // 3. Local joins, block by block; 4. the block's proposals applied as a set.
    std::int64_t updates = 0;
    std::vector<std::vector<Proposal>> found(static_cast<std::size_t>(std::min(n, kJoinBlock)));
    std::vector<Proposal> all;
    for (std::int64_t v0 = 0; v0 < n; v0 += kJoinBlock) {
      const std::int64_t bv = std::min(kJoinBlock, n - v0);
      kernels::parallel_for(bv, 16, [&](std::int64_t a, std::int64_t b) {
        join_range(keys, g, new_c, old_c, v0, a, b, found);
      });
      all.clear();
      for (std::int64_t t = 0; t < bv; ++t) all.insert(all.end(), found[t].begin(), found[t].end());
      std::sort(all.begin(), all.end(), proposal_less);
      std::vector<std::size_t> starts;
      for (std::size_t p = 0; p < all.size(); ++p) {
        if (p == 0 || all[p].target != all[p - 1].target) starts.push_back(p);
      }
      starts.push_back(all.size());
      std::vector<std::int64_t> changed(starts.size(), 0);
      kernels::parallel_for(static_cast<std::int64_t>(starts.size()) - 1, 64,
                            [&](std::int64_t a, std::int64_t b) {
        for (std::int64_t grp = a; grp < b; ++grp) {
          for (std::size_t p = starts[grp]; p < starts[grp + 1]; ++p) {
            const Proposal& pr = all[p];
            std::int32_t* idx = g.idx.data() + static_cast<std::int64_t>(pr.target) * K;
            float* ks = g.key.data() + static_cast<std::int64_t>(pr.target) * K;
            std::uint8_t* fresh = is_new.data() + static_cast<std::int64_t>(pr.target) * K;
            if (!closer_entry(pr.key, pr.source, ks[K - 1], idx[K - 1])) break;  // sorted: no more
            if (std::find(idx, idx + K, pr.source) != idx + K) continue;
            std::int64_t r = K - 1;
            while (r > 0 && closer_entry(pr.key, pr.source, ks[r - 1], idx[r - 1])) {
              idx[r] = idx[r - 1], ks[r] = ks[r - 1], fresh[r] = fresh[r - 1];
              --r;
            }
            idx[r] = pr.source, ks[r] = pr.key, fresh[r] = 1;
            ++changed[grp];
          }
        }
      });
      for (std::int64_t c : changed) updates += c;
    }
    if (static_cast<double>(updates) < options.delta * static_cast<double>(n * K)) break;
  }
  if (rounds_out) *rounds_out = rounds;

  // Exact values of the final neighbours, in the metric's units, closest first.
  KnnGraph out;
  out.n = n;
  out.k = K;
  out.metric = metric;
  out.indices.resize(n * K);
  out.values.resize(n * K);
  kernels::parallel_for(n, 256, [&](std::int64_t a, std::int64_t b) {
    std::vector<std::pair<double, std::int64_t>> row(K);
    for (std::int64_t i = a; i < b; ++i) {
      for (std::int64_t r = 0; r < K; ++r) {
        const std::int64_t j = g.idx[i * K + r];
        const double v = kernels::distance(metric, x + i * d, x + j * d, d);
        row[r] = {kernels::closeness_key(metric.metric, v), j};
      }
      std::sort(row.begin(), row.end());
      for (std::int64_t r = 0; r < K; ++r) {
        out.indices[i * K + r] = row[r].second;
        out.values[i * K + r] = static_cast<float>(kernels::closeness_key(metric.metric, row[r].first));
      }
    }
  });
  return out;
}

NNDescentIndex::NNDescentIndex(const float* x, std::int64_t n, std::int64_t d,
                               const kernels::MetricSpec& metric, const NNDescentOptions& options)
    : n_(n), dim_(d), metric_(metric), internal_(metric), options_(options) {
  graph_ = nn_descent_graph(x, n, d, metric, options, &rounds_);  // checks the arguments
  if (metric.metric == kernels::Metric::Euclidean) internal_.metric = kernels::Metric::SqEuclidean;
  if (metric.metric == kernels::Metric::Cosine) internal_.metric = kernels::Metric::CosineDistance;
  data_.assign(x, x + n * d);

  // Undirected adjacency for search: the graph's edges both ways.
  const std::int64_t K = graph_.k;
  adjacency_.assign(n, {});
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t r = 0; r < K; ++r) {
      adjacency_[i].push_back(graph_.indices[i * K + r]);
      adjacency_[graph_.indices[i * K + r]].push_back(i);
    }
  }
  for (auto& a : adjacency_) {
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
  }
}

float NNDescentIndex::key(const float* a, const float* b) const {
  return static_cast<float>(
      kernels::closeness_key(internal_.metric, kernels::distance(internal_, a, b, dim_)));
}

float NNDescentIndex::value_of_key(float key) const {
  switch (metric_.metric) {
    case kernels::Metric::Euclidean: return std::sqrt(key);
    case kernels::Metric::Cosine: return static_cast<float>(1.0 - static_cast<double>(key));
    case kernels::Metric::Dot: return -key;
    default: return key;
  }
}

KnnGraph NNDescentIndex::graph(std::int64_t k) const {
  const std::int64_t K = graph_.k;
  MMEMBED_CHECK(k >= 1 && k <= K, InvalidArgument, "NN-descent graph: k must be in [1, ", K,
                "] (the n_neighbors it was built with; got ", k, ")");
  if (k == K) return graph_;
  KnnGraph g;
  g.n = n_;
  g.k = k;
  g.metric = metric_;
  g.indices.resize(n_ * k);
  g.values.resize(n_ * k);
  for (std::int64_t i = 0; i < n_; ++i) {
    for (std::int64_t r = 0; r < k; ++r) {
      g.indices[i * k + r] = graph_.indices[i * K + r];
      g.values[i * k + r] = graph_.values[i * K + r];
    }
  }
  return g;
}

void NNDescentIndex::search(const float* queries, std::int64_t nq, std::int64_t k,
                            std::int64_t* labels, float* values) const {
  MMEMBED_CHECK(nq >= 0 && k >= 0, InvalidArgument, "NN-descent search: nq ", nq, " and k ", k,
                " must be >= 0");
  check_rows(queries, nq, dim_, metric_, "NN-descent search: query");
  if (nq == 0 || k == 0) return;
  const std::int64_t ef = std::max(k, options_.search_ef > 0 ? options_.search_ef
                                                              : std::max<std::int64_t>(2 * k, 32));
  // Entry points: a fixed pseudo-random sample of 4 sqrt(n) (at least 64) points, all scored,
  // so that every sizeable cluster has a door even when the kNN graph is disconnected.
  const std::int64_t n_entries = std::min<std::int64_t>(
      n_, std::max<std::int64_t>(64, static_cast<std::int64_t>(4.0 * std::sqrt(static_cast<double>(n_)))));
  std::vector<std::int64_t> entries;
  std::vector<std::uint8_t> taken(n_, 0);
  for (std::uint64_t t = 0; static_cast<std::int64_t>(entries.size()) < n_entries; ++t) {
    const auto e = static_cast<std::int64_t>(hash(options_.seed, kEntryStream, t, 0) % n_);
    if (!taken[e]) taken[e] = 1, entries.push_back(e);
  }
  kernels::parallel_for(nq, 8, [&](std::int64_t a, std::int64_t b) {
    std::vector<std::uint32_t> visited(n_, 0);
    std::uint32_t stamp = 0;
    for (std::int64_t q = a; q < b; ++q) {
      ++stamp;
      const float* qv = queries + q * dim_;
      TopK best(ef);
      auto later = [](const Neighbour& x, const Neighbour& y) { return closer(y, x); };
      std::priority_queue<Neighbour, std::vector<Neighbour>, decltype(later)> frontier(later);
      for (std::int64_t e : entries) {
        visited[e] = stamp;
        const Neighbour nb{key(qv, data_.data() + e * dim_), e};
        best.push(nb.key, nb.index);
        frontier.push(nb);
      }
      while (!frontier.empty()) {
        const Neighbour c = frontier.top();
        frontier.pop();
        if (best.full() && closer(best.worst(), c)) break;
        for (std::int64_t j : adjacency_[c.index]) {
          if (visited[j] == stamp) continue;
          visited[j] = stamp;
          const Neighbour nb{key(qv, data_.data() + j * dim_), j};
          if (!best.full() || closer(nb, best.worst())) {
            best.push(nb.key, nb.index);
            frontier.push(nb);
          }
        }
      }
      std::vector<Neighbour>& sorted = best.sorted();
      for (std::int64_t r = 0; r < k; ++r) {
        if (r < static_cast<std::int64_t>(sorted.size())) {
          labels[q * k + r] = sorted[r].index;
          values[q * k + r] = value_of_key(sorted[r].key);
        } else {
          labels[q * k + r] = -1;
          values[q * k + r] = std::numeric_limits<float>::quiet_NaN();
        }
      }
      best.clear();
    }
  });
}

}  // namespace mmembed::search
