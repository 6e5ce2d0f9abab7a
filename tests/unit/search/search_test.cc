// Exact (flat) search against a brute-force reference; NN-descent against exact (recall);
// determinism across seeds and thread counts; errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <random>
#include <set>
#include <vector>

#include "test_support.h"
#include "kernels/gemm.h"
#include "kernels/distance.h"
#include "io/matrix.h"
#include "kernels/parallel.h"
#include "mmembed/error.h"
#include "search/flat_index.h"
#include "search/knn.h"
#include "search/nn_descent.h"

namespace mmembed::search {
namespace {

using kernels::Metric;
using kernels::MetricSpec;

std::vector<float> integer_points(std::int64_t n, std::int64_t d, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> x(n * d);
  for (float& v : x) v = static_cast<float>(static_cast<int>(rng() % 7) - 3);
  return x;
}

// Gaussian clusters: centres N(0, 4^2), points N(centre, 1).
std::vector<float> clustered(std::int64_t n, std::int64_t d, int clusters, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> centres(clusters * d), x(n * d);
  for (float& c : centres) c = 4.0f * g(rng);
  for (std::int64_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng() % clusters);
    for (std::int64_t j = 0; j < d; ++j) x[i * d + j] = centres[c * d + j] + g(rng);
  }
  return x;
}

// Reference: kernels::ref distances in double, ordered by (closeness, index).
void brute_force(const MetricSpec& spec, const float* data, std::int64_t n, const float* q,
                 std::int64_t nq, std::int64_t d, std::int64_t k, bool exclude_self,
                 std::vector<std::int64_t>& labels, std::vector<double>& values) {
  labels.assign(nq * k, -1);
  values.assign(nq * k, NAN);
  for (std::int64_t i = 0; i < nq; ++i) {
    std::vector<std::pair<double, std::int64_t>> all;
    for (std::int64_t j = 0; j < n; ++j) {
      if (exclude_self && i == j) continue;
      all.push_back({kernels::closeness_key(spec.metric,
                                            kernels::ref::distance(spec, q + i * d, data + j * d, d)), j});
    }
    std::sort(all.begin(), all.end());
    for (std::int64_t r = 0; r < k && r < static_cast<std::int64_t>(all.size()); ++r) {
      labels[i * k + r] = all[r].second;
      values[i * k + r] = kernels::higher_is_closer(spec.metric) ? -all[r].first : all[r].first;
    }
  }
}

const std::vector<MetricSpec> kSpecs = {
    {Metric::Cosine}, {Metric::CosineDistance}, {Metric::Euclidean}, {Metric::SqEuclidean},
    {Metric::Dot},    {Metric::Manhattan},      {Metric::Minkowski, 3.0}, {Metric::Chebyshev}};

// Integer coordinates: every distance except cosine and Minkowski is exact in float, so ties are
// common and the labels must equal the reference's exactly (ties by lower index).
TEST(FlatIndex, MatchesBruteForceWithTies) {
  const std::int64_t n = 300, nq = 37, d = 9, k = 12;
  auto data = integer_points(n, d, 1), q = integer_points(nq, d, 2);
  for (const MetricSpec& spec : kSpecs) {
    FlatIndex index(d, spec);
    index.add(data.data(), 100);
    index.add(data.data() + 100 * d, n - 100);
    std::vector<std::int64_t> labels(nq * k), want_labels;
    std::vector<float> values(nq * k);
    std::vector<double> want_values;
    index.search(q.data(), nq, k, labels.data(), values.data());
    brute_force(spec, data.data(), n, q.data(), nq, d, k, false, want_labels, want_values);
    const bool exact = spec.metric != Metric::Cosine && spec.metric != Metric::CosineDistance &&
                       spec.metric != Metric::Minkowski;
    for (std::int64_t i = 0; i < nq * k; ++i) {
      EXPECT_NEAR(values[i], want_values[i], 1e-5 * std::fabs(want_values[i]) + 1e-6)
          << kernels::metric_name(spec.metric) << " entry " << i;
      if (exact) {
        EXPECT_EQ(labels[i], want_labels[i]) << kernels::metric_name(spec.metric) << " entry " << i;
      }
    }
    if (!exact) {  // values close; labels may differ only inside near-ties
      for (std::int64_t i = 0; i < nq * k; ++i) {
        if (labels[i] != want_labels[i]) {
          EXPECT_NEAR(values[i], want_values[i], 1e-5) << kernels::metric_name(spec.metric);
        }
      }
    }
  }
}

TEST(FlatIndex, GraphExcludesSelfAndKeepsDuplicates) {
  const std::int64_t d = 4;
  std::vector<float> x = {0, 0, 0, 1,  5, 5, 5, 5,  0, 0, 0, 1,  1, 0, 0, 1,  9, 9, 9, 9};
  FlatIndex index(d, {Metric::Euclidean});
  index.add(x.data(), 5);
  KnnGraph g = index.graph(2);
  ASSERT_EQ(g.n, 5);
  EXPECT_EQ(g.neighbours(0)[0], 2);  // the duplicate, at exactly 0
  EXPECT_EQ(g.distances(0)[0], 0.0f);
  EXPECT_EQ(g.neighbours(0)[1], 3);
  EXPECT_EQ(g.neighbours(2)[0], 0);
  EXPECT_EQ(g.neighbours(2)[1], 3);
  for (std::int64_t i = 0; i < 5; ++i) {
    for (std::int64_t r = 0; r < 2; ++r) EXPECT_NE(g.neighbours(i)[r], i);
  }
  // exact graph equals brute force (self excluded) on random data
  auto data = integer_points(200, 6, 9);
  FlatIndex big(6, {Metric::Manhattan});
  big.add(data.data(), 200);
  KnnGraph bg = big.graph(7);
  std::vector<std::int64_t> want;
  std::vector<double> wv;
  brute_force({Metric::Manhattan}, data.data(), 200, data.data(), 200, 6, 7, true, want, wv);
  EXPECT_EQ(bg.indices, want);
}

TEST(FlatIndex, FewerPointsThanKAndEmptyShapes) {
  FlatIndex index(3, {Metric::Cosine});
  std::vector<float> x = {1, 0, 0, 0, 1, 0};
  index.add(x.data(), 2);
  std::vector<std::int64_t> labels(4);
  std::vector<float> values(4);
  float q[3] = {1, 1, 0};
  index.search(q, 1, 4, labels.data(), values.data());
  EXPECT_EQ(labels[0], 0);  // equal similarity: lower index first
  EXPECT_EQ(labels[1], 1);
  EXPECT_NEAR(values[0], std::sqrt(0.5), 1e-6);
  EXPECT_EQ(labels[2], -1);
  EXPECT_TRUE(std::isnan(values[3]));
  index.search(q, 0, 4, labels.data(), values.data());  // no queries: no-op
  FlatIndex empty(3, {Metric::Euclidean});
  empty.search(q, 1, 2, labels.data(), values.data());
  EXPECT_EQ(labels[0], -1);
  EXPECT_EQ(labels[1], -1);
}

TEST(FlatIndex, LargerThanOneBlockMatchesBruteForce) {
  const std::int64_t n = 4500, nq = 300, d = 5, k = 3;  // crosses both block sizes
  auto data = integer_points(n, d, 3), q = integer_points(nq, d, 4);
  FlatIndex index(d, {Metric::SqEuclidean});
  index.add(data.data(), n);
  std::vector<std::int64_t> labels(nq * k), want;
  std::vector<float> values(nq * k);
  std::vector<double> wv;
  index.search(q.data(), nq, k, labels.data(), values.data());
  brute_force({Metric::SqEuclidean}, data.data(), n, q.data(), nq, d, k, false, want, wv);
  EXPECT_EQ(labels, want);
}

TEST(FlatIndex, RejectsBadRows) {
  FlatIndex index(2, {Metric::Cosine});
  std::vector<float> x = {1, 2, 0, 0};
  try {
    index.add(x.data(), 2);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("row 1: all-zero vector has no direction"), std::string::npos) << e.what();
  }
  FlatIndex l2(2, {Metric::Euclidean});
  l2.add(x.data(), 2);  // zero rows are fine for distances
  std::vector<float> bad = {1, NAN};
  try {
    l2.add(bad.data(), 1);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("row 2, column 1: value nan is not finite"), std::string::npos) << e.what();
  }
  std::int64_t label;
  float value;
  bad = {INFINITY, 0};
  EXPECT_THROW(l2.search(bad.data(), 1, 1, &label, &value), InvalidArgument);
  EXPECT_THROW(l2.graph(2), InvalidArgument);  // k must be < size
  EXPECT_THROW(l2.graph(0), InvalidArgument);
  EXPECT_THROW(FlatIndex(2, {Metric::Minkowski, 0.5}), InvalidArgument);
  EXPECT_THROW(FlatIndex(0, {Metric::Euclidean}), InvalidArgument);
}

