#include "kernels/softmax.h"

#include <cmath>
#include <limits>

#include "kernels/parallel.h"
#include "kernels/vectorize.h"

namespace mmembed::kernels {
namespace {

// One row: y = x (+ mask), then max, exp(y - max) (vectorized exp_f32) with a double sum over
// lanes, then scale by 1/sum.
MMEMBED_TARGET_CLONES void softmax_row(const float* x, float* y, std::int64_t cols,
                                       const float* mask) {
  using detail::kLanes;
  if (mask) {
    for (std::int64_t c = 0; c < cols; ++c) y[c] = x[c] + mask[c];
  } else if (y != x) {
    for (std::int64_t c = 0; c < cols; ++c) y[c] = x[c];
  }
  // Max over kLanes accumulators; max is exact, so the order does not matter for the result.
  float mx[kLanes];
  for (int l = 0; l < kLanes; ++l) mx[l] = -std::numeric_limits<float>::infinity();
  std::int64_t c = 0;
  for (; c + kLanes <= cols; c += kLanes) {
    for (int l = 0; l < kLanes; ++l) mx[l] = y[c + l] > mx[l] ? y[c + l] : mx[l];
  }
  for (int l = 0; c < cols; ++c, ++l) mx[l] = y[c] > mx[l] ? y[c] : mx[l];
  float m = mx[0];
  for (int l = 1; l < kLanes; ++l) m = mx[l] > m ? mx[l] : m;
  // A NaN in the row propagates through exp and the sum, as in PyTorch.
  for (c = 0; c < cols; ++c) y[c] = detail::exp_f32(y[c] - m);
  const float inv = static_cast<float>(1.0 / detail::sum_f64(y, cols));
  for (c = 0; c < cols; ++c) y[c] *= inv;
}

}  // namespace

void softmax(const float* x, float* y, std::int64_t rows, std::int64_t cols, const float* mask) {
  if (cols <= 0) return;
  parallel_for(rows, row_grain(cols), [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) softmax_row(x + r * cols, y + r * cols, cols, mask);
  });
}

namespace ref {

void softmax(const float* x, float* y, std::int64_t rows, std::int64_t cols, const float* mask) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    double m = -std::numeric_limits<double>::infinity();
    for (std::int64_t c = 0; c < cols; ++c) {
      // The masked score is rounded to float, as the fast path and PyTorch store it.
      double v = static_cast<float>(xr[c] + (mask ? mask[c] : 0.0f));
      if (v > m) m = v;
    }
    double sum = 0.0;
    for (std::int64_t c = 0; c < cols; ++c) {
      double v = static_cast<float>(xr[c] + (mask ? mask[c] : 0.0f));
      sum += std::exp(v - m);
    }
    for (std::int64_t c = 0; c < cols; ++c) {
      double v = static_cast<float>(xr[c] + (mask ? mask[c] : 0.0f));
      yr[c] = static_cast<float>(std::exp(v - m) / sum);
    }
  }
}

}  // namespace ref
}  // namespace mmembed::kernels
