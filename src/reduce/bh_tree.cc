#include "reduce/bh_tree.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace mmembed::reduce {
namespace {

// A leaf holds up to this many points: cheaper to sum them directly than to descend further.
constexpr std::int32_t kLeafSize = 4;
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

template class BhTree<1>;
template class BhTree<2>;
template class BhTree<3>;

}  // namespace mmembed::reduce
