// Internal to the kernels: helpers that let plain loops vectorize.
//
// MMEMBED_TARGET_CLONES compiles a function for AVX-512, AVX2 and the baseline and picks one at
// load time (GNU ifunc), so one binary runs everywhere and uses the wide vectors where present.
// The clone is chosen per machine, so results are the same on every run and thread count of one
// machine; another machine may differ in the last bits (e.g. FMA contraction).
//
// Reductions are written over kLanes independent accumulators: the compiler keeps them in one
// vector register without reassociating anything (no -ffast-math), so the summation order, and
// thus the result, is fixed by the source.
#pragma once

#include <bit>
#include <cstdint>

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(MMEMBED_NO_TARGET_CLONES)
#define MMEMBED_TARGET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MMEMBED_TARGET_CLONES
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// GCC 12 warns about the placeholder vectors inside its own AVX-512 intrinsics (its
// _mm512_undefined_ps idiom) once they are inlined; the warnings point into the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // a GCC-only warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop
// The kernels' explicit AVX-512 code (functions with target("avx512f"), chosen at run time).
#define MMEMBED_KERNELS_X86 1
#else
#define MMEMBED_KERNELS_X86 0
#endif

namespace mmembed::kernels::detail {

inline constexpr int kLanes = 16;

// sum(x[0..n)) in double over kLanes accumulators.
inline double sum_f64(const float* x, std::int64_t n) {
  double acc[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(x[i + l]);
  }
  for (int l = 0; i < n; ++i, ++l) acc[l] += static_cast<double>(x[i]);
  double s = 0.0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// sum((x - c)^2) in double over kLanes accumulators.
inline double sum_sq_dev_f64(const float* x, std::int64_t n, double c) {
  double acc[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      double d = static_cast<double>(x[i + l]) - c;
      acc[l] += d * d;
    }
  }
  for (int l = 0; i < n; ++i, ++l) {
    double d = static_cast<double>(x[i]) - c;
    acc[l] += d * d;
  }
  double s = 0.0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// e^x in float for use inside loops the compiler vectorizes (libm's expf is a call, which
// blocks vectorization). Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then the degree-7
// Taylor polynomial of e^r (truncation error r^8/8! < 6e-9 relative) and 2^n from the exponent
// bits, applied as two factors so n = 128 and the subnormal results stay exact. Branch-free.
// Within 2 ulp of the exact value for normal results (tests/unit/kernels), +inf above 88.72,
// 0 below -103.97, NaN for NaN; exp(-inf) = 0, exp(+inf) = +inf.
inline float exp_f32(float x) {
  const bool is_nan = x != x;
  float xc = is_nan ? 0.0f : x;
  xc = xc < -104.0f ? -104.0f : xc;
  xc = xc > 89.0f ? 89.0f : xc;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n_f = (xc * kLog2e + kRound) - kRound;
  constexpr float kLn2Hi = 0.693359375f;      // few significant bits: n * kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440e-4f;  // ln 2 - kLn2Hi
  const float r = (xc - n_f * kLn2Hi) - n_f * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const std::int32_t n = static_cast<std::int32_t>(n_f);  // in [-150, 128]
  const std::int32_t n1 = n / 2, n2 = n - n1;
  const float s1 = std::bit_cast<float>(static_cast<std::uint32_t>(n1 + 127) << 23);
  const float s2 = std::bit_cast<float>(static_cast<std::uint32_t>(n2 + 127) << 23);
  const float y = p * s1 * s2;
  return is_nan ? x : y;
}

#if MMEMBED_KERNELS_X86

// e^x on 16 lanes: the reduction and polynomial of detail::exp_f32 with explicit FMAs, and 2^n
// applied by vscalefps (exact scaling, one rounding for subnormal results). NaN lanes stay NaN;
// x > 89 gives +inf, x < -104 gives 0.
__attribute__((target("avx512f"))) inline __m512 exp16(__m512 x) {
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  __m512 xc = _mm512_min_ps(x, _mm512_set1_ps(89.0f));  // NaN -> 89 (replaced at the end)
  xc = _mm512_max_ps(xc, _mm512_set1_ps(-104.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_mask_mov_ps(_mm512_scalef_ps(p, n), nan, x);
}

#endif  // MMEMBED_KERNELS_X86

}  // namespace mmembed::kernels::detail