// Issue #18: at 1e20 every cosine was 1 and `similarity --top` listed wrong neighbours. The
// exact index finds the unscaled vectors' neighbours at any scale (cosine is per-row invariant,
// Euclidean scales as a whole); a value beyond float's range (sqeuclidean or dot of vectors
// scaled by 1e20: ~1e40) is refused naming both rows, since infinities would tie.
TEST(FlatIndex, NeighboursDoNotDependOnTheScale) {
  const std::int64_t n = 60, d = 16, k = 5;
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  std::vector<float> x(n * d);
  for (float& v : x) v = g(rng);
  for (Metric metric : {Metric::Cosine, Metric::Euclidean, Metric::Manhattan}) {
    FlatIndex base(d, {metric});
    base.add(x.data(), n);
    const KnnGraph want = base.graph(k);
    for (double scale : {1e20, 1e-25, 1e30, 1e-30}) {
      std::vector<float> xs(x);
      for (float& v : xs) v = static_cast<float>(v * scale);
      FlatIndex index(d, {metric});
      index.add(xs.data(), n);
      const KnnGraph got = index.graph(k);
      EXPECT_EQ(got.indices, want.indices) << metric_name(metric) << " at " << scale;
    }
  }
  std::vector<float> xs(x);
  for (float& v : xs) v *= 1e20f;
  for (Metric metric : {Metric::SqEuclidean, Metric::Dot}) {
    FlatIndex index(d, {metric});
    index.add(xs.data(), n);
    const std::string msg = testing_support::error_of<InvalidArgument>([&] { index.graph(k); });
    EXPECT_NE(msg.find("kNN graph: point row 0 and point row 1: the "), std::string::npos) << msg;
    EXPECT_NE(msg.find(" value is above 3.40282e+38, beyond float32's range"), std::string::npos)
        << msg;
  }
}

