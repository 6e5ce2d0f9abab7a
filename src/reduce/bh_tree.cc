#include "reduce/bh_tree.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "kernels/vectorize.h"

namespace mmembed::reduce {
namespace {

// A leaf holds up to this many points: cheaper to sum them directly than to descend further,
// and the group that shares one interaction list in leaf_repulsion.
constexpr std::int32_t kLeafSize = 8;
// Points per group in group_repulsion (at most).
constexpr std::int32_t kGroupSize = 32;
constexpr int kLanes = 8;

// For each of nq queries q [nq, D]: z[t] = sum_j m_j w_tj and f[t * D + c] = sum_j m_j w_tj^2
// (q_t - x_j)_c over the list x [D][m] (coordinate-major), masses mass[m], with
// w = 1 / (1 + |q - x_j|^2). kLanes independent accumulators, combined in a fixed order, so the
// compiler may vectorize without reassociating anything.
template <int D>
inline __attribute__((always_inline)) void sum_list(const double* q, std::int64_t nq,
                                                    const double* x, const double* mass,
                                                    std::int64_t m, double* f, double* z) {
  for (std::int64_t t = 0; t < nq; ++t) {
    double az[kLanes] = {}, af[D][kLanes] = {};
    std::int64_t j = 0;
    for (; j + kLanes <= m; j += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        double d2 = 0, dx[D];
        for (int c = 0; c < D; ++c) {
          dx[c] = q[t * D + c] - x[c * m + j + l];
          d2 += dx[c] * dx[c];
        }
        const double w = 1.0 / (1.0 + d2);
        const double mw = mass[j + l] * w;
        az[l] += mw;
        for (int c = 0; c < D; ++c) af[c][l] += mw * w * dx[c];
      }
    }
    for (int l = 0; j < m; ++j, ++l) {
      double d2 = 0, dx[D];
      for (int c = 0; c < D; ++c) {
        dx[c] = q[t * D + c] - x[c * m + j];
        d2 += dx[c] * dx[c];
      }
      const double w = 1.0 / (1.0 + d2);
      const double mw = mass[j] * w;
      az[l] += mw;
      for (int c = 0; c < D; ++c) af[c][l] += mw * w * dx[c];
    }
    double zs = 0;
    for (int l = 0; l < kLanes; ++l) zs += az[l];
    z[t] = zs;
    for (int c = 0; c < D; ++c) {
      double fs = 0;
      for (int l = 0; l < kLanes; ++l) fs += af[c][l];
      f[t * D + c] = fs;
    }
  }
}

MMEMBED_TARGET_CLONES void sum_list_1(const double* q, std::int64_t nq, const double* x,
                                      const double* mass, std::int64_t m, double* f, double* z) {
  sum_list<1>(q, nq, x, mass, m, f, z);
}
MMEMBED_TARGET_CLONES void sum_list_2(const double* q, std::int64_t nq, const double* x,
                                      const double* mass, std::int64_t m, double* f, double* z) {
  sum_list<2>(q, nq, x, mass, m, f, z);
}
MMEMBED_TARGET_CLONES void sum_list_3(const double* q, std::int64_t nq, const double* x,
                                      const double* mass, std::int64_t m, double* f, double* z) {
  sum_list<3>(q, nq, x, mass, m, f, z);
}
// Cells stop splitting at this depth (duplicates and near-duplicates share a leaf).
constexpr int kMaxDepth = 40;

}  // namespace

template <int D>
BhTree<D>::BhTree(const double* y, std::int64_t n) : n_(n) {
  MMEMBED_ASSERT(n >= 1 && n < std::numeric_limits<std::int32_t>::max());
  order_.resize(n);
  for (std::int64_t i = 0; i < n; ++i) order_[i] = i;
  std::array<double, D> lo, hi;
  for (int c = 0; c < D; ++c) lo[c] = hi[c] = y[c];
  for (std::int64_t i = 0; i < n; ++i) {
    for (int c = 0; c < D; ++c) {
      lo[c] = std::min(lo[c], y[i * D + c]);
      hi[c] = std::max(hi[c], y[i * D + c]);
    }
  }
  double side = 0;
  for (int c = 0; c < D; ++c) side = std::max(side, hi[c] - lo[c]);
  // A little slack so that the largest coordinate falls strictly inside the root cell.
  side = side > 0 ? side * (1 + 1e-9) + std::numeric_limits<double>::min() : 1.0;
  pts_.assign(y, y + n * D);
  scratch_.resize(n * D);
  scratch_idx_.resize(n);
  nodes_.reserve(2 * n / kLeafSize + 16);
  build(0, static_cast<std::int32_t>(n), lo, side, 0);
  pos_.resize(n);
  for (std::int64_t p = 0; p < n; ++p) pos_[order_[p]] = static_cast<std::int32_t>(p);
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(nodes_.size());) {
    if (nodes_[i].end - nodes_[i].begin <= kGroupSize || nodes_[i].leaf) {
      groups_.push_back(i);
      i = nodes_[i].next;
    } else {
      ++i;
    }
  }
  std::vector<double>().swap(scratch_);
  std::vector<std::int64_t>().swap(scratch_idx_);
}

