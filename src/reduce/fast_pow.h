// x^b in float, 16 values at a time, for UMAP's SGD (libm's powf is one call per value, a third
// of the SGD's time). Written with GCC's vector extensions, so it is SIMD in every clone of a
// MMEMBED_TARGET_CLONES caller (one zmm register for AVX-512, two ymm for AVX2, four xmm for the baseline).
//
//   x^b = e^(b ln x), with
//   ln x: x = m 2^e, m in [sqrt(1/2), sqrt(2)) from the exponent and mantissa bits, then
//         ln m = 2 atanh(t) = 2 (t + t^3/3 + ... + t^9/9), t = (m - 1) / (m + 1), |t| <= 0.1716
//         (truncation error < 1e-9), plus e ln 2 (ln 2 split in two so e ln 2 is exact enough);
//   e^y:  y = n ln 2 + r, |r| <= ln2 / 2 (Cody-Waite), the degree-7 Taylor polynomial of e^r
//         (truncation error < 6e-9), and 2^n from the exponent bits.
// Relative error about |b ln x| 2^-24 + a few ulp, dominated by the rounding of y = b ln x to
// float: below 1e-6 for |y| <= 10 (UMAP's squared distances) and below 1e-5 for |y| <= 87
// (tests/unit/reduce/umap_test.cc checks it against std::pow). Branch-free.
// Domain: x in [FLT_MIN, FLT_MAX] (callers clamp smaller x up to FLT_MIN); y = b ln x is clamped
// to [-87, 88], so results saturate at about 1.6e-38 and 1.65e38 instead of under/overflowing.
#pragma once

#include <cstdint>
#include <cstring>

namespace mmembed::reduce {

inline constexpr int kPowLanes = 16;

namespace fast_pow_detail {
typedef float F16 __attribute__((vector_size(64)));
typedef std::int32_t I16 __attribute__((vector_size(64)));
typedef std::uint32_t U16 __attribute__((vector_size(64)));
}  // namespace fast_pow_detail

// out[l] = x[l]^b for l < kPowLanes (x and out may alias).
[[gnu::always_inline]] inline void pow_f32x16(const float* x, float b, float* out) {
  using namespace fast_pow_detail;
  F16 v;
  std::memcpy(&v, x, sizeof v);
  // ln x
  const U16 bits = (U16)v;
  I16 e = (I16)(bits >> 23) - 127;
  F16 m = (F16)((bits & 0x007fffffu) | 0x3f800000u);  // [1, 2)
  const I16 high = m > 1.41421356f;
  m = high ? m * 0.5f : m;
  e = high ? e + 1 : e;
  const F16 t = (m - 1.0f) / (m + 1.0f);
  const F16 t2 = t * t;
  F16 p = t2 * (1.0f / 9.0f) + 1.0f / 7.0f;
  p = p * t2 + 1.0f / 5.0f;
  p = p * t2 + 1.0f / 3.0f;
  p = p * t2 + 1.0f;
  constexpr float kLn2Hi = 0.693359375f;      // few significant bits: n * kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440e-4f;  // ln 2 - kLn2Hi
  const F16 ef = __builtin_convertvector(e, F16);
  const F16 lnx = ef * kLn2Hi + (ef * kLn2Lo + 2.0f * t * p);
  // e^(b ln x)
  F16 y = b * lnx;
  y = y < -87.0f ? F16{} - 87.0f : y;
  y = y > 88.0f ? F16{} + 88.0f : y;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const F16 n_f = (y * kLog2e + kRound) - kRound;
  const F16 r = (y - n_f * kLn2Hi) - n_f * kLn2Lo;
  F16 q = r * (1.0f / 5040.0f) + 1.0f / 720.0f;
  q = q * r + 1.0f / 120.0f;
  q = q * r + 1.0f / 24.0f;
  q = q * r + 1.0f / 6.0f;
  q = q * r + 0.5f;
  q = q * r + 1.0f;
  q = q * r + 1.0f;
  const I16 n = __builtin_convertvector(n_f, I16);  // in [-126, 127]
  const F16 scale = (F16)((n + 127) << 23);
  const F16 res = q * scale;
  std::memcpy(out, &res, sizeof res);
}

// x^b for one value (the same arithmetic, one lane used).
[[gnu::always_inline]] inline float pow_f32(float x, float b) {
  float v[kPowLanes];
  for (float& e : v) e = x;
  pow_f32x16(v, b, v);
  return v[0];
}

}  // namespace mmembed::reduce
