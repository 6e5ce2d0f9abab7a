// Approximate kNN graph by NN-descent (Dong, Moses & Li 2011): start from random neighbours and
// repeatedly let each point's neighbours meet ("a neighbour of my neighbour is likely my
// neighbour"), keeping the k best seen. The one NN-descent of the project: search::make_knn
// (search, t-SNE) and UMAP's graph (nn_descent_graph) run it.
//
//   search::NNDescentOptions opt;  opt.n_neighbors = 15;  opt.seed = 7;
//   search::NNDescentIndex index(x, n, d, {kernels::Metric::Cosine}, opt);
//   search::KnnGraph g = index.graph(15);
//   search::KnnGraph h = search::nn_descent_graph(x, n, d, {kernels::Metric::Euclidean}, opt);
//
// The inner loop (the local join) compares float32 keys, smaller is closer, with 32-bit indices:
//  - Euclidean and SqEuclidean: squared distances; Cosine and CosineDistance: squared distances
//    of the unit-normalised rows (2 - 2 cos, the same order). Computed as |p|^2 + |q|^2 - 2 p.q
//    on a float copy of the rows centred on their mean (so the cancellation is that of
//    distances to the data's centre, not to the origin), dot products in 4 x 4 tiles over 16
//    float lanes (AVX-512 / AVX2 / baseline clones): each row loaded once per tile for four
//    partners; a pair's key is the same bits whatever tile computes it. The points are first
//    renumbered in the leaf order of a random-projection tree (seeded hyperplanes halfway
//    between two of a node's points; through the origin for the cosine metrics), so a block
//    of the join reads rows close in the tree (cache hits). Each point starts from the k best
//    of the union of its leaves in n_trees such trees (every pair sharing a leaf scored once,
//    by tiles; one tree's leaves alone would be cliques, so with n_trees = 1 the k / 2 best of
//    its leaf plus random points). A better start than random needs fewer rounds: on the
//    50,000-point mixture of bench/reduce, 4 trees take 10 rounds and ~20% less time than 1;
//  - every other metric (Dot, Manhattan, Minkowski, Chebyshev): kernels::distance, as a
//    closeness key (Dot negated), on x in its own order from random neighbours.
// The values handed back are recomputed exactly (kernels::distance) for the k final neighbours
// of every point, which are then sorted by them (ties by index).
//
// Deterministic by construction: every random choice is a hash of (seed, round, point), and
// the updates of a round are gathered, grouped by target, sorted and applied as a set (the k
// best of a set do not depend on the order in which they are found), in blocks of fixed size;
// so the graph is the same bits for a given seed on any thread count. search() walks the graph
// (best-first, from fixed entry points) and is approximate too.
#pragma once

#include <cstdint>
#include <vector>

#include "search/knn.h"

namespace mmembed::search {

struct NNDescentOptions {
  std::int64_t n_neighbors = 15;     // k of the graph built
  std::int64_t max_candidates = 0;   // per point and round; 0: max(n_neighbors, 20)
  int max_rounds = 20;
  int n_trees = 4;                   // random-projection trees whose leaves give the start
                                     // (Euclidean and cosine metrics; >= 1)
  double delta = 0.001;              // stop when fewer than delta * n * k entries change
  std::uint64_t seed = 42;
  std::int64_t search_ef = 0;        // beam width of search(); 0: max(2 k, 32). search() also
                                     // scores max(64, 4 sqrt(n)) fixed entry points first
};

// The NN-descent graph of x [n, d] (not copied, no index kept): n_neighbors other points per
// point (self excluded), values in the metric's units (Cosine, Dot: similarities), closest
// first. Needs d >= 1, 1 <= n_neighbors < n, n < 2^31, a valid metric, finite rows (non-zero for
// the cosine metrics); else InvalidArgument. *rounds (if given): the rounds run.
KnnGraph nn_descent_graph(const float* x, std::int64_t n, std::int64_t d,
                          const kernels::MetricSpec& metric, const NNDescentOptions& options = {},
                          int* rounds = nullptr);

class NNDescentIndex final : public Knn {
 public:
  // Copies x [n, d]; needs what nn_descent_graph needs.
  NNDescentIndex(const float* x, std::int64_t n, std::int64_t d,
                 const kernels::MetricSpec& metric, const NNDescentOptions& options = {});

  std::int64_t size() const override { return n_; }
  std::int64_t dim() const override { return dim_; }
  const kernels::MetricSpec& metric() const override { return metric_; }
  // Rounds run: for tests and logs.
  int rounds() const { return rounds_; }

  void search(const float* queries, std::int64_t nq, std::int64_t k, std::int64_t* labels,
              float* values) const override;
  // k <= options.n_neighbors: the first k of the graph built.
  KnnGraph graph(std::int64_t k) const override;

 private:
  float key(const float* a, const float* b) const;  // smaller is closer
  float value_of_key(float key) const;

  std::int64_t n_, dim_;
  kernels::MetricSpec metric_;
  kernels::MetricSpec internal_;  // search(): Euclidean runs as SqEuclidean (same order, no sqrt)
  NNDescentOptions options_;
  std::vector<float> data_;
  KnnGraph graph_;                                    // [n, n_neighbors]
  std::vector<std::vector<std::int64_t>> adjacency_;  // graph + reverse edges, for search
  int rounds_ = 0;
};

}  // namespace mmembed::search
