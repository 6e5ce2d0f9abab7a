// Element-wise and row kernels against their double-precision references, at awkward sizes, and
// bit-identical across thread counts. Tolerances: docs/numerics.md, "Kernels".
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/norm.h"
#include "kernels/parallel.h"
#include "kernels/softmax.h"
#include "kernels/vectorize.h"
#include "kernel_test_util.h"

namespace mmembed::kernels {
namespace {

using testing::all_close;
using testing::awkward_sizes;
using testing::random_vector;
using testing::same_bits;

using Unary = void (*)(const float*, float*, std::int64_t);

struct UnaryCase {
  const char* name;
  Unary fast, slow;
  double atol, rtol;
};

const UnaryCase kUnary[] = {
    {"gelu", gelu, ref::gelu, 1e-6, 1e-6},
    {"quick_gelu", quick_gelu, ref::quick_gelu, 1e-7, 1e-6},
    {"tanh", tanh, ref::tanh, 1e-7, 1e-6},
};

TEST(Elementwise, MatchReferenceAtAwkwardSizes) {
  for (const UnaryCase& k : kUnary) {
    for (std::int64_t n : awkward_sizes()) {
      auto x = random_vector(static_cast<std::size_t>(n), 7, -8.0f, 8.0f);
      std::vector<float> got(x.size()), want(x.size());
      k.fast(x.data(), got.data(), n);
      k.slow(x.data(), want.data(), n);
      EXPECT_TRUE(all_close(got, want, k.atol, k.rtol)) << k.name << " n=" << n;
      std::vector<float> inplace = x;  // y == x
      k.fast(inplace.data(), inplace.data(), n);
      EXPECT_TRUE(same_bits(inplace, got)) << k.name << " in place, n=" << n;
    }
  }
}

TEST(Elementwise, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {0.0f, -0.0f, inf, -inf, 100.0f, -100.0f, 1e-30f};
  std::vector<float> y(x.size());
  gelu(x.data(), y.data(), static_cast<std::int64_t>(x.size()));
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[2], inf);
  EXPECT_EQ(y[4], 100.0f);
  EXPECT_EQ(y[5], 0.0f);
  EXPECT_EQ(y[6], 0.5f * 1e-30f);  // gelu(x) = x / 2 near 0
  std::vector<float> nan = {std::numeric_limits<float>::quiet_NaN()};
  gelu(nan.data(), nan.data(), 1);
  EXPECT_TRUE(std::isnan(nan[0]));
  quick_gelu(x.data(), y.data(), static_cast<std::int64_t>(x.size()));
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[4], 100.0f);
  EXPECT_EQ(y[5], 0.0f);  // exp overflows to inf: -100 / inf = -0
  tanh(x.data(), y.data(), static_cast<std::int64_t>(x.size()));
  EXPECT_EQ(y[2], 1.0f);
  EXPECT_EQ(y[3], -1.0f);
}

TEST(BiasAdd, MatchesReference) {
  for (std::int64_t cols : awkward_sizes()) {
    const std::int64_t rows = 3;
    auto y0 = random_vector(static_cast<std::size_t>(rows * cols), 3);
    auto b = random_vector(static_cast<std::size_t>(cols), 4);
    std::vector<float> got = y0, want = y0;
    bias_add(got.data(), b.data(), rows, cols);
    ref::bias_add(want.data(), b.data(), rows, cols);
    EXPECT_TRUE(all_close(got, want, 0.0, 0x1p-23)) << "cols=" << cols;
  }
}

