// Distance kernels against their scalar reference and SciPy's values (tests/data/analysis/,
// made by scripts/reference/gen_analysis.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/distance.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "kernel_test_util.h"
#include "mmembed/error.h"

namespace mmembed::kernels {
namespace {

using testing::random_vector;
constexpr double kU = 1.0 / (1 << 24);

nlohmann::json load(const std::string& name) {
  std::ifstream in(std::string(MMEMBED_TEST_DATA_DIR) + "/analysis/" + name);
  EXPECT_TRUE(in.good()) << name;
  return nlohmann::json::parse(in);
}

std::vector<double> values(const nlohmann::json& j) {
  std::vector<double> v;
  for (const auto& x : j) v.push_back(x.is_null() ? std::nan("") : x.get<double>());
  return v;
}

std::vector<float> floats(const nlohmann::json& j) {
  std::vector<float> v;
  for (const auto& x : j) v.push_back(static_cast<float>(x.get<double>()));
  return v;
}

std::vector<MetricSpec> all_specs() {
  return {{Metric::Cosine},     {Metric::CosineDistance}, {Metric::Euclidean},
          {Metric::SqEuclidean}, {Metric::Dot},           {Metric::Manhattan},
          {Metric::Chebyshev},  {Metric::Minkowski, 1.0}, {Metric::Minkowski, 1.5},
          {Metric::Minkowski, 2.0}, {Metric::Minkowski, 3.0},
          {Metric::Minkowski, std::numeric_limits<double>::infinity()}};
}

std::string label(const MetricSpec& s) {
  return std::string(metric_name(s.metric)) + (s.metric == Metric::Minkowski ? " p=" + std::to_string(s.p) : "");
}

// The SciPy golden: every metric, the fast pairwise path, the single-pair path and the reference.
TEST(Distance, MatchesScipy) {
  const nlohmann::json g = load("distances.json");
  const auto x = floats(g["x"]["data"]), y = floats(g["y"]["data"]);
  const std::int64_t n = g["x"]["rows"], m = g["y"]["rows"], d = g["x"]["cols"];
  int checked = 0;
  double worst_fast = 0, worst_direct = 0;  // relative to max(|ref|, 1e-3)
  for (const auto& c : g["metrics"]) {
    MetricSpec spec{parse_metric(c["metric"].get<std::string>())};
    if (c.contains("p")) {
      spec.p = c["p"].is_string() ? std::numeric_limits<double>::infinity() : c["p"].get<double>();
    }
    const std::vector<double> want = values(c["values"]["data"]);
    std::vector<float> fast(n * m), ref_out(n * m);
    pairwise(spec, x.data(), n, y.data(), m, d, fast.data(), m);
    ref::pairwise(spec, x.data(), n, y.data(), m, d, ref_out.data(), m);
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t j = 0; j < m; ++j) {
        const double w = want[i * m + j];
        const float single = distance(spec, x.data() + i * d, y.data() + j * d, d);
        SCOPED_TRACE(label(spec) + " [" + std::to_string(i) + "," + std::to_string(j) + "]");
        if (std::isnan(w)) {
          EXPECT_TRUE(std::isnan(fast[i * m + j]));
          EXPECT_TRUE(std::isnan(ref_out[i * m + j]));
          EXPECT_TRUE(std::isnan(single));
          continue;
        }
        // Inputs are the same float32 values SciPy saw in float64; ours round once to float
        // (single, reference) or carry the GEMM error (fast; 37-long dots of values ~1-10).
        EXPECT_NEAR(single, w, 2 * kU * std::fabs(w) + 1e-12);
        EXPECT_NEAR(ref_out[i * m + j], w, 2 * kU * std::fabs(w) + 1e-12);
        EXPECT_NEAR(fast[i * m + j], w, 1e-6 * std::fabs(w) + 2e-6);
        const double scale = std::max(std::fabs(w), 1e-3);
        worst_fast = std::max(worst_fast, std::fabs(fast[i * m + j] - w) / scale);
        worst_direct = std::max(worst_direct, std::fabs(single - w) / scale);
        ++checked;
      }
    }
  }
  std::printf("[ scipy   ] %d values: max rel error fast %.2e, direct %.2e\n", checked, worst_fast,
              worst_direct);
  EXPECT_GT(checked, 300);
}

