// t-SNE: affinities against scikit-learn 1.2 (tests/data/reduce/, made by
// scripts/reference/gen_tsne_ref.py), the gradient against finite differences of the KL and the
// Barnes–Hut sums against exact ones, the optimization's result against sklearn's TSNE on the
// same 10-cluster mixture (trustworthiness, silhouette), transform, determinism, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/matrix.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "mmembed/error.h"
#include "reduce/bh_tree.h"
#include "reduce/quality.h"
#include "reduce/tsne.h"
#include "test_support.h"

namespace mmembed::reduce {
namespace {

using testing_support::error_of;

std::string data_path(const std::string& name) {
  return std::string(MMEMBED_TEST_DATA_DIR) + "/reduce/" + name;
}
nlohmann::json load(const std::string& name) {
  std::ifstream in(data_path(name));
  EXPECT_TRUE(in.good()) << name;
  return nlohmann::json::parse(in);
}
template <typename T>
std::vector<T> vec(const nlohmann::json& j) {
  std::vector<T> v;
  for (const auto& x : j) v.push_back(static_cast<T>(x.get<double>()));
  return v;
}

struct Mixture {
  io::Matrix x;
  std::vector<int> labels;
};
Mixture mixture() {
  Mixture m;
  m.x = io::read_matrix(data_path("tsne_mixture.npy"));
  std::ifstream in(data_path("tsne_mixture_labels.txt"));
  int v;
  while (in >> v) m.labels.push_back(v);
  EXPECT_EQ(static_cast<std::int64_t>(m.labels.size()), m.x.rows);
  return m;
}

// Mean silhouette by label, Euclidean (sklearn.metrics.silhouette_score), in double.
double silhouette(const double* y, std::int64_t n, std::int64_t dim, const std::vector<int>& labels) {
  int n_labels = 0;
  for (int l : labels) n_labels = std::max(n_labels, l + 1);
  double total = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<double> sum(n_labels, 0.0);
    std::vector<int> count(n_labels, 0);
    for (std::int64_t j = 0; j < n; ++j) {
      if (j == i) continue;
      double d2 = 0;
      for (std::int64_t c = 0; c < dim; ++c) d2 += (y[i * dim + c] - y[j * dim + c]) * (y[i * dim + c] - y[j * dim + c]);
      sum[labels[j]] += std::sqrt(d2);
      ++count[labels[j]];
    }
    const int li = labels[i];
    if (count[li] == 0) continue;  // a singleton cluster scores 0
    const double a = sum[li] / count[li];
    double b = INFINITY;
    for (int l = 0; l < n_labels; ++l) {
      if (l != li && count[l] > 0) b = std::min(b, sum[l] / count[l]);
    }
    total += (b - a) / std::max(a, b);
  }
  return total / n;
}

double trust10(const io::Matrix& x, const std::vector<double>& y, std::int64_t dim) {
  std::vector<float> yf(y.begin(), y.end());
  QualityOptions q;
  q.ks = {10};
  return neighbourhood_quality(x.data.data(), x.rows, x.cols, yf.data(), dim, q)[0].trustworthiness;
}

// p_{j|i} and the joint P against sklearn's _binary_search_perplexity and _joint_probabilities_nn.
TEST(Tsne, AffinitiesMatchScikitLearn) {
  const nlohmann::json g = load("tsne_affinities.json");
  const std::int64_t n = g["n"], k = g["k"], d = g["d"];
  const double perplexity = g["perplexity"];
  const auto sq = vec<float>(g["sq_distances"]);
  const auto want = vec<double>(g["conditional_p"]);
  const ConditionalAffinities cond = conditional_affinities(sq.data(), n, k, perplexity);
  double err = 0;
  for (std::int64_t e = 0; e < n * k; ++e) err = std::max(err, std::fabs(cond.p[e] - want[e]));
  // Each row reaches the perplexity (entropy within the tolerance) with its beta.
  double worst_h = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    double h = 0, sum = 0;
    for (std::int64_t r = 0; r < k; ++r) {
      const double p = cond.p[i * k + r];
      sum += p;
      if (p > 0) h -= p * std::log(p);
    }
    EXPECT_NEAR(sum, 1.0, 1e-12);
    EXPECT_GT(cond.beta[i], 0);
    worst_h = std::max(worst_h, std::fabs(h - std::log(perplexity)));
  }
  std::printf("[ sklearn ] conditional p max abs err %.2e, worst entropy miss %.2e\n", err, worst_h);
  EXPECT_LE(err, 1e-6);
  EXPECT_LE(worst_h, 1e-5);