template <int D>
void BhTree<D>::build(std::int32_t begin, std::int32_t end, std::array<double, D> lo,
                      double side, int depth) {
  const std::int32_t index = static_cast<std::int32_t>(nodes_.size());
  nodes_.push_back({});
  std::array<double, D> com{};
  for (std::int32_t p = begin; p < end; ++p) {
    for (int c = 0; c < D; ++c) com[c] += pts_[p * D + c];
  }
  const double count = end - begin;
  for (int c = 0; c < D; ++c) com[c] /= count;
  const bool leaf = end - begin <= kLeafSize || depth >= kMaxDepth;
  nodes_[index] = Node{com, side * side, begin, end, 0, leaf};
  if (!leaf) {
    constexpr int kChildren = 1 << D;
    const double half = side / 2;
    std::array<std::int32_t, kChildren + 1> start{};
    auto child_of = [&](std::int32_t p) {
      int code = 0;
      for (int c = 0; c < D; ++c) code |= (pts_[p * D + c] >= lo[c] + half ? 1 : 0) << c;
      return code;
    };
    for (std::int32_t p = begin; p < end; ++p) ++start[child_of(p) + 1];
    for (int q = 0; q < kChildren; ++q) start[q + 1] += start[q];
    std::array<std::int32_t, kChildren> fill{};
    for (std::int32_t p = begin; p < end; ++p) {  // stable counting sort into scratch
      const int q = child_of(p);
      const std::int32_t to = begin + start[q] + fill[q]++;
      for (int c = 0; c < D; ++c) scratch_[to * D + c] = pts_[p * D + c];
      scratch_idx_[to] = order_[p];
    }
    std::copy(scratch_.begin() + begin * D, scratch_.begin() + end * D, pts_.begin() + begin * D);
    std::copy(scratch_idx_.begin() + begin, scratch_idx_.begin() + end, order_.begin() + begin);
    for (int q = 0; q < kChildren; ++q) {
      if (start[q + 1] == start[q]) continue;
      std::array<double, D> child_lo = lo;
      for (int c = 0; c < D; ++c) {
        if (q & (1 << c)) child_lo[c] += half;
      }
      build(begin + start[q], begin + start[q + 1], child_lo, half, depth + 1);
    }
  }
  nodes_[index].next = static_cast<std::int32_t>(nodes_.size());
}

template <int D>
double BhTree<D>::repulsion(const double* q, std::int64_t self, double theta2, double* force) const {
  const std::int32_t spos = self >= 0 ? pos_[self] : -1;
  std::array<double, D> f{};
  double z = 0;
  const std::int32_t count = static_cast<std::int32_t>(nodes_.size());
  const Node* nodes = nodes_.data();
  std::int32_t i = 0;
  while (i < count) {
    const Node& node = nodes[i];
    const bool holds_self = spos >= node.begin && spos < node.end;
    std::array<double, D> dx;
    double d2 = 0;
    for (int c = 0; c < D; ++c) {
      dx[c] = q[c] - node.com[c];
      d2 += dx[c] * dx[c];
    }
    if (!holds_self && node.side2 < theta2 * d2) {
      const double w = 1.0 / (1.0 + d2);
      const double m = node.end - node.begin;
      z += m * w;
      const double mw2 = m * w * w;
      for (int c = 0; c < D; ++c) f[c] += mw2 * dx[c];
      i = node.next;
    } else if (node.leaf) {
      for (std::int32_t p = node.begin; p < node.end; ++p) {
        if (p == spos) continue;
        double e2 = 0;
        std::array<double, D> e;
        for (int c = 0; c < D; ++c) {
          e[c] = q[c] - pts_[p * D + c];
          e2 += e[c] * e[c];
        }
        const double w = 1.0 / (1.0 + e2);
        z += w;
        for (int c = 0; c < D; ++c) f[c] += w * w * e[c];
      }
      i = node.next;
    } else {
      ++i;
    }
  }
  for (int c = 0; c < D; ++c) force[c] += f[c];
  return z;
}

