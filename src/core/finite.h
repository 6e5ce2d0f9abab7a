// Whether a float array holds only finite values (no NaN, no +-inf).
#pragma once

#include <bit>
#include <cstdint>

namespace mmembed {

// Branch-free over the exponent bits, so the compiler vectorizes it; a caller that gets false
// then looks for the first bad value to name it in its error.
inline bool all_finite(const float* x, std::int64_t n) {
  std::uint32_t bad = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    bad |= static_cast<std::uint32_t>((std::bit_cast<std::uint32_t>(x[i]) & 0x7f800000u) ==
                                      0x7f800000u);
  }
  return bad == 0;
}

}  // namespace mmembed