  const auto nb = vec<std::int64_t>(g["neighbours"]);
  const auto rows = vec<std::int64_t>(g["joint"]["rows"]), cols = vec<std::int64_t>(g["joint"]["cols"]);
  const auto vals = vec<double>(g["joint"]["values"]);
  const SparseAffinities p = joint_affinities(nb.data(), cond);
  ASSERT_EQ(p.values.size(), vals.size());
  double jerr = 0;
  for (std::size_t e = 0; e < vals.size(); ++e) {
    ASSERT_LT(rows[e], n);
    ASSERT_TRUE(p.indptr[rows[e]] <= static_cast<std::int64_t>(e) &&
                static_cast<std::int64_t>(e) < p.indptr[rows[e] + 1]);
    ASSERT_EQ(p.indices[e], cols[e]);
    jerr = std::max(jerr, std::fabs(p.values[e] - vals[e]) / vals[e]);
  }
  std::printf("[ sklearn ] joint P max rel err %.2e (%zu entries)\n", jerr, vals.size());
  EXPECT_LE(jerr, 1e-5);

  // The same P from the raw points through Tsne (exact kNN in float, squared).
  const auto x = vec<float>(g["x"]);
  TsneOptions opt;
  opt.perplexity = perplexity;
  const Tsne tsne(x.data(), n, d, opt);
  EXPECT_EQ(tsne.n_neighbors(), k);
  const SparseAffinities& q = tsne.affinities();
  ASSERT_EQ(q.indices, p.indices);
  double terr = 0;
  for (std::size_t e = 0; e < vals.size(); ++e) terr = std::max(terr, std::fabs(q.values[e] - vals[e]) / vals[e]);
  // Float kNN distances move each beta within the entropy tolerance: a looser bound.
  std::printf("[ sklearn ] Tsne's own P max rel err %.2e\n", terr);
  EXPECT_LE(terr, 2e-3);
}

// A spread-out embedding of the mixture for the gradient checks.
struct GradCase {
  SparseAffinities p;
  std::vector<double> y;
};
GradCase gradient_setup(std::int64_t n_points) {
  const Mixture m = mixture();
  TsneOptions opt;
  opt.perplexity = 10;
  opt.n_iter = 100;
  Tsne tsne(m.x.data.data(), n_points, m.x.cols, opt);
  tsne.run();
  return {tsne.affinities(), tsne.embedding()};
}

// The exact gradient is the derivative of the exact KL (central differences).
TEST(Tsne, ExactGradientIsTheDerivativeOfKl) {
  GradCase s = gradient_setup(80);
  const std::int64_t n = s.p.n;
  std::vector<double> grad(n * 2);
  tsne_gradient_exact(s.p, s.y.data(), 2, 1.0, grad.data());
  double worst = 0;
  for (std::int64_t e : {0, 1, 17, 40, 93, 158}) {
    const double h = 1e-5;
    std::vector<double> a = s.y, b = s.y;
    a[e] += h;
    b[e] -= h;
    const double fd = (kl_divergence_exact(s.p, a.data(), 2) - kl_divergence_exact(s.p, b.data(), 2)) / (2 * h);
    worst = std::max(worst, std::fabs(fd - grad[e]) / std::max(1e-3, std::fabs(grad[e])));
  }
  std::printf("[ fd ] gradient vs central differences: worst rel err %.2e\n", worst);
  EXPECT_LE(worst, 1e-5);
}

double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t e = 0; e < a.size(); ++e) {
    num += (a[e] - b[e]) * (a[e] - b[e]);
    den += b[e] * b[e];
  }
  return std::sqrt(num / den);
}

