// The short-x linear (gemm_small.h): against the scalar reference on odd sizes, the fused
// activations against the separate kernels, and its invariances: the same bits on 1 and 2
// threads, and a row's result independent of the other rows of x (a text embedded alone or in a
// batch), bit for bit, among inputs of up to 16 rows and among inputs of 17 to 80 (and, through
// linear(), of 81 to 160, run as two halves).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/gemm_small.h"
#include "kernels/parallel.h"

namespace mmembed::kernels {
namespace {

using testing::all_close;
using testing::random_vector;

struct Case {
  std::int64_t rows, in, out;
};

std::string name(const Case& c) {
  return std::to_string(c.rows) + "x" + std::to_string(c.in) + "->" + std::to_string(c.out);
}

// Random x [rows, in], w [out, in] (small, as trained weights) and bias [out] from seeds s, s + 1
// and s + 2.
struct Inputs {
  std::vector<float> x, w, b;
};
Inputs random_inputs(const Case& c, unsigned seed) {
  return {random_vector(static_cast<std::size_t>(c.rows * c.in), seed),
          random_vector(static_cast<std::size_t>(c.out * c.in), seed + 1, -0.1f, 0.1f),
          random_vector(static_cast<std::size_t>(c.out), seed + 2)};
}

std::vector<float> small(const Case& c, const std::vector<float>& x, const std::vector<float>& w,
                         const std::vector<float>& b, Epilogue e, int threads) {
  set_num_threads(threads);
  std::vector<float> y(static_cast<std::size_t>(c.rows * c.out), -7.0f);
  detail::small_rows_linear(x.data(), w.data(), b.empty() ? nullptr : b.data(), y.data(), c.rows,
                            c.in, c.out, e);
  return y;
}

class SmallRows : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!detail::small_rows_supported()) {
      GTEST_SKIP() << "this CPU lacks AVX-512F (or MMEMBED_SHORT_GEMM=0): linear() uses the GEMM "
                      "backend for every row count";
    }
    threads_before_ = num_threads();
  }
  void TearDown() override {
    if (threads_before_ > 0) set_num_threads(threads_before_);
  }
  int threads_before_ = 0;
};

// Row counts 2..80 across the vector widths (16 rows per vector) and their column blocks (8, 6
// and 5 columns), inner sizes around the 16-element step of the transposes and the prefetch
// distance, output widths around the blocks and the 16-column groups written back transposed.
const Case kCases[] = {
    {2, 1, 1},      {3, 15, 7},    {16, 16, 8},   {17, 17, 9},    {31, 100, 65},
    {32, 768, 200}, {33, 129, 16}, {48, 64, 24},  {49, 300, 130}, {64, 768, 768},
    {16, 3072, 40}, {5, 1024, 1030}, {57, 40, 50}, {65, 33, 100}, {77, 200, 333},
    {80, 48, 96},   {77, 768, 79},
};

TEST_F(SmallRows, MatchesReference) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(name(c));
    const auto [x, w, b] = random_inputs(c, 1);
    std::vector<float> want(static_cast<std::size_t>(c.rows * c.out));
    ref::linear(x.data(), w.data(), b.data(), want.data(), c.rows, c.in, c.out);
    EXPECT_TRUE(all_close(small(c, x, w, b, Epilogue::None, 1).data(), want.data(), want.size(),
                          1e-5, 1e-5));
    // No bias: y is only written (the -7 it held must not leak in).
    ref::linear(x.data(), w.data(), nullptr, want.data(), c.rows, c.in, c.out);
    EXPECT_TRUE(all_close(small(c, x, w, {}, Epilogue::None, 1).data(), want.data(), want.size(),
                          1e-5, 1e-5));
  }
}

TEST_F(SmallRows, FusedActivationsEqualSeparateOnes) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(name(c));
    const auto [x, w, b] = random_inputs(c, 4);
    const auto plain = small(c, x, w, b, Epilogue::None, 1);
    auto gelu_after = plain, quick_after = plain;
    gelu(gelu_after.data(), gelu_after.data(), static_cast<std::int64_t>(plain.size()));
    quick_gelu(quick_after.data(), quick_after.data(), static_cast<std::int64_t>(plain.size()));
    EXPECT_EQ(small(c, x, w, b, Epilogue::Gelu, 1), gelu_after);
    EXPECT_EQ(small(c, x, w, b, Epilogue::QuickGelu, 1), quick_after);
  }
}

