#include "kernels/elementwise.h"

#include <cmath>
#include <cstdint>

#include "kernels/parallel.h"
#include "kernels/vectorize.h"

#define MMEMBED_GELU_AVX512 MMEMBED_KERNELS_X86  // vectorize.h

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

inline float gelu_f32(float v) { return 0.5f * v * (1.0f + erf_f32(v * kSqrtHalf)); }

#if MMEMBED_GELU_AVX512

// GELU of 16 lanes: the formula of gelu_f32 written out in AVX-512, where the compiler's
// vectorization of the scalar code spends about half its instructions on exp's NaN and range
// masks and waits on a division. Here 1 / (1 + p|z|) is rcp14 refined by one Newton step
// (relative error ~1e-8, below the formula's 1.5e-7), and exp(-z^2) is detail::exp16 (2^n by
// scalef). A NaN input gives NaN (0.5 v (1 + erf) keeps it). On a 616 x 4096 buffer, one
// core: 0.59-0.73 ns an element against 0.93-1.12 for the compiler's loop (docs/performance.md).
__attribute__((target("avx512f"))) inline __m512 gelu16(__m512 v) {
  const __m512 z = _mm512_mul_ps(v, _mm512_set1_ps(kSqrtHalf));
  // |z|, capped so that 1 + p|z| stays finite for the Newton step (+-inf give +-1 as before).
  const __m512 a = _mm512_min_ps(_mm512_abs_ps(z), _mm512_set1_ps(1e30f));
  const __m512 d = _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), a, _mm512_set1_ps(1.0f));
  __m512 t = _mm512_rcp14_ps(d);
  t = _mm512_mul_ps(t, _mm512_fnmadd_ps(d, t, _mm512_set1_ps(2.0f)));  // Newton: t (2 - d t)
  __m512 poly = _mm512_set1_ps(1.061405429f);
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-1.453152027f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(1.421413741f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-0.284496736f));
  poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(0.254829592f));
  // exp(-a^2) <= 1 (0 below -104: erf is exactly +-1 there anyway).
  const __m512 e = detail::exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), a), a));
  // erf(|z|) = 1 - poly t e, then the sign of z; y = 0.5 v (1 + erf(z)).
  const __m512 erf_abs = _mm512_fnmadd_ps(_mm512_mul_ps(poly, t), e, _mm512_set1_ps(1.0f));
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(INT32_MIN));
  const __m512 erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf_abs), sign));
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v),
                       _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
}

// y[i] = gelu(x[i] + bias[i]) (bias may be null) for i < n, every element through gelu16 (the
// last partial vector masked), so an element's bits do not depend on n or its position.
__attribute__((target("avx512f"))) void gelu_avx512(const float* x, const float* bias, float* y,
                                                    std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_loadu_ps(x + i);
    if (bias != nullptr) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + i));
    _mm512_storeu_ps(y + i, gelu16(v));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    if (bias != nullptr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + i));
    _mm512_mask_storeu_ps(y + i, m, gelu16(v));
  }
}

bool gelu_avx512_available() {
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
}

#endif  // MMEMBED_GELU_AVX512
inline float quick_gelu_f32(float v) {
  return v / (1.0f + detail::exp_f32(-1.702f * v));
}

MMEMBED_TARGET_CLONES void gelu_range_generic(const float* x, float* y, std::int64_t i0,
                                              std::int64_t i1) {
  for (std::int64_t i = i0; i < i1; ++i) y[i] = gelu_f32(x[i]);
}

MMEMBED_TARGET_CLONES void bias_gelu_row_generic(float* y, const float* bias, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = gelu_f32(y[i] + bias[i]);
}

void gelu_range(const float* x, float* y, std::int64_t i0, std::int64_t i1) {
#if MMEMBED_GELU_AVX512
  if (gelu_avx512_available()) return gelu_avx512(x + i0, nullptr, y + i0, i1 - i0);
#endif
  gelu_range_generic(x, y, i0, i1);
}

void bias_gelu_row(float* y, const float* bias, std::int64_t n) {
#if MMEMBED_GELU_AVX512
  if (gelu_avx512_available()) return gelu_avx512(y, bias, y, n);
#endif
  bias_gelu_row_generic(y, bias, n);
}

MMEMBED_TARGET_CLONES void bias_quick_gelu_row(float* y, const float* bias, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = quick_gelu_f32(y[i] + bias[i]);
}

// tanh is a libm call, which the compiler does not vectorize without -ffast-math: scalar.
void tanh_range(const float* x, float* y, std::int64_t i0, std::int64_t i1) {
  for (std::int64_t i = i0; i < i1; ++i) y[i] = std::tanh(x[i]);
}

// Vectorized through detail::exp_f32.
MMEMBED_TARGET_CLONES void quick_gelu_range(const float* x, float* y, std::int64_t i0,
                                            std::int64_t i1) {
  for (std::int64_t i = i0; i < i1; ++i) y[i] = quick_gelu_f32(x[i]);
}

// y[r, :cols] = act(y[r, :cols] + bias) for `rows` rows at stride ld: BiasRow with a bias,
// Range (the plain activation) without one.
template <void (*BiasRow)(float*, const float*, std::int64_t),
          void (*Range)(const float*, float*, std::int64_t, std::int64_t)>
void bias_activation_rows(float* y, const float* bias, std::int64_t rows, std::int64_t cols,
                          std::int64_t ld) {
  for (std::int64_t r = 0; r < rows; ++r) {
    if (bias != nullptr) {
      BiasRow(y + r * ld, bias, cols);
    } else {
      Range(y + r * ld, y + r * ld, 0, cols);
    }
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

void bias_gelu_rows(float* y, const float* bias, std::int64_t rows, std::int64_t cols,
                    std::int64_t ld) {
  bias_activation_rows<bias_gelu_row, gelu_range>(y, bias, rows, cols, ld);
}

void bias_quick_gelu_rows(float* y, const float* bias, std::int64_t rows, std::int64_t cols,
                          std::int64_t ld) {
  bias_activation_rows<bias_quick_gelu_row, quick_gelu_range>(y, bias, rows, cols, ld);
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
