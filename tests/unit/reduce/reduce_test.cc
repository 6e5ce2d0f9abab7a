// PCA against scikit-learn 1.2 and quality metrics against sklearn.manifold.trustworthiness
// (tests/data/analysis/, made by scripts/reference/gen_analysis.py); randomized vs full PCA;
// determinism; errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "kernels/parallel.h"
#include "mmembed/error.h"
#include "reduce/pca.h"
#include "reduce/quality.h"
#include "test_support.h"

namespace mmembed::reduce {
namespace {

nlohmann::json load(const std::string& name) {
  std::ifstream in(std::string(MMEMBED_TEST_DATA_DIR) + "/analysis/" + name);
  EXPECT_TRUE(in.good()) << name;
  return nlohmann::json::parse(in);
}
std::vector<double> doubles(const nlohmann::json& j) {
  std::vector<double> v;
  for (const auto& x : j) v.push_back(x.is_null() ? NAN : x.get<double>());
  return v;
}
std::vector<float> floats(const nlohmann::json& j) {
  std::vector<float> v;
  for (const auto& x : j) v.push_back(static_cast<float>(x.get<double>()));
  return v;
}

// max |got - want| / max(1, |want|)
template <typename T>
double max_err(const std::vector<T>& got, const std::vector<double>& want) {
  EXPECT_EQ(got.size(), want.size());
  double e = 0;
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i) {
    e = std::max(e, std::fabs(static_cast<double>(got[i]) - want[i]) / std::max(1.0, std::fabs(want[i])));
  }
  return e;
}

// scikit-learn's PCA(svd_solver="full"): same signs, everything within 1e-5 (docs/numerics.md),
// from the exact SVD and from the covariance matrix (its float Gram blocks included).
TEST(Pca, MatchesScikitLearn) {
  const nlohmann::json g = load("pca.json");
  for (auto solver : {PcaOptions::Solver::Full, PcaOptions::Solver::Covariance})
  for (const char* name : {"tall", "wide"}) {
    const auto& c = g[name];
    const auto x = floats(c["x"]["data"]), x_new = floats(c["x_new"]["data"]);
    const std::int64_t n = c["x"]["rows"], d = c["x"]["cols"], k = c["n_components"];
    PcaOptions opt;
    opt.n_components = k;
    opt.solver = solver;
    const Pca pca = Pca::fit(x.data(), n, d, opt);
    ASSERT_EQ(pca.solver(), solver);
    std::vector<float> t(n * k), t_new(7 * k);
    pca.transform(x.data(), n, t.data());
    pca.transform(x_new.data(), 7, t_new.data());
    const double errs[] = {
        max_err(pca.mean(), doubles(c["mean"])),
        max_err(pca.components(), doubles(c["components"]["data"])),
        max_err(pca.explained_variance(), doubles(c["explained_variance"])),
        max_err(pca.explained_variance_ratio(), doubles(c["explained_variance_ratio"])),
        max_err(pca.singular_values(), doubles(c["singular_values"])),
        max_err(t, doubles(c["transform"]["data"])),
        max_err(t_new, doubles(c["transform_new"]["data"]))};
    std::printf("[ sklearn ] %s %s %lldx%lld k=%lld: mean %.1e components %.1e variance %.1e ratio %.1e "
                "singular %.1e transform %.1e new %.1e\n",
                solver == PcaOptions::Solver::Full ? "full" : "covariance", name, (long long)n, (long long)d,
                (long long)k, errs[0], errs[1], errs[2], errs[3], errs[4], errs[5], errs[6]);
    for (double e : errs) EXPECT_LE(e, 1e-5) << name;
  }
}

// Low-rank signal plus noise, n x d.
std::vector<float> low_rank(std::int64_t n, std::int64_t d, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g;
  const int rank = 8;
  std::vector<double> basis(rank * d), coef(n * rank);
  for (double& b : basis) b = g(rng);
  for (double& c : coef) c = g(rng);
  std::vector<float> x(n * d);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < d; ++j) {
      double v = 5.0 + 0.05 * g(rng);
      for (int r = 0; r < rank; ++r) v += coef[i * rank + r] * basis[r * d + j] * std::pow(0.6, r) * 3;
      x[i * d + j] = static_cast<float>(v);
    }
  }
  return x;
}