double recall(const KnnGraph& got, const KnnGraph& want) {
  std::int64_t hits = 0;
  for (std::int64_t i = 0; i < want.n; ++i) {
    std::set<std::int64_t> truth(want.neighbours(i), want.neighbours(i) + want.k);
    for (std::int64_t r = 0; r < got.k; ++r) hits += truth.count(got.neighbours(i)[r]);
  }
  return static_cast<double>(hits) / static_cast<double>(want.n * want.k);
}

TEST(NNDescent, RecallAgainstExactOnClusteredPoints) {
  const std::int64_t n = 2000, d = 32, k = 10;
  auto x = clustered(n, d, 20, 11);
  for (const MetricSpec& spec : {MetricSpec{Metric::Euclidean}, MetricSpec{Metric::Cosine},
                                 MetricSpec{Metric::Manhattan}}) {
    FlatIndex exact(d, spec);
    exact.add(x.data(), n);
    NNDescentOptions opt;
    opt.n_neighbors = k;
    opt.seed = 7;
    NNDescentIndex approx(x.data(), n, d, spec, opt);
    const KnnGraph want = exact.graph(k), got = approx.graph(k);
    const double r = recall(got, want);
    std::printf("[ recall  ] %s: recall@%lld = %.4f after %d rounds\n",
                kernels::metric_name(spec.metric), static_cast<long long>(k), r, approx.rounds());
    EXPECT_GE(r, 0.95) << kernels::metric_name(spec.metric);
    // values are the metric's own, in order, and agree with the direct kernel
    for (std::int64_t i = 0; i < n; i += 97) {
      for (std::int64_t t = 0; t < k; ++t) {
        const std::int64_t j = got.neighbours(i)[t];
        EXPECT_NE(j, i);
        EXPECT_NEAR(got.distances(i)[t], kernels::distance(spec, &x[i * d], &x[j * d], d),
                    1e-5 * std::fabs(got.distances(i)[t]) + 1e-6);
      }
    }
    // search for new points walks the graph
    const std::int64_t nq = 200;
    auto q = clustered(nq, d, 20, 11);  // same centres (same seed), other points
    std::vector<std::int64_t> la(nq * k), le(nq * k);
    std::vector<float> va(nq * k), ve(nq * k);
    approx.search(q.data() + 0, nq, k, la.data(), va.data());
    exact.search(q.data(), nq, k, le.data(), ve.data());
    std::int64_t hits = 0;
    for (std::int64_t i = 0; i < nq; ++i) {
      std::set<std::int64_t> truth(le.begin() + i * k, le.begin() + (i + 1) * k);
      for (std::int64_t t = 0; t < k; ++t) hits += truth.count(la[i * k + t]);
    }
    const double sr = static_cast<double>(hits) / (nq * k);
    std::printf("[ recall  ] %s: search recall@%lld = %.4f\n", kernels::metric_name(spec.metric),
                static_cast<long long>(k), sr);
    EXPECT_GE(sr, 0.95);
  }
}