// Barnes–Hut at theta = 0 sums exactly (order aside); at 0.5 it approximates.
TEST(Tsne, BarnesHutAgreesWithExactGradient) {
  GradCase s = gradient_setup(500);
  const std::int64_t n = s.p.n;
  for (double ex : {0.0, 12.0}) {  // 0: the repulsive half alone
    std::vector<double> exact(n * 2), bh0(n * 2), bh5(n * 2);
    const double z = tsne_gradient_exact(s.p, s.y.data(), 2, ex, exact.data());
    const double z0 = tsne_gradient_bh(s.p, s.y.data(), 2, ex, 0.0, bh0.data());
    const double z5 = tsne_gradient_bh(s.p, s.y.data(), 2, ex, 0.5, bh5.data());
    std::printf("[ bh ] ex %.0f: theta 0 rel err %.2e (Z %.3e), theta 0.5 rel err %.2e (Z rel %.2e)\n", ex,
                rel_err(bh0, exact), std::fabs(z0 - z) / z, rel_err(bh5, exact), std::fabs(z5 - z) / z);
    // The optimizer's copy of P is float (6e-8 relative): exact sums up to that when ex > 0.
    EXPECT_LE(rel_err(bh0, exact), ex == 0 ? 1e-12 : 1e-7);
    EXPECT_LE(std::fabs(z0 - z) / z, 1e-12);
    EXPECT_LE(rel_err(bh5, exact), 2e-2);
    EXPECT_LE(std::fabs(z5 - z) / z, 1e-2);
  }
  // 1-D and 3-D trees too.
  for (std::int64_t dim : {1, 3}) {
    std::vector<double> y(n * dim);
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t c = 0; c < dim; ++c) y[i * dim + c] = s.y[i * 2 + c % 2] * (c == 2 ? 0.5 : 1.0) + 0.01 * c;
    }
    std::vector<double> exact(n * dim), bh0(n * dim), bh5(n * dim);
    tsne_gradient_exact(s.p, y.data(), dim, 0.0, exact.data());
    tsne_gradient_bh(s.p, y.data(), dim, 0.0, 0.0, bh0.data());
    tsne_gradient_bh(s.p, y.data(), dim, 0.0, 0.5, bh5.data());
    EXPECT_LE(rel_err(bh0, exact), 1e-12) << dim;
    EXPECT_LE(rel_err(bh5, exact), 5e-2) << dim;
  }
}

// Duplicates share a leaf at the depth limit; queries from outside the tree.
TEST(BhTree, DuplicatesAndOutsideQueries) {
  std::vector<double> y;
  for (int i = 0; i < 40; ++i) y.insert(y.end(), {1.0, -2.0});
  for (int i = 0; i < 25; ++i) y.insert(y.end(), {0.1 * i, 0.3 * (i % 7)});
  const std::int64_t n = static_cast<std::int64_t>(y.size() / 2);
  const BhTree<2> tree(y.data(), n);
  for (std::int64_t self : {std::int64_t{-1}, std::int64_t{0}, std::int64_t{50}}) {
    const double q[2] = {self >= 0 ? y[self * 2] : 0.7, self >= 0 ? y[self * 2 + 1] : -0.4};
    double f[2] = {0, 0}, fe[2] = {0, 0}, ze = 0;
    const double z = tree.repulsion(q, self, 0.0, f);
    for (std::int64_t j = 0; j < n; ++j) {
      if (j == self) continue;
      const double dx = q[0] - y[j * 2], dy = q[1] - y[j * 2 + 1];
      const double w = 1 / (1 + dx * dx + dy * dy);
      ze += w;
      fe[0] += w * w * dx;
      fe[1] += w * w * dy;
    }
    EXPECT_NEAR(z, ze, 1e-12 * ze);
    EXPECT_NEAR(f[0], fe[0], 1e-12 * (std::fabs(fe[0]) + 1));
    EXPECT_NEAR(f[1], fe[1], 1e-12 * (std::fabs(fe[1]) + 1));
  }
  // Grouped walks: every point exactly once, and the same sums as the per-point walk at theta 0
  // (the 40 duplicates form one leaf at the depth limit, a group larger than 32).
  std::vector<double> gf(n * 2, NAN), gz(n, NAN), scratch;
  for (std::int64_t g = 0; g < tree.group_count(); ++g) tree.group_repulsion(g, 0.0, gf.data(), gz.data(), scratch);
  for (std::int64_t i = 0; i < n; ++i) {
    double f[2] = {0, 0};
    const double z = tree.repulsion(y.data() + i * 2, i, 0.0, f);
    EXPECT_NEAR(gz[i], z, 1e-12 * z) << i;
    EXPECT_NEAR(gf[i * 2], f[0], 1e-12 * (std::fabs(f[0]) + 1)) << i;
    EXPECT_NEAR(gf[i * 2 + 1], f[1], 1e-12 * (std::fabs(f[1]) + 1)) << i;
  }
}