// max over components of 1 - <a_c, b_c>: 0 when both give the same unit vectors, signs included.
double worst_alignment(const Pca& a, const Pca& b) {
  const std::int64_t d = a.dim();
  double worst = 0;
  for (std::int64_t c = 0; c < a.n_components(); ++c) {
    double dot = 0;
    for (std::int64_t j = 0; j < d; ++j) dot += a.components()[c * d + j] * b.components()[c * d + j];
    worst = std::max(worst, 1.0 - dot);
  }
  return worst;
}

// x [n, d] fitted for k components with `solver` (seed as given, else the default).
Pca fit_with(const std::vector<float>& x, std::int64_t n, std::int64_t d, std::int64_t k,
             PcaOptions::Solver solver, std::uint64_t seed = PcaOptions{}.seed) {
  PcaOptions opt;
  opt.n_components = k;
  opt.solver = solver;
  opt.seed = seed;
  return Pca::fit(x.data(), n, d, opt);
}

TEST(Pca, RandomizedAgreesWithFull) {
  const std::int64_t n = 1200, d = 90, k = 4;
  auto x = low_rank(n, d, 3);
  const Pca full = fit_with(x, n, d, k, PcaOptions::Solver::Full);
  const Pca rnd = fit_with(x, n, d, k, PcaOptions::Solver::Randomized, 11);
  EXPECT_EQ(rnd.solver(), PcaOptions::Solver::Randomized);
  const double worst = worst_alignment(full, rnd);  // same sign convention: near 0
  for (std::int64_t c = 0; c < k; ++c) {
    EXPECT_NEAR(rnd.explained_variance()[c], full.explained_variance()[c], 1e-9 * full.explained_variance()[c]);
    EXPECT_NEAR(rnd.explained_variance_ratio()[c], full.explained_variance_ratio()[c], 1e-9);
  }
  std::printf("[ random  ] 1 - <v_full, v_randomized> worst %.2e\n", worst);
  EXPECT_LE(worst, 1e-9);
}

// The covariance solver (float Gram blocks summed in double, several blocks and panels here)
// against the exact SVD of the same data.
TEST(Pca, CovarianceAgreesWithFull) {
  const std::int64_t n = 3100, d = 300, k = 5;
  auto x = low_rank(n, d, 8);
  const Pca full = fit_with(x, n, d, k, PcaOptions::Solver::Full);
  const Pca cov = fit_with(x, n, d, k, PcaOptions::Solver::Covariance);
  EXPECT_EQ(Pca::fit(x.data(), n, d, {}).solver(), PcaOptions::Solver::Covariance);  // n >= 10 d
  std::vector<float> tf(n * k), tc(n * k);
  full.transform(x.data(), n, tf.data());
  cov.transform(x.data(), n, tc.data());
  const double worst = worst_alignment(full, cov);  // same sign convention: near 0
  double worst_t = 0, scale = 0;
  for (std::int64_t c = 0; c < k; ++c) {
    EXPECT_NEAR(cov.explained_variance()[c], full.explained_variance()[c], 1e-6 * full.explained_variance()[c]);
    EXPECT_NEAR(cov.singular_values()[c], full.singular_values()[c], 1e-6 * full.singular_values()[c]);
    EXPECT_NEAR(cov.explained_variance_ratio()[c], full.explained_variance_ratio()[c], 1e-6);
  }
  for (std::int64_t e = 0; e < n * k; ++e) {
    worst_t = std::max(worst_t, static_cast<double>(std::fabs(tf[e] - tc[e])));
    scale = std::max(scale, static_cast<double>(std::fabs(tf[e])));
  }
  for (std::int64_t j = 0; j < d; ++j) EXPECT_NEAR(cov.mean()[j], full.mean()[j], 1e-12);
  std::printf("[ cov     ] 1 - <v_full, v_cov> worst %.2e, transform max diff %.2e of %.2e\n", worst,
              worst_t, scale);
  EXPECT_LE(worst, 1e-9);
  EXPECT_LE(worst_t, 1e-5 * scale);
}

