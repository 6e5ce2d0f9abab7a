// UMAP against umap-learn 0.5.12 (tests/data/reduce/umap_*, made by
// scripts/reference/gen_umap_ref.py): a, b of find_ab_params, sigmas, rhos and the fuzzy union
// graph; trustworthiness on a 10-cluster mixture next to umap-learn's; silhouette by true label;
// bitwise determinism across thread counts; transform of held-out points; disconnected graphs;
// every metric and init; errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "test_support.h"
#include "io/matrix.h"
#include "kernels/parallel.h"
#include "mmembed/error.h"
#include "reduce/fast_pow.h"
#include "reduce/lapack.h"
#include "reduce/quality.h"
#include "reduce/spectra_eigs.h"
#include "reduce/umap.h"
#include "search/knn.h"

namespace mmembed::reduce {
namespace {

std::string data_path(const std::string& name) {
  return std::string(MMEMBED_TEST_DATA_DIR) + "/reduce/" + name;
}
nlohmann::json load(const std::string& name) {
  std::ifstream in(data_path(name));
  EXPECT_TRUE(in.good()) << name;
  return nlohmann::json::parse(in);
}
std::vector<std::int64_t> read_labels(const std::string& name) {
  std::ifstream in(data_path(name));
  std::vector<std::int64_t> out;
  std::int64_t v;
  while (in >> v) out.push_back(v);
  return out;
}

using testing_support::error_of;

// The SGD's vectorised x^b against std::pow in double, over squared distances from 1e-30 to
// 1e30 and the exponents b that UMAP's curve fits give (about 0.5 to 2): relative error within
// 1e-6 where |b ln x| <= 10 (the distances the SGD meets), within 1e-5 up to the saturation at
// b ln x = -87 and 88.
TEST(UmapFastPow, MatchesStdPow) {
  double worst_near = 0, worst_far = 0;
  for (float b : {0.5f, 0.7915f, 0.8951f, 1.0f, 1.3f, 1.929f}) {
    std::vector<float> xs;
    for (double lx = -30; lx <= 30; lx += 0.0137) xs.push_back(static_cast<float>(std::pow(10.0, lx)));
    for (float x : {1.0f, 2.0f, 0.5f, 1.41421356f, 1.41421368f, 0.70710677f}) xs.push_back(x);
    while (xs.size() % kPowLanes != 0) xs.push_back(1.0f);
    std::vector<float> out(xs.size());
    for (std::size_t i = 0; i < xs.size(); i += kPowLanes) pow_f32x16(xs.data() + i, b, out.data() + i);
    for (std::size_t i = 0; i < xs.size(); ++i) {
      // The same arithmetic on one value.
      ASSERT_EQ(pow_f32(xs[i], b), out[i]) << "x " << xs[i] << " b " << b;
      const double y = b * std::log(static_cast<double>(xs[i]));
      if (y < -87 || y > 88) continue;  // saturated, checked below
      const double ref = std::pow(static_cast<double>(xs[i]), static_cast<double>(b));
      const double rel = std::fabs(out[i] - ref) / ref;
      const bool near = std::fabs(y) <= 10;
      (near ? worst_near : worst_far) = std::max(near ? worst_near : worst_far, rel);
      ASSERT_LT(rel, near ? 1e-6 : 1e-5) << "x " << xs[i] << " b " << b;
    }
  }
  EXPECT_GT(worst_near, 0.0);  // the comparison saw rounding, so it did compare
  // Saturation instead of overflow / underflow, and the smallest normal float.
  const double min_09 = std::pow(static_cast<double>(std::numeric_limits<float>::min()), 0.9);
  EXPECT_NEAR(pow_f32(std::numeric_limits<float>::min(), 0.9f), min_09, 1e-5 * min_09);
  EXPECT_NEAR(pow_f32(3e38f, 1.5f), std::exp(88.0f), 1e-5 * std::exp(88.0f));
  EXPECT_NEAR(pow_f32(1e-30f, 2.0f), std::exp(-87.0f), 1e-5 * std::exp(-87.0f));
}

TEST(UmapCurve, MatchesFindAbParams) {
  const nlohmann::json g = load("umap_fuzzy.json");
  for (const auto& c : g["ab"]) {
    const UmapCurve got = find_ab_params(c["spread"].get<double>(), c["min_dist"].get<double>());
    const double a = c["a"], b = c["b"];
    const double ea = std::fabs(got.a - a) / a, eb = std::fabs(got.b - b) / b;
    std::printf("[ umap-learn ] min_dist %g spread %g: a %.8g (ref %.8g, rel %.1e) b %.8g (ref %.8g, rel %.1e)\n",
                c["min_dist"].get<double>(), c["spread"].get<double>(), got.a, a, ea, got.b, b, eb);
    // scipy's curve_fit stops at ftol = xtol = 1.49e-8 on the same least-squares problem.
    EXPECT_LE(ea, 1e-5);
    EXPECT_LE(eb, 1e-5);
  }
}

kernels::MetricSpec metric_of(const std::string& name) {
  if (name == "cosine") return {kernels::Metric::CosineDistance};
  if (name == "manhattan") return {kernels::Metric::Manhattan};
  return {kernels::Metric::Euclidean};
}

void expect_fuzzy_equal(const FuzzyGraph& g, const nlohmann::json& c, const std::string& what) {
  const auto sig = c["sigmas"].get<std::vector<double>>(), rho = c["rhos"].get<std::vector<double>>();
  ASSERT_EQ(static_cast<std::int64_t>(sig.size()), g.n);
  double es = 0, er = 0;
  for (std::int64_t i = 0; i < g.n; ++i) {
    es = std::max(es, std::fabs(g.sigmas[i] - sig[i]) / std::max(1e-12, sig[i]));
    er = std::max(er, std::fabs(g.rhos[i] - rho[i]) / std::max(1.0, rho[i]));
  }
  const auto rows = c["rows"].get<std::vector<std::int64_t>>(), cols = c["cols"].get<std::vector<std::int64_t>>();
  const auto vals = c["vals"].get<std::vector<double>>();
  ASSERT_EQ(rows.size(), g.cols.size()) << what;
  double ev = 0;
  std::size_t t = 0;
  for (std::int64_t r = 0; r < g.n; ++r) {
    for (std::int64_t e = g.offsets[r]; e < g.offsets[r + 1]; ++e, ++t) {
      ASSERT_EQ(rows[t], r) << what;
      ASSERT_EQ(cols[t], g.cols[e]) << what << " row " << r;
      ev = std::max(ev, std::fabs(g.vals[e] - vals[t]));
    }
  }
  std::printf("[ umap-learn ] %s: sigma rel %.1e, rho rel %.1e, membership abs %.1e over %zu entries\n",
              what.c_str(), es, er, ev, vals.size());
  // Distances here are float (ours) vs float64 (sklearn), then both round to float32.
  EXPECT_LE(es, 1e-4) << what;
  EXPECT_LE(er, 1e-5) << what;
  EXPECT_LE(ev, 1e-5) << what;
}

TEST(UmapFuzzySet, MatchesUmapLearn) {
  const nlohmann::json g = load("umap_fuzzy.json");
  const io::Matrix x = io::read_matrix(data_path(g["input"]));
  for (const auto& c : g["cases"]) {
    const std::string metric = c["metric"];
    const std::int64_t k = c["n_neighbors"];
    search::KnnOptions ko;
    ko.method = search::KnnOptions::Method::Exact;
    auto knn = search::make_knn(x.data.data(), x.rows, x.cols, metric_of(metric), ko);
    const FuzzyGraph fg = fuzzy_simplicial_set(knn->graph(k - 1));
    expect_fuzzy_equal(fg, c, metric + " k=" + std::to_string(k));
    if (metric == "cosine") {  // the similarity form: 1 - cos as the distance
      auto sim = search::make_knn(x.data.data(), x.rows, x.cols, {kernels::Metric::Cosine}, ko);
      expect_fuzzy_equal(fuzzy_simplicial_set(sim->graph(k - 1)), c, "cosine similarity k=" + std::to_string(k));
    }
  }
}

TEST(UmapSilhouette, HandComputed) {
  // 1-D points 0, 1 (label 0) and 4, 6 (label 1):
  // s = (4/5 + 3/4 + 1.5/3.5 + 3.5/5.5) / 4.
  const float y[] = {0, 1, 4, 6};
  const double want = (0.8 + 0.75 + 1.5 / 3.5 + 3.5 / 5.5) / 4;
  EXPECT_NEAR(silhouette_score(y, 4, 1, {0, 0, 1, 1}), want, 1e-12);
  // A singleton cluster scores 0.
  const float z[] = {0, 1, 10};
  EXPECT_NEAR(silhouette_score(z, 3, 1, {0, 0, 1}), (9 / 10.0 + 8 / 9.0 + 0.0) / 3, 1e-12);
}

struct Mixture {
  io::Matrix x;
  std::vector<std::int64_t> labels;
};
const Mixture& mixture() {
  static const Mixture m{io::read_matrix(data_path("umap_mixture.npy")), read_labels("umap_mixture_labels.txt")};
  return m;
}

TEST(Umap, MixtureSeparatesClustersAndKeepsNeighbourhoods) {
  const Mixture& m = mixture();
  ASSERT_EQ(static_cast<std::int64_t>(m.labels.size()), m.x.rows);
  UmapOptions opt;
  opt.seed = 3;
  const Umap u = Umap::fit(m.x.data.data(), m.x.rows, m.x.cols, opt);
  EXPECT_TRUE(u.used_exact_knn());
  EXPECT_EQ(u.n_epochs(), 500);
  EXPECT_FALSE(u.spectral_fell_back());
  const auto& y = u.embedding();
  for (float v : y) ASSERT_TRUE(std::isfinite(v));
  const double sil = silhouette_score(y.data(), m.x.rows, 2, m.labels);
  QualityOptions q;
  q.ks = {10};
  const double tw = neighbourhood_quality(m.x.data.data(), m.x.rows, m.x.cols, y.data(), 2, q)[0].trustworthiness;
  const double ref = load("umap_mixture.json")["trustworthiness_10_mean"];
  std::printf("[ umap-learn ] mixture 1000x16: silhouette %.4f, trustworthiness@10 %.5f (umap-learn mean %.5f)\n",
              sil, tw, ref);
  EXPECT_GT(sil, 0.5);
  EXPECT_GT(tw, ref - 0.01);
}

TEST(Umap, SameBitsOnOneAndTwoThreads) {
  const Mixture& m = mixture();
  UmapOptions opt;
  opt.n_epochs = 60;
  opt.exact_max_points = 500;  // NN-descent and the Lanczos path (more than 512 vertices)
  const std::int64_t n_fit = 900, n_new = m.x.rows - n_fit;
  std::vector<float> y1, y2, t1(n_new * 2), t2(n_new * 2);
  const int before = kernels::num_threads();
  for (int threads : {1, 2}) {
    kernels::set_num_threads(threads);
    const Umap u = Umap::fit(m.x.data.data(), n_fit, m.x.cols, opt);
    EXPECT_FALSE(u.used_exact_knn());
    EXPECT_FALSE(u.spectral_fell_back());
    (threads == 1 ? y1 : y2) = u.embedding();
    u.transform(m.x.data.data() + n_fit * m.x.cols, n_new, (threads == 1 ? t1 : t2).data());
  }
  kernels::set_num_threads(before);
  ASSERT_EQ(y1.size(), y2.size());
  EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(t1.data(), t2.data(), t1.size() * sizeof(float)));
  // And a different seed gives a different map.
  opt.seed = 43;
  const Umap u3 = Umap::fit(m.x.data.data(), n_fit, m.x.cols, opt);
  EXPECT_NE(0, std::memcmp(y1.data(), u3.embedding().data(), y1.size() * sizeof(float)));
}

// Issue #18, the class: UMAP's fuzzy set is calibrated per point (rho, sigma), so the map's
// quality does not depend on the input's scale. The sigma search started at 1 and moved by
// factors of 2 for 64 steps, so distances of ~2^70 or ~2^-80 got sigma stuck at 2^+-64 and a
// degenerate graph. (Bits can differ: the search starts near the data's scale there, so it
// takes other steps; the trustworthiness is compared.)
TEST(Umap, SameQualityAtAnyScale) {
  const Mixture& m = mixture();
  const std::int64_t n = 300, d = m.x.cols;
  UmapOptions opt;
  opt.n_epochs = 60;
  QualityOptions q_opt;
  q_opt.ks = {10};
  for (kernels::Metric metric : {kernels::Metric::Euclidean, kernels::Metric::Cosine}) {
    opt.metric = {metric};
    q_opt.metric = {metric};
    const Umap base = Umap::fit(m.x.data.data(), n, d, opt);
    const double t0 =
        neighbourhood_quality(m.x.data.data(), n, d, base.embedding().data(), 2, q_opt)[0]
            .trustworthiness;
    for (int k : {-80, 70}) {
      std::vector<float> x(m.x.data.begin(), m.x.data.begin() + n * d);
      for (float& v : x) v = std::ldexp(v, k);
      const Umap u = Umap::fit(x.data(), n, d, opt);
      const double t =
          neighbourhood_quality(x.data(), n, d, u.embedding().data(), 2, q_opt)[0].trustworthiness;
      std::printf("[ scale    ] %s at 2^%d: trustworthiness@10 %.4f (unscaled %.4f)\n",
                  kernels::metric_name(metric), k, t, t0);
      EXPECT_NEAR(t, t0, 0.01) << kernels::metric_name(metric) << " at 2^" << k;
      for (float v : u.embedding()) ASSERT_TRUE(std::isfinite(v));
    }
  }
}

TEST(Umap, TransformPlacesHeldOutPointsInTheirClusters) {
  const Mixture& m = mixture();
  const std::int64_t n_fit = 900, n_new = m.x.rows - n_fit, d = m.x.cols;
  UmapOptions opt;
  opt.seed = 5;
  const Umap u = Umap::fit(m.x.data.data(), n_fit, d, opt);
  std::vector<float> t(n_new * 2);
  u.transform(m.x.data.data() + n_fit * d, n_new, t.data());
  // Each new point's 10 nearest training points in the map: the majority label is its own.
  const auto& y = u.embedding();
  std::int64_t right = 0;
  for (std::int64_t i = 0; i < n_new; ++i) {
    std::vector<std::pair<float, std::int64_t>> near;
    for (std::int64_t j = 0; j < n_fit; ++j) {
      const float dx = t[i * 2] - y[j * 2], dy = t[i * 2 + 1] - y[j * 2 + 1];
      near.push_back({dx * dx + dy * dy, j});
    }
    std::partial_sort(near.begin(), near.begin() + 10, near.end());
    std::map<std::int64_t, int> votes;
    for (int r = 0; r < 10; ++r) ++votes[m.labels[near[r].second]];
    if (votes[m.labels[n_fit + i]] > 5) ++right;
  }
  std::printf("[ transform ] %lld of %lld held-out points land among their own cluster\n",
              static_cast<long long>(right), static_cast<long long>(n_new));
  EXPECT_GE(right, n_new * 95 / 100);
}

// Blobs far apart: k too small to connect them, so the graph has one component per blob.
std::vector<float> blobs(int count, int per, int d, std::vector<std::int64_t>* labels) {
  std::mt19937 rng(11);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  std::vector<float> x;
  for (int b = 0; b < count; ++b) {
    for (int i = 0; i < per; ++i) {
      for (int c = 0; c < d; ++c) x.push_back((c == b % d ? 100.0f * (1 + b / d) : 0.0f) + noise(rng));
      labels->push_back(b);
    }
  }
  return x;
}

TEST(Umap, DisconnectedGraphsAreLaidOutPerComponent) {
  for (int count : {3, 7}) {  // 7 > 2 * dim: the centroid (component_layout) path
    std::vector<std::int64_t> labels;
    const int per = count == 3 ? 40 : 25, d = 8;
    const std::vector<float> x = blobs(count, per, d, &labels);
    UmapOptions opt;
    opt.n_neighbors = 6;
    opt.n_epochs = 100;
    const Umap u = Umap::fit(x.data(), count * per, d, opt);
    EXPECT_EQ(u.n_graph_components(), count);
    EXPECT_FALSE(u.spectral_fell_back());
    for (float v : u.embedding()) ASSERT_TRUE(std::isfinite(v));
    const double sil = silhouette_score(u.embedding().data(), count * per, 2, labels);
    std::printf("[ components ] %d blobs: silhouette %.3f\n", count, sil);
    EXPECT_GT(sil, 0.5);
  }
}

TEST(Umap, EveryMetricAndInit) {
  const Mixture& m = mixture();
  const std::int64_t n = 300;
  const std::vector<std::int64_t> labels(m.labels.begin(), m.labels.begin() + n);
  using kernels::Metric;
  for (kernels::MetricSpec metric :
       {kernels::MetricSpec{Metric::Cosine}, {Metric::CosineDistance}, {Metric::Euclidean},
        {Metric::SqEuclidean}, {Metric::Dot}, {Metric::Manhattan}, {Metric::Minkowski, 3.0},
        {Metric::Chebyshev}}) {
    for (auto init : {UmapOptions::Init::Spectral, UmapOptions::Init::Pca, UmapOptions::Init::Random}) {
      if (init != UmapOptions::Init::Spectral && metric.metric != Metric::Euclidean) continue;
      UmapOptions opt;
      opt.metric = metric;
      opt.init = init;
      opt.n_epochs = 100;
      const Umap u = Umap::fit(m.x.data.data(), n, m.x.cols, opt);
      for (float v : u.embedding()) ASSERT_TRUE(std::isfinite(v));
      const double sil = silhouette_score(u.embedding().data(), n, 2, labels);
      std::printf("[ metric ] %s init %d: silhouette %.3f\n", kernels::metric_name(metric.metric),
                  static_cast<int>(init), sil);
      // Dot products are dominated by the norms, not the cluster: only finite output is expected.
      if (metric.metric != Metric::Dot) {
        EXPECT_GT(sil, 0.3) << kernels::metric_name(metric.metric);
      }
    }
  }
}

// spectra_largest (the spectral layout's Lanczos) against LAPACK's dense dsyevr on the
// normalised adjacency D^-1/2 W D^-1/2 of a random sparse graph of 700 vertices (its largest
// eigenvalue is 1): the 4 largest eigenvalues to 1e-9, the vectors to 1e-6 up to sign; and the
// same bits when two solves run side by side on the pool as when one runs alone.
TEST(UmapSpectral, LanczosAgreesWithTheDenseSolver) {
  const std::int64_t n = 700, nev = 4;
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0.1, 1.0);
  std::vector<double> w(n * n, 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    for (int t = 0; t < 6; ++t) {
      const std::int64_t j = (i + 1 + static_cast<std::int64_t>(rng() % (n - 1))) % n;
      const double v = u(rng);
      w[i * n + j] = w[j * n + i] = v;
    }
  }
  std::vector<double> deg(n, 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < n; ++j) deg[i] += w[i * n + j];
  }
  std::vector<double> m(n * n);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < n; ++j) m[i * n + j] = w[i * n + j] / std::sqrt(deg[i] * deg[j]);
  }
  auto op = [&](const double* x, double* y) {
    for (std::int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (std::int64_t j = 0; j < n; ++j) s += m[i * n + j] * x[j];
      y[i] = s;
    }
  };
  std::vector<double> values(nev), vectors(n * nev);
  ASSERT_TRUE(spectra_largest(n, nev, 40, 1e-12, 10000, op, values.data(), vectors.data()));
  std::vector<double> dense = m, dvalues(nev), dvectors(n * nev);
  lapack::symmetric_eigen_largest(n, dense.data(), nev, dvalues.data(), dvectors.data());
  EXPECT_NEAR(values[nev - 1], 1.0, 1e-9);
  for (std::int64_t c = 0; c < nev; ++c) {
    EXPECT_NEAR(values[c], dvalues[c], 1e-9) << c;
    double dot = 0;
    for (std::int64_t i = 0; i < n; ++i) dot += vectors[c * n + i] * dvectors[c * n + i];
    EXPECT_NEAR(std::fabs(dot), 1.0, 1e-6) << c;
  }
  std::vector<double> side[2] = {std::vector<double>(n * nev), std::vector<double>(n * nev)};
  std::vector<double> side_values(2 * nev);
  const int before = kernels::num_threads();
  kernels::set_num_threads(2);
  kernels::parallel_tasks(2, [&](std::int64_t t) {
    spectra_largest(n, nev, 40, 1e-12, 10000, op, side_values.data() + t * nev, side[t].data());
  });
  kernels::set_num_threads(before);
  for (const auto& v : side) EXPECT_EQ(0, std::memcmp(v.data(), vectors.data(), v.size() * sizeof(double)));
  EXPECT_FALSE(spectra_largest(n, nev, 40, 1e-12, 0, op, values.data(), vectors.data()))
      << "no restarts allowed: not converged";
}