// The full run on the 10-cluster mixture: KL goes down; clusters separate (silhouette > 0.5);
// trustworthiness as good as sklearn's TSNE's on the same data (within 0.01).
TEST(Tsne, SeparatesMixtureAsWellAsScikitLearn) {
  const Mixture m = mixture();
  const nlohmann::json g = load("tsne_mixture.json");
  // The silhouette helper reproduces sklearn's value on sklearn's embedding.
  const auto y_sk = vec<double>(g["embedding"]);
  const double sil_sk = silhouette(y_sk.data(), m.x.rows, 2, m.labels);
  EXPECT_NEAR(sil_sk, g["silhouette"].get<double>(), 1e-6);

  TsneOptions opt;
  opt.seed = 3;
  Tsne tsne(m.x.data.data(), m.x.rows, m.x.cols, opt);
  tsne.run();
  EXPECT_EQ(tsne.iteration(), 1000);
  bool exact = false;
  const double kl = tsne.kl_divergence(&exact);
  EXPECT_TRUE(exact);
  const auto& h = tsne.history();
  ASSERT_EQ(h.size(), 20u);
  EXPECT_EQ(h[5].iteration, 250);
  for (std::size_t t = 6; t < h.size(); ++t) EXPECT_LE(h[t].kl, h[t - 1].kl * 1.001) << h[t].iteration;
  EXPECT_LT(kl, h[5].kl);
  EXPECT_LT(h.back().kl, 0.8 * h[0].kl);
  const double sil = silhouette(tsne.embedding().data(), m.x.rows, 2, m.labels);
  const double trust = trust10(m.x, tsne.embedding(), 2);
  std::printf("[ sklearn ] KL %.4f (sklearn %.4f), silhouette %.4f (sklearn %.4f), "
              "trustworthiness@10 %.4f (sklearn %.4f)\n", kl, g["kl_divergence"].get<double>(), sil,
              sil_sk, trust, g["trustworthiness_10"].get<double>());
  EXPECT_GT(sil, 0.5);
  EXPECT_GE(trust, g["trustworthiness_10"].get<double>() - 0.01);
  EXPECT_LE(kl, g["kl_divergence"].get<double>() + 0.05);
}

// New points land in their own cluster, and each is placed independently of the batch.
TEST(Tsne, TransformPlacesHeldOutPoints) {
  const Mixture m = mixture();
  const std::int64_t d = m.x.cols;
  std::vector<float> train, held;
  std::vector<int> train_labels, held_labels;
  for (std::int64_t i = 0; i < m.x.rows; ++i) {
    auto& dst = i % 7 == 3 ? held : train;
    dst.insert(dst.end(), m.x.data.begin() + i * d, m.x.data.begin() + (i + 1) * d);
    (i % 7 == 3 ? held_labels : train_labels).push_back(m.labels[i]);
  }
  const std::int64_t nt = static_cast<std::int64_t>(train_labels.size());
  const std::int64_t nh = static_cast<std::int64_t>(held_labels.size());
  TsneOptions opt;
  opt.seed = 1;
  Tsne tsne(train.data(), nt, d, opt);
  tsne.run();
  std::vector<double> out(nh * 2);
  tsne.transform(held.data(), nh, out.data());
  const auto& y = tsne.embedding();
  int correct = 0;
  for (std::int64_t i = 0; i < nh; ++i) {  // label of the nearest reference point in the map
    double best = INFINITY;
    int label = -1;
    for (std::int64_t j = 0; j < nt; ++j) {
      const double dx = out[i * 2] - y[j * 2], dy = out[i * 2 + 1] - y[j * 2 + 1];
      if (dx * dx + dy * dy < best) {
        best = dx * dx + dy * dy;
        label = train_labels[j];
      }
    }
    correct += label == held_labels[i];
  }
  std::printf("[ transform ] %d / %lld held-out points next to their own cluster\n", correct,
              static_cast<long long>(nh));
  EXPECT_GE(correct, nh * 95 / 100);
  std::vector<double> one(2);
  tsne.transform(held.data() + 7 * d, 1, one.data());
  // Alone or in a batch, a point moves the same way (the kNN distances of a batched GEMM may
  // round differently in the last bits).
  std::printf("[ transform ] alone vs batch: %.2e %.2e\n", one[0] - out[14], one[1] - out[15]);
  EXPECT_NEAR(one[0], out[14], 1e-3);
  EXPECT_NEAR(one[1], out[15], 1e-3);
}