// The covariance solver's Lanczos (d >= 64) against the exact SVD on an awkward spectrum: the
// leading component nearly orthogonal to the all-ones vector (columns 0 and 1 move against each
// other) and the next two variances close (0.30 and 0.29: a small gap).
TEST(Pca, CovarianceLanczosOnAwkwardSpectra) {
  const std::int64_t n = 2000, d = 80, k = 3;
  std::mt19937 rng(12);
  std::normal_distribution<double> g;
  std::vector<float> x(n * d);
  for (std::int64_t i = 0; i < n; ++i) {
    const double t = 3.0 * g(rng), u = std::sqrt(0.30) * g(rng), v = std::sqrt(0.29) * g(rng);
    for (std::int64_t j = 0; j < d; ++j) x[i * d + j] = static_cast<float>(0.05 * g(rng));
    x[i * d + 0] += static_cast<float>(t);
    x[i * d + 1] -= static_cast<float>(t);
    x[i * d + 2] += static_cast<float>(u);
    x[i * d + 3] += static_cast<float>(v);
  }
  const Pca full = fit_with(x, n, d, k, PcaOptions::Solver::Full);
  const Pca cov = fit_with(x, n, d, k, PcaOptions::Solver::Covariance);
  EXPECT_NEAR(std::fabs(full.components()[0]), std::sqrt(0.5), 0.01);  // the data are as meant
  const double worst = worst_alignment(full, cov);
  for (std::int64_t c = 0; c < k; ++c) {
    EXPECT_NEAR(cov.explained_variance()[c], full.explained_variance()[c], 1e-6 * full.explained_variance()[c]);
  }
  std::printf("[ lanczos ] 1 - <v_full, v_cov> worst %.2e\n", worst);
  EXPECT_LE(worst, 1e-6);
}

// fit_transform gives transform()'s bits, for every solver.
TEST(Pca, FitTransformEqualsFitThenTransform) {
  const std::int64_t n = 1500, d = 40, k = 3;
  auto x = low_rank(n, d, 9);
  for (auto solver : {PcaOptions::Solver::Full, PcaOptions::Solver::Randomized,
                      PcaOptions::Solver::Covariance}) {
    PcaOptions opt;
    opt.n_components = k;
    opt.solver = solver;
    std::vector<float> a(n * k), b(n * k);
    const Pca p = Pca::fit_transform(x.data(), n, d, opt, a.data());
    EXPECT_EQ(p.solver(), solver);
    p.transform(x.data(), n, b.data());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
    EXPECT_EQ(p.components(), Pca::fit(x.data(), n, d, opt).components());
  }
}

TEST(Pca, SignConventionLargestScorePositive) {
  const std::int64_t n = 300, d = 12, k = 5;
  auto x = low_rank(n, d, 4);
  PcaOptions opt;
  opt.n_components = k;
  const Pca pca = Pca::fit(x.data(), n, d, opt);
  std::vector<float> t(n * k);
  pca.transform(x.data(), n, t.data());
  for (std::int64_t c = 0; c < k; ++c) {
    std::int64_t arg = 0;
    for (std::int64_t i = 1; i < n; ++i) {
      if (std::fabs(t[i * k + c]) > std::fabs(t[arg * k + c])) arg = i;
    }
    EXPECT_GT(t[arg * k + c], 0.0f) << "component " << c;
  }
  // a sign flip of the data flips nothing but the mean: the convention fixes the signs
  std::vector<float> neg(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) neg[i] = -x[i];
  const Pca pn = Pca::fit(neg.data(), n, d, opt);
  for (std::int64_t i = 0; i < k * d; ++i) EXPECT_NEAR(pn.components()[i], -pca.components()[i], 1e-9);
}

TEST(Pca, AutoSolverFollowsScikitLearn) {
  auto small = low_rank(100, 20, 5);
  EXPECT_EQ(Pca::fit(small.data(), 100, 20, {}).solver(), PcaOptions::Solver::Full);
  auto tall = low_rank(700, 30, 6);  // d <= 1000 and n >= 10 d (scikit-learn >= 1.5)
  EXPECT_EQ(Pca::fit(tall.data(), 700, 30, {}).solver(), PcaOptions::Solver::Covariance);
  auto big = low_rank(700, 80, 6);
  EXPECT_EQ(Pca::fit(big.data(), 700, 80, {}).solver(), PcaOptions::Solver::Randomized);
  PcaOptions many;
  many.n_components = 65;  // >= 0.8 min(n, d)
  EXPECT_EQ(Pca::fit(big.data(), 700, 80, many).solver(), PcaOptions::Solver::Full);
}