TEST(Distance, DuplicatesAreExactlyZeroInTheGemmPath) {
  const std::int64_t n = 9, d = 300;
  auto x = random_vector(n * d, 3, -4.0f, 6.0f);
  for (Metric metric : {Metric::Euclidean, Metric::SqEuclidean, Metric::CosineDistance}) {
    std::vector<float> out(n * n);
    pairwise({metric}, x.data(), n, x.data(), n, d, out.data(), n);
    for (std::int64_t i = 0; i < n; ++i) EXPECT_EQ(out[i * n + i], 0.0f) << metric_name(metric);
  }
}

// Fast vs reference on random data, with lengths around the vector widths.
TEST(Distance, FastMatchesReference) {
  for (std::int64_t d : {1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 64, 65, 300, 768}) {
    const std::int64_t n = 7, m = 11;
    auto x = random_vector(n * d, 10 + d, -1.0f, 1.0f);
    auto y = random_vector(m * d, 20 + d, -0.5f, 1.5f);
    std::copy(x.begin(), x.begin() + d, y.begin() + 3 * d);  // a duplicate pair
    for (const MetricSpec& spec : all_specs()) {
      std::vector<float> fast(n * m), want(n * m);
      pairwise(spec, x.data(), n, y.data(), m, d, fast.data(), m);
      ref::pairwise(spec, x.data(), n, y.data(), m, d, want.data(), m);
      for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t j = 0; j < m; ++j) {
          const float* a = x.data() + i * d;
          const float* b = y.data() + j * d;
          double na = 0, nb = 0, sab = 0;
          for (std::int64_t t = 0; t < d; ++t) na += a[t] * a[t], nb += b[t] * b[t], sab += std::fabs(a[t] * b[t]);
          const double w = want[i * m + j];
          double tol = 2 * kU * std::fabs(w);  // direct paths: one rounding and double sums
          const double gemm = (d + 2) * kU;
          switch (spec.metric) {
            case Metric::Dot: tol = gemm * sab + kU * std::fabs(w); break;
            case Metric::Cosine: tol = gemm * sab / std::sqrt(na * nb) + 2 * kU; break;
            case Metric::CosineDistance: tol = 64 * gemm * std::fabs(w) + gemm * sab / std::sqrt(na * nb) * (w >= 1.0 / 64) + 2 * kU; break;
            case Metric::SqEuclidean: tol = 64 * gemm * std::fabs(w) + 2 * kU * std::fabs(w); break;
            case Metric::Euclidean: tol = 32 * gemm * std::fabs(w) + 2 * kU * std::fabs(w); break;
            default: break;
          }
          EXPECT_NEAR(fast[i * m + j], w, tol) << label(spec) << " d=" << d << " [" << i << "," << j << "]";
        }
      }
    }
  }
}

TEST(Distance, ZeroVectorsGiveNanForCosineOnly) {
  const std::int64_t d = 5;
  std::vector<float> z(d, 0.0f), a = {1, 2, 3, 4, 5};
  EXPECT_TRUE(std::isnan(distance({Metric::Cosine}, z.data(), a.data(), d)));
  EXPECT_TRUE(std::isnan(distance({Metric::CosineDistance}, a.data(), z.data(), d)));
  EXPECT_TRUE(std::isnan(distance({Metric::Cosine}, z.data(), z.data(), d)));
  float out = 0;
  one_to_many({Metric::Cosine}, z.data(), a.data(), 1, d, &out);
  EXPECT_TRUE(std::isnan(out));
  EXPECT_FLOAT_EQ(distance({Metric::Euclidean}, z.data(), a.data(), d), std::sqrt(55.0f));
  EXPECT_EQ(distance({Metric::Dot}, z.data(), a.data(), d), 0.0f);
}

