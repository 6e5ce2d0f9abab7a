#include "kernels/softmax.h"

#include <cmath>
#include <limits>

#include "kernels/parallel.h"
#include "kernels/vectorize.h"

#if MMEMBED_KERNELS_X86  // vectorize.h: <immintrin.h> and detail::exp16
#define MMEMBED_SOFTMAX_AVX512 1
#else
#define MMEMBED_SOFTMAX_AVX512 0
#endif

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

#if MMEMBED_SOFTMAX_AVX512

// The row in three passes instead of five: (x + mask) and the running max, then exp with the
// double sum (16 double lanes: lane l sums elements l, l + 16, ..., then the lanes in order, as
// detail::sum_f64), then the scaling.
__attribute__((target("avx512f"))) void softmax_row_avx512(const float* x, float* y,
                                                           std::int64_t cols, const float* mask) {
  const std::int64_t full = cols / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (cols - full)) - 1u);
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 mx = ninf;
  // max(v, mx): a NaN v leaves mx, as the scalar loop (it then propagates through exp).
  for (std::int64_t c = 0; c < full; c += 16) {
    __m512 v = _mm512_loadu_ps(x + c);
    if (mask) v = _mm512_add_ps(v, _mm512_loadu_ps(mask + c));
    _mm512_storeu_ps(y + c, v);
    mx = _mm512_max_ps(v, mx);
  }
  if (tail) {
    __m512 v = _mm512_maskz_loadu_ps(tail, x + full);
    if (mask) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(tail, mask + full));
    _mm512_mask_storeu_ps(y + full, tail, v);
    mx = _mm512_mask_max_ps(mx, tail, v, mx);
  }
  const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  for (std::int64_t c = 0; c < full; c += 16) {
    const __m512 e = detail::exp16(_mm512_sub_ps(_mm512_loadu_ps(y + c), m));
    _mm512_storeu_ps(y + c, e);
    lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(
                               _mm512_castps_pd(e), 1))));
  }
  if (tail) {
    const __m512 e = detail::exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, y + full), m));
    _mm512_mask_storeu_ps(y + full, tail, e);
    const __m512 ez = _mm512_maskz_mov_ps(tail, e);
    lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(ez)));
    hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(
                               _mm512_castps_pd(ez), 1))));
  }
  alignas(64) double lanes[16];
  _mm512_store_pd(lanes, lo);
  _mm512_store_pd(lanes + 8, hi);
  double sum = 0.0;
  for (int l = 0; l < 16; ++l) sum += lanes[l];
  const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / sum));
  for (std::int64_t c = 0; c < full; c += 16) {
    _mm512_storeu_ps(y + c, _mm512_mul_ps(_mm512_loadu_ps(y + c), inv));
  }
  if (tail) {
    _mm512_mask_storeu_ps(y + full, tail,
                          _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, y + full), inv));
  }
}

bool use_avx512() {
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
}

#endif

}  // namespace

void softmax(const float* x, float* y, std::int64_t rows, std::int64_t cols, const float* mask) {
  if (cols <= 0) return;
  parallel_for(rows, row_grain(cols), [&](std::int64_t r0, std::int64_t r1) {
#if MMEMBED_SOFTMAX_AVX512
    if (use_avx512()) {
      for (std::int64_t r = r0; r < r1; ++r) {
        softmax_row_avx512(x + r * cols, y + r * cols, cols, mask);
      }
      return;
    }
#endif
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