using testing_support::error_of;

// nn_descent_graph (float32 join keys, exact final values) on UMAP's 10-cluster test mixture
// [1000, 16] against exact neighbours from kernels::ref::distance (double, textbook loops), for
// every metric: recall, exact values, order, the same bits on 1 and 2 threads; then errors.
TEST(NNDescent, FindsTheExactNeighboursOfTheMixtureForEveryMetric) {
  const io::Matrix m = io::read_matrix(std::string(MMEMBED_TEST_DATA_DIR) + "/reduce/umap_mixture.npy");
  const std::int64_t n = m.rows, d = m.cols, k = 10;
  ASSERT_EQ(n, 1000);
  const float* x = m.data.data();
  for (const MetricSpec& spec : kSpecs) {
    const Metric metric = spec.metric;
    NNDescentOptions opt;
    opt.n_neighbors = k;
    opt.seed = 5;
    const int before = kernels::num_threads();
    kernels::set_num_threads(1);
    int rounds = 0;
    const KnnGraph g = nn_descent_graph(x, n, d, spec, opt, &rounds);
    kernels::set_num_threads(2);
    const KnnGraph g2 = nn_descent_graph(x, n, d, spec, opt);
    kernels::set_num_threads(before);
    ASSERT_EQ(g.n, n);
    ASSERT_EQ(g.k, k);
    EXPECT_EQ(g.indices, g2.indices) << kernels::metric_name(metric);
    EXPECT_EQ(0, std::memcmp(g.values.data(), g2.values.data(), g.values.size() * sizeof(float)));
    EXPECT_GE(rounds, 1);
    std::int64_t hits = 0;
    std::vector<std::pair<double, std::int64_t>> exact(n);
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        const double v = kernels::ref::distance(spec, x + i * d, x + j * d, d);
        exact[j] = {j == i ? std::numeric_limits<double>::infinity() : kernels::closeness_key(metric, v), j};
      }
      std::partial_sort(exact.begin(), exact.begin() + k, exact.end());
      const double kth = exact[k - 1].first;
      for (std::int64_t r = 0; r < k; ++r) {
        const std::int64_t j = g.neighbours(i)[r];
        ASSERT_TRUE(j >= 0 && j < n && j != i) << "row " << i;
        for (std::int64_t q = 0; q < r; ++q) ASSERT_NE(g.neighbours(i)[q], j) << "row " << i;
        // The value is the exact one of the pair, in the metric's units, closest first.
        const float v = g.distances(i)[r];
        EXPECT_EQ(v, kernels::distance(spec, x + i * d, x + j * d, d)) << "row " << i;
        const double ref = kernels::ref::distance(spec, x + i * d, x + j * d, d);
        EXPECT_NEAR(v, ref, 1e-5 * (1 + std::fabs(ref)));
        if (r > 0) {
          EXPECT_LE(kernels::closeness_key(metric, g.distances(i)[r - 1]), kernels::closeness_key(metric, v));
        }
        // A hit: as close as the exact k-th neighbour (ties count).
        if (kernels::closeness_key(metric, ref) <= kth + 1e-9 * (1 + std::fabs(kth))) ++hits;
      }
    }
    const double recall = static_cast<double>(hits) / static_cast<double>(n * k);
    std::printf("[ exact   ] %s: recall@%lld %.4f in %d rounds\n", kernels::metric_name(metric),
                static_cast<long long>(k), recall, rounds);
    EXPECT_GT(recall, 0.97) << kernels::metric_name(metric);
  }
  NNDescentOptions opt;
  opt.n_neighbors = k;
  EXPECT_NE(error_of<InvalidArgument>([&] { nn_descent_graph(x, 10, d, {Metric::Euclidean}, opt); })
                .find("1 <= n_neighbors < number of points"), std::string::npos);
  EXPECT_NE(error_of<InvalidArgument>([&] { nn_descent_graph(x, n, d, {Metric::Minkowski, 0.5}, opt); })
                .find("p must be >= 1"), std::string::npos);
  std::vector<float> bad(x, x + 50 * d);
  bad[7 * d + 3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(error_of<InvalidArgument>([&] { nn_descent_graph(bad.data(), 50, d, {Metric::Euclidean}, opt); })
                .find("NN-descent: input row 7, column 3"), std::string::npos);
  bad[7 * d + 3] = 1.0f;
  std::fill(bad.begin() + 9 * d, bad.begin() + 10 * d, 0.0f);
  EXPECT_NE(error_of<InvalidArgument>([&] { nn_descent_graph(bad.data(), 50, d, {Metric::Cosine}, opt); })
                .find("NN-descent: input row 9: all-zero vector"), std::string::npos);
  opt.max_rounds = -1;
  EXPECT_NE(error_of<InvalidArgument>([&] { nn_descent_graph(x, n, d, {Metric::Euclidean}, opt); })
                .find("max_rounds and max_candidates must be >= 0"), std::string::npos);
  opt.max_rounds = 20;
  opt.n_trees = 0;
  EXPECT_NE(error_of<InvalidArgument>([&] { nn_descent_graph(x, n, d, {Metric::Euclidean}, opt); })
                .find("n_trees must be >= 1"), std::string::npos);
}