TEST(Distance, ClampsCosineToUnitRange) {
  std::vector<float> a = {1e-3f, 3e-3f, 7e-3f};
  std::vector<float> b = {2e-3f, 6e-3f, 14e-3f};  // parallel: cos = 1 up to rounding
  std::vector<float> out(4);
  pairwise({Metric::Cosine}, a.data(), 1, b.data(), 1, 3, out.data(), 1);
  EXPECT_LE(out[0], 1.0f);
  EXPECT_GE(distance({Metric::CosineDistance}, a.data(), b.data(), 3), 0.0f);
}

TEST(Distance, LargeMinkowskiPDoesNotOverflow) {
  std::vector<float> a = {1e30f, -2e30f, 0}, b = {0, 0, 0};
  const float v = distance({Metric::Minkowski, 40.0}, a.data(), b.data(), 3);
  EXPECT_TRUE(std::isfinite(v));
  EXPECT_NEAR(v, 2e30, 2e30 * 1e-6);
  std::vector<float> c = {1e-30f, 0, 0};
  EXPECT_NEAR(distance({Metric::Minkowski, 100.0}, c.data(), b.data(), 3), 1e-30, 1e-36);
}

// FastMatchesReference's bounds, with the sums in double (the inputs may be near FLT_MAX) and
// a floor of one subnormal step for results that round into float's subnormal range.
double scale_tolerance(const MetricSpec& spec, const float* a, const float* b, std::int64_t d,
                       double w) {
  double na = 0, nb = 0, sab = 0;
  for (std::int64_t t = 0; t < d; ++t) {
    const double p = a[t], q = b[t];
    na += p * p, nb += q * q, sab += std::fabs(p * q);
  }
  const double gemm = (d + 2) * kU, floor = 2.0 * std::numeric_limits<float>::denorm_min();
  switch (spec.metric) {
    case Metric::Dot: return gemm * sab + kU * std::fabs(w) + floor;
    case Metric::Cosine: return gemm * sab / std::sqrt(na * nb) + 2 * kU;
    case Metric::CosineDistance:
      return 64 * gemm * std::fabs(w) + gemm * sab / std::sqrt(na * nb) + 2 * kU;
    case Metric::SqEuclidean: return 66 * gemm * std::fabs(w) + floor;
    case Metric::Euclidean: return 34 * gemm * std::fabs(w) + floor;
    default: return 2 * kU * std::fabs(w) + floor;
  }
}

// Issue #18: vectors scaled by 1e20 gave every cosine 1 (the float GEMM's products overflowed
// to inf) and by 1e-25 every cosine 0 (they flushed to 0). The class: every metric, on every
// path (pairwise through the GEMM, one_to_many, distance), agrees with the double reference on
// the same inputs at every scale 10^k, k = -30..30 and subnormal inputs (~1e-40), results beyond
// float's range being +-inf as the reference rounds them; and the cosines and each row's
// nearest neighbour are those of the unscaled vectors.
TEST(Distance, EveryScaleAgreesWithTheReference) {
  const std::int64_t n = 9, m = 13, d = 37;
  const auto x1 = random_vector(n * d, 41), y1 = random_vector(m * d, 42);
  std::vector<float> cos1(n * m);
  pairwise({Metric::Cosine}, x1.data(), n, y1.data(), m, d, cos1.data(), m);
  std::vector<double> scales;
  for (int k = -30; k <= 30; ++k) scales.push_back(std::pow(10.0, k));
  scales.push_back(1e-40);  // subnormal floats
  for (double scale : scales) {
    std::vector<float> x(n * d), y(m * d);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(x1[i] * scale);
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<float>(y1[i] * scale);
    for (const MetricSpec& spec : all_specs()) {
      SCOPED_TRACE(label(spec) + " at scale " + std::to_string(scale));
      std::vector<float> fast(n * m), one(m), self(n * n);
      pairwise(spec, x.data(), n, y.data(), m, d, fast.data(), m);
      pairwise(spec, x.data(), n, x.data(), n, d, self.data(), n);
      for (std::int64_t i = 0; i < n; ++i) {
        one_to_many(spec, x.data() + i * d, y.data(), m, d, one.data());
        for (std::int64_t j = 0; j < m; ++j) {
          const float want =
              static_cast<float>(ref::distance(spec, x.data() + i * d, y.data() + j * d, d));
          const double tol = scale_tolerance(spec, x.data() + i * d, y.data() + j * d, d, want);
          for (float got : {fast[i * m + j], one[j],
                            distance(spec, x.data() + i * d, y.data() + j * d, d)}) {
            if (std::isinf(want)) {
              EXPECT_EQ(got, want) << i << "," << j;
            } else {
              EXPECT_NEAR(got, want, tol) << i << "," << j;
            }
          }
        }
        if (spec.metric == Metric::Cosine) {
          EXPECT_NEAR(self[i * n + i], 1.0f, 1e-6);
        } else if (!higher_is_closer(spec.metric)) {
          EXPECT_EQ(self[i * n + i], 0.0f);
        }
      }
      if (spec.metric != Metric::Cosine || scale < 1e-30) continue;
      for (std::int64_t i = 0; i < n; ++i) {
        std::int64_t best = 0, best1 = 0;
        for (std::int64_t j = 0; j < m; ++j) {
          EXPECT_NEAR(fast[i * m + j], cos1[i * m + j], 1e-5) << i << "," << j;
          if (fast[i * m + j] > fast[i * m + best]) best = j;
          if (cos1[i * m + j] > cos1[i * m + best1]) best1 = j;
        }
        EXPECT_EQ(best, best1) << "row " << i;
      }
    }
  }
}