TEST(Pca, SameBitsAcrossRunsAndThreadCounts) {
  const std::int64_t n = 2300, d = 150;  // two Gram panels, three row blocks
  auto x = low_rank(n, d, 7);
  for (auto solver : {PcaOptions::Solver::Full, PcaOptions::Solver::Randomized,
                      PcaOptions::Solver::Covariance}) {
    PcaOptions opt;
    opt.n_components = 3;
    opt.solver = solver;
    kernels::set_num_threads(1);
    const Pca a = Pca::fit(x.data(), n, d, opt);
    std::vector<float> ta(n * 3), tb(n * 3);
    a.transform(x.data(), n, ta.data());
    kernels::set_num_threads(2);
    const Pca b = Pca::fit(x.data(), n, d, opt);
    b.transform(x.data(), n, tb.data());
    EXPECT_EQ(a.components(), b.components());
    EXPECT_EQ(a.explained_variance(), b.explained_variance());
    EXPECT_EQ(0, std::memcmp(ta.data(), tb.data(), ta.size() * sizeof(float)));
  }
  kernels::set_num_threads(0);
}

TEST(Pca, RejectsBadInput) {
  std::vector<float> x = {1, 2, 3, 4, 5, 6};
  EXPECT_THROW(Pca::fit(x.data(), 1, 6, {}), InvalidArgument);
  PcaOptions opt;
  opt.n_components = 4;
  try {
    Pca::fit(x.data(), 2, 3, opt);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("n_components must be in [1, min(n, d) = 2] (got 4)"), std::string::npos);
  }
  x[4] = NAN;
  try {
    Pca::fit(x.data(), 2, 3, {});
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("row 1, column 1: value nan is not finite"), std::string::npos) << e.what();
  }
  std::vector<float> big = low_rank(3000, 20, 10);
  big[2345 * 20 + 7] = -INFINITY;
  for (auto solver : {PcaOptions::Solver::Covariance, PcaOptions::Solver::Randomized}) {
    PcaOptions o;
    o.solver = solver;
    try {
      Pca::fit(big.data(), 3000, 20, o);
      FAIL();
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("row 2345, column 7: value -inf is not finite"),
                std::string::npos) << e.what();
    }
  }
  const Pca ok = Pca::fit(big.data(), 2000, 20, {});
  std::vector<float> out(1000 * 2);
  try {
    ok.transform(big.data() + 2000 * 20, 1000, out.data());
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("transform: row 345, column 7: value -inf is not finite"),
              std::string::npos) << e.what();
  }
}

