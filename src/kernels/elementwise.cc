#include "kernels/elementwise.h"

#include <cmath>

#include "kernels/parallel.h"
#include "kernels/vectorize.h"

namespace mmembed::kernels {
namespace {

constexpr std::int64_t kElementGrain = 16384;
constexpr float kSqrtHalf = 0.70710678118654752440f;

MMEMBED_TARGET_CLONES void bias_add_rows(float* y, const float* bias, std::int64_t r0,
                                         std::int64_t r1, std::int64_t cols) {
  for (std::int64_t r = r0; r < r1; ++r) {
    float* row = y + r * cols;
    for (std::int64_t c = 0; c < cols; ++c) row[c] += bias[c];
  }
}

// erf(x) for the GELU loop, vectorizable: Abramowitz & Stegun 7.1.26,
// erf(x) = 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-x^2), t = 1 / (1 + p |x|), odd in x;
// absolute error <= 1.5e-7 (the formula ATen uses for its vectorized CPU erf).
inline float erf_f32(float x) {
  const float a = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  float poly = 1.061405429f;
  poly = poly * t - 1.453152027f;
  poly = poly * t + 1.421413741f;
  poly = poly * t - 0.284496736f;
  poly = poly * t + 0.254829592f;
  const float e = 1.0f - poly * t * detail::exp_f32(-a * a);
  return x < 0.0f ? -e : e;
}

MMEMBED_TARGET_CLONES void gelu_range(const float* x, float* y, std::int64_t i0, std::int64_t i1) {
  for (std::int64_t i = i0; i < i1; ++i) {
    float v = x[i];
    y[i] = 0.5f * v * (1.0f + erf_f32(v * kSqrtHalf));
  }
}

// tanh is a libm call, which the compiler does not vectorize without -ffast-math: scalar.
void tanh_range(const float* x, float* y, std::int64_t i0, std::int64_t i1) {
  for (std::int64_t i = i0; i < i1; ++i) y[i] = std::tanh(x[i]);
}

// Vectorized through detail::exp_f32.
MMEMBED_TARGET_CLONES void quick_gelu_range(const float* x, float* y, std::int64_t i0,
                                            std::int64_t i1) {
  for (std::int64_t i = i0; i < i1; ++i) {
    float v = x[i];
    y[i] = v / (1.0f + detail::exp_f32(-1.702f * v));
  }
}

}  // namespace

void bias_add(float* y, const float* bias, std::int64_t rows, std::int64_t cols) {
  parallel_for(rows, row_grain(cols), [&](std::int64_t r0, std::int64_t r1) {
    bias_add_rows(y, bias, r0, r1, cols);
  });
}

void gelu(const float* x, float* y, std::int64_t n) {
  parallel_for(n, kElementGrain, [&](std::int64_t i0, std::int64_t i1) { gelu_range(x, y, i0, i1); });
}

void quick_gelu(const float* x, float* y, std::int64_t n) {
  parallel_for(n, kElementGrain,
               [&](std::int64_t i0, std::int64_t i1) { quick_gelu_range(x, y, i0, i1); });
}

void tanh(const float* x, float* y, std::int64_t n) {
  parallel_for(n, kElementGrain, [&](std::int64_t i0, std::int64_t i1) { tanh_range(x, y, i0, i1); });
}

namespace ref {

void bias_add(float* y, const float* bias, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      y[r * cols + c] = static_cast<float>(static_cast<double>(y[r * cols + c]) + bias[c]);
    }
  }
}

void gelu(const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    double v = x[i];
    y[i] = static_cast<float>(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
  }
}

void quick_gelu(const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    double v = x[i];
    y[i] = static_cast<float>(v / (1.0 + std::exp(-1.702 * v)));
  }
}

void tanh(const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(std::tanh(static_cast<double>(x[i])));
}

}  // namespace ref
}  // namespace mmembed::kernels