// The start from the leaves of 1, 2 and 6 random-projection trees (4 is the default, tested
// above): recall against the exact neighbours, and the same bits on 1 and 2 threads.
TEST(NNDescent, StartsFromAnyNumberOfTrees) {
  const std::int64_t n = 2000, d = 32, k = 10;
  auto x = clustered(n, d, 20, 11);
  FlatIndex exact(d, {Metric::Euclidean});
  exact.add(x.data(), n);
  const KnnGraph want = exact.graph(k);
  for (int trees : {1, 2, 6}) {
    NNDescentOptions opt;
    opt.n_neighbors = k;
    opt.seed = 3;
    opt.n_trees = trees;
    kernels::set_num_threads(1);
    const KnnGraph a = nn_descent_graph(x.data(), n, d, {Metric::Euclidean}, opt);
    kernels::set_num_threads(2);
    const KnnGraph b = nn_descent_graph(x.data(), n, d, {Metric::Euclidean}, opt);
    kernels::set_num_threads(0);
    EXPECT_EQ(a.indices, b.indices) << trees << " trees";
    const double r = recall(a, want);
    std::printf("[ recall  ] %d trees: recall@%lld = %.4f\n", trees, static_cast<long long>(k), r);
    EXPECT_GE(r, 0.95) << trees << " trees";
  }
}