std::vector<double> run_with_threads(const std::vector<float>& x, std::int64_t d,
                                     kernels::Metric metric, int threads, std::vector<double>* placed) {
  kernels::set_num_threads(threads);
  TsneOptions opt;
  opt.metric = {metric};
  opt.early_exaggeration_iter = 60;
  opt.n_iter = 60;
  opt.seed = 11;
  Tsne tsne(x.data(), static_cast<std::int64_t>(x.size()) / d, d, opt);
  tsne.run();
  placed->resize(20 * 2);
  tsne.transform(x.data(), 20, placed->data());
  std::vector<double> y = tsne.embedding();
  y.push_back(tsne.kl_divergence());
  kernels::set_num_threads(0);
  return y;
}

TEST(Tsne, SameBitsOnOneAndTwoThreads) {
  // 1,500 points (the mixture thrice, jittered) so that the per-point passes split into chunks.
  const Mixture m = mixture();
  const std::int64_t d = m.x.cols;
  std::vector<float> x;
  for (int copy = 0; copy < 3; ++copy) {
    for (std::size_t e = 0; e < m.x.data.size(); ++e) {
      x.push_back(m.x.data[e] + 0.05f * copy * static_cast<float>(std::sin(0.37 * static_cast<double>(e))));
    }
  }
  std::vector<kernels::Metric> metrics = {kernels::Metric::Manhattan};  // direct distances
  // Exact Euclidean kNN goes through the GEMM seam: thread-count independent with oneDNN only.
  if (std::string(kernels::gemm_backend_name()) == "dnnl") metrics.push_back(kernels::Metric::Euclidean);
  for (kernels::Metric metric : metrics) {
    std::vector<double> t1, t2;
    const auto a = run_with_threads(x, d, metric, 1, &t1);
    const auto b = run_with_threads(x, d, metric, 2, &t2);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(double))) << kernels::metric_name(metric);
    EXPECT_EQ(0, std::memcmp(t1.data(), t2.data(), t1.size() * sizeof(double))) << kernels::metric_name(metric);
  }
}

TEST(Tsne, RefusesBadInput) {
  std::vector<float> x(20 * 3);
  for (std::size_t e = 0; e < x.size(); ++e) x[e] = static_cast<float>(std::sin(0.7 * e));
  TsneOptions opt;
  opt.perplexity = 19;
  std::string msg = error_of<InvalidArgument>([&] { Tsne(x.data(), 20, 3, opt); });
  EXPECT_NE(msg.find("perplexity 19 is too large for 20 points"), std::string::npos) << msg;
  opt.perplexity = 5;
  msg = error_of<InvalidArgument>([&] { Tsne(x.data(), 3, 3, opt); });
  EXPECT_NE(msg.find("at least 4 points (got 3)"), std::string::npos) << msg;
  x[2 * 3 + 1] = NAN;
  msg = error_of<InvalidArgument>([&] { Tsne(x.data(), 20, 3, opt); });
  EXPECT_NE(msg.find("row 2, column 1"), std::string::npos) << msg;
  x[2 * 3 + 1] = 0.5f;
  opt.metric = {kernels::Metric::Dot};
  msg = error_of<InvalidArgument>([&] { Tsne(x.data(), 20, 3, opt); });
  EXPECT_NE(msg.find("dot"), std::string::npos) << msg;
  opt.metric = {kernels::Metric::Euclidean};
  opt.n_components = 4;
  msg = error_of<InvalidArgument>([&] { Tsne(x.data(), 20, 3, opt); });
  EXPECT_NE(msg.find("n_components must be 1, 2 or 3"), std::string::npos) << msg;
  opt.n_components = 2;
  opt.perplexity = 0.5;
  EXPECT_THROW(Tsne(x.data(), 20, 3, opt), InvalidArgument);
  opt.perplexity = 5;
  Tsne ok(x.data(), 20, 3, opt);
  std::vector<double> out(2);
  TsneTransformOptions t;
  t.perplexity = 20;
  msg = error_of<InvalidArgument>([&] { ok.transform(x.data(), 1, out.data(), t); });
  EXPECT_NE(msg.find("perplexity 20 must be in [1, 20)"), std::string::npos) << msg;
}