// The rescaled path keeps the GEMM's properties: thread-count independent bits, and rows of
// very different lengths in one call (1e-30 beside 1e30) each right.
TEST(Distance, RescaledPathMixesScalesAndKeepsBits) {
  const bool same_bits = std::string(gemm_backend_name()) == "dnnl";  // as ThreadCount... below
  const std::int64_t n = 300, m = 40, d = 24;
  auto x = random_vector(n * d, 7), y = random_vector(m * d, 8);
  for (std::int64_t i = 0; i < n; ++i) {
    const float s = i % 3 == 0 ? 1e30f : i % 3 == 1 ? 1e-30f : 1.0f;
    for (std::int64_t c = 0; c < d; ++c) x[i * d + c] *= s;
  }
  for (const MetricSpec& spec : all_specs()) {
    SCOPED_TRACE(label(spec));
    std::vector<float> a(n * m), b(n * m);
    set_num_threads(1);
    pairwise(spec, x.data(), n, y.data(), m, d, a.data(), m);
    set_num_threads(2);
    pairwise(spec, x.data(), n, y.data(), m, d, b.data(), m);
    if (same_bits) {
      EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
    }
    for (std::int64_t i = 0; i < n; i += 7) {
      for (std::int64_t j = 0; j < m; j += 3) {
        const float* xi = x.data() + i * d;
        const float want = static_cast<float>(ref::distance(spec, xi, y.data() + j * d, d));
        if (std::isinf(want)) {
          EXPECT_EQ(a[i * m + j], want) << i << "," << j;
        } else {
          EXPECT_NEAR(a[i * m + j], want, scale_tolerance(spec, xi, y.data() + j * d, d, want))
              << i << "," << j;
        }
      }
    }
  }
  set_num_threads(0);
}

TEST(Distance, ThreadCountDoesNotChangeBits) {
  if (std::string(gemm_backend_name()) != "dnnl") {
    GTEST_SKIP() << gemm_backend_name() << "'s sgemm depends on the thread count";
  }
  const std::int64_t n = 301, m = 1100, d = 70;  // 2 x 2 tiles of the GEMM path
  auto x = random_vector(n * d, 5), y = random_vector(m * d, 6);
  for (const MetricSpec& spec : all_specs()) {
    std::vector<float> a(n * m), b(n * m);
    set_num_threads(1);
    pairwise(spec, x.data(), n, y.data(), m, d, a.data(), m);
    set_num_threads(2);
    pairwise(spec, x.data(), n, y.data(), m, d, b.data(), m);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << label(spec);
    std::vector<double> norms(m);
    row_sq_norms(y.data(), m, d, norms.data());
    pairwise(spec, x.data(), n, y.data(), m, d, b.data(), m, norms.data());  // norms given
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << label(spec);
    for (std::int64_t i : {0, 255, 256, 300}) {  // either side of the tile edges
      for (std::int64_t j : {0, 1023, 1024, 1099}) {
        const double want = ref::distance(spec, x.data() + i * d, y.data() + j * d, d);
        EXPECT_NEAR(a[i * m + j], want, 1e-4 * std::max(1.0, std::fabs(want))) << label(spec);
      }
    }
  }
  set_num_threads(0);
}