// One Gaussian blob of 800 points: a connected graph above the dense-solver size, so the
// spectral layout comes from the Lanczos solver.
TEST(Umap, ConnectedGraphThroughLanczos) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  const std::int64_t n = 800, d = 8;
  std::vector<float> x(n * d);
  for (float& v : x) v = g(rng);
  UmapOptions opt;
  opt.n_epochs = 30;
  const int before = kernels::num_threads();
  std::vector<float> y[2];
  for (int threads : {1, 2}) {
    kernels::set_num_threads(threads);
    const Umap u = Umap::fit(x.data(), n, d, opt);
    EXPECT_EQ(u.n_graph_components(), 1);
    EXPECT_FALSE(u.spectral_fell_back());
    for (float v : u.embedding()) ASSERT_TRUE(std::isfinite(v));
    y[threads - 1] = u.embedding();
  }
  kernels::set_num_threads(before);
  EXPECT_EQ(0, std::memcmp(y[0].data(), y[1].data(), y[0].size() * sizeof(float)));
}

TEST(Umap, ThreeComponents) {
  const Mixture& m = mixture();
  UmapOptions opt;
  opt.n_components = 3;
  opt.n_epochs = 100;
  const Umap u = Umap::fit(m.x.data.data(), 200, m.x.cols, opt);
  EXPECT_EQ(u.embedding().size(), 600u);
  for (float v : u.embedding()) ASSERT_TRUE(std::isfinite(v));
}