// The one-pass bias + activation kernels (linear's epilogue) equal bias_add then the activation,
// bit for bit, at a row stride wider than the row; columns beyond the row are not touched.
TEST(BiasActivation, EqualsBiasAddThenActivation) {
  for (std::int64_t cols : awkward_sizes()) {
    const std::int64_t rows = 3, ld = cols + 5;
    auto y0 = random_vector(static_cast<std::size_t>(rows * ld), 5, -6.0f, 6.0f);
    auto b = random_vector(static_cast<std::size_t>(cols), 6);
    for (bool quick : {false, true}) {
      std::vector<float> got = y0, want = y0;
      if (quick) {
        bias_quick_gelu_rows(got.data(), b.data(), rows, cols, ld);
      } else {
        bias_gelu_rows(got.data(), b.data(), rows, cols, ld);
      }
      for (std::int64_t r = 0; r < rows; ++r) {
        float* row = want.data() + r * ld;
        bias_add(row, b.data(), 1, cols);
        (quick ? quick_gelu : gelu)(row, row, cols);
      }
      EXPECT_TRUE(same_bits(got, want)) << (quick ? "quick_gelu" : "gelu") << " cols=" << cols;
      std::vector<float> nobias = y0, act = y0;  // no bias: the activation alone
      if (quick) {
        bias_quick_gelu_rows(nobias.data(), nullptr, rows, cols, ld);
      } else {
        bias_gelu_rows(nobias.data(), nullptr, rows, cols, ld);
      }
      for (std::int64_t r = 0; r < rows; ++r) {
        float* row = act.data() + r * ld;
        (quick ? quick_gelu : gelu)(row, row, cols);
      }
      EXPECT_TRUE(same_bits(nobias, act)) << "no bias, cols=" << cols;
    }
  }
}

TEST(LayerNorm, MatchesReferenceAtAwkwardSizes) {
  for (std::int64_t cols : awkward_sizes()) {
    const std::int64_t rows = 5;
    auto x = random_vector(static_cast<std::size_t>(rows * cols), 21, -2.0f, 4.0f);
    auto g = random_vector(static_cast<std::size_t>(cols), 22, 0.5f, 1.5f);
    auto b = random_vector(static_cast<std::size_t>(cols), 23);
    for (int variant = 0; variant < 4; ++variant) {
      const float* gp = (variant & 1) ? g.data() : nullptr;
      const float* bp = (variant & 2) ? b.data() : nullptr;
      std::vector<float> got(x.size()), want(x.size());
      layer_norm(x.data(), gp, bp, got.data(), rows, cols, 1e-5f);
      ref::layer_norm(x.data(), gp, bp, want.data(), rows, cols, 1e-5f);
      EXPECT_TRUE(all_close(got, want, 1e-6, 1e-6)) << "cols=" << cols << " variant " << variant;
    }
  }
}

TEST(LayerNorm, LargeMeanAgainstSpread) {
  // Rows centred on 1000 with spread ~1: a one-pass float variance would lose every digit.
  const std::int64_t rows = 4, cols = 768;
  auto x = random_vector(static_cast<std::size_t>(rows * cols), 31, 999.0f, 1001.0f);
  std::vector<float> got(x.size()), want(x.size());
  layer_norm(x.data(), nullptr, nullptr, got.data(), rows, cols, 1e-12f);
  ref::layer_norm(x.data(), nullptr, nullptr, want.data(), rows, cols, 1e-12f);
  EXPECT_TRUE(all_close(got, want, 1e-6, 1e-6));
}

TEST(LayerNorm, ConstantRowGivesBeta) {
  std::vector<float> x(33, 3.25f), b(33, 0.5f), y(33);
  layer_norm(x.data(), nullptr, b.data(), y.data(), 1, 33, 1e-5f);
  for (float v : y) EXPECT_EQ(v, 0.5f);
}

