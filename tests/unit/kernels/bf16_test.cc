// bf16 weights (issue #22): linear_bf16 against a double-precision
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

double gelu(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }

void check_linear(std::int64_t rows, std::int64_t in, std::int64_t out, Epilogue e, bool bias_on,
                  int threads) {
  SCOPED_TRACE(testing::Message() << rows << "x" << in << " -> " << out << " epilogue "
                                  << static_cast<int>(e) << " threads " << threads);
  std::mt19937 rng(static_cast<unsigned>(rows * 31 + in * 7 + out));
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(rows * in), wf(out * in), bias(out);
  for (float& v : x) v = g(rng);
  for (float& v : wf) v = g(rng) * 0.05f;
  for (float& v : bias) v = g(rng);
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
        const double p = double(bf16_to_f32(f32_to_bf16(x[r * in + k]))) * bf16_to_f32(w[c * in + k]);
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
  for (float& v : x) v = g(rng);
  for (float& v : wf) v = g(rng) * 0.05f;
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
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max<double>(worst, std::abs(a[i] - b[i]));
  EXPECT_LE(worst, 1e-4);
}

}  // namespace
}  // namespace mmembed::kernels