TEST(NNDescent, SameSeedSameBitsOnAnyThreadCount) {
  const std::int64_t n = 3000, d = 16;
  auto x = clustered(n, d, 10, 5);
  NNDescentOptions opt;
  opt.n_neighbors = 8;
  opt.seed = 99;
  kernels::set_num_threads(1);
  NNDescentIndex a(x.data(), n, d, {Metric::Euclidean}, opt);
  kernels::set_num_threads(2);
  NNDescentIndex b(x.data(), n, d, {Metric::Euclidean}, opt);
  NNDescentIndex c(x.data(), n, d, {Metric::Euclidean}, opt);
  opt.seed = 100;
  NNDescentIndex other(x.data(), n, d, {Metric::Euclidean}, opt);
  kernels::set_num_threads(0);
  const KnnGraph ga = a.graph(8), gb = b.graph(8), gc = c.graph(8), go = other.graph(8);
  EXPECT_EQ(ga.indices, gb.indices);
  EXPECT_EQ(0, std::memcmp(ga.values.data(), gb.values.data(), ga.values.size() * sizeof(float)));
  EXPECT_EQ(gb.indices, gc.indices);
  EXPECT_EQ(a.rounds(), b.rounds());
  EXPECT_NE(ga.indices, go.indices);  // the seed matters (on the approximate part)
  // The index holds nn_descent_graph's graph.
  opt.seed = 99;
  const KnnGraph direct = nn_descent_graph(x.data(), n, d, {Metric::Euclidean}, opt);
  EXPECT_EQ(direct.indices, ga.indices);
  EXPECT_EQ(0, std::memcmp(direct.values.data(), ga.values.data(), ga.values.size() * sizeof(float)));
}

TEST(FlatIndex, SameBitsOnAnyThreadCount) {
  // The pairwise distances come from the GEMM seam; only oneDNN's is thread-count independent.
  if (std::string(kernels::gemm_backend_name()) != "dnnl") {
    GTEST_SKIP() << kernels::gemm_backend_name() << "'s sgemm depends on the thread count";
  }
  const std::int64_t n = 700, d = 40;
  auto x = clustered(n, d, 5, 8);
  for (const MetricSpec& spec : kSpecs) {
    FlatIndex index(d, spec);
    index.add(x.data(), n);
    kernels::set_num_threads(1);
    const KnnGraph a = index.graph(10);
    kernels::set_num_threads(2);
    const KnnGraph b = index.graph(10);
    EXPECT_EQ(a.indices, b.indices) << kernels::metric_name(spec.metric);
    EXPECT_EQ(0, std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)));
  }
  kernels::set_num_threads(0);
}

TEST(NNDescent, RejectsBadOptions) {
  std::vector<float> x = {0, 1, 2, 3, 4, 5};
  NNDescentOptions opt;
  opt.n_neighbors = 3;
  EXPECT_THROW(NNDescentIndex(x.data(), 3, 2, {Metric::Euclidean}, opt), InvalidArgument);
  opt.n_neighbors = 2;
  NNDescentIndex ok(x.data(), 3, 2, {Metric::Euclidean}, opt);
  EXPECT_THROW(ok.graph(3), InvalidArgument);
  EXPECT_EQ(ok.graph(2).neighbours(0)[0], 1);
}