TEST(Softmax, MatchesReferenceWithAndWithoutMask) {
  for (std::int64_t cols : awkward_sizes()) {
    const std::int64_t rows = 3;
    auto x = random_vector(static_cast<std::size_t>(rows * cols), 41, -10.0f, 10.0f);
    std::vector<float> mask(static_cast<std::size_t>(cols), 0.0f);
    for (std::size_t c = 0; c < mask.size(); c += 3) mask[c] = std::numeric_limits<float>::lowest();
    for (const float* m : {static_cast<const float*>(nullptr), static_cast<const float*>(mask.data())}) {
      std::vector<float> got(x.size()), want(x.size());
      softmax(x.data(), got.data(), rows, cols, m);
      ref::softmax(x.data(), want.data(), rows, cols, m);
      EXPECT_TRUE(all_close(got, want, 1e-7, 1e-6)) << "cols=" << cols << (m ? " masked" : "");
      for (std::int64_t r = 0; r < rows; ++r) {
        double sum = 0.0;
        for (std::int64_t c = 0; c < cols; ++c) {
          float p = got[static_cast<std::size_t>(r * cols + c)];
          if (m && m[c] != 0.0f && cols > 1) {
            EXPECT_EQ(p, 0.0f);
          }
          sum += p;
        }
        EXPECT_NEAR(sum, 1.0, 1e-6);
      }
    }
  }
}

// Scores far below the row's max (exp underflows to subnormals and zero, as in attention with
// large logits), the attention widths, and a NaN, which makes its whole row NaN as in PyTorch.
TEST(Softmax, WideRangeAndNaN) {
  for (std::int64_t cols : {1, 15, 16, 17, 77, 325, 442, 1000}) {
    const std::int64_t rows = 4;
    auto x = random_vector(static_cast<std::size_t>(rows * cols), 43, -120.0f, 40.0f);
    std::vector<float> got(x.size()), want(x.size());
    softmax(x.data(), got.data(), rows, cols);
    ref::softmax(x.data(), want.data(), rows, cols);
    EXPECT_TRUE(all_close(got, want, 1e-7, 1e-6)) << "cols=" << cols;
    x[static_cast<std::size_t>(cols / 2)] = std::numeric_limits<float>::quiet_NaN();  // row 0
    softmax(x.data(), got.data(), rows, cols);
    for (std::int64_t c = 0; c < cols; ++c) {
      EXPECT_TRUE(std::isnan(got[static_cast<std::size_t>(c)])) << "cols=" << cols;
    }
    EXPECT_FALSE(std::isnan(got[static_cast<std::size_t>(cols)]));  // row 1 untouched
  }
}

TEST(Softmax, EdgeRows) {
  const float inf = std::numeric_limits<float>::infinity();
  // All keys masked with the lowest float (the Hugging Face convention): uniform.
  std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f};
  std::vector<float> mask(4, std::numeric_limits<float>::lowest()), y(4);
  softmax(x.data(), y.data(), 1, 4, mask.data());
  for (float v : y) EXPECT_FLOAT_EQ(v, 0.25f);
  // All -inf: NaN, as PyTorch.
  std::vector<float> ninf(4, -inf);
  softmax(ninf.data(), y.data(), 1, 4);
  for (float v : y) EXPECT_TRUE(std::isnan(v));
  // A large finite score takes all the mass.
  std::vector<float> big = {0.0f, 1e30f, 0.0f};
  softmax(big.data(), big.data(), 1, 3);
  EXPECT_EQ(big, (std::vector<float>{0.0f, 1.0f, 0.0f}));
}

TEST(L2Normalize, MatchesReferenceAndZeroRow) {
  for (std::int64_t cols : awkward_sizes()) {
    const std::int64_t rows = 4;
    auto x = random_vector(static_cast<std::size_t>(rows * cols), 51, -3.0f, 3.0f);
    std::fill(x.begin(), x.begin() + cols, 0.0f);  // row 0: zero stays zero (eps clamps)
    std::vector<float> got(x.size()), want(x.size());
    l2_normalize(x.data(), got.data(), rows, cols);
    ref::l2_normalize(x.data(), want.data(), rows, cols);
    EXPECT_TRUE(all_close(got, want, 1e-9, 1e-6)) << "cols=" << cols;
    for (std::int64_t c = 0; c < cols; ++c) EXPECT_EQ(got[static_cast<std::size_t>(c)], 0.0f);
  }
  // Tiny norms are clamped to eps = 1e-12 as in F.normalize: [3e-13, 4e-13] / 1e-12.
  std::vector<float> tiny = {3e-13f, 4e-13f}, y(2);
  l2_normalize(tiny.data(), y.data(), 1, 2);
  EXPECT_NEAR(y[0], 0.3f, 1e-6f);
  EXPECT_NEAR(y[1], 0.4f, 1e-6f);
}

