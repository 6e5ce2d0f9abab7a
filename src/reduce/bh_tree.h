// Barnes–Hut space-partitioning tree (quad-tree in 2-D, binary in 1-D, oct-tree in 3-D) for the
// repulsive forces of t-SNE.
//
//   reduce::BhTree<2> tree(y, n);                       // y [n, 2] row-major, copied
//   double f[2] = {0, 0};
//   double z = tree.repulsion(y + 2 * i, i, 0.25, f);   // theta^2 = 0.25; i excluded
//   // f = sum_{j != i} w_ij^2 (y_i - y_j),  z = sum_{j != i} w_ij,  w_ij = 1 / (1 + |y_i - y_j|^2)
//
// Construction is serial and depends only on the points, so the tree and every query are
// deterministic. A cell is summarized by its centre of mass when side^2 < theta^2 * dist^2
// (dist from the query to the centre of mass), the criterion of van der Maaten (2014) and
// openTSNE; a cell holding the query point itself is always opened, so the query is excluded
// exactly. theta = 0 opens every cell: the sums are then exact (only the summation order
// differs from a plain loop).
//
// Layout: nodes in depth-first order, each with the index of the node after its subtree, so a
// query walks an array without a stack; points are stored in tree order (cache-friendly leaves).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace mmembed::reduce {

template <int D>
class BhTree {
 public:
  static_assert(D >= 1 && D <= 3, "BhTree supports 1 to 3 dimensions");

  // y [n, D] row-major, finite. n >= 1.
  BhTree(const double* y, std::int64_t n);

  // Adds sum_{j != self} w^2 (q - y_j) to force[0..D) and returns sum_{j != self} w, with
  // w = 1 / (1 + |q - y_j|^2) (summarized cells count as `count` points at their centre of mass).
  // self: the index of q among the tree's points, or -1 for an outside query.
  double repulsion(const double* q, std::int64_t self, double theta2, double* force) const;

  // The same sums for every point of one group at once (Barnes 1990's grouping). A group is a
  // largest subtree of at most 32 points; the groups cover the points in tree order. One walk
  // per group collects an interaction list of cells and points, a cell accepted by the distance
  // from the group's bounding box to its centre of mass (so the criterion holds for every point
  // of the group: at least as accurate as the per-point walk); each point then sums the list,
  // and the group's own other points exactly, in a fixed order. Writes force[i * D + c] and z[i]
  // for the group's points i (original indices). Distinct groups write distinct entries, so
  // groups may run on different threads.
  std::int64_t group_count() const { return static_cast<std::int64_t>(groups_.size()); }
  // The tree position of a group's first point (increasing with the group number).
  std::int64_t group_first(std::int64_t group) const { return nodes_[groups_[group]].begin; }
  void group_repulsion(std::int64_t group, double theta2, double* force, double* z,
                       std::vector<double>& scratch) const;

  std::int64_t size() const { return n_; }
  std::int64_t node_count() const { return static_cast<std::int64_t>(nodes_.size()); }
  // Points in tree order: order()[pos] is the original index of the pos-th stored point.
  const std::vector<std::int64_t>& order() const { return order_; }

 private:
  struct Node {
    std::array<double, D> com;  // centre of mass
    double side2;               // squared side of the cell
    std::int32_t begin, end;    // stored points [begin, end)
    std::int32_t next;          // the node after this subtree
    bool leaf;
  };
  void build(std::int32_t begin, std::int32_t end, std::array<double, D> lo, double side, int depth);

  std::int64_t n_ = 0;
  std::vector<Node> nodes_;
  std::vector<double> pts_;            // [n, D] in tree order
  std::vector<std::int64_t> order_;    // tree position -> original index
  std::vector<std::int32_t> pos_;      // original index -> tree position
  std::vector<std::int32_t> groups_;   // node indices of the groups' roots, in tree order
  std::vector<double> scratch_;
  std::vector<std::int64_t> scratch_idx_;
};

extern template class BhTree<1>;
extern template class BhTree<2>;
extern template class BhTree<3>;

}  // namespace mmembed::reduce
