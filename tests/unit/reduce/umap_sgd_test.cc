// UMAP's SGD (reduce/umap_sgd.h): the epochs_per_sample schedule against its definition in
// exact integer arithmetic and against umap-learn's running sums; the three move kernels
// (AVX-512, portable 16-lane, scalar with std::pow) against each other, for 2 and 3
// components, fit and transform; the same bits on 1 and 2 threads for each kernel.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "io/matrix.h"
#include "kernels/parallel.h"
#include "mmembed/error.h"
#include "reduce/umap.h"
#include "reduce/umap_sgd.h"
#include "search/knn.h"

namespace mmembed::reduce {
namespace {

using detail::SgdKernel;
using detail::SgdProblem;
using detail::SgdSchedule;

// floor(c * t * r) for a float r in (0, 1] and integers c, t >= 0, exactly: r = m / 2^k with
// m < 2^24 an integer.
std::int64_t exact_floor(std::int64_t c, std::int64_t t, float r) {
  int e = 0;
  const double f = std::frexp(static_cast<double>(r), &e);  // r = f 2^e, f in [0.5, 1)
  const std::uint64_t m = static_cast<std::uint64_t>(std::ldexp(f, 24));
  const int k = 24 - e;
  const unsigned __int128 prod = static_cast<unsigned __int128>(static_cast<std::uint64_t>(c * t)) * m;
  return k >= 128 ? 0 : static_cast<std::int64_t>(prod >> k);
}

std::vector<float> schedule_rates() {
  std::vector<float> r = {1.0f, 0.5f, 1.0f / 3.0f, 0.25f, 0.1f, 0.7f, 0.999f, 1e-3f, 2.0f / 500.0f};
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int i = 0; i < 300; ++i) r.push_back(std::max(u(rng), 1e-3f));
  return r;
}

// The schedule is the closed form: due at t when floor(t r) > floor((t - 1) r), drawing
// floor(5 t r) minus the same at the previous due epoch (minus 1 at the first) negative samples.
TEST(UmapSgdSchedule, MatchesTheClosedFormExactly) {
  const std::vector<float> rates = schedule_rates();
  constexpr int kEpochs = 500, kNeg = 5;
  SgdSchedule s(rates, kNeg, kEpochs);  // max weight 1: the rates are the weights
  for (std::size_t e = 0; e < rates.size(); ++e) {
    std::int64_t prev = -1, due_count = 0;
    for (int t = 1; t < kEpochs; ++t) {
      const bool due = exact_floor(1, t, rates[e]) > exact_floor(1, t - 1, rates[e]);
      ASSERT_EQ(due, s.due(static_cast<std::int64_t>(e), t)) << "rate " << rates[e] << " epoch " << t;
      if (!due) continue;
      ++due_count;
      const std::int64_t before = prev < 0 ? 1 : exact_floor(kNeg, prev, rates[e]);
      const std::int64_t want = std::max<std::int64_t>(0, exact_floor(kNeg, t, rates[e]) - before);
      ASSERT_EQ(want, s.take(static_cast<std::int64_t>(e), t)) << "rate " << rates[e] << " epoch " << t;
      prev = t;
    }
    EXPECT_EQ(due_count, exact_floor(1, kEpochs - 1, rates[e])) << rates[e];
  }
}

// umap-learn 0.5's loop keeps running sums in float64: epoch_of_next_sample += epochs_per_sample
// and epoch_of_next_negative_sample += n_neg * epochs_per_negative_sample. Over 500 epochs its
// samples and negative samples per edge are within one of the closed form's.
TEST(UmapSgdSchedule, AgreesWithUmapLearnsRunningSums) {
  const std::vector<float> rates = schedule_rates();
  constexpr int kEpochs = 500, kNeg = 5;
  SgdSchedule s(rates, kNeg, kEpochs);
  std::int64_t off_by_one = 0;
  for (std::size_t e = 0; e < rates.size(); ++e) {
    const double eps = static_cast<double>(kEpochs) / (kEpochs * static_cast<double>(rates[e]));
    const double epns = eps / kNeg;
    double next = eps, next_neg = epns;
    std::int64_t ref_samples = 0, ref_negs = 0, samples = 0, negs = 0;
    for (int t = 0; t < kEpochs; ++t) {
      if (next <= t) {
        ++ref_samples;
        next += eps;
        const auto n_neg = static_cast<std::int64_t>((t - next_neg) / epns);
        ref_negs += n_neg;
        next_neg += static_cast<double>(n_neg) * epns;
      }
      if (t > 0 && s.due(static_cast<std::int64_t>(e), t)) {
        ++samples;
        negs += s.take(static_cast<std::int64_t>(e), t);
      }
    }
    EXPECT_NEAR(static_cast<double>(samples), static_cast<double>(ref_samples), 1.0) << rates[e];
    EXPECT_NEAR(static_cast<double>(negs), static_cast<double>(ref_negs), static_cast<double>(kNeg)) << rates[e];
    off_by_one += samples != ref_samples;
  }
  EXPECT_LE(off_by_one, static_cast<std::int64_t>(rates.size() / 20));
}

// take_due lists the due edges of a range with their tails and negative samples: the AVX-512
// listing (where the CPU has it) gives what due() and take() give edge by edge, for ranges of 0 to
// 40 edges (masked tails), negative rates 5 and 0 and rates down to 1e-3, over 500 epochs.
TEST(UmapSgdSchedule, TakeDueListsWhatDueAndTakeGive) {
  const std::vector<float> rates = schedule_rates();
  const auto n = static_cast<std::int64_t>(rates.size());
  std::vector<std::int32_t> tails(rates.size());
  for (std::int64_t e = 0; e < n; ++e) tails[e] = static_cast<std::int32_t>(1000 + 7 * e);
  std::vector<std::int64_t> bounds = {0};
  std::mt19937 rng(3);
  while (bounds.back() < n) bounds.push_back(std::min<std::int64_t>(n, bounds.back() + static_cast<std::int64_t>(rng() % 41)));
  for (int neg : {5, 0}) {
    constexpr int kEpochs = 500;
    SgdSchedule ref(rates, neg, kEpochs), simd(rates, neg, kEpochs), scalar(rates, neg, kEpochs);
    std::int64_t listed = 0;
    for (int t = 1; t < kEpochs; ++t) {
      for (std::size_t b = 0; b + 1 < bounds.size(); ++b) {
        const std::int64_t lo = bounds[b], hi = bounds[b + 1];
        std::vector<std::int32_t> want_tail, want_neg;
        for (std::int64_t e = lo; e < hi; ++e) {
          if (!ref.due(e, t)) continue;
          want_tail.push_back(tails[e]);
          want_neg.push_back(ref.take(e, t));
        }
        for (bool use_simd : {true, false}) {
          SgdSchedule& s = use_simd ? simd : scalar;
          std::vector<std::int32_t> tail(static_cast<std::size_t>(hi - lo + 16), -7), negs(tail.size(), -7);
          const std::int32_t got = s.take_due(lo, hi, t, tails.data(), tail.data(), negs.data(), use_simd);
          ASSERT_EQ(got, static_cast<std::int32_t>(want_tail.size())) << "epoch " << t << " edges [" << lo << ", " << hi << ")";
          tail.resize(got);
          negs.resize(got);
          ASSERT_EQ(tail, want_tail) << "simd " << use_simd << " epoch " << t << " edges [" << lo << ", " << hi << ")";
          ASSERT_EQ(negs, want_neg) << "simd " << use_simd << " epoch " << t << " edges [" << lo << ", " << hi << ")";
        }
        listed += static_cast<std::int64_t>(want_tail.size());
      }
    }
    EXPECT_GT(listed, n * 50) << "the epochs list samples";
  }
}

TEST(UmapSgdSchedule, RejectsEpochsBeyondItsIntegers) {
  EXPECT_THROW(SgdSchedule({1.0f}, 5, 200000000), InvalidArgument);
  EXPECT_NO_THROW(SgdSchedule({1.0f}, 5, 100000));
}

// The fuzzy graph of 1,000 points (the 10-cluster mixture of umap_test).
const FuzzyGraph& mixture_graph() {
  static const FuzzyGraph g = [] {
    const io::Matrix x = io::read_matrix(std::string(MMEMBED_TEST_DATA_DIR) + "/reduce/umap_mixture.npy");
    search::KnnOptions opt;
    opt.n_neighbors = 14;
    const auto knn = search::make_knn(x.data.data(), x.rows, x.cols, kernels::MetricSpec{kernels::Metric::Euclidean}, opt);
    return fuzzy_simplicial_set(knn->graph(14));
  }();
  return g;
}

std::vector<float> run(const FuzzyGraph& g, int dim, int epochs, SgdKernel kernel,
                       const std::vector<float>* fixed, int threads) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.0f, 10.0f);
  std::vector<float> y(g.n * dim);
  for (float& v : y) v = u(rng);
  SgdProblem p;
  p.n_heads = g.n;
  p.offsets = g.offsets.data();
  p.tails = g.cols.data();
  p.head = y.data();
  p.tail_fixed = fixed == nullptr ? nullptr : fixed->data();
  p.n_tail = g.n;
  p.dim = dim;
  p.a = 1.577f;
  p.b = 0.895f;
  p.attract_scale = fixed == nullptr ? 2.0f : 1.0f;
  p.n_epochs = epochs;
  p.seed = 42;
  p.stream = 2;
  SgdSchedule s(g.vals, 5, epochs);
  const int before = kernels::num_threads();
  kernels::set_num_threads(threads);
  detail::optimize_layout(p, s, kernel);
  kernels::set_num_threads(before);
  return y;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