// Issue #18: PCA of a matrix scaled by 1e20 lost trustworthiness (0.61 against 0.78): the
// covariance solver's float Gram blocks overflowed. PCA is scale-equivariant: at every scale
// 2^k (exact), each solver gives the unscaled components and variance ratios, scores scaled by
// 2^k, and the same quality; and where the scores leave float's range, the error names them.
TEST(Pca, EveryScaleGivesTheSameFit) {
  const std::int64_t n = 400, d = 12;
  const std::vector<float> x = low_rank(n, d, 4);
  for (auto solver : {PcaOptions::Solver::Covariance, PcaOptions::Solver::Full,
                      PcaOptions::Solver::Randomized}) {
    PcaOptions o;
    o.solver = solver;
    std::vector<float> y0(n * 2);
    const Pca p0 = Pca::fit_transform(x.data(), n, d, o, y0.data());
    const auto q0 = neighbourhood_quality(x.data(), n, d, y0.data(), 2, {});
    for (int k : {-100, -70, 66, 100}) {  // ~1e-30, 1e-21, 7e19, 1.3e30
      SCOPED_TRACE(std::to_string(static_cast<int>(solver)) + " at 2^" + std::to_string(k));
      std::vector<float> xs(x);
      for (float& v : xs) v = std::ldexp(v, k);
      std::vector<float> y(n * 2);
      const Pca p = Pca::fit_transform(xs.data(), n, d, o, y.data());
      for (std::size_t e = 0; e < p0.components().size(); ++e) {
        EXPECT_NEAR(p.components()[e], p0.components()[e], 1e-5);
      }
      for (std::size_t c = 0; c < 2; ++c) {
        EXPECT_NEAR(p.explained_variance_ratio()[c], p0.explained_variance_ratio()[c], 1e-6);
        EXPECT_NEAR(p.singular_values()[c], std::ldexp(p0.singular_values()[c], k),
                    1e-5 * std::ldexp(p0.singular_values()[c], k));
      }
      for (std::int64_t e = 0; e < n * 2; ++e) {
        EXPECT_NEAR(y[e], std::ldexp(y0[e], k), 1e-4 * std::ldexp(1.0, k)) << e;
      }
      const auto q = neighbourhood_quality(xs.data(), n, d, y.data(), 2, {});
      for (std::size_t c = 0; c < q.size(); ++c) {
        EXPECT_NEAR(q[c].trustworthiness, q0[c].trustworthiness, 1e-3);
        EXPECT_NEAR(q[c].continuity, q0[c].continuity, 1e-3);
      }
    }
  }
  // Rows near FLT_MAX: the centred scores are longer than FLT_MAX.
  std::vector<float> huge = {3e38f, -3e38f, 0, -3e38f, 3e38f, 0, 1e38f, 1e38f, 1};
  const std::string msg =
      testing_support::error_of<InvalidArgument>([&] {
        std::vector<float> out(3);
        PcaOptions o;
        o.n_components = 1;
        Pca::fit_transform(huge.data(), 3, 3, o, out.data());
      });
  EXPECT_NE(msg.find("PCA: the score of row 0 on component 1 is beyond float32's range"),
            std::string::npos) << msg;
}

// sklearn.manifold.trustworthiness to 1e-6; continuity as trustworthiness with the spaces
// swapped; kNN preservation from numpy.
TEST(Quality, MatchesScikitLearn) {
  const nlohmann::json g = load("quality.json");
  const auto x = floats(g["x"]["data"]), y = floats(g["y"]["data"]);
  const std::int64_t n = g["x"]["rows"], d = g["x"]["cols"], dy = g["y"]["cols"];
  double worst = 0;
  int checked = 0;
  for (const auto& c : g["cases"]) {
    QualityOptions opt;
    opt.ks = {c["k"].get<std::int64_t>()};
    opt.metric.metric = kernels::parse_metric(c["metric"].get<std::string>());
    const Quality q = neighbourhood_quality(x.data(), n, d, y.data(), dy, opt)[0];
    const double t = c["trustworthiness"];
    EXPECT_NEAR(q.trustworthiness, t, 1e-6) << c.dump();
    worst = std::max(worst, std::fabs(q.trustworthiness - t));
    if (!c["continuity"].is_null()) {
      EXPECT_NEAR(q.continuity, c["continuity"].get<double>(), 1e-6) << c.dump();
      worst = std::max(worst, std::fabs(q.continuity - c["continuity"].get<double>()));
    }
    EXPECT_NEAR(q.knn_preservation, c["knn_preservation"].get<double>(), 1e-12) << c.dump();
    ++checked;
  }
  std::printf("[ sklearn ] trustworthiness/continuity worst |diff| %.2e over %d cases\n", worst, checked);
  EXPECT_EQ(checked, 6);
}

TEST(Quality, PerfectEmbeddingScoresOne) {
  const std::int64_t n = 200;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(n * 2);
  for (float& v : x) v = u(rng);
  for (const Quality& q : neighbourhood_quality(x.data(), n, 2, x.data(), 2, {})) {
    EXPECT_EQ(q.trustworthiness, 1.0);
    EXPECT_EQ(q.continuity, 1.0);
    EXPECT_EQ(q.knn_preservation, 1.0);
  }
  // a random embedding scores far lower, and a row subset estimates the full value
  std::vector<float> y(n * 2);
  for (float& v : y) v = u(rng);
  const auto all = neighbourhood_quality(x.data(), n, 2, y.data(), 2, {});
  QualityOptions some;
  some.max_rows = 100;
  const auto part = neighbourhood_quality(x.data(), n, 2, y.data(), 2, some);
  for (std::size_t c = 0; c < all.size(); ++c) {
    EXPECT_LT(all[c].trustworthiness, 0.7);
    EXPECT_NEAR(part[c].trustworthiness, all[c].trustworthiness, 0.05);
  }
}

