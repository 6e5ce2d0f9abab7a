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

// erf, exp and tanh are libm calls, which the compiler does not vectorize without -ffast-math;
// these loops are scalar (see docs/performance.md for what they cost against the GEMMs).
void gelu_range(const float* x, float* y, std::int64_t i0, std::int64_t i1) {
  for (std::int64_t i = i0; i < i1; ++i) {
    float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::erf(v * kSqrtHalf));
  }
}

void quick_gelu_range(const float* x, float* y, std::int64_t i0, std::int64_t i1) {
  for (std::int64_t i = i0; i < i1; ++i) {
    float v = x[i];
    y[i] = v / (1.0f + std::exp(-1.702f * v));
  }
}

void tanh_range(const float* x, float* y, std::int64_t i0, std::int64_t i1) {
  for (std::int64_t i = i0; i < i1; ++i) y[i] = std::tanh(x[i]);
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