// Same bits with 1 and 2 threads, on inputs large enough to be split over the pool.
TEST(RowKernels, ThreadCountDoesNotChangeBits) {
  const std::int64_t rows = 442, cols = 768;
  const std::size_t n = static_cast<std::size_t>(rows * cols);
  auto x = random_vector(n, 61, -4.0f, 4.0f);
  auto g = random_vector(static_cast<std::size_t>(cols), 62);
  auto b = random_vector(static_cast<std::size_t>(cols), 63);
  std::vector<std::function<void(std::vector<float>&)>> runs = {
      [&](std::vector<float>& y) { gelu(x.data(), y.data(), rows * cols); },
      [&](std::vector<float>& y) { quick_gelu(x.data(), y.data(), rows * cols); },
      [&](std::vector<float>& y) { tanh(x.data(), y.data(), rows * cols); },
      [&](std::vector<float>& y) { layer_norm(x.data(), g.data(), b.data(), y.data(), rows, cols, 1e-5f); },
      [&](std::vector<float>& y) { softmax(x.data(), y.data(), rows, cols, g.data()); },
      [&](std::vector<float>& y) { l2_normalize(x.data(), y.data(), rows, cols); },
      [&](std::vector<float>& y) { y = x; bias_add(y.data(), b.data(), rows, cols); },
  };
  const int before = num_threads();
  for (std::size_t i = 0; i < runs.size(); ++i) {
    std::vector<float> one(n), two(n);
    set_num_threads(1);
    runs[i](one);
    set_num_threads(2);
    runs[i](two);
    EXPECT_TRUE(same_bits(one, two)) << "kernel " << i;
  }
  set_num_threads(before);
}

TEST(Parallel, ChunksCoverTheRangeOnce) {
  set_num_threads(2);
  EXPECT_EQ(num_threads(), 2);
  std::vector<int> hits(1000, 0);
  parallel_for(1000, 10, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) ++hits[static_cast<std::size_t>(i)];
  });
  for (int h : hits) EXPECT_EQ(h, 1);
  set_num_threads(0);
  EXPECT_GE(num_threads(), 1);
}

}  // namespace
}  // namespace mmembed::kernels

namespace mmembed::kernels {
namespace {

// detail::exp_f32 (the vectorizable exp behind softmax and QuickGELU) against double exp.
TEST(VectorExp, WithinTwoUlpAndSpecialValues) {
  double worst_ulps = 0.0;
  float worst_x = 0.0f;
  for (float x = -87.0f; x <= 88.7f; x += 0.001953125f) {  // 2^-9 steps: ~90k points
    const double want = std::exp(static_cast<double>(x));
    const double ulp = std::ldexp(1.0, std::ilogb(want) - 23);
    const double ulps = std::fabs(detail::exp_f32(x) - want) / ulp;
    if (ulps > worst_ulps) worst_ulps = ulps, worst_x = x;
  }
  EXPECT_LE(worst_ulps, 2.0) << "at x = " << worst_x;
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(detail::exp_f32(0.0f), 1.0f);
  EXPECT_EQ(detail::exp_f32(-inf), 0.0f);
  EXPECT_EQ(detail::exp_f32(inf), inf);
  EXPECT_EQ(detail::exp_f32(89.0f), inf);
  EXPECT_EQ(detail::exp_f32(-200.0f), 0.0f);
  EXPECT_TRUE(std::isnan(detail::exp_f32(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_GT(detail::exp_f32(88.7f), 3.3e38f);                 // largest finite results
  EXPECT_NEAR(detail::exp_f32(-100.0f) / 3.720076e-44f, 1.0, 0.05);  // subnormal results
}

}  // namespace
}  // namespace mmembed::kernels