TEST_F(SmallRows, SameBitsOnOneAndTwoThreadsAndThroughLinear) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(name(c));
    const auto [x, w, b] = random_inputs(c, 7);
    const auto one = small(c, x, w, b, Epilogue::Gelu, 1);
    EXPECT_EQ(small(c, x, w, b, Epilogue::Gelu, 2), one);
    if (c.rows < detail::kSmallRowsLinearMin || c.rows > detail::kSmallRowsLinear) continue;
    // linear() sends these row counts here.
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      std::vector<float> y(one.size());
      linear(x.data(), w.data(), b.data(), y.data(), c.rows, c.in, c.out, Epilogue::Gelu);
      EXPECT_EQ(y, one) << threads << " threads";
    }
  }
}

// A row's bits depend on its own values only, not on the other rows of x, among inputs of up to
// 16 rows (the pair kernel) and among inputs of 17 to 80 rows (one FMA chain per output).
void expect_rows_independent(std::int64_t rows_alone, std::int64_t rows_batch,
                             std::int64_t offset) {
  const Case alone{rows_alone, 771, 96}, batch{rows_batch, 771, 96};
  const auto [x, w, b] = random_inputs(batch, 10);
  std::vector<float> x_alone(x.begin() + offset * batch.in,
                             x.begin() + (offset + alone.rows) * batch.in);
  const auto y_alone = small(alone, x_alone, w, b, Epilogue::None, 1);
  const auto y_batch = small(batch, x, w, b, Epilogue::None, 2);
  const std::vector<float> rows_in_batch(y_batch.begin() + offset * batch.out,
                                         y_batch.begin() + (offset + alone.rows) * batch.out);
  EXPECT_EQ(y_alone, rows_in_batch);
}

TEST_F(SmallRows, RowIndependentOfTheOtherRows) {
  {
    SCOPED_TRACE("9 rows inside 14");
    expect_rows_independent(9, 14, 3);
  }
  {
    SCOPED_TRACE("20 rows inside 40 and 77");
    expect_rows_independent(20, 40, 20);
    expect_rows_independent(20, 77, 50);
  }
}

// linear() from 81 to 160 rows runs the short path on each half of x: against the reference,
// the same bits on 1 and 2 threads, and a row's bits the same as in any other input of 17 to 80
// rows (here: 20 of its rows alone).
TEST_F(SmallRows, LinearTakesTwoHalvesUpTo160Rows) {
  for (std::int64_t rows : {81, 128, 159, 160}) {
    const Case c{rows, 771, 96};
    SCOPED_TRACE(name(c));
    const auto [x, w, b] = random_inputs(c, 13);
    std::vector<float> want(static_cast<std::size_t>(c.rows * c.out));
    ref::linear(x.data(), w.data(), b.data(), want.data(), c.rows, c.in, c.out);
    std::vector<float> y[2];
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      y[threads - 1].assign(want.size(), -7.0f);
      linear(x.data(), w.data(), b.data(), y[threads - 1].data(), c.rows, c.in, c.out, Epilogue::None);
    }
    EXPECT_TRUE(all_close(y[0].data(), want.data(), want.size(), 1e-5, 1e-5));
    EXPECT_EQ(y[0], y[1]);
    const std::int64_t offset = rows - 25;  // in the second half
    const Case alone{20, c.in, c.out};
    std::vector<float> x_alone(x.begin() + offset * c.in, x.begin() + (offset + 20) * c.in);
    EXPECT_EQ(small(alone, x_alone, w, b, Epilogue::None, 1),
              std::vector<float>(y[0].begin() + offset * c.out, y[0].begin() + (offset + 20) * c.out));
  }
}

}  // namespace
}  // namespace mmembed::kernels
