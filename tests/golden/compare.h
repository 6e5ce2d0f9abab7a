// Element-wise comparison of an array computed by mmembed with the reference's golden array.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace mmembed::golden {

// |ours - ref| <= atol + rtol * |ref| for every element; exact when both are zero.
struct Tolerance {
  double atol = 0.0;
  double rtol = 0.0;
  std::string reason;  // why this tolerance (docs/numerics.md)
};

struct CompareResult {
  bool ok = false;
  std::int64_t mismatches = 0;     // elements outside the tolerance
  std::int64_t worst_index = -1;   // flat index of the largest excess over the tolerance
  double max_abs_diff = 0.0;
  double worst_ours = 0.0, worst_ref = 0.0;
  std::string message;             // one line, names the array; empty when ok
};

// Compares shape, then values (any dtypes; integer and bool arrays compare exactly whatever the
// tolerance). NaN equals NaN only at the same position; a NaN on one side is a mismatch.
CompareResult compare(const std::string& name, const Tensor& ours, const Tensor& ref,
                      const Tolerance& tol);

}  // namespace mmembed::golden