template <int D>
void BhTree<D>::group_repulsion(std::int64_t g, double theta2, double* force, double* z,
                                std::vector<double>& scratch) const {
  const Node& group = nodes_[groups_[g]];
  const std::int32_t gb = group.begin, ge = group.end, gn = ge - gb;
  std::array<double, D> lo, hi;
  for (int c = 0; c < D; ++c) lo[c] = hi[c] = pts_[gb * D + c];
  for (std::int32_t p = gb; p < ge; ++p) {
    for (int c = 0; c < D; ++c) {
      lo[c] = std::min(lo[c], pts_[p * D + c]);
      hi[c] = std::max(hi[c], pts_[p * D + c]);
    }
  }
  // The interaction list, coordinate-major: scratch = [x_0 (cap) | .. | x_{D-1} (cap) | mass (cap)].
  std::int64_t cap = std::max<std::int64_t>(256, static_cast<std::int64_t>(scratch.size()) / (D + 1));
  scratch.resize((D + 1) * cap);
  std::int64_t m = 0;
  auto push = [&](const double* x, double mass) {
    if (m == cap) {  // grow, keeping the coordinate-major layout
      std::vector<double> bigger((D + 1) * cap * 2);
      for (int c = 0; c <= D; ++c) std::copy_n(scratch.data() + c * cap, m, bigger.data() + c * cap * 2);
      scratch.swap(bigger);
      cap *= 2;
    }
    for (int c = 0; c < D; ++c) scratch[c * cap + m] = x[c];
    scratch[D * cap + m] = mass;
    ++m;
  };
  const std::int32_t count = static_cast<std::int32_t>(nodes_.size());
  std::int32_t i = 0;
  while (i < count) {
    const Node& node = nodes_[i];
    if (node.begin <= gb && ge <= node.end) {  // the group itself or one of its ancestors
      i = node.begin == gb && node.end == ge ? node.next : i + 1;
      continue;
    }
    double d2 = 0;
    for (int c = 0; c < D; ++c) {
      const double below = lo[c] - node.com[c], above = node.com[c] - hi[c];
      const double gap = below > 0 ? below : (above > 0 ? above : 0.0);
      d2 += gap * gap;
    }
    if (node.side2 < theta2 * d2) {
      push(node.com.data(), static_cast<double>(node.end - node.begin));
      i = node.next;
    } else if (node.leaf) {
      for (std::int32_t p = node.begin; p < node.end; ++p) push(pts_.data() + p * D, 1.0);
      i = node.next;
    } else {
      ++i;
    }
  }
  // Each group point's sums over the list (queries: contiguous in tree order).
  double f[D * 64], zg[64];
  const double* q = pts_.data() + gb * D;
  for (std::int32_t t0 = 0; t0 < gn; t0 += 64) {
    const std::int32_t nq = std::min<std::int32_t>(64, gn - t0);
    // Gather the list into [D + 1][m] (contiguous) for the kernel.
    if (t0 == 0 && cap != m) {
      for (int c = 1; c <= D; ++c) std::copy_n(scratch.data() + c * cap, m, scratch.data() + c * m);
      cap = m;
    }
    const double* list = scratch.data();
    if constexpr (D == 1) sum_list_1(q + t0 * D, nq, list, list + D * m, m, f, zg);
    if constexpr (D == 2) sum_list_2(q + t0 * D, nq, list, list + D * m, m, f, zg);
    if constexpr (D == 3) sum_list_3(q + t0 * D, nq, list, list + D * m, m, f, zg);
    for (std::int32_t t = t0; t < t0 + nq; ++t) {
      const std::int64_t orig = order_[gb + t];
      z[orig] = zg[t - t0];
      for (int c = 0; c < D; ++c) force[orig * D + c] = f[(t - t0) * D + c];
    }
  }
  // The group's own points, each skipping itself.
  for (std::int32_t t = 0; t < gn; ++t) {
    const std::int64_t orig = order_[gb + t];
    double zt = 0;
    std::array<double, D> ft{};
    for (std::int32_t u = 0; u < gn; ++u) {
      if (u == t) continue;
      double e2 = 0;
      std::array<double, D> e;
      for (int c = 0; c < D; ++c) {
        e[c] = q[t * D + c] - q[u * D + c];
        e2 += e[c] * e[c];
      }
      const double w = 1.0 / (1.0 + e2);
      zt += w;
      for (int c = 0; c < D; ++c) ft[c] += w * w * e[c];
    }
    z[orig] += zt;
    for (int c = 0; c < D; ++c) force[orig * D + c] += ft[c];
  }
}

template class BhTree<1>;
template class BhTree<2>;
template class BhTree<3>;

}  // namespace mmembed::reduce
