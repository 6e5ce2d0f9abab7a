// Element-wise kernels on contiguous f32 arrays. y may equal x (in place); otherwise they must
// not overlap. Large arrays are split over the kernels' pool; each element is computed alone, so
// results do not depend on the thread count.
//
//   kernels::gelu(h, h, rows * 3072);            // in place
//   kernels::bias_add(y, b, rows, cols);         // y[r, c] += b[c]
#pragma once

#include <cstdint>

namespace mmembed::kernels {

// y[r, c] += bias[c] for a [rows, cols] row-major y.
void bias_add(float* y, const float* bias, std::int64_t rows, std::int64_t cols);

// GELU in its erf form, as torch.nn.functional.gelu(approximate="none"):
// 0.5 x (1 + erf(x / sqrt(2))), erf evaluated to 1.5e-7 absolute (vectorized; docs/numerics.md).
void gelu(const float* x, float* y, std::int64_t n);

// QuickGELU (CLIP): x * sigmoid(1.702 x).
void quick_gelu(const float* x, float* y, std::int64_t n);

// y[r, c] = gelu(y[r, c] + bias[c]) (quick_gelu likewise) for `rows` rows of `cols` values at
// row stride ld, in one pass; bias may be null. The same bits as bias_add then gelu. Runs on the
// calling thread (callers share rows out themselves).
void bias_gelu_rows(float* y, const float* bias, std::int64_t rows, std::int64_t cols,
                    std::int64_t ld);
void bias_quick_gelu_rows(float* y, const float* bias, std::int64_t rows, std::int64_t cols,
                          std::int64_t ld);

// tanh(x).
void tanh(const float* x, float* y, std::int64_t n);

namespace ref {
// Evaluated in double, rounded once to float.
void bias_add(float* y, const float* bias, std::int64_t rows, std::int64_t cols);
void gelu(const float* x, float* y, std::int64_t n);
void quick_gelu(const float* x, float* y, std::int64_t n);
void tanh(const float* x, float* y, std::int64_t n);
}  // namespace ref

}  // namespace mmembed::kernels
