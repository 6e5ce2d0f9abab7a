#include "search/nn_descent.h"

#include <algorithm>
#include <cmath>
#include <cstring>
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
constexpr std::uint64_t kTreeStream = 0x7e3e;
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

typedef float F16 __attribute__((vector_size(64)));

// The lanes of 16-lane sums reduced to one value each by the same tree for every sum:
// s_i = l_i + l_(i+8), t_i = s_i + s_(i+4), u_i = t_i + t_(i+2), u_0 + u_1. Each step (W = 8, 4,
// 2, 1) takes two vectors of partial sums and adds their halves, the first's lanes before the
// second's, so 16 sums reduce in 15 shuffled adds instead of 16 x 15 scalar ones.
template <int W>
[[gnu::always_inline]] inline void add_halves(const F16& p, const F16& q, F16& out) {
  if constexpr (W == 8) {
    out = __builtin_shufflevector(p, q, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
          __builtin_shufflevector(p, q, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  } else if constexpr (W == 4) {
    out = __builtin_shufflevector(p, q, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
          __builtin_shufflevector(p, q, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  } else if constexpr (W == 2) {
    out = __builtin_shufflevector(p, q, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) +
          __builtin_shufflevector(p, q, 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
  } else {
    static_assert(W == 1);
    out = __builtin_shufflevector(p, q, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +
          __builtin_shufflevector(p, q, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  }
}

// Dot products of R rows a[0..R) with 4 rows b[0..4) in float (R = 1 or 4): out[r * 4 + c] =
// a[r] . b[c]. Every product runs the same arithmetic whatever R and whatever the other rows of
// the tile: a 16-lane accumulator over the dimensions in order (the last d % 16 dimensions as
// one more vector padded with zeros), then its lanes summed by the tree above. So a pair's
// product is a pure function of the two rows (and symmetric: a . b and b . a are the same bits).
// With R = 4 each loaded vector feeds 4 multiply-adds (the join is bound by loads of rows from
// L2 more than by arithmetic).
template <int R>
[[gnu::always_inline]] inline void dot_tile(const float* const* a, const float* const* b,
                                            std::int64_t d, float* out) {
  static_assert(R == 1 || R == 4);
  F16 acc[R][4];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < 4; ++c) acc[r][c] = F16{};
  }
  std::int64_t i = 0;
  for (; i + kDistLanes <= d; i += kDistLanes) {
    F16 bv[4];
    for (int c = 0; c < 4; ++c) std::memcpy(&bv[c], b[c] + i, sizeof(F16));
    for (int r = 0; r < R; ++r) {
      F16 av;
      std::memcpy(&av, a[r] + i, sizeof(F16));
      for (int c = 0; c < 4; ++c) acc[r][c] += av * bv[c];
    }
  }
  if (i < d) {
    const std::size_t bytes = static_cast<std::size_t>(d - i) * sizeof(float);
    F16 bv[4];
    for (int c = 0; c < 4; ++c) {
      bv[c] = F16{};
      std::memcpy(&bv[c], b[c] + i, bytes);
    }
    for (int r = 0; r < R; ++r) {
      F16 av{};
      std::memcpy(&av, a[r] + i, bytes);
      for (int c = 0; c < 4; ++c) acc[r][c] += av * bv[c];
    }
  }
  const F16* v = &acc[0][0];
  F16 s8[8], s4[4], s2[2], sums;
  if constexpr (R == 4) {
    for (int k = 0; k < 8; ++k) add_halves<8>(v[2 * k], v[2 * k + 1], s8[k]);
    for (int k = 0; k < 4; ++k) add_halves<4>(s8[2 * k], s8[2 * k + 1], s4[k]);
    for (int k = 0; k < 2; ++k) add_halves<2>(s4[2 * k], s4[2 * k + 1], s2[k]);
    add_halves<1>(s2[0], s2[1], sums);
  } else {  // the 4 sums' lanes in the same tree; the second operand's lanes are spare
    add_halves<8>(v[0], v[1], s8[0]);
    add_halves<8>(v[2], v[3], s8[1]);
    add_halves<4>(s8[0], s8[1], s4[0]);
    add_halves<2>(s4[0], s4[0], s2[0]);
    add_halves<1>(s2[0], s2[0], sums);
  }
  std::memcpy(out, &sums, static_cast<std::size_t>(R) * 4 * sizeof(float));
}

// The squared-distance key of two rows from their squared norms and dot product (rows centred
// on the data mean, so the cancellation is that of distances to the centre, not to the origin).
[[gnu::always_inline]] inline float l2_key(float norm_p, float norm_q, float dot) {
  return (norm_p + norm_q) - 2.0f * dot;
}

// Keys of row p to rows js[0..m) (m >= 1), four partners at a time.
MMEMBED_TARGET_CLONES void l2_keys_to(const float* X, const float* norms, std::int64_t d,
                                      std::int32_t p, const std::int32_t* js, std::int64_t m,
                                      float* out) {
  const float* a[1] = {X + static_cast<std::int64_t>(p) * d};
  for (std::int64_t r = 0; r < m; r += 4) {
    const float* b[4];
    for (int c = 0; c < 4; ++c) {
      b[c] = X + static_cast<std::int64_t>(js[std::min<std::int64_t>(r + c, m - 1)]) * d;
    }
    float dots[4];
    dot_tile<1>(a, b, d, dots);
    for (int c = 0; c < 4 && r + c < m; ++c) {
      out[r + c] = l2_key(norms[p], norms[js[r + c]], dots[c]);
    }
  }
}

// Squared norms of rows [a, b) of X, by dot_tile (so l2_key(n_p, n_p, p . p) is exact-ish 0).
MMEMBED_TARGET_CLONES void l2_norms(const float* X, std::int64_t d, std::int64_t a, std::int64_t b,
                                    float* norms) {
  for (std::int64_t i = a; i < b; ++i) {
    const float* row = X + i * d;
    const float* ra[1] = {row};
    const float* rb[4] = {row, row, row, row};
    float dots[4];
    dot_tile<1>(ra, rb, d, dots);
    norms[i] = dots[0];
  }
}

struct Proposal;

// The rows the join reads and how it turns a pair into a key (smaller is closer).
struct JoinKeys {
  const float* X;  // squared_l2: the centred rows (of x, or of its unit rows); else x
  std::int64_t d;
  bool squared_l2;            // keys are squared distances, from norms and dot products
  const float* norms;         // squared_l2: squared norms of the rows of X
  kernels::MetricSpec metric; // else closeness_key(metric, kernels::distance(metric, ...))

  // Keys of row p to rows js[0..m).
  void to(std::int32_t p, const std::int32_t* js, std::int64_t m, float* out) const {
    if (m == 0) return;
    if (squared_l2) {
      l2_keys_to(X, norms, d, p, js, m, out);
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

// Moves the `limit` entries of v[0..m) with the smallest hash(seed, round, owner, entry) (ties:
// the smaller entry) to its front, in no particular order; returns min(m, limit).
std::size_t sample(std::int32_t* v, std::size_t m, std::size_t limit, std::uint64_t seed, int round,
                   std::int64_t owner) {
  if (m <= limit) return m;
  thread_local std::vector<std::pair<std::uint64_t, std::int32_t>> by_prio;
  by_prio.resize(m);
  for (std::size_t r = 0; r < m; ++r) {
    by_prio[r] = {hash(seed, static_cast<std::uint64_t>(round), static_cast<std::uint64_t>(owner),
                       static_cast<std::uint64_t>(v[r])),
                  v[r]};
  }
  std::nth_element(by_prio.begin(), by_prio.begin() + static_cast<std::ptrdiff_t>(limit), by_prio.end());
  for (std::size_t r = 0; r < limit; ++r) v[r] = by_prio[r].second;
  return limit;
}
void sample(std::vector<std::int32_t>& v, std::size_t limit, std::uint64_t seed, int round,
            std::int64_t owner) {
  v.resize(sample(v.data(), v.size(), limit, seed, round, owner));
}

// For each point, the points whose lists `lists` hold it, in increasing order: a stable counting
// sort by target of the (source, target) pairs, the sources in `chunks` ranges, one a task (the
// same result for any number of chunks). off [n + 1] and src are resized.
void reverse_lists(const std::vector<std::vector<std::int32_t>>& lists, int chunks,
                   std::vector<std::int64_t>& off, std::vector<std::int32_t>& src) {
  const auto n = static_cast<std::int64_t>(lists.size());
  const std::int64_t per = (n + chunks - 1) / chunks;
  std::vector<std::int64_t> at(static_cast<std::size_t>(chunks * n), 0);  // [chunk, target]
  kernels::parallel_tasks(chunks, [&](std::int64_t c) {
    std::int64_t* count = at.data() + c * n;
    for (std::int64_t i = c * per; i < std::min(n, (c + 1) * per); ++i) {
      for (std::int32_t j : lists[i]) ++count[j];
    }
  });
  off.assign(static_cast<std::size_t>(n + 1), 0);
  std::int64_t total = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    off[j] = total;
    for (std::int64_t c = 0; c < chunks; ++c) {
      const std::int64_t k = at[c * n + j];
      at[c * n + j] = total;
      total += k;
    }
  }
  off[n] = total;
  src.resize(static_cast<std::size_t>(total));
  kernels::parallel_tasks(chunks, [&](std::int64_t c) {
    std::int64_t* next = at.data() + c * n;
    for (std::int64_t i = c * per; i < std::min(n, (c + 1) * per); ++i) {
      for (std::int32_t j : lists[i]) src[next[j]++] = static_cast<std::int32_t>(i);
    }
  });
}

struct Graph {
  std::int64_t k = 0;
  std::vector<std::int32_t> idx;  // [n, k], by (key, index)
  std::vector<float> key;         // [n, k]
  float worst_key(std::int64_t p) const { return key[p * k + k - 1]; }
  std::int32_t worst_idx(std::int64_t p) const { return idx[p * k + k - 1]; }
};

// Every pair (x, y) of cand[0..m), x < n_new, y > x, of distinct points, scored by 4 x 4 tiles
// of dot products (each row loaded once per tile for 4 partners): fn(cand[x], cand[y], key).
template <typename Fn>
[[gnu::always_inline]] inline void for_each_pair_l2(const JoinKeys& keys, const std::int32_t* cand,
                                                    std::int64_t n_new, std::int64_t m, Fn&& fn) {
  const std::int64_t d = keys.d;
  auto row = [&](std::int64_t t) {
    return keys.X + static_cast<std::int64_t>(cand[std::min(t, m - 1)]) * d;
  };
  for (std::int64_t x0 = 0; x0 < n_new; x0 += 4) {
    const float* a[4] = {row(x0), row(x0 + 1), row(x0 + 2), row(x0 + 3)};
    for (std::int64_t y0 = x0; y0 < m; y0 += 4) {
      const float* b[4] = {row(y0), row(y0 + 1), row(y0 + 2), row(y0 + 3)};
      float dots[16];
      dot_tile<4>(a, b, d, dots);
      for (int r = 0; r < 4; ++r) {
        const std::int64_t x = x0 + r;
        if (x >= n_new) break;
        const std::int32_t p = cand[x];
        for (int c = 0; c < 4; ++c) {
          const std::int64_t y = y0 + c;
          if (y <= x || y >= m) continue;
          const std::int32_t q = cand[y];
          if (q == p) continue;
          fn(p, q, l2_key(keys.norms[p], keys.norms[q], dots[r * 4 + c]));
        }
      }
    }
  }
}

// The local join of one point for the squared_l2 keys: cand = its new candidates (the first
// n_new) then its old ones; each pair proposed to both ends where closer than their worst.
MMEMBED_TARGET_CLONES void join_point_l2(const JoinKeys& keys, const Graph& g,
                                         const std::int32_t* cand, std::int64_t n_new,
                                         std::int64_t m, std::vector<Proposal>& out) {
  for_each_pair_l2(keys, cand, n_new, m, [&](std::int32_t p, std::int32_t q, float k) {
    if (closer_entry(k, q, g.worst_key(p), g.worst_idx(p))) out.push_back({p, q, k});
    if (closer_entry(k, p, g.worst_key(q), g.worst_idx(q))) out.push_back({q, p, k});
  });
}

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
    if (keys.squared_l2) {
      partners.assign(nw.begin(), nw.end());
      partners.insert(partners.end(), od.begin(), od.end());
      if (!nw.empty()) {
        join_point_l2(keys, g, partners.data(), static_cast<std::int64_t>(nw.size()),
                      static_cast<std::int64_t>(partners.size()), out);
      }
      continue;
    }
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

// Offers q to p's list (by (key, index), the K best kept, no repeats); true when it entered.
// is_new (if given, [n, K]): the entries' "new" flags, moved along; q's is set.
inline bool offer(Graph& g, std::int32_t p, std::int32_t q, float k,
                  std::uint8_t* is_new = nullptr) {
  const std::int64_t K = g.k;
  std::int32_t* idx = g.idx.data() + static_cast<std::int64_t>(p) * K;
  float* ks = g.key.data() + static_cast<std::int64_t>(p) * K;
  std::uint8_t* fresh = is_new ? is_new + static_cast<std::int64_t>(p) * K : nullptr;
  if (!closer_entry(k, q, ks[K - 1], idx[K - 1])) return false;
  if (std::find(idx, idx + K, q) != idx + K) return false;
  std::int64_t r = K - 1;
  while (r > 0 && closer_entry(k, q, ks[r - 1], idx[r - 1])) {
    idx[r] = idx[r - 1], ks[r] = ks[r - 1];
    if (fresh) fresh[r] = fresh[r - 1];
    --r;
  }
  idx[r] = q, ks[r] = k;
  if (fresh) fresh[r] = 1;
  return true;
}

// Every pair of the m points pts[0..m) (one leaf of a tree) scored in 4 x 4 tiles and offered to
// both ends' lists. Leaves of one tree share no point, so they may run in parallel.
MMEMBED_TARGET_CLONES void join_leaf(const JoinKeys& keys, Graph& g, const std::int32_t* pts,
                                     std::int64_t m) {
  for_each_pair_l2(keys, pts, m, m, [&](std::int32_t p, std::int32_t q, float k) {
    offer(g, p, q, k);
    offer(g, q, p, k);
  });
}

// A random-projection tree over the rows of x (pynndescent's start, our own code): a node
// of more than leaf_max points is split by the hyperplane halfway between two of its points
// chosen by hash(seed, node) (angular: through the origin, normal to the difference of their
// unit vectors), or in two halves by position when the hyperplane leaves one side empty.
// perm (new position -> row of x) lists the points leaf by leaf, depth first, so points close in
// the tree are close in the order; leaf l holds positions [leaves[l], leaves[l + 1]) (the last
// entry is n).
MMEMBED_TARGET_CLONES void rp_tree_order(const float* x, std::int64_t n, std::int64_t d,
                                         bool angular, std::uint64_t seed, std::int64_t leaf_max,
                                         std::vector<std::int32_t>& perm,
                                         std::vector<std::int64_t>& leaves) {
  perm.resize(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) perm[i] = static_cast<std::int32_t>(i);
  leaves.clear();
  std::vector<float> w(static_cast<std::size_t>(d));
  std::vector<float> margin;
  std::vector<std::int32_t> left, right;
  std::vector<std::pair<std::int64_t, std::int64_t>> stack{{0, n}};
  auto row = [&](std::int64_t pos) { return x + static_cast<std::int64_t>(perm[pos]) * d; };
  while (!stack.empty()) {
    const auto [lo, hi] = stack.back();
    stack.pop_back();
    const std::int64_t m = hi - lo;
    if (m <= leaf_max) {
      leaves.push_back(lo);  // popped left to right: the leaves come in position order
      continue;
    }
    const auto um = static_cast<std::uint64_t>(m);
    const std::int64_t ia = lo + static_cast<std::int64_t>(hash(seed, kTreeStream, lo, hi) % um);
    std::int64_t ib =
        lo + static_cast<std::int64_t>(hash(seed, kTreeStream + 1, lo, hi) % (um - 1));
    if (ib >= ia) ++ib;
    const float* pa = row(ia);
    const float* pb = row(ib);
    double na = 1.0, nb = 1.0;
    if (angular) {
      double sa = 0, sb = 0;
      for (std::int64_t c = 0; c < d; ++c) {
        sa += static_cast<double>(pa[c]) * pa[c];
        sb += static_cast<double>(pb[c]) * pb[c];
      }
      na = 1.0 / std::sqrt(sa), nb = 1.0 / std::sqrt(sb);
    }
    double offset = 0;
    for (std::int64_t c = 0; c < d; ++c) {
      w[c] = static_cast<float>(pa[c] * na - pb[c] * nb);
      if (!angular) {
        offset += static_cast<double>(w[c]) * 0.5 * (static_cast<double>(pa[c]) + pb[c]);
      }
    }
    margin.resize(static_cast<std::size_t>(m));
    const float* wa[1] = {w.data()};
    for (std::int64_t t = 0; t < m; t += 4) {
      const float* b[4];
      for (int c = 0; c < 4; ++c) b[c] = row(lo + std::min<std::int64_t>(t + c, m - 1));
      float dots[4];
      dot_tile<1>(wa, b, d, dots);
      for (int c = 0; c < 4 && t + c < m; ++c) margin[t + c] = static_cast<float>(dots[c] - offset);
    }
    left.clear();
    right.clear();
    for (std::int64_t t = 0; t < m; ++t) (margin[t] > 0.0f ? right : left).push_back(perm[lo + t]);
    std::int64_t mid = lo + static_cast<std::int64_t>(left.size());
    if (left.empty() || right.empty()) {
      mid = lo + m / 2;  // degenerate hyperplane: halves by position
    } else {
      std::copy(left.begin(), left.end(), perm.begin() + lo);
      std::copy(right.begin(), right.end(), perm.begin() + mid);
    }
    stack.push_back({mid, hi});
    stack.push_back({lo, mid});  // the left child is split (and its leaves listed) first
  }
  leaves.push_back(n);
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
  MMEMBED_CHECK(options.n_trees >= 1, InvalidArgument, "NN-descent: n_trees must be >= 1 (got ",
                options.n_trees, ")");
  check_rows(x, n, d, metric, "NN-descent: input");
  const std::size_t S = static_cast<std::size_t>(
      options.max_candidates > 0 ? options.max_candidates : std::max<std::int64_t>(K, 20));
  const std::uint64_t seed = options.seed;

  JoinKeys keys{x, d, squared_l2_keys(metric.metric), nullptr, metric};
  const bool unit = metric.metric == kernels::Metric::Cosine ||
                    metric.metric == kernels::Metric::CosineDistance;
  // The squared-L2 keys and the trees' hyperplanes are computed in float: rows far from unit
  // scale (vectors times 1e20 or 1e-25) would overflow them to inf or flush them to 0, and the
  // graph would be built from ties. A common power of 2 changes no ranking and is exact, so
  // such inputs are scaled to max |x| in [1, 2) for them (unit rows are normalised in double
  // already); the final values are recomputed from x with kernels::distance (issue #18).
  std::vector<float> rescaled;
  const float* xs = x;
  if (keys.squared_l2 && !unit) {
    float max_abs = 0.0f;
    for (std::int64_t e = 0; e < n * d; ++e) max_abs = std::max(max_abs, std::fabs(x[e]));
    if (max_abs != 0.0f && (max_abs < 0x1p-40f || max_abs > 0x1p40f)) {
      const double s = std::ldexp(1.0, -std::ilogb(max_abs));  // up to 2^149: in double
      rescaled.resize(static_cast<std::size_t>(n * d));
      for (std::int64_t e = 0; e < n * d; ++e) rescaled[e] = static_cast<float>(x[e] * s);
      xs = rescaled.data();
    }
  }
  // squared_l2: the rows (unit rows for the cosine metrics, whose squared distances 2 - 2 cos
  // order as the cosine distance) minus their mean, in float, and their squared norms.
  std::vector<float> centred, norms;
  // squared_l2: the points are renumbered in the leaf order of a random-projection tree (perm:
  // new number -> row of x), so that a block of the join reads rows close in the tree (whose
  // candidates overlap: the rows come from cache, not memory), and each point starts from the
  // best of its leaves in this and the other trees (options.n_trees in all, built at the same
  // time, one a task, then renumbered likewise) instead of random points. Other metrics keep
  // x's order and a random start.
  struct Tree {
    std::vector<std::int32_t> perm;     // position in the tree -> point
    std::vector<std::int64_t> leaves;   // the leaves' first positions, then n
  };
  std::vector<Tree> trees;
  std::vector<std::int32_t> perm;
  if (keys.squared_l2) {
    const std::int64_t leaf_max = std::max<std::int64_t>(2 * (K + 1), 32);
    trees.resize(static_cast<std::size_t>(options.n_trees));
    kernels::parallel_tasks(static_cast<std::int64_t>(trees.size()), [&](std::int64_t t) {
      Tree& tr = trees[static_cast<std::size_t>(t)];
      rp_tree_order(xs, n, d, unit, t == 0 ? seed : hash(seed, kTreeStream + 2, t, 0), leaf_max,
                    tr.perm, tr.leaves);
    });
    perm = trees[0].perm;
    std::vector<std::int32_t> number(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) number[perm[i]] = static_cast<std::int32_t>(i);
    for (Tree& tr : trees) {
      for (std::int32_t& v : tr.perm) v = number[v];
    }
    centred.resize(static_cast<std::size_t>(n * d));
    kernels::parallel_for(n, 256, [&](std::int64_t a, std::int64_t b) {
      for (std::int64_t i = a; i < b; ++i) {
        const float* src = xs + static_cast<std::int64_t>(perm[i]) * d;
        double inv = 1.0;
        if (unit) {
          double s = 0;
          for (std::int64_t c = 0; c < d; ++c) s += static_cast<double>(src[c]) * src[c];
          inv = 1.0 / std::sqrt(s);
        }
        for (std::int64_t c = 0; c < d; ++c) centred[i * d + c] = static_cast<float>(src[c] * inv);
      }
    });
    // Column means in double, summed over fixed blocks of rows in order (the same bits on any
    // thread count).
    constexpr std::int64_t kMeanBlock = 1024;
    const std::int64_t nb = (n + kMeanBlock - 1) / kMeanBlock;
    std::vector<double> partial(static_cast<std::size_t>(nb * d), 0.0);
    kernels::parallel_for(nb, 1, [&](std::int64_t a, std::int64_t b) {
      for (std::int64_t blk = a; blk < b; ++blk) {
        double* acc = partial.data() + blk * d;
        for (std::int64_t i = blk * kMeanBlock; i < std::min(n, (blk + 1) * kMeanBlock); ++i) {
          for (std::int64_t c = 0; c < d; ++c) acc[c] += centred[i * d + c];
        }
      }
    });
    std::vector<float> mean(static_cast<std::size_t>(d));
    for (std::int64_t c = 0; c < d; ++c) {
      double s = 0;
      for (std::int64_t blk = 0; blk < nb; ++blk) s += partial[blk * d + c];
      mean[c] = static_cast<float>(s / static_cast<double>(n));
    }
    norms.resize(static_cast<std::size_t>(n));
    kernels::parallel_for(n, 256, [&](std::int64_t a, std::int64_t b) {
      for (std::int64_t i = a; i < b; ++i) {
        for (std::int64_t c = 0; c < d; ++c) centred[i * d + c] -= mean[c];
      }
      l2_norms(centred.data(), d, a, b, norms.data());
    });
    keys.X = centred.data();
    keys.norms = norms.data();
  }

  Graph g;
  g.k = K;
  g.idx.assign(n * K, -1);
  g.key.assign(n * K, std::numeric_limits<float>::infinity());
  std::vector<std::uint8_t> is_new(n * K, 1);

  // The start. squared_l2: every pair of points that share a leaf of one of the trees is scored
  // and offered to both (each point keeps the K best of the union of its leaves). One tree's
  // leaves alone would be cliques that the join cannot leave; several trees' leaves overlap and
  // link them (with one tree, each point keeps the K / 2 best of its leaf). Then (all metrics)
  // random points fill the lists still short.
  if (keys.squared_l2) {
    const int n_trees = static_cast<int>(trees.size());
    for (const Tree& tr : trees) {
      kernels::parallel_for(static_cast<std::int64_t>(tr.leaves.size()) - 1, 64,
                            [&](std::int64_t a, std::int64_t b) {
        for (std::int64_t l = a; l < b; ++l) {
          join_leaf(keys, g, tr.perm.data() + tr.leaves[l], tr.leaves[l + 1] - tr.leaves[l]);
        }
      });
    }
    if (n_trees == 1) {  // one tree's leaves are cliques: keep the K / 2 best, the rest random
      for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t r = K / 2; r < K; ++r) {
          g.idx[i * K + r] = -1;
          g.key[i * K + r] = std::numeric_limits<float>::infinity();
        }
      }
    }
  }
  kernels::parallel_for(n, 64, [&](std::int64_t a, std::int64_t b) {
    for (std::int64_t i = a; i < b; ++i) {
      std::int32_t* idx = g.idx.data() + i * K;
      for (std::uint64_t t = 0; idx[K - 1] < 0; ++t) {
        std::int64_t j = static_cast<std::int64_t>(hash(seed, kInitStream, i, t) % static_cast<std::uint64_t>(n - 1));
        if (j >= i) ++j;
        const auto q = static_cast<std::int32_t>(j);
        if (std::find(idx, idx + K, q) != idx + K) continue;
        float k;
        keys.to(static_cast<std::int32_t>(i), &q, 1, &k);
        offer(g, static_cast<std::int32_t>(i), q, k);
      }
    }
  });

  std::vector<std::vector<std::int32_t>> new_c(n), old_c(n);
  std::vector<std::int64_t> rev_new_off, rev_old_off;  // reverse candidates, CSR
  std::vector<std::int32_t> rev_new, rev_old;
  std::vector<std::int32_t> group_size(static_cast<std::size_t>(n), 0), touched;
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
    // 2. Reverse candidates, sampled to S, merged with the forward ones.
    const int chunks = std::clamp(kernels::num_threads(), 1, 8);  // a count array [n] each
    reverse_lists(new_c, chunks, rev_new_off, rev_new);
    reverse_lists(old_c, chunks, rev_old_off, rev_old);
    kernels::parallel_for(n, 256, [&](std::int64_t a, std::int64_t b) {
      for (std::int64_t i = a; i < b; ++i) {
        // Both sides hold distinct points; the reverse ones come in increasing order unless
        // sampled.
        auto merge = [&](std::vector<std::int32_t>& list, std::int32_t* rev, std::int64_t m, int r) {
          const std::size_t kept = sample(rev, static_cast<std::size_t>(m), S, seed ^ 0x5eed, r, i);
          if (kept < static_cast<std::size_t>(m)) std::sort(rev, rev + kept);
          std::sort(list.begin(), list.end());
          thread_local std::vector<std::int32_t> both;
          both.resize(list.size() + kept);
          both.resize(static_cast<std::size_t>(
              std::set_union(list.begin(), list.end(), rev, rev + kept, both.begin()) - both.begin()));
          list.assign(both.begin(), both.end());
        };
        merge(new_c[i], rev_new.data() + rev_new_off[i], rev_new_off[i + 1] - rev_new_off[i], 2 * round);
        merge(old_c[i], rev_old.data() + rev_old_off[i], rev_old_off[i + 1] - rev_old_off[i], 2 * round + 1);
      }
    });

    // 3. Local joins, block by block; 4. the block's proposals applied as a set.
    std::int64_t updates = 0;
    std::vector<std::vector<Proposal>> found(static_cast<std::size_t>(std::min(n, kJoinBlock)));
    std::vector<Proposal> all;
    for (std::int64_t v0 = 0; v0 < n; v0 += kJoinBlock) {
      const std::int64_t bv = std::min(kJoinBlock, n - v0);
      // Chunks of points to whichever thread is free (each point's proposals are its own).
      constexpr std::int64_t kJoinChunk = 64;
      kernels::parallel_tasks((bv + kJoinChunk - 1) / kJoinChunk, [&](std::int64_t c) {
        join_range(keys, g, new_c, old_c, v0, c * kJoinChunk, std::min(bv, (c + 1) * kJoinChunk),
                   found);
      });
      // Grouped by target (a counting sort, targets in order of first proposal: the groups are
      // independent, so any fixed order of them will do), then each group sorted by (key,
      // source) and applied, in parallel.
      touched.clear();
      std::size_t total = 0;
      for (std::int64_t t = 0; t < bv; ++t) {
        for (const Proposal& pr : found[t]) {
          if (group_size[pr.target]++ == 0) touched.push_back(pr.target);
        }
        total += found[t].size();
      }
      std::vector<std::size_t> starts(touched.size() + 1, 0);
      for (std::size_t t = 0; t < touched.size(); ++t) {
        starts[t + 1] = starts[t] + group_size[touched[t]];
        group_size[touched[t]] = static_cast<std::int32_t>(t);  // now: its group
      }
      std::vector<std::size_t> fill(starts.begin(), starts.end() - 1);
      all.resize(total);
      for (std::int64_t t = 0; t < bv; ++t) {
        for (const Proposal& pr : found[t]) all[fill[group_size[pr.target]]++] = pr;
      }
      for (std::int32_t target : touched) group_size[target] = 0;
      std::vector<std::int64_t> changed(touched.size(), 0);
      kernels::parallel_for(static_cast<std::int64_t>(touched.size()), 64,
                            [&](std::int64_t a, std::int64_t b) {
        for (std::int64_t grp = a; grp < b; ++grp) {
          std::sort(all.begin() + static_cast<std::ptrdiff_t>(starts[grp]),
                    all.begin() + static_cast<std::ptrdiff_t>(starts[grp + 1]), proposal_less);
          for (std::size_t p = starts[grp]; p < starts[grp + 1]; ++p) {
            const Proposal& pr = all[p];
            if (!closer_entry(pr.key, pr.source, g.worst_key(pr.target), g.worst_idx(pr.target))) {
              break;  // sorted: no more
            }
            if (offer(g, pr.target, pr.source, pr.key, is_new.data())) ++changed[grp];
          }
        }
      });
      for (std::int64_t c : changed) updates += c;
    }
    if (static_cast<double>(updates) < options.delta * static_cast<double>(n * K)) break;
  }
  if (rounds_out) *rounds_out = rounds;

  // Exact values of the final neighbours, in the metric's units, closest first.
  KnnGraph out = KnnGraph::sized(n, K, metric);
  kernels::parallel_for(n, 256, [&](std::int64_t a, std::int64_t b) {
    std::vector<std::pair<double, std::int64_t>> row(K);
    for (std::int64_t t = a; t < b; ++t) {  // t: the join's number, i: the point's row of x
      const std::int64_t i = perm.empty() ? t : perm[t];
      for (std::int64_t r = 0; r < K; ++r) {
        const std::int64_t j = perm.empty() ? g.idx[t * K + r] : perm[g.idx[t * K + r]];
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
  // A value beyond float (sqeuclidean or dot of vectors scaled by ~1e20) would tie with the
  // others: refused as FlatIndex refuses it (search::check_values).
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t r = 0; r < K; ++r) {
      const float v = out.values[i * K + r];
      MMEMBED_CHECK(std::isfinite(v), InvalidArgument, "NN-descent: point row ", i,
                    " and point row ", out.indices[i * K + r], ": the ",
                    kernels::metric_name(metric.metric), " value is ", v > 0 ? "above " : "below -",
                    std::numeric_limits<float>::max(),
                    ", beyond float32's range; scale the vectors down, or use a metric that grows "
                    "less with their scale (euclidean, cosine)");
    }
  }
  return out;
}

NNDescentIndex::NNDescentIndex(const float* x, std::int64_t n, std::int64_t d,
                               const kernels::MetricSpec& metric, const NNDescentOptions& options)
    : n_(n), dim_(d), metric_(metric), internal_(metric), options_(options) {
  graph_ = nn_descent_graph(x, n, d, metric, options, &rounds_);  // checks the arguments
  // Squared distances order as distances without a square root per key, but overflow float
  // for data beyond ~1e19 (issue #18): then the keys stay distances.
  float max_abs = 0.0f;
  for (std::int64_t e = 0; e < n * d; ++e) max_abs = std::max(max_abs, std::fabs(x[e]));
  if (metric.metric == kernels::Metric::Euclidean && max_abs <= 0x1p40f) {
    internal_.metric = kernels::Metric::SqEuclidean;
  }
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
  KnnGraph g = KnnGraph::sized(n_, k, metric_);
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