TEST(Umap, Errors) {
  const Mixture& m = mixture();
  const float* x = m.x.data.data();
  const std::int64_t d = m.x.cols;
  EXPECT_EQ(error_of<InvalidArgument>([&] { Umap::fit(x, 15, d, {}); }),
            "UMAP needs more points than n_neighbors (15): the input has 15 point(s)");
  std::vector<float> bad(x, x + 40 * d);
  bad[7 * d + 3] = NAN;
  EXPECT_NE(error_of<InvalidArgument>([&] { Umap::fit(bad.data(), 40, d, {}); }).find("UMAP input row 7"),
            std::string::npos);
  UmapOptions opt;
  opt.metric.metric = static_cast<kernels::Metric>(99);
  EXPECT_EQ(error_of<InvalidArgument>([&] { Umap::fit(x, 40, d, opt); }), "UMAP: unknown metric (enum value 99)");
  EXPECT_NE(error_of<InvalidArgument>([] { kernels::parse_metric("hamming"); }).find("unknown metric 'hamming'"),
            std::string::npos);
  opt = {};
  opt.min_dist = 2.0;
  EXPECT_EQ(error_of<InvalidArgument>([&] { Umap::fit(x, 40, d, opt); }),
            "UMAP min_dist (2) must not exceed spread (1)");
  EXPECT_EQ(error_of<InvalidArgument>([] { find_ab_params(0.5, 0.6); }),
            "UMAP min_dist (0.6) must not exceed spread (0.5)");
  opt = {};
  opt.metric = {kernels::Metric::Minkowski, 0.5};
  EXPECT_NE(error_of<InvalidArgument>([&] { Umap::fit(x, 40, d, opt); }).find("p must be >= 1"),
            std::string::npos);
  opt = {};
  opt.n_neighbors = 1;
  EXPECT_EQ(error_of<InvalidArgument>([&] { Umap::fit(x, 40, d, opt); }), "UMAP n_neighbors must be >= 2 (got 1)");
  opt = {};
  opt.learning_rate = 0;
  EXPECT_EQ(error_of<InvalidArgument>([&] { Umap::fit(x, 40, d, opt); }), "UMAP learning_rate must be > 0 (got 0)");
  opt = {};
  opt.n_epochs = 200000000;
  EXPECT_EQ(error_of<InvalidArgument>([&] { Umap::fit(x, 40, d, opt); }),
            "UMAP n_epochs x max(negative_sample_rate, 1) must be below 2^29 (got 200000000 x 5)");
  opt = {};
  opt.init = UmapOptions::Init::Pca;
  opt.n_components = 3;
  EXPECT_NE(error_of<InvalidArgument>([&] { Umap::fit(x, 40, 2, opt); }).find("init pca needs"), std::string::npos);
  const Umap u = Umap::fit(x, 40, d, UmapOptions{.n_epochs = 20});
  std::vector<float> nan_row(d, NAN), out(2);
  EXPECT_NE(error_of<InvalidArgument>([&] { u.transform(nan_row.data(), 1, out.data()); })
                .find("UMAP transform input row 0"),
            std::string::npos);
}

}  // namespace
}  // namespace mmembed::reduce
