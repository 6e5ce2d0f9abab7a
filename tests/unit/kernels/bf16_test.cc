// bf16 and int8 weights (issue #22): linear_bf16 against a double-precision
// product of the same bf16-rounded operands, whole and tiled over threads, with each epilogue.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/half.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"

namespace mmembed::kernels {
namespace {

double gelu(double v) {
  return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
}

void check_linear(std::int64_t rows, std::int64_t in, std::int64_t out, Epilogue e, bool bias_on,
                  int threads) {
  SCOPED_TRACE(testing::Message() << rows << "x" << in << " -> " << out << " epilogue "
                                  << static_cast<int>(e) << " threads " << threads);
  std::mt19937 rng(static_cast<unsigned>(rows * 31 + in * 7 + out));
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(rows * in), wf(out * in), bias(out);
  for (float& v : x)
    v = g(rng);
  for (float& v : wf)
    v = g(rng) * 0.05f;
  for (float& v : bias)
    v = g(rng);
  std::vector<std::uint16_t> w(wf.size());
  to_bf16(wf.data(), w.data(), static_cast<std::int64_t>(wf.size()));
  std::vector<float> y(rows * out, std::numeric_limits<float>::quiet_NaN());
  const int before = num_threads();
  set_num_threads(threads);
  linear_bf16(x.data(), w.data(), bias_on ? bias.data() : nullptr, y.data(), rows, in, out, e);
  set_num_threads(before);
  double worst = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < out; ++c) {
      double acc = 0, mag = 0;
      for (std::int64_t k = 0; k < in; ++k) {
        const double p =
            double(bf16_to_f32(f32_to_bf16(x[r * in + k]))) * bf16_to_f32(w[c * in + k]);
        acc += p;
        mag += std::abs(p);
      }
      if (bias_on) acc += bias[c];
      if (e == Epilogue::Gelu) acc = gelu(acc);
      const double err = std::abs(y[r * out + c] - acc) / (mag + 1.0);
      worst = std::max(worst, err);
    }
  }
  EXPECT_LE(worst, 1e-5);  // f32 accumulation of exact bf16 products
}

TEST(Bf16, LinearEqualsTheProductOfTheRoundedOperands) {
  if (!bf16_supported()) GTEST_SKIP() << "this build's GEMM backend has no bf16 product";
  for (int threads : {1, 2}) {
    check_linear(1, 64, 48, Epilogue::None, true, threads);
    check_linear(37, 300, 130, Epilogue::None, true, threads);
    check_linear(37, 300, 130, Epilogue::None, false, threads);
    check_linear(600, 256, 512, Epilogue::Gelu, true, threads);  // tiled on 2 threads
    check_linear(16, 768, 768, Epilogue::None, true, threads);
  }
}

TEST(Bf16, ThreadCountDoesNotChangeTheBitsMuch) {
  if (!bf16_supported()) GTEST_SKIP();
  const std::int64_t rows = 700, in = 384, out = 1024;
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(rows * in), wf(out * in);
  for (float& v : x)
    v = g(rng);
  for (float& v : wf)
    v = g(rng) * 0.05f;
  std::vector<std::uint16_t> w(wf.size());
  to_bf16(wf.data(), w.data(), static_cast<std::int64_t>(wf.size()));
  std::vector<float> a(rows * out), b(rows * out);
  const int before = num_threads();
  set_num_threads(1);
  linear_bf16(x.data(), w.data(), nullptr, a.data(), rows, in, out, Epilogue::None);
  set_num_threads(2);
  linear_bf16(x.data(), w.data(), nullptr, b.data(), rows, in, out, Epilogue::None);
  set_num_threads(before);
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max<double>(worst, std::abs(a[i] - b[i]));
  EXPECT_LE(worst, 1e-4);
}

// ---- int8 ----

