#include "search/nn_descent.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <queue>

#include "core/check.h"
#include "kernels/parallel.h"
#include "search/top_k.h"

namespace mmembed::search {
namespace {

// Points whose candidates meet in one step; their updates are applied together. Fixed, so the
// schedule (and the result) does not depend on the thread count.
constexpr std::int64_t kJoinBlock = 2048;
constexpr std::uint64_t kInitStream = 0x1417a1;
constexpr std::uint64_t kEntryStream = 0xe7e7;

std::uint64_t mix(std::uint64_t z) {  // splitmix64's finalizer
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
std::uint64_t hash(std::uint64_t seed, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  return mix(mix(mix(seed ^ a) ^ b) ^ c);
}

struct Proposal {
  std::int64_t target;
  float key;
  std::int64_t source;
};
bool proposal_less(const Proposal& a, const Proposal& b) {
  if (a.target != b.target) return a.target < b.target;
  if (a.key != b.key) return a.key < b.key;
  return a.source < b.source;
}

// Keeps the `limit` entries of v with the smallest hash(seed, round, owner, entry).
void sample(std::vector<std::int64_t>& v, std::int64_t limit, std::uint64_t seed, int round,
            std::int64_t owner) {
  if (static_cast<std::int64_t>(v.size()) <= limit) return;
  auto prio = [&](std::int64_t e) { return hash(seed, round, owner, e); };
  std::nth_element(v.begin(), v.begin() + limit, v.end(), [&](std::int64_t a, std::int64_t b) {
    const auto pa = prio(a), pb = prio(b);
    return pa < pb || (pa == pb && a < b);
  });
  v.resize(limit);
}

}  // namespace

NNDescentIndex::NNDescentIndex(const float* x, std::int64_t n, std::int64_t d,
                               const kernels::MetricSpec& metric, const NNDescentOptions& options)
    : n_(n), dim_(d), metric_(metric), internal_(metric), options_(options) {
  kernels::validate(metric);
  MMEMBED_CHECK(d >= 1, InvalidArgument, "NN-descent: dimension must be >= 1 (got ", d, ")");
  MMEMBED_CHECK(options.n_neighbors >= 1 && options.n_neighbors < n, InvalidArgument,
                "NN-descent: need 1 <= n_neighbors < number of points (n_neighbors ",
                options.n_neighbors, ", ", n, " points)");
  MMEMBED_CHECK(options.max_rounds >= 0 && options.max_candidates >= 0, InvalidArgument,
                "NN-descent: max_rounds and max_candidates must be >= 0");
  check_rows(x, n, d, metric, "NN-descent: input");
  if (metric.metric == kernels::Metric::Euclidean) internal_.metric = kernels::Metric::SqEuclidean;
  if (metric.metric == kernels::Metric::Cosine) internal_.metric = kernels::Metric::CosineDistance;
  data_.assign(x, x + n * d);
  build();
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

void NNDescentIndex::build() {
  const std::int64_t n = n_, K = options_.n_neighbors;
  const std::int64_t S = options_.max_candidates > 0 ? options_.max_candidates
                                                     : std::max<std::int64_t>(K, 20);
  const std::uint64_t seed = options_.seed;
  graph_idx_.assign(n * K, -1);
  graph_key_.assign(n * K, 0.0f);
  std::vector<std::uint8_t> is_new(n * K, 1);
  const float* X = data_.data();
  auto row = [&](std::int64_t i) { return X + i * dim_; };

  // Random initial neighbours, sorted by (key, index).
  kernels::parallel_for(n, 64, [&](std::int64_t a, std::int64_t b) {
    std::vector<Neighbour> init;
    for (std::int64_t i = a; i < b; ++i) {
      init.clear();
      for (std::uint64_t t = 0; static_cast<std::int64_t>(init.size()) < K; ++t) {
        std::int64_t j = static_cast<std::int64_t>(hash(seed, kInitStream, i, t) % (n - 1));
        if (j >= i) ++j;
        bool seen = false;
        for (const Neighbour& e : init) seen |= e.index == j;
        if (!seen) init.push_back({key(row(i), row(j)), j});
      }
      std::sort(init.begin(), init.end(), closer);
      for (std::int64_t r = 0; r < K; ++r) {
        graph_idx_[i * K + r] = init[r].index;
        graph_key_[i * K + r] = init[r].key;
      }
    }
  });

  std::vector<std::vector<std::int64_t>> new_c(n), old_c(n), rev_new(n), rev_old(n);
  for (rounds_ = 1; rounds_ <= options_.max_rounds; ++rounds_) {
    const int round = rounds_;
    // 1. Each point samples its candidates; the sampled new ones become old.
    kernels::parallel_for(n, 256, [&](std::int64_t a, std::int64_t b) {
      for (std::int64_t i = a; i < b; ++i) {
        new_c[i].clear();
        old_c[i].clear();
        for (std::int64_t r = 0; r < K; ++r) {
          (is_new[i * K + r] ? new_c[i] : old_c[i]).push_back(graph_idx_[i * K + r]);
        }
        sample(new_c[i], S, seed, 2 * round, i);
        sample(old_c[i], S, seed, 2 * round + 1, i);
        for (std::int64_t r = 0; r < K; ++r) {
          if (is_new[i * K + r] &&
              std::find(new_c[i].begin(), new_c[i].end(), graph_idx_[i * K + r]) != new_c[i].end()) {
            is_new[i * K + r] = 0;
          }
        }
      }
    });
    // 2. Reverse candidates (serial: a fixed order), sampled to S, merged with the forward ones.
    for (std::int64_t i = 0; i < n; ++i) rev_new[i].clear(), rev_old[i].clear();
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t j : new_c[i]) rev_new[j].push_back(i);
      for (std::int64_t j : old_c[i]) rev_old[j].push_back(i);
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
    std::vector<std::vector<Proposal>> found(std::min(n, kJoinBlock));
    std::vector<Proposal> all;
    for (std::int64_t v0 = 0; v0 < n; v0 += kJoinBlock) {
      const std::int64_t bv = std::min(kJoinBlock, n - v0);
      kernels::parallel_for(bv, 16, [&](std::int64_t a, std::int64_t b) {
        for (std::int64_t t = a; t < b; ++t) {
          const std::int64_t v = v0 + t;
          auto& out = found[t];
          out.clear();
          auto emit = [&](std::int64_t p, std::int64_t q) {
            const float k = key(row(p), row(q));
            if (closer({k, q}, {graph_key_[p * K + K - 1], graph_idx_[p * K + K - 1]})) {
              out.push_back({p, k, q});
            }
            if (closer({k, p}, {graph_key_[q * K + K - 1], graph_idx_[q * K + K - 1]})) {
              out.push_back({q, k, p});
            }
          };
          const auto& nw = new_c[v];
          const auto& od = old_c[v];
          for (std::size_t x = 0; x < nw.size(); ++x) {
            for (std::size_t y = x + 1; y < nw.size(); ++y) emit(nw[x], nw[y]);
            for (std::int64_t o : od) {
              if (o != nw[x]) emit(nw[x], o);
            }
          }
        }
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
        for (std::int64_t g = a; g < b; ++g) {
          for (std::size_t p = starts[g]; p < starts[g + 1]; ++p) {
            const Proposal& pr = all[p];
            std::int64_t* idx = graph_idx_.data() + pr.target * K;
            float* keys = graph_key_.data() + pr.target * K;
            std::uint8_t* fresh = is_new.data() + pr.target * K;
            if (!closer({pr.key, pr.source}, {keys[K - 1], idx[K - 1]})) break;  // sorted: no more
            if (std::find(idx, idx + K, pr.source) != idx + K) continue;
            std::int64_t r = K - 1;
            while (r > 0 && closer({pr.key, pr.source}, {keys[r - 1], idx[r - 1]})) {
              idx[r] = idx[r - 1], keys[r] = keys[r - 1], fresh[r] = fresh[r - 1];
              --r;
            }
            idx[r] = pr.source, keys[r] = pr.key, fresh[r] = 1;
            ++changed[g];
          }
        }
      });
      for (std::int64_t c : changed) updates += c;
    }
    if (static_cast<double>(updates) < options_.delta * static_cast<double>(n * K)) break;
  }
  rounds_ = std::min(rounds_, options_.max_rounds);

  // Undirected adjacency for search: the graph's edges both ways.
  adjacency_.assign(n, {});
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t r = 0; r < K; ++r) {
      adjacency_[i].push_back(graph_idx_[i * K + r]);
      adjacency_[graph_idx_[i * K + r]].push_back(i);
    }
  }
  for (auto& a : adjacency_) {
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
  }
}

KnnGraph NNDescentIndex::graph(std::int64_t k) const {
  const std::int64_t K = options_.n_neighbors;
  MMEMBED_CHECK(k >= 1 && k <= K, InvalidArgument, "NN-descent graph: k must be in [1, ", K,
                "] (the n_neighbors it was built with; got ", k, ")");
  KnnGraph g;
  g.n = n_;
  g.k = k;
  g.metric = metric_;
  g.indices.resize(n_ * k);
  g.values.resize(n_ * k);
  for (std::int64_t i = 0; i < n_; ++i) {
    for (std::int64_t r = 0; r < k; ++r) {
      g.indices[i * k + r] = graph_idx_[i * K + r];
      g.values[i * k + r] = value_of_key(graph_key_[i * K + r]);
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