TEST(Quality, SameBitsOnAnyThreadCountAndErrors) {
  const std::int64_t n = 300, d = 8;
  std::mt19937 rng(2);
  std::normal_distribution<float> g;
  std::vector<float> x(n * d), y(n * 2);
  for (float& v : x) v = g(rng);
  for (std::int64_t i = 0; i < n; ++i) y[2 * i] = x[i * d], y[2 * i + 1] = x[i * d + 1];
  kernels::set_num_threads(1);
  const auto a = neighbourhood_quality(x.data(), n, d, y.data(), 2, {});
  kernels::set_num_threads(2);
  const auto b = neighbourhood_quality(x.data(), n, d, y.data(), 2, {});
  kernels::set_num_threads(0);
  for (std::size_t c = 0; c < a.size(); ++c) {
    EXPECT_EQ(a[c].trustworthiness, b[c].trustworthiness);
    EXPECT_EQ(a[c].continuity, b[c].continuity);
    EXPECT_EQ(a[c].knn_preservation, b[c].knn_preservation);
  }
  QualityOptions big_k;
  big_k.ks = {150};
  try {
    neighbourhood_quality(x.data(), n, d, y.data(), 2, big_k);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("k = 150 needs 1 <= k < n / 2 (n = 300 points)"), std::string::npos);
  }
  y[5] = INFINITY;
  EXPECT_THROW(neighbourhood_quality(x.data(), n, d, y.data(), 2, {}), InvalidArgument);
}

// kNN label agreement: counted by hand on a small layout, 1 for separated labels, about the
// label share for labels that ignore the layout, and its errors.
TEST(Quality, KnnLabelAgreement) {
  // Points on a line at 0, 1, 2, 10, 11, 12; labels 0 0 1 1 1 1. k = 2:
  //   0: {1, 2}   -> 1 of 2 same     1: {0, 2} -> 1 of 2     2: {1, 0} -> 0 of 2
  //   10: {11, 12} -> 2 of 2         11: {10, 12} -> 2 of 2  12: {11, 10} -> 2 of 2
  const std::vector<float> line = {0, 0, 1, 0, 2, 0, 10, 0, 11, 0, 12, 0};
  const std::vector<std::int64_t> labels = {0, 0, 1, 1, 1, 1};
  EXPECT_DOUBLE_EQ(knn_label_agreement(line.data(), 6, 2, labels, 2), (0.5 + 0.5 + 0 + 3) / 6);
  // k = 1; point 0's nearest is 1 (same), 1's is 0 (a tie with 2 goes to the lower index).
  EXPECT_DOUBLE_EQ(knn_label_agreement(line.data(), 6, 2, labels, 1), (1 + 1 + 0 + 3) / 6.0);

  const std::int64_t n = 400;
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  std::vector<float> y(n * 2);
  std::vector<std::int64_t> by_cluster(n), random_labels(n);
  for (std::int64_t i = 0; i < n; ++i) {
    by_cluster[i] = i % 4;
    random_labels[i] = static_cast<std::int64_t>(rng() % 4);
    y[2 * i] = 100.0f * static_cast<float>(i % 4) + g(rng);
    y[2 * i + 1] = g(rng);
  }
  EXPECT_DOUBLE_EQ(knn_label_agreement(y.data(), n, 2, by_cluster, 10), 1.0);
  const double chance = knn_label_agreement(y.data(), n, 2, random_labels, 10);
  EXPECT_GT(chance, 0.15);
  EXPECT_LT(chance, 0.35);
  kernels::set_num_threads(1);
  const double one = knn_label_agreement(y.data(), n, 2, random_labels, 10);
  kernels::set_num_threads(0);
  EXPECT_EQ(one, chance);

  EXPECT_THROW(knn_label_agreement(y.data(), n, 2, by_cluster, 0), InvalidArgument);
  EXPECT_THROW(knn_label_agreement(y.data(), n, 2, by_cluster, n), InvalidArgument);
  EXPECT_THROW(knn_label_agreement(y.data(), n, 2, {0, 1}, 3), InvalidArgument);
  y[7] = NAN;
  EXPECT_THROW(knn_label_agreement(y.data(), n, 2, by_cluster, 3), InvalidArgument);
}