// The kernels make the same moves; only pow (fast_pow's ~1e-6 against std::pow) and FMA
// contraction differ. After one epoch of moves (epoch 0 has none) on a layout spanning [0, 10]
// they agree to a few float ulps; the fit's moves amplify differences from epoch to epoch (two
// epochs: ~1e-4), so the comparison is after one. Each kernel gives the same bits on 1 and 2
// threads after several epochs.
TEST(UmapSgdKernels, AgreeWithEachOther) {
  const FuzzyGraph& g = mixture_graph();
  std::vector<float> fixed(g.n * 3);
  for (std::size_t i = 0; i < fixed.size(); ++i) fixed[i] = static_cast<float>((i * 7919) % 1000) / 100.0f;
  std::vector<SgdKernel> kernels_run = {SgdKernel::Portable, SgdKernel::Scalar};
  if (detail::sgd_avx512_available()) kernels_run.push_back(SgdKernel::Avx512);
  for (int dim : {2, 3}) {
    const std::vector<float>* fit = nullptr;
    for (const std::vector<float>* f : {fit, static_cast<const std::vector<float>*>(&fixed)}) {
      const char* mode = f ? " transform" : " fit";
      const std::vector<float> start = run(g, dim, 0, SgdKernel::Scalar, f, 1);
      const std::vector<float> ref = run(g, dim, 2, SgdKernel::Scalar, f, 1);
      EXPECT_GT(max_abs_diff(start, ref), 0.1f) << "the moves moved something";
      for (SgdKernel k : kernels_run) {
        EXPECT_LT(max_abs_diff(run(g, dim, 2, k, f, 1), ref), 1e-5f)
            << "kernel " << static_cast<int>(k) << " dim " << dim << mode;
        const std::vector<float> y1 = run(g, dim, 6, k, f, 1);
        const std::vector<float> y2 = run(g, dim, 6, k, f, 2);
        EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)))
            << "kernel " << static_cast<int>(k) << " dim " << dim << mode;
      }
    }
  }
}

// Other component counts run the scalar kernel whatever is asked, and the AVX-512 kernel is
// refused where it cannot run.
TEST(UmapSgdKernels, FourComponentsRunScalar) {
  const FuzzyGraph& g = mixture_graph();
  const std::vector<float> ref = run(g, 4, 3, SgdKernel::Scalar, nullptr, 1);
  EXPECT_EQ(0, std::memcmp(ref.data(), run(g, 4, 3, SgdKernel::Auto, nullptr, 2).data(), ref.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(ref.data(), run(g, 4, 3, SgdKernel::Portable, nullptr, 1).data(), ref.size() * sizeof(float)));
  EXPECT_THROW(run(g, 4, 3, SgdKernel::Avx512, nullptr, 1), Unsupported);
}

}  // namespace
}  // namespace mmembed::reduce
