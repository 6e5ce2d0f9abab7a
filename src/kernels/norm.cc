#include "kernels/norm.h"

#include <algorithm>
#include <cmath>

#include "kernels/parallel.h"
#include "kernels/vectorize.h"

namespace mmembed::kernels {
namespace {

MMEMBED_TARGET_CLONES void layer_norm_rows(const float* x, const float* gamma, const float* beta,
                                           float* y, std::int64_t r0, std::int64_t r1,
                                           std::int64_t cols, float eps) {
  for (std::int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    const double mean = detail::sum_f64(xr, cols) / static_cast<double>(cols);
    const double var = detail::sum_sq_dev_f64(xr, cols, mean) / static_cast<double>(cols);
    // The mean as a float pair m_hi + m_lo: x - m_hi is exact for x near the mean (Sterbenz),
    // so a large mean does not cost the centred values their low bits.
    const float m_hi = static_cast<float>(mean);
    const float m_lo = static_cast<float>(mean - static_cast<double>(m_hi));
    const float rstd = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
    if (gamma && beta) {
      for (std::int64_t c = 0; c < cols; ++c) {
        yr[c] = ((xr[c] - m_hi) - m_lo) * rstd * gamma[c] + beta[c];
      }
    } else if (gamma) {
      for (std::int64_t c = 0; c < cols; ++c) yr[c] = ((xr[c] - m_hi) - m_lo) * rstd * gamma[c];
    } else if (beta) {
      for (std::int64_t c = 0; c < cols; ++c) yr[c] = ((xr[c] - m_hi) - m_lo) * rstd + beta[c];
    } else {
      for (std::int64_t c = 0; c < cols; ++c) yr[c] = ((xr[c] - m_hi) - m_lo) * rstd;
    }
  }
}

// yr = (xr + bias) + rr (bias may be null).
MMEMBED_TARGET_CLONES void add_row(const float* xr, const float* bias, const float* rr, float* yr,
                                   std::int64_t cols) {
  if (bias != nullptr) {
    for (std::int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] + bias[c]) + rr[c];
  } else {
    for (std::int64_t c = 0; c < cols; ++c) yr[c] = xr[c] + rr[c];
  }
}

MMEMBED_TARGET_CLONES void l2_normalize_rows(const float* x, float* y, std::int64_t r0,
                                             std::int64_t r1, std::int64_t cols, float eps) {
  for (std::int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    const double norm = std::sqrt(detail::sum_sq_dev_f64(xr, cols, 0.0));
    // Divide (not multiply by a reciprocal), as PyTorch does.
    const float denom = static_cast<float>(std::max(norm, static_cast<double>(eps)));
    for (std::int64_t c = 0; c < cols; ++c) yr[c] = xr[c] / denom;
  }
}

}  // namespace

void layer_norm(const float* x, const float* gamma, const float* beta, float* y,
                std::int64_t rows, std::int64_t cols, float eps) {
  parallel_for(rows, row_grain(cols), [&](std::int64_t r0, std::int64_t r1) {
    layer_norm_rows(x, gamma, beta, y, r0, r1, cols, eps);
  });
}

void add_layer_norm(const float* x, const float* bias, const float* residual,
                    const float* gamma, const float* beta, float* y, std::int64_t rows,
                    std::int64_t cols, float eps) {
  parallel_for(rows, row_grain(cols), [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      float* yr = y + r * cols;
      add_row(x + r * cols, bias, residual + r * cols, yr, cols);  // the row stays in L1
      layer_norm_rows(yr, gamma, beta, yr, 0, 1, cols, eps);
    }
  });
}

void l2_normalize(const float* x, float* y, std::int64_t rows, std::int64_t cols, float eps) {
  parallel_for(rows, row_grain(cols), [&](std::int64_t r0, std::int64_t r1) {
    l2_normalize_rows(x, y, r0, r1, cols, eps);
  });
}

namespace ref {

void layer_norm(const float* x, const float* gamma, const float* beta, float* y,
                std::int64_t rows, std::int64_t cols, float eps) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    double mean = 0.0;
    for (std::int64_t c = 0; c < cols; ++c) mean += xr[c];
    mean /= static_cast<double>(cols);
    double var = 0.0;
    for (std::int64_t c = 0; c < cols; ++c) var += (xr[c] - mean) * (xr[c] - mean);
    var /= static_cast<double>(cols);
    const double rstd = 1.0 / std::sqrt(var + static_cast<double>(eps));
    for (std::int64_t c = 0; c < cols; ++c) {
      double v = (xr[c] - mean) * rstd;
      if (gamma) v *= gamma[c];
      if (beta) v += beta[c];
      y[r * cols + c] = static_cast<float>(v);
    }
  }
}

void l2_normalize(const float* x, float* y, std::int64_t rows, std::int64_t cols, float eps) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    double ss = 0.0;
    for (std::int64_t c = 0; c < cols; ++c) ss += static_cast<double>(xr[c]) * xr[c];
    const double denom = std::max(std::sqrt(ss), static_cast<double>(eps));
    for (std::int64_t c = 0; c < cols; ++c) y[r * cols + c] = static_cast<float>(xr[c] / denom);
  }
}

}  // namespace ref
}  // namespace mmembed::kernels
