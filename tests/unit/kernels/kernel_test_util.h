// Helpers shared by the kernel tests: seeded inputs and a magnitude-scaled comparison.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace mmembed::kernels::testing {

// Uniform values in [lo, hi), reproducible from `seed`.
inline std::vector<float> random_vector(std::size_t n, std::uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Passes when |got - want| <= atol + rtol * |want| element-wise (NaN must match NaN); on failure
// names the worst element.
inline ::testing::AssertionResult all_close(const float* got, const float* want, std::size_t n,
                                            double atol, double rtol) {
  std::size_t worst = 0, bad = 0;
  double worst_excess = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double g = got[i], w = want[i];
    if (std::isnan(g) || std::isnan(w)) {
      if (std::isnan(g) != std::isnan(w)) {
        ++bad;
        if (worst_excess < INFINITY) worst = i, worst_excess = INFINITY;
      }
      continue;
    }
    const double err = std::fabs(g - w), tol = atol + rtol * std::fabs(w);
    if (!(err <= tol)) {
      ++bad;
      if (err - tol > worst_excess) worst = i, worst_excess = err - tol;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  std::ostringstream msg;
  msg.precision(9);
  msg << bad << " of " << n << " elements differ; worst [" << worst << "] got " << got[worst]
      << " want " << want[worst] << " (atol " << atol << ", rtol " << rtol << ")";
  return ::testing::AssertionFailure() << msg.str();
}

inline ::testing::AssertionResult all_close(const std::vector<float>& got,
                                            const std::vector<float>& want, double atol,
                                            double rtol) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "sizes " << got.size() << " and " << want.size();
  }
  return all_close(got.data(), want.data(), got.size(), atol, rtol);
}

// Bit equality, naming the first difference.
inline ::testing::AssertionResult same_bits(const std::vector<float>& a,
                                            const std::vector<float>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << b[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// Lengths around the vector widths (4, 8, 16 floats) and the models' sizes.
inline const std::vector<std::int64_t>& awkward_sizes() {
  static const std::vector<std::int64_t> sizes = {1,  2,  3,  7,  15, 16,  17,  31,  32,
                                                  33, 63, 64, 65, 77, 325, 442, 768, 1025};
  return sizes;
}

}  // namespace mmembed::kernels::testing