// Issue #18: --learning-rate 1e300 made every coordinate inf/NaN and showed up only as a NaN
// in the quality rows; the optimisation now stops at the first step that diverges, naming it.
TEST(Tsne, DivergenceIsNamed) {
  const Mixture m = mixture();
  TsneOptions opt;
  opt.learning_rate = 1e300;
  opt.early_exaggeration_iter = 10;
  opt.n_iter = 10;
  Tsne tsne(m.x.data.data(), 200, m.x.cols, opt);
  const std::string msg = error_of<InvalidArgument>([&] { tsne.run(); });
  EXPECT_NE(msg.find("t-SNE diverged at iteration 1: a coordinate reached "), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("(learning rate 1e+300); use a smaller learning rate"), std::string::npos)
      << msg;
  opt.learning_rate = 0;  // auto: converges
  Tsne ok(m.x.data.data(), 200, m.x.cols, opt);
  ok.run();
  for (double v : ok.embedding()) EXPECT_TRUE(std::isfinite(v));
}

// Issue #18, the class: t-SNE's affinities are calibrated per point (perplexity), so the map
// does not depend on the input's scale. Inputs scaled by 2^k (exact in float) give the same
// bits for k in {-80, 70}: 1e-24 and 1e21, far beyond the GEMM's safe range.
TEST(Tsne, SameMapAtAnyScale) {
  const Mixture m = mixture();
  const std::int64_t n = 300, d = m.x.cols;
  TsneOptions opt;
  opt.early_exaggeration_iter = 30;
  opt.n_iter = 30;
  for (kernels::Metric metric : {kernels::Metric::Euclidean, kernels::Metric::Cosine}) {
    opt.metric = {metric};
    Tsne base(m.x.data.data(), n, d, opt);
    base.run();
    for (int k : {-80, 70}) {
      std::vector<float> x(m.x.data.begin(), m.x.data.begin() + n * d);
      for (float& v : x) v = std::ldexp(v, k);
      Tsne t(x.data(), n, d, opt);
      t.run();
      ASSERT_EQ(t.embedding().size(), base.embedding().size());
      double worst = 0;
      for (std::size_t e = 0; e < base.embedding().size(); ++e) {
        worst = std::max(worst, std::fabs(t.embedding()[e] - base.embedding()[e]));
      }
      EXPECT_LT(worst, 1e-6) << kernels::metric_name(metric) << " at 2^" << k;
    }
  }
}

// 1-D and 3-D maps, random initialization and d < n_components all run.
TEST(Tsne, OtherDimensionsAndInit) {
  const Mixture m = mixture();
  for (std::int64_t dim : {1, 3}) {
    TsneOptions opt;
    opt.n_components = dim;
    opt.init = dim == 1 ? TsneOptions::Init::Random : TsneOptions::Init::Pca;
    opt.n_iter = 250;
    Tsne tsne(m.x.data.data(), 300, m.x.cols, opt);
    tsne.run();
    const double trust = trust10(io::Matrix{300, m.x.cols, {m.x.data.begin(), m.x.data.begin() + 300 * m.x.cols}},
                                 tsne.embedding(), dim);
    std::printf("[ dims ] %lld-D trustworthiness@10 %.4f\n", static_cast<long long>(dim), trust);
    EXPECT_GT(trust, dim == 1 ? 0.8 : 0.95);
  }
  std::vector<float> line(50);
  for (int i = 0; i < 50; ++i) line[i] = static_cast<float>(i % 10) + 0.01f * i;
  TsneOptions opt;
  opt.perplexity = 5;
  opt.n_iter = 50;
  Tsne tsne(line.data(), 50, 1, opt);  // d = 1 < 2: noise init
  tsne.run();
  for (double v : tsne.embedding()) EXPECT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace mmembed::reduce
