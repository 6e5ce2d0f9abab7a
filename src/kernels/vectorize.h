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

#include <cstdint>

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(MMEMBED_NO_TARGET_CLONES)
#define MMEMBED_TARGET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MMEMBED_TARGET_CLONES
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

}  // namespace mmembed::kernels::detail