// The one-pass neighbour selection and ranking against the definition, written out: rank of j in
// row i = 1 + #{l != i: (key_l, l) < (key_j, j)} over the same distances, on data with many exact
// ties (small integers, duplicate points), for a distance and a similarity metric, all rows and a
// subset of rows.
TEST(Quality, RanksFollowTheDefinitionWithTies) {
  const std::int64_t n = 90, d = 3, dy = 2;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> small(-2, 2);
  std::vector<float> x(n * d), y(n * dy);
  for (float& v : x) v = static_cast<float>(small(rng));
  for (float& v : y) v = static_cast<float>(small(rng));
  for (std::int64_t j = 0; j < d; ++j) x[7 * d + j] = x[3 * d + j];  // a duplicate point
  for (auto m : {kernels::Metric::Manhattan, kernels::Metric::Cosine}) {
    if (m == kernels::Metric::Cosine) {
      for (std::int64_t i = 0; i < n; ++i) x[i * d] = x[i * d] == 0 ? 1.0f : x[i * d];  // nonzero rows
    }
    const kernels::MetricSpec spec{m};
    std::vector<float> dx(n * n), dyv(n * n);
    kernels::pairwise(spec, x.data(), n, x.data(), n, d, dx.data(), n);
    kernels::pairwise({kernels::Metric::Euclidean}, y.data(), n, y.data(), n, dy, dyv.data(), n);
    const double sx = kernels::higher_is_closer(m) ? -1.0 : 1.0;
    auto before = [&](const std::vector<float>& dist, double sign, std::int64_t i, std::int64_t l,
                      std::int64_t j) {
      const double kl = sign * dist[i * n + l], kj = sign * dist[i * n + j];
      return kl < kj || (kl == kj && l < j);
    };
    auto rank = [&](const std::vector<float>& dist, double sign, std::int64_t i, std::int64_t j) {
      std::int64_t r = 1;
      for (std::int64_t l = 0; l < n; ++l) r += (l != i && before(dist, sign, i, l, j)) ? 1 : 0;
      return r;
    };
    for (std::int64_t max_rows : {std::int64_t{0}, std::int64_t{13}}) {
      QualityOptions opt;
      opt.metric = spec;
      opt.ks = {1, 4, 10};
      opt.max_rows = max_rows;
      const auto got = neighbourhood_quality(x.data(), n, d, y.data(), dy, opt);
      std::vector<std::int64_t> rows;
      for (std::int64_t t = 0; t < (max_rows ? max_rows : n); ++t) rows.push_back(max_rows ? t * n / max_rows : t);
      for (std::size_t c = 0; c < opt.ks.size(); ++c) {
        const std::int64_t k = opt.ks[c];
        double tp = 0, cp = 0, sh = 0;
        for (std::int64_t i : rows) {
          for (std::int64_t j = 0; j < n; ++j) {
            if (j == i) continue;
            const std::int64_t rx = rank(dx, sx, i, j), ry = rank(dyv, 1.0, i, j);
            if (ry <= k && rx > k) tp += static_cast<double>(rx - k);
            if (rx <= k && ry > k) cp += static_cast<double>(ry - k);
            if (rx <= k && ry <= k) sh += 1;
          }
        }
        const double scale = static_cast<double>(n) / static_cast<double>(rows.size());
        const double norm = 2.0 / (static_cast<double>(n) * k * (2.0 * n - 3.0 * k - 1.0));
        EXPECT_NEAR(got[c].trustworthiness, 1.0 - norm * tp * scale, 1e-12) << k;
        EXPECT_NEAR(got[c].continuity, 1.0 - norm * cp * scale, 1e-12) << k;
        EXPECT_NEAR(got[c].knn_preservation, sh / (static_cast<double>(rows.size()) * k), 1e-12) << k;
      }
    }
  }
}

}  // namespace
}  // namespace mmembed::reduce