TEST(MakeKnn, ChoosesExactForSmallInputs) {
  auto x = clustered(500, 8, 4, 2);
  auto exact = make_knn(x.data(), 500, 8, {Metric::Euclidean});
  EXPECT_NE(dynamic_cast<FlatIndex*>(exact.get()), nullptr);
  KnnOptions opt;
  opt.method = KnnOptions::Method::NNDescent;
  opt.n_neighbors = 5;
  auto approx = make_knn(x.data(), 500, 8, {Metric::Euclidean}, opt);
  EXPECT_NE(dynamic_cast<NNDescentIndex*>(approx.get()), nullptr);
  EXPECT_GE(recall(approx->graph(5), exact->graph(5)), 0.95);
}

// The join's squared-L2 keys come from norms and dot products of rows centred on the data mean:
// a cloud far from the origin (every coordinate + 1000, distances within it ~1: uncentred float
// dot products would lose them to cancellation) keeps the recall of the same cloud at the
// origin, against brute force (FlatIndex).
TEST(NNDescent, RecallHoldsForPointsFarFromTheOrigin) {
  const std::int64_t n = 2000, d = 24, k = 10;
  auto x = clustered(n, d, 20, 3);
  std::vector<float> far(x);
  for (float& v : far) v += 1000.0f;
  for (const MetricSpec& spec : {MetricSpec{Metric::Euclidean}, MetricSpec{Metric::SqEuclidean}}) {
    NNDescentOptions opt;
    opt.n_neighbors = k;
    opt.seed = 4;
    for (const std::vector<float>* data : {&x, &far}) {
      FlatIndex exact(d, spec);
      exact.add(data->data(), n);
      const KnnGraph got = nn_descent_graph(data->data(), n, d, spec, opt);
      const double r = recall(got, exact.graph(k));
      std::printf("[ far     ] %s, offset %s: recall@%lld = %.4f\n",
                  kernels::metric_name(spec.metric), data == &x ? "0" : "1000",
                  static_cast<long long>(k), r);
      EXPECT_GT(r, 0.97) << kernels::metric_name(spec.metric);
    }
  }
}

// Issue #18: NN-descent's squared-L2 keys and tree hyperplanes are float; vectors scaled by
// 1e20 overflowed them (every key inf: a graph of ties) and by 1e-25 flushed them to 0. A
// power-of-2 scale (exact) now gives the unscaled graph, index for index, for every metric.
TEST(NNDescent, SameGraphAtAnyScale) {
  const std::int64_t n = 800, d = 16, k = 8;
  const auto x = clustered(n, d, 10, 5);
  NNDescentOptions opt;
  opt.n_neighbors = k;
  opt.seed = 9;
  for (Metric m : {Metric::Euclidean, Metric::SqEuclidean, Metric::Cosine, Metric::Manhattan}) {
    const KnnGraph want = nn_descent_graph(x.data(), n, d, {m}, opt);
    for (int e : {70, -80}) {
      std::vector<float> xs(x);
      for (float& v : xs) v = std::ldexp(v, e);
      if (m == Metric::SqEuclidean && e > 0) {  // ~2^140: beyond float32, refused
        const std::string msg = testing_support::error_of<InvalidArgument>(
            [&] { nn_descent_graph(xs.data(), n, d, {m}, opt); });
        EXPECT_NE(msg.find("NN-descent: point row 0 and point row "), std::string::npos) << msg;
        EXPECT_NE(msg.find("the sqeuclidean value is above 3.40282e+38"), std::string::npos)
            << msg;
        continue;
      }
      const KnnGraph got = nn_descent_graph(xs.data(), n, d, {m}, opt);
      if (m == Metric::SqEuclidean && e < 0) {
        // ~2^-160 rounds to 0 in float (documented): the same neighbours, ordered by index.
        for (std::int64_t i = 0; i < n; ++i) {
          std::set<std::int64_t> a(got.neighbours(i), got.neighbours(i) + k);
          std::set<std::int64_t> b(want.neighbours(i), want.neighbours(i) + k);
          EXPECT_EQ(a, b) << "row " << i;
        }
        continue;
      }
      EXPECT_EQ(got.indices, want.indices) << metric_name(m) << " at 2^" << e;
    }
  }
}

}  // namespace
}  // namespace mmembed::search