TEST(Int8, QuantizeRowsIsSymmetricPerRow) {
  const std::vector<float> x = {1.0f, -0.5f, 0.25f,   0.0f,   0.0f, 0.0f,
                                0.0f, 0.0f,  -254.0f, 127.0f, 1.0f, 0.49f};
  std::vector<std::int8_t> q(x.size());
  std::vector<float> s(3);
  quantize_rows_s8(x.data(), 3, 4, q.data(), s.data());
  EXPECT_FLOAT_EQ(s[0], 1.0f / 127.0f);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], -64);         // -63.5: ties to even
  EXPECT_EQ(q[2], 32);          // 31.75
  EXPECT_FLOAT_EQ(s[1], 1.0f);  // an all-zero row
  EXPECT_EQ(q[4], 0);
  EXPECT_FLOAT_EQ(s[2], 2.0f);
  EXPECT_EQ(q[8], -127);
  EXPECT_EQ(q[9], 64);  // 63.5: ties to even
  EXPECT_EQ(q[10], 0);  // 0.5: ties to even
  EXPECT_EQ(q[11], 0);  // 0.245
}

void check_int8(std::int64_t rows, std::int64_t in, std::int64_t out, Epilogue e, int threads) {
  SCOPED_TRACE(testing::Message() << rows << "x" << in << " -> " << out << " threads " << threads);
  std::mt19937 rng(static_cast<unsigned>(rows * 13 + in * 5 + out));
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(rows * in), bias(out), ws(out);
  std::vector<std::int8_t> w(out * in);
  std::uniform_int_distribution<int> wi(-127, 127);
  for (float& v : x)
    v = g(rng);
  for (auto& v : w)
    v = static_cast<std::int8_t>(wi(rng));
  for (float& v : ws)
    v = 0.001f * (1.0f + std::abs(g(rng)));
  for (float& v : bias)
    v = g(rng);
  std::vector<float> y(rows * out, std::numeric_limits<float>::quiet_NaN());
  const int before = num_threads();
  set_num_threads(threads);
  linear_int8(x.data(), w.data(), ws.data(), bias.data(), y.data(), rows, in, out, e);
  set_num_threads(before);
  std::vector<std::int8_t> xq(x.size());
  std::vector<float> xs(rows);
  quantize_rows_s8(x.data(), rows, in, xq.data(), xs.data());
  double worst = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < out; ++c) {
      std::int64_t acc = 0;
      for (std::int64_t k = 0; k < in; ++k)
        acc += std::int64_t(xq[r * in + k]) * w[c * in + k];
      double v = double(acc) * xs[r] * ws[c] + bias[c];
      if (e == Epilogue::Gelu) v = gelu(v);
      worst = std::max(worst, std::abs(y[r * out + c] - v) / (std::abs(v) + 1.0));
    }
  }
  EXPECT_LE(worst, 1e-5);  // exact int32 sums; only the float rescaling rounds
}

TEST(Int8, LinearEqualsTheExactIntegerProductRescaled) {
  if (!int8_supported()) GTEST_SKIP() << "this build's GEMM backend has no int8 product";
  for (int threads : {1, 2}) {
    check_int8(1, 64, 48, Epilogue::None, threads);
    check_int8(37, 300, 130, Epilogue::None, threads);
    check_int8(600, 256, 512, Epilogue::Gelu, threads);
    check_int8(16, 768, 768, Epilogue::None, threads);
  }
  // in = 0: y is the bias (an empty sum), also after a call that left other values behind.
  const std::vector<float> bias = {1.5f, -2.0f, 0.25f};
  std::vector<float> y(6, std::numeric_limits<float>::quiet_NaN());
  const std::vector<float> ws = {1.0f, 1.0f, 1.0f};
  linear_int8(nullptr, nullptr, ws.data(), bias.data(), y.data(), 2, 0, 3, Epilogue::None);
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 3; ++c) EXPECT_EQ(y[r * 3 + c], bias[c]);
  }
}

}  // namespace
}  // namespace mmembed::kernels