TEST(Distance, LeadingDimensionAndEmptyShapes) {
  const std::int64_t n = 3, m = 4, d = 8, ldo = 6;
  auto x = random_vector(n * d, 7), y = random_vector(m * d, 8);
  std::vector<float> out(n * ldo, -7.0f);
  pairwise({Metric::Euclidean}, x.data(), n, y.data(), m, d, out.data(), ldo);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = m; j < ldo; ++j) EXPECT_EQ(out[i * ldo + j], -7.0f);
    EXPECT_NEAR(out[i * ldo + 1], ref::distance({Metric::Euclidean}, x.data() + i * d, y.data() + d, d), 1e-5);
  }
  pairwise({Metric::Euclidean}, x.data(), 0, y.data(), m, d, out.data(), m);  // no-op
  std::vector<float> zero_d(n * m, -1.0f);
  pairwise({Metric::SqEuclidean}, x.data(), n, y.data(), m, 0, zero_d.data(), m);
  for (float v : zero_d) EXPECT_EQ(v, 0.0f);
}

TEST(Distance, ParsesNamesAndRejectsBadOptions) {
  for (const MetricSpec& s : all_specs()) EXPECT_EQ(parse_metric(metric_name(s.metric)), s.metric);
  EXPECT_EQ(parse_metric("cityblock"), Metric::Manhattan);
  try {
    parse_metric("hamming");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown metric 'hamming'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("chebyshev"), std::string::npos);
  }
  float a = 1, b = 2, out;
  EXPECT_THROW(pairwise({Metric::Minkowski, 0.5}, &a, 1, &b, 1, 1, &out, 1), InvalidArgument);
  EXPECT_THROW(validate({Metric::Minkowski, std::nan("")}), InvalidArgument);
  try {
    validate({Metric::Minkowski, 0.5});
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("p must be >= 1 (got 0.5)"), std::string::npos);
  }
  EXPECT_NO_THROW(validate({Metric::Euclidean, 0.0}));  // p is ignored outside minkowski
}

}  // namespace
}  // namespace mmembed::kernels

namespace mmembed::kernels {
namespace {

// dot_f32 / sq_l2_f32 (the ANN graphs' distances): within float rounding of the double
// reference at every length around the vector widths, and the same bits on every call.
TEST(Distance, FloatRowKernelsMatchTheReference) {
  std::uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(static_cast<std::int32_t>(state >> 8) - (1 << 23)) / float(1 << 23);
  };
  for (std::int64_t d : {0, 1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 512, 1000}) {
    std::vector<float> a(d), b(d);
    for (auto& v : a) v = next();
    for (auto& v : b) v = next();
    double dot = 0, sq = 0, scale = 0;
    for (std::int64_t i = 0; i < d; ++i) {
      dot += double(a[i]) * b[i];
      sq += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
      scale += std::abs(double(a[i]) * b[i]);
    }
    EXPECT_NEAR(dot_f32(a.data(), b.data(), d), dot, 1e-6 * (scale + 1)) << "d " << d;
    EXPECT_NEAR(sq_l2_f32(a.data(), b.data(), d), sq, 1e-6 * (sq + 1)) << "d " << d;
    EXPECT_EQ(dot_f32(a.data(), b.data(), d), dot_f32(a.data(), b.data(), d));
    EXPECT_EQ(sq_l2_f32(a.data(), a.data(), d), 0.0f);
  }
}

}  // namespace
}  // namespace mmembed::kernels
